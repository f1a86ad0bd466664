//! The client-facing HTTP/1 server, over raw sockets: keep-alive and
//! pipelining, request body framing (and refusing ambiguous framing),
//! 100-continue, HEAD, response framing for every kind of client, the
//! head-read timeout and head size limit.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use portcullis::proxy::ProxyConfig;
use portcullis::snapshot::ConsumerIndex;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);

/// One response read off a connection that may carry more.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    fn echoed_path(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).expect("echo JSON");
        v["path"].as_str().unwrap_or_default().to_owned()
    }

    fn echoed_body(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).expect("echo JSON");
        v["body"].as_str().unwrap_or_default().to_owned()
    }
}

/// A client connection that reads responses one at a time.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Self {
        Client { stream: TcpStream::connect(addr).await.expect("connect"), buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads more; false at end of stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(WAIT, self.stream.read(&mut chunk)).await.expect("no reply in time") {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next response; `head_request`: it has no body whatever it says.
    async fn reply(&mut self, head_request: bool) -> Reply {
        let end = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            assert!(self.fill().await, "closed before a response head: {:?}", String::from_utf8_lossy(&self.buf));
        };
        let head = String::from_utf8(self.buf[..end].to_vec()).expect("ascii head");
        self.buf.drain(..end + 4);
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
        let mut reply = Reply { status, head, body: Vec::new() };
        if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
            return reply;
        }
        if let Some(len) = reply.header("content-length") {
            let len: usize = len.parse().expect("length");
            while self.buf.len() < len {
                assert!(self.fill().await, "closed inside a body");
            }
            reply.body = self.buf.drain(..len).collect();
        } else if reply.header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
            loop {
                let line_end = loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    assert!(self.fill().await, "closed inside a chunked body");
                };
                let size = usize::from_str_radix(std::str::from_utf8(&self.buf[..line_end]).expect("size"), 16)
                    .expect("hex size");
                while self.buf.len() < line_end + 2 + size + 2 {
                    assert!(self.fill().await, "closed inside a chunk");
                }
                reply.body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                self.buf.drain(..line_end + 2 + size + 2);
                if size == 0 {
                    break;
                }
            }
        } else {
            while self.fill().await {}
            reply.body = std::mem::take(&mut self.buf);
        }
        reply
    }

    /// True once the server has closed the connection (and sent nothing more).
    async fn closed(&mut self) -> bool {
        !self.fill().await && self.buf.is_empty()
    }
}

#[tokio::test]
async fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let proxy = open_proxy().await;
    let mut client = Client::connect(proxy.addr).await;
    // Two requests in one write, then a third after both answers.
    client.send(b"GET /one HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(client.reply(false).await.echoed_path(), "/one");
    assert_eq!(client.reply(false).await.echoed_path(), "/two");
    client.send(b"GET /three HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let third = client.reply(false).await;
    assert_eq!(third.echoed_path(), "/three");
    assert!(third.header("date").is_some_and(|d| httpdate::parse_http_date(&d).is_ok()), "{}", third.head);
}

/// The connection reuses the last request's field list for the next head:
/// each request must reach the upstream with its own fields only, however
/// many the one before it had.
#[tokio::test]
async fn each_request_on_a_connection_carries_only_its_own_fields() {
    let proxy = open_proxy().await;
    let mut client = Client::connect(proxy.addr).await;
    let many: String = (0..40).map(|i| format!("X-First-{i}: {i}\r\n")).collect();
    client.send(format!("GET /one HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes()).await;
    let first = client.reply(false).await;
    client.send(b"GET /two HTTP/1.1\r\nHost: a\r\nX-Second: 2\r\n\r\n").await;
    let second = client.reply(false).await;

    let names = |reply: &Reply| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("echo JSON");
        v["headers"].as_array().expect("headers").iter().map(|h| h[0].as_str().unwrap_or_default().to_owned()).collect()
    };
    let (first, second) = (names(&first), names(&second));
    assert_eq!(first.iter().filter(|n| n.starts_with("x-first-")).count(), 40, "{first:?}");
    assert!(!second.iter().any(|n| n.starts_with("x-first-")), "{second:?}");
    assert_eq!(second.iter().filter(|n| *n == "x-second").count(), 1, "{second:?}");
    assert_eq!(second.iter().filter(|n| *n == "host").count(), 1, "{second:?}");
}

#[tokio::test]
async fn close_is_honoured_for_http11_and_the_default_for_http10() {
    let proxy = open_proxy().await;
    let mut client = Client::connect(proxy.addr).await;
    client.send(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    let reply = client.reply(false).await;
    assert_eq!((reply.status, reply.header("connection").as_deref()), (200, Some("close")));
    assert!(client.closed().await);

    let mut client = Client::connect(proxy.addr).await;
    client.send(b"GET / HTTP/1.0\r\nHost: a\r\n\r\n").await;
    assert_eq!(client.reply(false).await.status, 200);
    assert!(client.closed().await);

    // HTTP/1.0 asking to keep the connection gets it, and is told so.
    let mut client = Client::connect(proxy.addr).await;
    client.send(b"GET /a HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n").await;
    let reply = client.reply(false).await;
    assert_eq!(reply.header("connection").as_deref(), Some("keep-alive"));
    client.send(b"GET /b HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n").await;
    assert_eq!(client.reply(false).await.echoed_path(), "/b");
}

#[tokio::test]
async fn request_bodies_of_both_framings_arrive_whole_and_the_connection_goes_on() {
    let proxy = open_proxy().await;
    let mut client = Client::connect(proxy.addr).await;
    client.send(b"POST /len HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    client.send(b" world").await;
    assert_eq!(client.reply(false).await.echoed_body(), "hello world");

    client.send(b"POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    client.send(b"6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(client.reply(false).await.echoed_body(), "hello world");
    assert_eq!(client.reply(false).await.echoed_path(), "/after");
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let proxy = open_proxy().await;
    let mut client = Client::connect(proxy.addr).await;
    client.send(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n").await;
    let interim = client.reply(false).await;
    assert_eq!(interim.status, 100, "{}", interim.head);
    client.send(b"body").await;
    let reply = client.reply(false).await;
    assert_eq!((reply.status, reply.echoed_body().as_str()), (200, "body"));
    // The proxy answered the expectation; the upstream is not asked again.
    let echoed: serde_json::Value = serde_json::from_slice(&reply.body).expect("echo JSON");
    let names: Vec<&str> = echoed["headers"].as_array().into_iter().flatten().filter_map(|h| h[0].as_str()).collect();
    assert!(!names.contains(&"expect"), "{names:?}");
}

#[tokio::test]
async fn a_refused_request_skips_its_buffered_body_and_keeps_the_connection() {
    let proxy = auth_proxy(mk_key_auth()).await;
    let mut client = Client::connect(proxy.addr).await;
    client.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello").await;
    let refused = client.reply(false).await;
    assert_eq!(refused.status, 401);
    assert!(refused.header("content-type").is_some_and(|t| t.starts_with("application/json")));
    assert!(refused.header("date").is_some());
    client.send(b"GET / HTTP/1.1\r\nHost: a\r\napikey: alice-key\r\n\r\n").await;
    let reply = client.reply(false).await;
    assert_eq!(reply.status, 200, "{}", reply.head);
}

#[tokio::test]
async fn a_refusal_that_leaves_the_body_unsent_closes_the_connection() {
    // The client waits for 100 Continue that a 401 never sends: its body
    // may or may not follow, so the connection cannot be trusted to carry on.
    let proxy = auth_proxy(mk_key_auth()).await;
    let mut client = Client::connect(proxy.addr).await;
    client.send(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n").await;
    let refused = client.reply(false).await;
    assert_eq!((refused.status, refused.header("connection").as_deref()), (401, Some("close")));
    assert!(client.closed().await);
}

#[tokio::test]
async fn head_responses_have_no_body_and_the_next_request_parses() {
    let proxy = auth_proxy(mk_key_auth()).await;
    let mut client = Client::connect(proxy.addr).await;
    client.send(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\napikey: alice-key\r\n\r\n").await;
    let head = client.reply(true).await;
    assert_eq!(head.status, 401);
    // The length a GET would have had.
    assert!(head.header("content-length").is_some_and(|l| l != "0"), "{}", head.head);
    assert_eq!(client.reply(false).await.status, 200);
}

#[tokio::test]
async fn ambiguous_framing_is_refused_and_nothing_is_smuggled() {
    let proxy = open_proxy().await;
    for request in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
    ] {
        let mut client = Client::connect(proxy.addr).await;
        client.send(request).await;
        let reply = client.reply(false).await;
        assert_eq!(reply.status, 400, "{}", String::from_utf8_lossy(request));
        assert_eq!(reply.header("connection").as_deref(), Some("close"));
        assert!(client.closed().await, "answered more after {}", String::from_utf8_lossy(request));
    }
    assert_eq!(get_path(proxy.addr, "/").await.status, http::StatusCode::OK);
}

#[tokio::test]
async fn an_oversized_head_is_a_400_as_in_nginx_and_the_proxy_serves_on() {
    let proxy = open_proxy().await;
    let mut client = Client::connect(proxy.addr).await;
    let mut request = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: ".to_vec();
    request.resize(request.len() + 100 * 1024, b'a');
    request.extend_from_slice(b"\r\n\r\n");
    // The proxy may answer before it has read everything sent.
    let _ = client.stream.write_all(&request).await;
    let reply = client.reply(false).await;
    assert_eq!(reply.status, 400);
    assert!(String::from_utf8_lossy(&reply.body).contains("Request header or cookie too large"), "{reply:?}");
    assert_eq!(get_path(proxy.addr, "/").await.status, http::StatusCode::OK);
}

#[tokio::test]
async fn slow_heads_and_idle_connections_are_closed_after_the_header_read_timeout() {
    let echo = start_echo().await;
    let snapshot = mk_snapshot(vec![mk_route("open", prefix("/"), mk_backend(&[echo]))], ConsumerIndex::new());
    let config = ProxyConfig { header_read_timeout: Duration::from_millis(200), ..ProxyConfig::default() };
    let proxy = start_proxy_with(snapshot, config).await;

    let mut stalled = Client::connect(proxy.addr).await;
    stalled.send(b"GET / HTTP/1.1\r\nHost: a\r\n").await;
    assert!(stalled.closed().await, "a half-sent head should be cut");

    let mut idle = Client::connect(proxy.addr).await;
    idle.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(idle.reply(false).await.status, 200);
    assert!(idle.closed().await, "an idle keep-alive connection should be closed");

    // A connection that keeps sending requests is not cut by the timer of
    // an earlier wait.
    let mut busy = Client::connect(proxy.addr).await;
    for _ in 0..6 {
        busy.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert_eq!(busy.reply(false).await.status, 200);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
}

#[tokio::test]
async fn a_body_of_unknown_length_is_chunked_for_http11_and_close_delimited_for_http10() {
    let upstream = start_raw_upstream(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello").await;
    let snapshot = mk_snapshot(vec![mk_route("raw", prefix("/"), mk_backend(&[upstream]))], ConsumerIndex::new());
    let proxy = start_proxy(snapshot).await;

    let mut client = Client::connect(proxy.addr).await;
    client.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let reply = client.reply(false).await;
    assert_eq!(reply.header("transfer-encoding").as_deref(), Some("chunked"), "{}", reply.head);
    assert_eq!(reply.body, b"hello");

    let mut client = Client::connect(proxy.addr).await;
    client.send(b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n").await;
    let reply = client.reply(false).await;
    assert!(reply.header("transfer-encoding").is_none() && reply.header("content-length").is_none());
    assert_eq!(reply.header("connection").as_deref(), Some("close"));
    assert_eq!(reply.body, b"hello");
}

#[tokio::test]
async fn a_large_upload_and_its_echo_stream_through_whole() {
    let proxy = open_proxy().await;
    let mut client = Client::connect(proxy.addr).await;
    let body = "x".repeat(3 * 1024 * 1024 + 7);
    let head = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", body.len());
    let mut stream_body = head.into_bytes();
    stream_body.extend_from_slice(body.as_bytes());
    let (mut read, mut write) = client.stream.split();
    let writing = async { write.write_all(&stream_body).await.expect("upload") };
    let mut raw = Vec::new();
    let reading = async {
        let mut chunk = [0u8; 64 * 1024];
        // Until the whole response is in: its head and Content-Length bytes.
        while !complete(&raw) {
            let n = tokio::time::timeout(WAIT, read.read(&mut chunk)).await.expect("in time").expect("read");
            assert!(n > 0, "closed early");
            raw.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::join!(writing, reading);
    fn complete(raw: &[u8]) -> bool {
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
        let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
        let len = head.split("\r\n").find_map(|l| l.strip_prefix("content-length:")).map(str::trim);
        len.and_then(|l| l.parse::<usize>().ok()).is_some_and(|len| raw.len() >= end + 4 + len)
    }
    client.buf = raw;
    let reply = client.reply(false).await;
    let v: serde_json::Value = serde_json::from_slice(&reply.body).expect("echo JSON");
    assert_eq!(v["body_len"].as_u64(), Some(body.len() as u64));
}

#[tokio::test]
async fn shutdown_closes_idle_connections_at_once_and_busy_ones_after_their_response() {
    let mut proxy = open_proxy().await;
    let mut idle = Client::connect(proxy.addr).await;
    idle.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(idle.reply(false).await.status, 200);
    let mut busy = Client::connect(proxy.addr).await;
    busy.send(b"GET /?sleep_ms=300 HTTP/1.1\r\nHost: a\r\n\r\n").await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    proxy.shutdown();
    // Well within the 30 s header-read timeout: closed by the shutdown.
    assert!(idle.closed().await, "the idle connection should be closed");
    let reply = busy.reply(false).await;
    assert_eq!((reply.status, reply.header("connection").as_deref()), (200, Some("close")));
    assert!(busy.closed().await);
    let served = tokio::time::timeout(WAIT, &mut proxy.task).await;
    assert!(matches!(served, Ok(Ok(Ok(())))), "serve returned {served:?}");
}

/// Requests that reach the framing, body and keep-alive code, to be mutated.
const SEEDS: &[&[u8]] = &[
    b"GET /a?x=1 HTTP/1.1\r\nHost: a\r\napikey: alice-key\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
];

/// Pieces that tend to reach interesting code when spliced into a request.
const SPLICES: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b":",
    b" ",
    b"\t",
    b"\0",
    b"\xff",
    b"0",
    b"ffffffffffffffffff",
    b";",
    b",",
    b"Content-Length: 7\r\n",
    b"Content-Length: -1\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Connection: close\r\n",
    b"Expect: 100-continue\r\n",
    b"HTTP/1.0",
    b"HTTP/2.0",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    b"%00",
    b"/../..",
    b"apikey: ",
    b"Host: [::1\r\n",
];

#[tokio::test]
async fn mutated_requests_never_take_the_proxy_down() {
    let proxy = auth_proxy(mk_key_auth()).await;
    let mut rng = Rng(0x00C0_FFEE_1234_5678);
    for round in 0..300 {
        let mut request = SEEDS[rng.below(SEEDS.len())].to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(request.len() + 1);
            match rng.below(3) {
                0 => {
                    let piece = SPLICES[rng.below(SPLICES.len())];
                    request.splice(at..at, piece.iter().copied());
                }
                1 => {
                    let end = (at + 1 + rng.below(8)).min(request.len());
                    request.drain(at..end);
                }
                _ => {
                    if let Some(b) = request.get_mut(at) {
                        *b = rng.next() as u8;
                    }
                }
            }
        }
        let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
        let _ = stream.write_all(&request).await;
        // Whatever the answer, it comes (or the connection closes) promptly;
        // a request still waiting for bytes is cut by closing our side.
        let _ = stream.shutdown().await;
        let mut sink = Vec::new();
        let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut sink)).await;
        assert!(read.is_ok(), "round {round}: no end for {:?}", String::from_utf8_lossy(&request));
        let text = String::from_utf8_lossy(&sink);
        assert!(!text.starts_with("HTTP/1.1 5"), "round {round}: {text} for {:?}", String::from_utf8_lossy(&request));
    }
    let mut client = Client::connect(proxy.addr).await;
    client.send(b"GET / HTTP/1.1\r\nHost: a\r\napikey: alice-key\r\n\r\n").await;
    assert_eq!(client.reply(false).await.status, 200);
}

#[tokio::test]
async fn upstream_fields_pass_through_as_sent_and_via_extends_the_last() {
    let upstream = start_raw_upstream(
        b"HTTP/1.1 200 OK\r\nX-Mixed-Case: Value\r\nVia: 1.0 first\r\nSet-Cookie: a=1\r\nvia: 1.1 second\r\n\
          Set-Cookie: b=2\r\nConnection: X-Hop\r\nX-Hop: gone\r\nContent-Length: 2\r\n\r\nok",
    )
    .await;
    let snapshot = mk_snapshot(vec![mk_route("raw", prefix("/"), mk_backend(&[upstream]))], ConsumerIndex::new());
    let proxy = start_proxy(snapshot).await;
    let mut client = Client::connect(proxy.addr).await;
    client.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let reply = client.reply(false).await;
    assert_eq!(reply.body, b"ok");
    let lines: Vec<&str> = reply.head.split("\r\n").skip(1).collect();
    assert!(lines.contains(&"X-Mixed-Case: Value"), "{lines:?}");
    assert!(lines.contains(&"Via: 1.0 first"), "{lines:?}");
    assert!(lines.contains(&"via: 1.1 second, 1.1 portcullis"), "{lines:?}");
    let cookies: Vec<&&str> = lines.iter().filter(|l| l.starts_with("Set-Cookie")).collect();
    assert_eq!(cookies, [&"Set-Cookie: a=1", &"Set-Cookie: b=2"]);
    assert!(!lines.iter().any(|l| l.starts_with("X-Hop") || l.starts_with("Connection")), "{lines:?}");
    assert!(reply.header("x-kong-upstream-latency").is_some() && reply.header("x-kong-proxy-latency").is_some());
}

#[tokio::test]
async fn a_client_that_sends_its_whole_refused_upload_before_reading_gets_the_answer() {
    // The 401 is decided before the body is read, and this client (like
    // most synchronous ones) only reads once it has sent everything.
    // Closing at once would reset the connection under the upload and the
    // answer; the proxy reads and drops the rest for a while instead.
    let proxy = auth_proxy(mk_key_auth()).await;
    let body = vec![b'x'; 8 * 1024 * 1024];
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let head = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await.expect("head");
    let sent = tokio::time::timeout(WAIT, stream.write_all(&body)).await.expect("upload in time");
    assert!(sent.is_ok(), "the upload was cut: {sent:?}");
    let mut raw = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut raw)).await.expect("in time");
    assert!(read.is_ok(), "the connection was reset under the answer: {read:?}");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
}
