//! RFC 9112 conformance of the client-facing HTTP/1.x server, over raw
//! sockets, with a client that checks every response's framing: nothing
//! after `Connection: close`, chunk sizes and extensions, HEAD refusals,
//! malformed heads and Host, smuggling in both field orders, a connection
//! that never speaks, absolute-form targets, Date.
//!
//! Only what any correct HTTP/1.1 server does, whichever implements it:
//! status codes, framing and when the connection closes; never refusal
//! bodies, field order or field case. `proxy_h1_server.rs` has the
//! behaviour particular to ours (keep-alive, bodies, 100-continue,
//! timeouts, lingering close, shutdown, mutations).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use portcullis::proxy::ProxyConfig;
use portcullis::snapshot::ConsumerIndex;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds every wait for the proxy: a hang is a test failure.
const WAIT: Duration = Duration::from_secs(5);
/// How long a connection must stay silent to count as open and idle.
const QUIET: Duration = Duration::from_millis(200);
/// Between the pieces of a request sent in several writes.
const PAUSE: Duration = Duration::from_millis(20);

/// How a response body was delimited.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    /// No body by definition (HEAD, 1xx, 204, 304).
    None,
    Length,
    Chunked,
    /// Read until the server closed the connection.
    Close,
}

/// One response read off a connection that may carry more.
#[derive(Debug)]
struct Reply {
    version: String,
    status: u16,
    head: String,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
    framing: Framing,
}

impl Reply {
    fn values(&self, name: &str) -> Vec<&str> {
        self.fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.values(name).first().copied()
    }

    /// Whether the server announced it closes the connection after this.
    fn announces_close(&self) -> bool {
        self.values("connection").iter().flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case("close"))
    }

    /// The echo's description of what the upstream received.
    fn echo(&self) -> Echoed {
        assert_eq!(self.status, 200, "expected a proxied 200: {}\n{}", self.head, String::from_utf8_lossy(&self.body));
        Echoed(serde_json::from_slice(&self.body).expect("echo JSON"))
    }

    /// Framed so the connection can carry another response.
    fn assert_self_delimited(&self) {
        assert!(matches!(self.framing, Framing::Length | Framing::Chunked), "{:?}: {}", self.framing, self.head);
        assert!(!self.announces_close(), "the server announced a close: {}", self.head);
    }

    fn assert_dated(&self) {
        let date = self.header("date").unwrap_or_else(|| panic!("no Date: {}", self.head));
        assert!(httpdate::parse_http_date(date).is_ok(), "not an HTTP-date: {date:?}");
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A raw client connection that reads responses one at a time.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time");
        Client { stream: stream.expect("connect"), buf: Vec::new() }
    }

    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let written = tokio::time::timeout(WAIT, self.stream.write_all(bytes.as_ref())).await;
        written.expect("write in time").expect("write");
    }

    /// Reads more; false at the end of the stream (a reset counts as one).
    async fn fill(&mut self) -> bool {
        let mut chunk = vec![0u8; 64 * 1024];
        let read = tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await;
        match read.unwrap_or_else(|_| panic!("nothing from the proxy in time; so far {:?}", lossy(&self.buf))) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Takes the first `n` buffered bytes, reading until there are that many.
    async fn take(&mut self, n: usize, what: &str) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "closed inside {what}");
        }
        self.buf.drain(..n).collect()
    }

    /// Takes one CRLF-terminated line, without its CRLF.
    async fn line(&mut self, what: &str) -> String {
        let end = loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                break end;
            }
            assert!(self.fill().await, "closed inside {what}");
        };
        let line = self.take(end + 2, what).await;
        String::from_utf8(line[..end].to_vec()).expect("ASCII line")
    }

    /// The next response. `to_head`: it answers a HEAD, so has no body
    /// whatever its fields say. Checks the framing rules of RFC 9112 §6.
    async fn reply(&mut self, to_head: bool) -> Reply {
        let end = loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                break end;
            }
            assert!(self.fill().await, "closed before a complete response head: {:?}", lossy(&self.buf));
        };
        let raw = self.take(end + 4, "a head").await;
        let head = String::from_utf8(raw[..end].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        assert!(status_line.starts_with("HTTP/1."), "not an HTTP/1.x status line: {head:?}");
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let status = parts.next().filter(|s| s.len() == 3).and_then(|s| s.parse().ok());
        let status: u16 = status.unwrap_or_else(|| panic!("no three-digit status: {status_line:?}"));
        let fields = lines
            .map(|line| {
                assert!(!line.starts_with([' ', '\t']), "obsolete line folding: {head}");
                let (name, value) = line.split_once(':').unwrap_or_else(|| panic!("no colon in {line:?}"));
                assert!(!name.is_empty() && !name.ends_with([' ', '\t']), "bad field name in {line:?}");
                (name.to_owned(), value.trim().to_owned())
            })
            .collect();
        let mut reply = Reply { version, status, head, fields, body: Vec::new(), framing: Framing::None };
        if to_head || (100..200).contains(&status) || status == 204 || status == 304 {
            return reply;
        }
        let lengths = reply.values("content-length");
        let codings: Vec<String> =
            reply.values("transfer-encoding").iter().flat_map(|v| v.split(',')).map(|c| c.trim().to_owned()).collect();
        if !codings.is_empty() {
            // RFC 9112 §6.2: never both.
            assert!(lengths.is_empty(), "Transfer-Encoding with Content-Length: {}", reply.head);
            assert!(codings.last().is_some_and(|c| c.eq_ignore_ascii_case("chunked")), "{}", reply.head);
            reply.body = self.chunked_body().await;
            reply.framing = Framing::Chunked;
        } else if let Some(first) = lengths.first() {
            assert!(lengths.iter().all(|l| l == first), "conflicting Content-Length: {}", reply.head);
            let len: usize = first.parse().unwrap_or_else(|_| panic!("bad Content-Length: {}", reply.head));
            reply.body = self.take(len, "a Content-Length body").await;
            reply.framing = Framing::Length;
        } else {
            while self.fill().await {}
            reply.body = std::mem::take(&mut self.buf);
            reply.framing = Framing::Close;
        }
        reply
    }

    async fn chunked_body(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let size_line = self.line("a chunk size").await;
            let size = size_line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).unwrap_or_else(|_| panic!("bad chunk size {size_line:?}"));
            if size == 0 {
                // Trailer fields, up to the empty line.
                while !self.line("the trailer section").await.is_empty() {}
                return body;
            }
            body.extend(self.take(size, "a chunk").await);
            assert!(self.line("a chunk's end").await.is_empty(), "chunk data longer than its size");
        }
    }

    /// The answer to a request the proxy may refuse, or `None` if it closed
    /// the connection without one.
    async fn reply_or_close(&mut self) -> Option<Reply> {
        loop {
            if find(&self.buf, b"\r\n\r\n").is_some() {
                return Some(self.reply(false).await);
            }
            if !self.fill().await {
                // A reset may cut an answer short; it must not be a 5xx.
                let partial = lossy(&self.buf);
                assert!(!partial.starts_with("HTTP/1.1 5") && !partial.starts_with("HTTP/1.0 5"), "{partial}");
                return None;
            }
        }
    }

    /// True once the server has closed the connection and sent nothing more.
    async fn closed(&mut self) -> bool {
        self.buf.is_empty() && !self.fill().await && self.buf.is_empty()
    }

    /// True if the connection is still open and silent after `QUIET`.
    async fn stays_open(&mut self) -> bool {
        assert!(self.buf.is_empty(), "unread bytes: {:?}", lossy(&self.buf));
        let mut byte = [0u8; 1];
        match tokio::time::timeout(QUIET, self.stream.read(&mut byte)).await {
            Err(_) => true,
            Ok(Ok(0) | Err(_)) => false,
            Ok(Ok(_)) => panic!("unasked-for bytes on an idle connection: {:?}", lossy(&byte)),
        }
    }
}

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n")
}

/// A new connection still gets a request proxied.
async fn assert_serves(addr: SocketAddr) {
    let mut client = Client::connect(addr).await;
    client.send(get_request("/still-serving")).await;
    assert_eq!(client.reply(false).await.echo().path(), "/still-serving");
}

// ---------- close ----------

#[tokio::test]
async fn connection_close_from_the_client_is_answered_then_closed() {
    let proxy = open_proxy().await;
    let mut client = Client::connect(proxy.addr).await;
    client.send(format!("GET /closing HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n")).await;
    assert_eq!(client.reply(false).await.echo().path(), "/closing");
    assert!(client.closed().await, "the server kept the connection open after Connection: close");

    // RFC 9112 §9.6: nothing after the request carrying close is processed.
    let mut client = Client::connect(proxy.addr).await;
    let pipeline = format!("GET /last HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n{}", get_request("/extra"));
    client.send(pipeline).await;
    assert_eq!(client.reply(false).await.echo().path(), "/last");
    assert!(client.closed().await, "a request after Connection: close was answered");
}

// ---------- request bodies ----------

#[tokio::test]
async fn a_chunked_body_split_across_writes_arrives_whole_and_the_connection_goes_on() {
    let proxy = open_proxy().await;
    let mut client = Client::connect(proxy.addr).await;
    client.send(format!("POST /chunked HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n")).await;
    // Split inside chunk data, inside a size line and before the last CRLF;
    // an upper-case hex size and a chunk extension.
    for piece in ["5\r\nhel", "lo\r\n6\r\n wor", "ld\r\nA;ext=1\r\n, chunk", "ed!\r\n", "0\r\n", "\r\n"] {
        client.send(piece).await;
        tokio::time::sleep(PAUSE).await;
    }
    let up = client.reply(false).await.echo();
    assert_eq!((up.path(), up.body(), up.body_len()), ("/chunked", "hello world, chunked!", 21));

    client.send(get_request("/after")).await;
    assert_eq!(client.reply(false).await.echo().path(), "/after");
    assert!(client.stays_open().await);
}

// ---------- HEAD ----------

#[tokio::test]
async fn a_head_request_the_proxy_refuses_gets_no_body_either() {
    let proxy = auth_proxy(mk_key_auth()).await;
    let mut client = Client::connect(proxy.addr).await;
    client.send(format!("HEAD / HTTP/1.1\r\nHost: {HOST}\r\n\r\n")).await;
    assert_eq!(client.reply(true).await.status, 401);
    client.send(format!("GET /ok HTTP/1.1\r\nHost: {HOST}\r\napikey: alice-key\r\n\r\n")).await;
    assert_eq!(client.reply(false).await.echo().path(), "/ok");
}

// ---------- malformed heads ----------

#[tokio::test]
async fn malformed_requests_get_a_4xx_or_a_close_and_the_proxy_serves_on() {
    let proxy = open_proxy().await;
    let cases: &[&[u8]] = &[
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n",
        // RFC 9112 §5.1: whitespace between a field name and its colon.
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nbody",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 40\r\n\r\nbody",
        // RFC 9112 §6.3: chunked not last in a request is a 400.
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
    ];
    for &request in cases {
        let mut client = Client::connect(proxy.addr).await;
        client.send(request).await;
        if let Some(reply) = client.reply_or_close().await {
            assert!((400..500).contains(&reply.status), "{} for {:?}", reply.head, lossy(request));
            assert!(client.closed().await, "more was answered after refusing {:?}", lossy(request));
        }
        assert_serves(proxy.addr).await;
    }
}

#[tokio::test]
async fn transfer_encoding_with_content_length_is_never_smuggled() {
    let proxy = open_proxy().await;
    // CL.TE: read by its Content-Length, the smuggled GET is part of the
    // body; read as chunked, it is a second request.
    let smuggled = format!("0\r\n\r\n{}", get_request("/smuggled"));
    let orders = [
        format!("Content-Length: {}\r\nTransfer-Encoding: chunked", smuggled.len()),
        format!("Transfer-Encoding: chunked\r\nContent-Length: {}", smuggled.len()),
    ];
    for fields in orders {
        let request = format!("POST /first HTTP/1.1\r\nHost: {HOST}\r\n{fields}\r\n\r\n{smuggled}");
        let mut client = Client::connect(proxy.addr).await;
        client.send(&request).await;
        // RFC 9112 §6.1: reject, or serve it as chunked and then close.
        if let Some(reply) = client.reply_or_close().await {
            if reply.status != 200 {
                assert!((400..500).contains(&reply.status), "{} for {request:?}", reply.head);
            } else {
                assert_eq!(reply.echo().path(), "/first");
            }
            assert!(client.closed().await, "the smuggled request was answered: {request:?}");
        }
    }
    assert_serves(proxy.addr).await;
}

#[tokio::test]
async fn a_request_without_host_or_with_two_is_a_400_but_http10_may_leave_it_out() {
    let proxy = open_proxy().await;
    // RFC 9112 §3.2; nginx refuses the same three.
    for request in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"GET http://a/ HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ] {
        let mut client = Client::connect(proxy.addr).await;
        client.send(request).await;
        let reply = client.reply(false).await;
        assert_eq!(reply.status, 400, "{} for {:?}", reply.head, lossy(request));
        assert!(client.closed().await, "more was answered after refusing {:?}", lossy(request));
    }
    let mut client = Client::connect(proxy.addr).await;
    client.send(b"GET /old HTTP/1.0\r\n\r\n").await;
    assert_eq!(client.reply(false).await.echo().path(), "/old");
}

// ---------- header read timeout ----------

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed_after_the_header_read_timeout() {
    let echo = start_echo().await;
    let snapshot = mk_snapshot(vec![mk_route("open", prefix("/"), mk_backend(&[echo]))], ConsumerIndex::new());
    let config = ProxyConfig { header_read_timeout: Duration::from_millis(300), ..Default::default() };
    let proxy = start_proxy_with(snapshot, config).await;
    let mut client = Client::connect(proxy.addr).await;
    // Closed within `WAIT`, perhaps after a 408, never with a 5xx.
    if let Some(reply) = client.reply_or_close().await {
        assert!((400..500).contains(&reply.status), "{}", reply.head);
        assert!(client.closed().await);
    }
    assert_serves(proxy.addr).await;
}

// ---------- response framing ----------

#[tokio::test]
async fn an_absolute_form_target_is_routed() {
    let proxy = open_proxy().await;
    let mut client = Client::connect(proxy.addr).await;
    client.send(format!("GET http://{HOST}/x?y=1 HTTP/1.1\r\nHost: {HOST}\r\n\r\n")).await;
    let reply = client.reply(false).await;
    reply.assert_self_delimited();
    assert_eq!(reply.version, "HTTP/1.1");
    assert_eq!(reply.echo().path(), "/x?y=1");
}

#[tokio::test]
async fn date_is_present_on_proxied_and_proxy_generated_responses() {
    let echo = start_echo().await;
    let routes = vec![mk_route("api", prefix("/api"), mk_backend(&[echo]))];
    let proxy = start_proxy(mk_snapshot(routes, ConsumerIndex::new())).await;
    let mut client = Client::connect(proxy.addr).await;
    client.send(get_request("/api")).await;
    let proxied = client.reply(false).await;
    assert_eq!(proxied.status, 200);
    proxied.assert_dated();
    assert_eq!(proxied.values("date").len(), 1, "{}", proxied.head);

    client.send(get_request("/nowhere")).await;
    let own = client.reply(false).await;
    assert_eq!(own.status, 404);
    own.assert_dated();
}
