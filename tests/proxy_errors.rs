//! The proxy's own answers: no route, upstream failures, fail-closed auth,
//! content negotiation, drain on shutdown.

mod support;

use std::time::Duration;

use http::StatusCode;
use portcullis::proxy::ProxyConfig;
use portcullis::snapshot::{ConsumerIndex, RouteAuth};
use support::*;

const JSON_UTF8: &str = "application/json; charset=utf-8";

fn assert_own(resp: &Resp, status: StatusCode, message: &str) {
    assert_eq!(resp.status, status);
    assert_eq!(resp.text(), format!("{{\n  \"message\":\"{message}\"\n}}"));
    assert_eq!(resp.header("content-type"), Some(JSON_UTF8));
    assert_eq!(resp.header("server"), Some(concat!("portcullis/", env!("CARGO_PKG_VERSION"))));
    assert!(resp.header("x-kong-response-latency").is_some_and(|v| v.parse::<u64>().is_ok()));
    assert_eq!(resp.header("via"), None);
}

async fn proxy_to(backend: portcullis::snapshot::Backend) -> Proxy {
    start_proxy(mk_snapshot(vec![mk_route("r", prefix("/"), backend)], ConsumerIndex::new())).await
}

#[tokio::test]
async fn no_route_is_404_json() {
    let echo = start_echo().await;
    let proxy =
        start_proxy(mk_snapshot(vec![mk_route("r", prefix("/api"), mk_backend(&[echo]))], ConsumerIndex::new())).await;
    assert_own(&get_path(proxy.addr, "/other").await, StatusCode::NOT_FOUND, "no Route matched with those values");
}

#[tokio::test]
async fn no_route_is_text_when_client_prefers_text() {
    let proxy = start_proxy(mk_snapshot(Vec::new(), ConsumerIndex::new())).await;
    let req = get("/").header("accept", "text/plain, application/json;q=0.9").body(empty()).expect("req");
    let resp = send(proxy.addr, req).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert_eq!(resp.text(), "no Route matched with those values\n");
    assert_eq!(resp.header("content-type"), Some("text/plain; charset=utf-8"));
    // A browser-style Accept still gets JSON.
    let req = get("/").header("accept", "text/html,*/*;q=0.8").body(empty()).expect("req");
    assert_eq!(send(proxy.addr, req).await.header("content-type"), Some(JSON_UTF8));
}

#[tokio::test]
async fn upstream_down_is_502() {
    let mut backend = mk_backend(&[dead_addr().await]);
    backend.retries = 2;
    let proxy = proxy_to(backend).await;
    assert_own(
        &get_path(proxy.addr, "/").await,
        StatusCode::BAD_GATEWAY,
        "An invalid response was received from the upstream server",
    );
}

#[tokio::test]
async fn upstream_down_is_text_when_asked() {
    let proxy = proxy_to(mk_backend(&[dead_addr().await])).await;
    let resp = send(proxy.addr, get("/").header("accept", "text/plain").body(empty()).expect("req")).await;
    assert_eq!(resp.status, StatusCode::BAD_GATEWAY);
    assert_eq!(resp.text(), "An invalid response was received from the upstream server\n");
}

#[tokio::test]
async fn no_targets_is_503() {
    let proxy = proxy_to(mk_backend(&[])).await;
    assert_own(
        &get_path(proxy.addr, "/").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "failure to get a peer from the ring-balancer",
    );
}

#[tokio::test]
async fn slow_upstream_is_504() {
    let mut backend = mk_backend(&[start_echo().await]);
    backend.timeouts.read = Duration::from_millis(200);
    let proxy = proxy_to(backend).await;
    assert_own(
        &get_path(proxy.addr, "/?sleep_ms=2000").await,
        StatusCode::GATEWAY_TIMEOUT,
        "The upstream server is timing out",
    );
    // A response within the timeout is fine, and the pool recovers.
    assert_eq!(get_path(proxy.addr, "/?sleep_ms=10").await.status, StatusCode::OK);
}

#[tokio::test]
async fn each_request_on_a_pooled_connection_gets_the_whole_read_timeout() {
    // The connection's timer was set for the first request; a later
    // request that runs past that first deadline, within its own, is fine.
    let mut backend = mk_backend(&[start_echo().await]);
    backend.timeouts.read = Duration::from_millis(300);
    let proxy = proxy_to(backend).await;
    assert_eq!(get_path(proxy.addr, "/").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get_path(proxy.addr, "/?sleep_ms=200").await.status, StatusCode::OK);
    // And it still fires for a request that takes too long.
    assert_own(
        &get_path(proxy.addr, "/?sleep_ms=1000").await,
        StatusCode::GATEWAY_TIMEOUT,
        "The upstream server is timing out",
    );
}

#[tokio::test]
async fn unavailable_plugin_fails_closed_with_503() {
    let echo = start_echo().await;
    let mut route = mk_route("r", prefix("/"), mk_backend(&[echo]));
    route.auth = RouteAuth::Unavailable;
    let proxy = start_proxy(mk_snapshot(vec![route], ConsumerIndex::new())).await;
    assert_own(&get_path(proxy.addr, "/").await, StatusCode::SERVICE_UNAVAILABLE, "plugin configuration unavailable");
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let mut proxy = open_proxy().await;
    let addr = proxy.addr;
    let in_flight = tokio::spawn(async move { get_path(addr, "/?sleep_ms=300").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.shutdown();
    let resp = in_flight.await.expect("in-flight request");
    assert_eq!(resp.status, StatusCode::OK);
    let served = tokio::time::timeout(Duration::from_secs(5), &mut proxy.task).await;
    assert!(matches!(served, Ok(Ok(Ok(())))), "serve returned {served:?}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
}

#[tokio::test]
async fn drain_timeout_cuts_long_requests() {
    let echo = start_echo().await;
    let config = ProxyConfig { drain_timeout: Duration::from_millis(100), ..ProxyConfig::default() };
    let snapshot = mk_snapshot(vec![mk_route("r", prefix("/"), mk_backend(&[echo]))], ConsumerIndex::new());
    let mut proxy = start_proxy_with(snapshot, config).await;
    let addr = proxy.addr;
    let stuck = tokio::spawn(async move {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.expect("handshake");
        tokio::spawn(conn);
        sender.send_request(get("/?sleep_ms=5000").body(empty()).expect("req")).await.is_err()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.shutdown();
    let served = tokio::time::timeout(Duration::from_secs(2), &mut proxy.task).await;
    assert!(matches!(served, Ok(Ok(Ok(())))), "serve returned {served:?}");
    assert!(stuck.await.expect("client task"), "the stuck request should have been cut");
}

#[tokio::test]
async fn malformed_requests_do_not_take_the_proxy_down() {
    let proxy = open_proxy().await;
    for request in [
        &b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\nX-Bin: \x80\x81\r\nConnection: close\r\n\r\n"[..],
        b"GET /%%%/..%2f../ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
        b"GET /?a=%&&==&%zz HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    ] {
        let resp = raw(proxy.addr, request).await;
        assert!(resp.status < 500, "status {} for {:?}", resp.status, String::from_utf8_lossy(request));
    }
    assert_eq!(get_path(proxy.addr, "/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn stalled_response_body_is_cut_after_the_read_timeout() {
    let mut backend = mk_backend(&[start_stalling_upstream().await]);
    backend.timeouts.read = Duration::from_millis(200);
    let proxy = proxy_to(backend).await;
    let stream = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let resp = sender.send_request(get("/").body(empty()).expect("req")).await.expect("headers");
    assert_eq!(resp.status(), StatusCode::OK);
    let body = tokio::time::timeout(Duration::from_secs(5), http_body_util::BodyExt::collect(resp.into_body())).await;
    assert!(matches!(body, Ok(Err(_))), "the body should fail after the read timeout");
}

#[tokio::test]
async fn upstream_not_reading_is_504_after_the_write_timeout() {
    let mut backend = mk_backend(&[start_deaf_upstream().await]);
    backend.timeouts.write = Duration::from_millis(200);
    backend.timeouts.read = Duration::from_secs(15);
    let proxy = proxy_to(backend).await;
    // Far more than the socket buffers hold, so the upstream write blocks.
    let payload = vec![b'x'; 64 * 1024 * 1024];
    let started = std::time::Instant::now();
    let resp = send(proxy.addr, post("/", "application/octet-stream").body(body(payload)).expect("req")).await;
    assert_own(&resp, StatusCode::GATEWAY_TIMEOUT, "The upstream server is timing out");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn slow_upload_is_not_an_upstream_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut backend = mk_backend(&[start_echo().await]);
    backend.timeouts.read = Duration::from_millis(200);
    let proxy = proxy_to(backend).await;
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.expect("connect");
    let head = "POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("head");
    // The upload takes longer than the read timeout; the upstream is fine.
    for chunk in ["slow", "upload"] {
        stream.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).await.expect("chunk");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stream.write_all(b"0\r\n\r\n").await.expect("end");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await.expect("in time").expect("read");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let echoed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    assert_eq!(echoed["body"], "slowupload", "{text}");
}
