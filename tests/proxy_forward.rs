//! Forwarding end to end: headers added and removed, Host, paths, targets,
//! connection reuse, HTTP/2, retries, path normalization, body streaming.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use http::{HeaderValue, Request, StatusCode};
use portcullis::proxy::ProxyConfig;
use portcullis::snapshot::{ConsumerIndex, PathMatch};
use support::*;

#[tokio::test]
async fn forwarding_headers_are_set() {
    let proxy = open_proxy().await;
    let req = get("/some/path?q=1")
        .header("x-forwarded-for", "10.1.1.1")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-prefix", "/spoofed")
        .body(empty())
        .expect("req");
    let resp = send(proxy.addr, req).await;
    assert!(resp.header("x-kong-upstream-latency").is_some_and(|v| v.parse::<u64>().is_ok()));
    assert!(resp.header("x-kong-proxy-latency").is_some_and(|v| v.parse::<u64>().is_ok()));
    assert_eq!(resp.header("via"), Some("1.1 portcullis"));
    let up = resp.echo();
    assert_eq!(up.header("x-forwarded-for").as_deref(), Some("10.1.1.1, 127.0.0.1"));
    assert_eq!(up.header("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(up.header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(up.header("x-forwarded-host").as_deref(), Some(HOST));
    assert_eq!(up.header("x-forwarded-port"), Some(proxy.addr.port().to_string()));
    assert_eq!(up.header("x-forwarded-path").as_deref(), Some("/some/path"));
    assert_eq!(up.header("x-forwarded-prefix"), None);
    assert_eq!(up.path(), "/some/path?q=1");
}

#[tokio::test]
async fn client_forwarding_fields_are_replaced_and_its_chain_extended() {
    let proxy = open_proxy().await;
    let req = get("/p")
        .header("x-forwarded-for", "10.0.0.1")
        .header("x-forwarded-for", "10.0.0.2, 10.0.0.3")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-port", "1")
        .header("x-forwarded-path", "/admin")
        .header("x-real-ip", "6.6.6.6")
        .header("x-other", "kept")
        .body(empty())
        .expect("req");
    let up = send(proxy.addr, req).await.echo();
    assert_eq!(up.headers("x-forwarded-for"), ["10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1"]);
    assert_eq!(up.headers("x-forwarded-host"), [HOST]);
    assert_eq!(up.headers("x-forwarded-port"), [proxy.addr.port().to_string()]);
    assert_eq!(up.headers("x-forwarded-path"), ["/p"]);
    assert_eq!(up.headers("x-real-ip"), ["127.0.0.1"]);
    assert_eq!(up.headers("x-forwarded-proto"), ["http"]);
    assert_eq!(up.headers("x-other"), ["kept"]);
}

#[tokio::test]
async fn x_forwarded_for_without_client_value_is_the_client_ip() {
    let proxy = open_proxy().await;
    let up = get_path(proxy.addr, "/").await.echo();
    assert_eq!(up.header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn x_forwarded_host_is_the_routing_host() {
    let proxy = open_proxy().await;
    let req = Request::get("/").header("host", "Example.COM:8443").body(empty()).expect("req");
    let up = send(proxy.addr, req).await.echo();
    assert_eq!(up.header("x-forwarded-host").as_deref(), Some("example.com"));
    // preserve_host keeps the client's Host exactly.
    assert_eq!(up.header("host").as_deref(), Some("Example.COM:8443"));
}

#[tokio::test]
async fn preserve_host_false_sends_the_target() {
    let echo = start_echo().await;
    let mut route = mk_route("r", prefix("/"), mk_backend(&[echo]));
    route.preserve_host = false;
    let proxy = start_proxy(mk_snapshot(vec![route], ConsumerIndex::new())).await;
    let up = get_path(proxy.addr, "/").await.echo();
    assert_eq!(up.header("host"), Some(echo.to_string()));
}

#[tokio::test]
async fn host_header_overrides_preserve_host() {
    let echo = start_echo().await;
    let mut backend = mk_backend(&[echo]);
    backend.host_header = Some(HeaderValue::from_static("internal.svc"));
    let proxy = start_proxy(mk_snapshot(vec![mk_route("r", prefix("/"), backend)], ConsumerIndex::new())).await;
    let up = get_path(proxy.addr, "/").await.echo();
    assert_eq!(up.header("host").as_deref(), Some("internal.svc"));
}

#[tokio::test]
async fn strip_path_and_service_path() {
    let echo = start_echo().await;
    let mut backend = mk_backend(&[echo]);
    backend.path = "/v1".into();
    let mut route = mk_route("r", prefix("/api"), backend);
    route.strip_path = true;
    let proxy = start_proxy(mk_snapshot(vec![route], ConsumerIndex::new())).await;
    let up = get_path(proxy.addr, "/api/users?q=%2F").await.echo();
    assert_eq!(up.path(), "/v1/users?q=%2F");
    assert_eq!(up.header("x-forwarded-prefix").as_deref(), Some("/api"));
    assert_eq!(up.header("x-forwarded-path").as_deref(), Some("/api/users"));
    let up = get_path(proxy.addr, "/api").await.echo();
    assert_eq!(up.path(), "/v1");
}

#[tokio::test]
async fn service_path_joins_with_one_slash() {
    let echo = start_echo().await;
    let mut backend = mk_backend(&[echo]);
    backend.path = "/base/".into();
    let proxy = start_proxy(mk_snapshot(vec![mk_route("r", prefix("/"), backend)], ConsumerIndex::new())).await;
    assert_eq!(get_path(proxy.addr, "/x/y").await.echo().path(), "/base/x/y");
}

#[tokio::test]
async fn strip_path_off_keeps_the_prefix() {
    let echo = start_echo().await;
    let proxy =
        start_proxy(mk_snapshot(vec![mk_route("r", prefix("/api"), mk_backend(&[echo]))], ConsumerIndex::new())).await;
    let up = get_path(proxy.addr, "/api/users").await.echo();
    assert_eq!(up.path(), "/api/users");
    assert_eq!(up.header("x-forwarded-prefix"), None);
}

#[tokio::test]
async fn round_robin_across_targets() {
    let (a, b) = (start_echo().await, start_echo().await);
    let proxy =
        start_proxy(mk_snapshot(vec![mk_route("r", prefix("/"), mk_backend(&[a, b]))], ConsumerIndex::new())).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(get_path(proxy.addr, "/").await.echo().listen().to_owned());
    }
    assert_eq!(seen, [a.to_string(), b.to_string(), a.to_string(), b.to_string()]);
}

#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let proxy = open_proxy().await;
    let mut peers = HashSet::new();
    for _ in 0..5 {
        peers.insert(get_path(proxy.addr, "/").await.echo().peer().to_owned());
    }
    assert_eq!(peers.len(), 1, "{peers:?}");
}

#[tokio::test]
async fn http2_cleartext_request() {
    let proxy = open_proxy().await;
    let req = Request::get(format!("http://{HOST}/h2/path?x=1")).body(empty()).expect("req");
    let resp = send_h2(proxy.addr, req).await;
    assert_eq!(resp.header("via"), Some("1.1 portcullis"));
    let up = resp.echo();
    assert_eq!(up.path(), "/h2/path?x=1");
    assert_eq!(up.header("host").as_deref(), Some(HOST));
    assert_eq!(up.header("x-forwarded-host").as_deref(), Some(HOST));
}

#[tokio::test]
async fn http2_routes_by_authority() {
    let echo = start_echo().await;
    let mut route = mk_route("r", prefix("/"), mk_backend(&[echo]));
    route.hosts = vec![portcullis::snapshot::HostMatch::Exact("api.example.com".into())];
    let proxy = start_proxy(mk_snapshot(vec![route], ConsumerIndex::new())).await;
    let req = Request::get("http://API.example.com:9999/").body(empty()).expect("req");
    assert_eq!(send_h2(proxy.addr, req).await.status, StatusCode::OK);
    let req = Request::get("http://other.example.com/").body(empty()).expect("req");
    assert_eq!(send_h2(proxy.addr, req).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn connect_failure_retries_on_the_next_target() {
    let (dead, live) = (dead_addr().await, start_echo().await);
    let mut backend = mk_backend(&[dead, live]);
    backend.retries = 1;
    let proxy = start_proxy(mk_snapshot(vec![mk_route("r", prefix("/"), backend)], ConsumerIndex::new())).await;
    for _ in 0..4 {
        assert_eq!(get_path(proxy.addr, "/").await.echo().listen(), live.to_string());
    }
}

#[tokio::test]
async fn path_is_normalized_before_routing() {
    let echo = start_echo().await;
    let public = mk_route("public", prefix("/public"), mk_backend(&[echo]));
    let private = with_auth(mk_route("private", prefix("/private"), mk_backend(&[echo])), mk_key_auth());
    let proxy = start_proxy(mk_snapshot(vec![public, private], mk_consumers())).await;
    for path in ["/public/../private", "/public/%2E%2E/private", "//private", "/public/./../private/x"] {
        let resp =
            raw(proxy.addr, format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes())
                .await;
        assert_eq!(resp.status, 401, "{path}");
    }
    // The upstream sees the normalized path too.
    let up = get_path(proxy.addr, "/public/./a//b/%7Euser?x=%2E").await.echo();
    assert_eq!(up.path(), "/public/a/b/~user?x=%2E");
    assert_eq!(up.header("x-forwarded-path").as_deref(), Some("/public/./a//b/%7Euser"));
}

#[tokio::test]
async fn body_streams_untouched_without_key_in_body() {
    let echo = start_echo().await;
    let route = with_auth(mk_route("r", prefix("/"), mk_backend(&[echo])), mk_key_auth());
    // A tiny buffering limit proves the body is not buffered.
    let config = ProxyConfig { max_body_bytes: 16, ..ProxyConfig::default() };
    let proxy = start_proxy_with(mk_snapshot(vec![route], mk_consumers()), config).await;
    let payload: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| b"abcdefghij"[(i % 10) as usize]).collect();
    let req = post("/", "application/octet-stream").header("apikey", "alice-key").body(body(payload.clone()));
    let up = send(proxy.addr, req.expect("req")).await.echo();
    assert_eq!(up.body_len(), payload.len() as u64);
    assert_eq!(up.body().as_bytes(), &payload[..]);
    assert_eq!(up.header("content-length"), Some(payload.len().to_string()));
}

#[tokio::test]
async fn chunked_request_body_is_forwarded() {
    let proxy = open_proxy().await;
    let resp = raw(
        proxy.addr,
        b"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(resp.echo().body(), "hello world");
}

#[tokio::test]
async fn hop_by_hop_request_headers_are_removed() {
    let proxy = open_proxy().await;
    let resp = raw(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\
          Proxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: websocket\r\nX-Kept: yes\r\n\r\n",
    )
    .await;
    let up = resp.echo();
    for name in ["x-hop", "keep-alive", "proxy-connection", "te", "upgrade"] {
        assert!(up.headers(name).is_empty(), "{name} forwarded");
    }
    assert_eq!(up.header("x-kept").as_deref(), Some("yes"));
}

#[tokio::test]
async fn spoofed_identity_headers_removed_on_open_route() {
    let proxy = open_proxy().await;
    let req = get("/")
        .header("x-consumer-id", "evil")
        .header("x-consumer-username", "admin")
        .header("x-consumer-custom-id", "evil")
        .header("x-consumer-groups", "admins")
        .header("x-credential-identifier", "evil")
        .header("x-anonymous-consumer", "false")
        .body(empty())
        .expect("req");
    let up = send(proxy.addr, req).await.echo();
    for name in [
        "x-consumer-id",
        "x-consumer-username",
        "x-consumer-custom-id",
        "x-consumer-groups",
        "x-credential-identifier",
        "x-anonymous-consumer",
    ] {
        assert!(up.headers(name).is_empty(), "{name} passed through");
    }
}

/// Field names are case-insensitive: the fields the proxy owns are taken
/// out however a client spells them, and the rest go upstream as sent.
#[tokio::test]
async fn fields_the_proxy_owns_are_found_in_any_case() {
    let proxy = open_proxy().await;
    let resp = raw(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHOST: example.com\r\nX-Consumer-ID: evil\r\nx-CONSUMER-groups: admins\r\n\
          X-Anonymous-Consumer: false\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-FOR: 10.0.0.2\r\n\
          X-Real-IP: 10.9.9.9\r\nX-Mixed-Case: kept\r\nConnection: close\r\n\r\n",
    )
    .await;
    let up = resp.echo();
    for name in ["x-consumer-id", "x-consumer-groups", "x-anonymous-consumer"] {
        assert!(up.headers(name).is_empty(), "{name} passed through");
    }
    assert_eq!(up.headers("x-forwarded-for"), ["10.0.0.1, 10.0.0.2, 127.0.0.1"]);
    assert_eq!(up.headers("x-real-ip"), ["127.0.0.1"]);
    assert_eq!(up.headers("x-mixed-case"), ["kept"]);
    assert_eq!(up.headers("x-forwarded-host"), ["example.com"]);
}

#[tokio::test]
async fn repeated_headers_are_forwarded_in_order() {
    let proxy = open_proxy().await;
    let resp = raw(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Multi: a\r\nX-Multi: b\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(resp.echo().headers("x-multi"), ["a", "b"]);
}

#[tokio::test]
async fn upstream_status_and_headers_pass_through() {
    let proxy = open_proxy().await;
    let resp = get_path(proxy.addr, "/?status=418").await;
    assert_eq!(resp.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header("via"), Some("1.1 portcullis"));
}

#[tokio::test]
async fn https_only_route_answers_426_or_redirects() {
    let echo = start_echo().await;
    let backend = Arc::new(mk_backend(&[echo]));
    let mut upgrade = mk_route_on("upgrade", PathMatch::Prefix("/u".into()), backend.clone());
    upgrade.protocols = portcullis::snapshot::Protocols { http: false, https: true };
    let mut redirect = mk_route_on("redirect", PathMatch::Prefix("/r".into()), backend);
    redirect.protocols = upgrade.protocols;
    redirect.https_redirect_status = StatusCode::PERMANENT_REDIRECT;
    let proxy = start_proxy(mk_snapshot(vec![upgrade, redirect], ConsumerIndex::new())).await;

    let resp = get_path(proxy.addr, "/u/x").await;
    assert_eq!(resp.status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(resp.text(), "{\n  \"message\":\"Please use HTTPS protocol\"\n}");

    let req = Request::get("/r/x?a=1").header("host", "Example.com:8080").body(empty()).expect("req");
    let resp = send(proxy.addr, req).await;
    assert_eq!(resp.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(resp.header("location"), Some("https://example.com/r/x?a=1"));
}

#[tokio::test]
async fn stale_pooled_connection_is_replaced() {
    let mut backend = mk_backend(&[start_one_shot_upstream().await]);
    // Replacing a stale pooled connection must not need (or use up) retries.
    backend.retries = 0;
    let proxy = start_proxy(mk_snapshot(vec![mk_route("r", prefix("/"), backend)], ConsumerIndex::new())).await;
    for _ in 0..4 {
        let resp = get_path(proxy.addr, "/").await;
        assert_eq!((resp.status, resp.text()), (StatusCode::OK, "ok"));
        // The upstream closes the connection while it sits in the pool.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn name_targets_are_resolved_at_connect_time() {
    let echo = start_echo().await;
    let backend = portcullis::snapshot::Backend::new(
        "default.external.80".into(),
        vec![portcullis::snapshot::Target::Name { host: "localhost".into(), port: echo.port() }],
    );
    let proxy = start_proxy(mk_snapshot(vec![mk_route("r", prefix("/"), backend)], ConsumerIndex::new())).await;
    assert_eq!(get_path(proxy.addr, "/").await.echo().listen(), echo.to_string());
}

#[tokio::test]
async fn http2_request_with_body() {
    let proxy = open_proxy().await;
    let req = Request::post(format!("http://{HOST}/upload")).body(body("h2 payload")).expect("req");
    let up = send_h2(proxy.addr, req).await.echo();
    assert_eq!(up.0["method"], "POST");
    assert_eq!(up.body(), "h2 payload");
}

#[tokio::test]
async fn hop_by_hop_response_headers_are_removed() {
    let upstream = start_raw_upstream(
        b"HTTP/1.1 200 OK\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\n\
          Via: 1.1 upstream-cache\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    )
    .await;
    let proxy =
        start_proxy(mk_snapshot(vec![mk_route("r", prefix("/"), mk_backend(&[upstream]))], ConsumerIndex::new())).await;
    let resp = raw(proxy.addr, b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n").await;
    assert_eq!((resp.status, &resp.body[..]), (200, &b"ok"[..]));
    assert_eq!(resp.header("x-hop"), None);
    assert_eq!(resp.header("keep-alive"), None);
    assert_eq!(resp.header("x-kept").as_deref(), Some("yes"));
    // Via is appended to, not replaced.
    assert_eq!(resp.header("via").as_deref(), Some("1.1 upstream-cache, 1.1 portcullis"));
}
