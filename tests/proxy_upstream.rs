//! The upstream side of forwarding, against scripted upstreams on real
//! sockets: response framing (length, chunked, until close, HEAD, 204/304,
//! 1xx), responses refused as unsafe to forward, early responses during an
//! upload, request framing as the upstream sees it, and when a connection
//! is (and is not) used again.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, StatusCode};
use portcullis::snapshot::ConsumerIndex;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a scripted upstream saw: one entry per connection, the raw bytes of
/// every request read on it.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Vec<Vec<u8>>>>>);

impl Seen {
    fn connections(&self) -> usize {
        self.0.lock().expect("lock").len()
    }

    fn requests(&self) -> Vec<String> {
        self.0.lock().expect("lock").iter().flatten().map(|r| String::from_utf8_lossy(r).into_owned()).collect()
    }
}

/// How a scripted upstream answers one request.
#[derive(Clone)]
struct Answer {
    bytes: &'static [u8],
    /// Close the connection after answering.
    close: bool,
    /// Answer as soon as the head arrived, without reading the body.
    early: bool,
}

fn answer(bytes: &'static [u8]) -> Answer {
    Answer { bytes, close: false, early: false }
}

/// An upstream that reads each request (head, and a body framed by
/// Content-Length or chunked) and answers with `answers` in turn (the last
/// one repeats), on as many keep-alive connections as it is given.
async fn scripted(answers: Vec<Answer>) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Seen::default();
    let record = seen.clone();
    let next = Arc::new(Mutex::new(0usize));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let conn = {
                let mut all = record.0.lock().expect("lock");
                all.push(Vec::new());
                all.len() - 1
            };
            let (record, answers, next) = (record.clone(), answers.clone(), next.clone());
            tokio::spawn(async move {
                let mut stream = stream;
                let mut buf = Vec::new();
                loop {
                    let Some(head_end) = read_until(&mut stream, &mut buf, b"\r\n\r\n").await else { return };
                    let answer = {
                        let mut n = next.lock().expect("lock");
                        let a = answers[(*n).min(answers.len() - 1)].clone();
                        *n += 1;
                        a
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    let mut request_len = head_end;
                    if !answer.early {
                        request_len = match body_end(&mut stream, &mut buf, head_end, &head).await {
                            Some(end) => end,
                            None => return,
                        };
                    }
                    record.0.lock().expect("lock")[conn].push(buf[..request_len].to_vec());
                    buf.drain(..request_len);
                    if stream.write_all(answer.bytes).await.is_err() || answer.close {
                        return;
                    }
                    if answer.early {
                        // Closing with the upload unread would reset the
                        // connection: give the proxy time to read the answer.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// Reads until `marker`; returns the index just past it.
async fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, marker: &[u8]) -> Option<usize> {
    loop {
        if let Some(i) = buf.windows(marker.len()).position(|w| w == marker) {
            return Some(i + marker.len());
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads the request body framed as `head` says; returns the request's end.
async fn body_end(stream: &mut TcpStream, buf: &mut Vec<u8>, head_end: usize, head: &str) -> Option<usize> {
    if head.contains("transfer-encoding: chunked") {
        let end = loop {
            if let Some(i) = buf[head_end..].windows(5).position(|w| w == b"0\r\n\r\n") {
                break head_end + i + 5;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        return Some(end);
    }
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(head_end + len)
}

async fn proxy_to(upstream: SocketAddr) -> Proxy {
    start_proxy(mk_snapshot(vec![mk_route("r", prefix("/"), mk_backend(&[upstream]))], ConsumerIndex::new())).await
}

fn req(method: Method, path: &str) -> Request<http_body_util::Full<bytes::Bytes>> {
    Request::builder().method(method).uri(path).header("host", "example.com").body(empty()).expect("req")
}

#[tokio::test]
async fn chunked_response_with_extensions_and_trailers_is_forwarded_and_the_connection_reused() {
    let (up, seen) = scripted(vec![answer(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n",
    )])
    .await;
    let proxy = proxy_to(up).await;
    for _ in 0..3 {
        let resp = get_path(proxy.addr, "/").await;
        assert_eq!((resp.status, resp.text()), (StatusCode::OK, "abcde"));
    }
    assert_eq!(seen.connections(), 1, "the body's end was found, so the connection was reused");
}

#[tokio::test]
async fn body_until_close_is_forwarded_and_the_connection_not_reused() {
    let (up, seen) = scripted(vec![Answer { close: true, ..answer(b"HTTP/1.0 200 OK\r\n\r\nall of it") }]).await;
    let proxy = proxy_to(up).await;
    for _ in 0..2 {
        let resp = get_path(proxy.addr, "/").await;
        assert_eq!((resp.status, resp.text()), (StatusCode::OK, "all of it"));
    }
    assert_eq!(seen.connections(), 2);
}

#[tokio::test]
async fn bodiless_responses_end_at_the_head() {
    let (up, seen) = scripted(vec![
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
        answer(b"HTTP/1.1 204 No Content\r\n\r\n"),
        answer(b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"),
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ])
    .await;
    let proxy = proxy_to(up).await;
    let head = send(proxy.addr, req(Method::HEAD, "/")).await;
    assert_eq!((head.status, head.header("content-length"), head.text()), (StatusCode::OK, Some("5"), ""));
    assert_eq!(get_path(proxy.addr, "/").await.status, StatusCode::NO_CONTENT);
    let not_modified = get_path(proxy.addr, "/").await;
    assert_eq!((not_modified.status, not_modified.header("etag")), (StatusCode::NOT_MODIFIED, Some("\"x\"")));
    assert_eq!(get_path(proxy.addr, "/").await.text(), "ok");
    assert_eq!(seen.connections(), 1, "none of them left bytes behind");
}

#[tokio::test]
async fn informational_responses_are_skipped() {
    let (up, _) =
        scripted(vec![answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")])
            .await;
    let proxy = proxy_to(up).await;
    let resp = send(proxy.addr, post("/", "text/plain").body(body("x")).expect("req")).await;
    assert_eq!((resp.status, resp.text()), (StatusCode::OK, "real"));
}

#[tokio::test]
async fn responses_that_cannot_be_forwarded_safely_are_502() {
    let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
    while big.len() < 70 * 1024 {
        big.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
    }
    big.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    let big: &'static [u8] = big.leak();
    for response in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"NOT HTTP\r\n\r\n",
        big,
    ] {
        let (up, _) = scripted(vec![Answer { close: true, ..answer(response) }]).await;
        let proxy = proxy_to(up).await;
        let resp = get_path(proxy.addr, "/").await;
        assert_eq!(
            resp.status,
            StatusCode::BAD_GATEWAY,
            "{}",
            String::from_utf8_lossy(&response[..40.min(response.len())])
        );
        assert_eq!(resp.text(), "{\n  \"message\":\"An invalid response was received from the upstream server\"\n}");
    }
}

#[tokio::test]
async fn a_truncated_body_aborts_the_client_response() {
    let (up, _) =
        scripted(vec![Answer { close: true, ..answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nonly5") }]).await;
    let proxy = proxy_to(up).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got)).await.expect("in time").expect("read");
    let text = String::from_utf8_lossy(&got);
    // The connection is cut: the client gets no response at all, or the
    // declared length and fewer bytes. Never a response that looks whole.
    if let Some((head, body)) = text.split_once("\r\n\r\n") {
        assert!(head.starts_with("HTTP/1.1 200") && head.contains("content-length: 10"), "{text}");
        assert!(body.len() < 10, "{text}");
    } else {
        assert!(!text.contains("200"), "{text}");
    }
}

#[tokio::test]
async fn an_early_response_stops_the_upload_and_reaches_the_client() {
    let (up, seen) = scripted(vec![Answer {
        early: true,
        ..answer(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!")
    }])
    .await;
    let proxy = proxy_to(up).await;
    let stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    // Far more than socket buffers hold: the upload alone would block for good.
    let len = 32 * 1024 * 1024;
    tokio::spawn(async move {
        let head = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n");
        let _ = writer.write_all(head.as_bytes()).await;
        let _ = writer.write_all(&vec![b'x'; len]).await;
    });
    let mut got = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&got).ends_with("too big!") {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.expect("the answer arrives while the upload is stuck");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(seen.connections(), 1);
}

#[tokio::test]
async fn request_framing_is_ours_and_matches_the_body() {
    let (up, seen) = scripted(vec![answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")]).await;
    let proxy = proxy_to(up).await;
    // Content-Length from the client: the same length upstream.
    send(proxy.addr, post("/a", "text/plain").body(body("hello")).expect("req")).await;
    // A chunked upload: chunked upstream, whatever the chunk sizes.
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream
        .write_all(b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        .await
        .expect("write");
    let mut sink = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut sink)).await.expect("in time").expect("read");
    // No body: no framing header at all.
    get_path(proxy.addr, "/c").await;
    let requests = seen.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let framing = |r: &str| {
        r.lines()
            .filter(|l| l.starts_with("content-length") || l.starts_with("transfer-encoding"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(
        requests[0].starts_with("POST /a HTTP/1.1\r\n") && requests[0].ends_with("\r\n\r\nhello"),
        "{}",
        requests[0]
    );
    assert_eq!(framing(&requests[0]), ["content-length: 5"]);
    assert!(requests[1].ends_with("\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), "{}", requests[1]);
    assert_eq!(framing(&requests[1]), ["transfer-encoding: chunked"]);
    assert!(requests[2].starts_with("GET /c HTTP/1.1\r\n"), "{}", requests[2]);
    assert!(framing(&requests[2]).is_empty(), "{}", requests[2]);
}

#[tokio::test]
async fn connection_close_from_the_upstream_is_honoured() {
    let (up, seen) = scripted(vec![Answer {
        close: true,
        ..answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
    }])
    .await;
    let proxy = proxy_to(up).await;
    for _ in 0..3 {
        assert_eq!(get_path(proxy.addr, "/").await.text(), "ok");
    }
    assert_eq!(seen.connections(), 3);
}

#[tokio::test]
async fn a_connection_closed_right_after_its_response_is_not_a_failure_for_the_next_get() {
    // The upstream closes each connection right after answering, without
    // saying so: the close may reach the proxy only once the next request
    // is on its way. That request is sent again on a new connection.
    let (up, seen) =
        scripted(vec![Answer { close: true, ..answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") }]).await;
    let mut backend = mk_backend(&[up]);
    backend.retries = 0;
    let proxy = start_proxy(mk_snapshot(vec![mk_route("r", prefix("/"), backend)], ConsumerIndex::new())).await;
    for _ in 0..20 {
        assert_eq!(get_path(proxy.addr, "/").await.text(), "ok");
    }
    assert!(seen.connections() >= 20);
}

#[tokio::test]
async fn large_bodies_stream_through_intact() {
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut by_length = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", data.len()).into_bytes();
    by_length.extend_from_slice(&data);
    let mut chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in data.chunks(100_000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (up, seen) = scripted(vec![answer(by_length.leak()), answer(chunked.leak())]).await;
    let proxy = proxy_to(up).await;
    for _ in 0..2 {
        let resp = get_path(proxy.addr, "/").await;
        assert_eq!(resp.status, StatusCode::OK);
        assert!(resp.body == data, "body of {} bytes differs", resp.body.len());
    }
    assert_eq!(seen.connections(), 1, "both bodies were read to their end");
}

#[tokio::test]
async fn a_body_that_arrives_in_pieces_after_its_head_comes_out_whole() {
    // The head and the first piece in one write, the rest later: the part
    // read with the head goes out first, then the rest as it comes.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let up = listener.local_addr().expect("addr");
    let connections = Arc::new(Mutex::new(0usize));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            *count.lock().expect("lock") += 1;
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while read_until(&mut stream, &mut buf, b"\r\n\r\n").await.is_some() {
                    buf.clear();
                    let pieces: [&[u8]; 3] = [b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello", b" wor", b"ld"];
                    for piece in pieces {
                        if stream.write_all(piece).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            });
        }
    });
    let proxy = proxy_to(up).await;
    for _ in 0..2 {
        let resp = get_path(proxy.addr, "/").await;
        assert_eq!(
            (resp.status, resp.header("content-length"), resp.text()),
            (StatusCode::OK, Some("11"), "hello world")
        );
    }
    assert_eq!(*connections.lock().expect("lock"), 1, "the body was read to its end, so the connection was reused");
}
