//! key-auth end to end (KONG_COMPAT §6): every response-table row, every
//! config field, lookup order, duplicates, hiding and identity headers.

mod support;

use std::time::Duration;

use http::{HeaderValue, Request, StatusCode};
use portcullis::proxy::ProxyConfig;
use portcullis::snapshot::Protocols;
use support::*;

const NO_KEY: &str = "{\n  \"message\":\"No API key found in request\"\n}";
const DUPLICATE: &str = "{\n  \"message\":\"Duplicate API key found\"\n}";
const INVALID: &str = "{\n  \"message\":\"Invalid authentication credentials\"\n}";
const UNEXPECTED: &str = "{\n  \"message\":\"An unexpected error occurred\"\n}";
const JSON_UTF8: &str = "application/json; charset=utf-8";
const KONG_REALM: &str = "Key realm=\"kong\"";

fn assert_401(resp: &Resp, body: &str) {
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.text(), body);
    assert_eq!(resp.header("content-type"), Some(JSON_UTF8));
    assert_eq!(resp.header("www-authenticate"), Some(KONG_REALM));
}

fn assert_raw_401(resp: &RawResp, body: &str) {
    assert_eq!(resp.status, 401);
    assert_eq!(String::from_utf8_lossy(&resp.body), body);
    assert_eq!(resp.header("content-type").as_deref(), Some(JSON_UTF8));
    assert_eq!(resp.header("www-authenticate").as_deref(), Some(KONG_REALM));
}

fn with_key(path: &str, key: &str) -> Request<http_body_util::Full<bytes::Bytes>> {
    get(path).header("apikey", key).body(empty()).expect("request")
}

// ---------- response table ----------

#[tokio::test]
async fn no_key_is_401_no_api_key() {
    let proxy = auth_proxy(mk_key_auth()).await;
    assert_401(&get_path(proxy.addr, "/anything").await, NO_KEY);
}

#[tokio::test]
async fn empty_key_in_query_is_401_no_api_key() {
    let proxy = auth_proxy(mk_key_auth()).await;
    assert_401(&get_path(proxy.addr, "/?apikey=").await, NO_KEY);
}

#[tokio::test]
async fn empty_key_in_header_is_401_no_api_key() {
    let proxy = auth_proxy(mk_key_auth()).await;
    let resp = raw(proxy.addr, b"GET / HTTP/1.1\r\nHost: example.com\r\napikey:\r\nConnection: close\r\n\r\n").await;
    assert_raw_401(&resp, NO_KEY);
}

#[tokio::test]
async fn repeated_header_is_401_duplicate() {
    let proxy = auth_proxy(mk_key_auth()).await;
    let resp = raw(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: example.com\r\napikey: alice-key\r\nAPIKEY: alice-key\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_raw_401(&resp, DUPLICATE);
}

#[tokio::test]
async fn repeated_query_arg_is_401_duplicate() {
    let proxy = auth_proxy(mk_key_auth()).await;
    assert_401(&get_path(proxy.addr, "/?apikey=alice-key&apikey=alice-key").await, DUPLICATE);
}

#[tokio::test]
async fn json_array_value_is_401_duplicate() {
    let proxy = auth_proxy(KeyAuthBody::on()).await;
    let req = post("/", "application/json").body(body(r#"{"apikey":["alice-key"]}"#)).expect("request");
    assert_401(&send(proxy.addr, req).await, DUPLICATE);
}

#[tokio::test]
async fn repeated_form_field_is_401_duplicate() {
    let proxy = auth_proxy(KeyAuthBody::on()).await;
    let req = post("/", "application/x-www-form-urlencoded").body(body("apikey=a&apikey=b")).expect("request");
    assert_401(&send(proxy.addr, req).await, DUPLICATE);
}

#[tokio::test]
async fn repeated_multipart_field_is_401_duplicate() {
    let proxy = auth_proxy(KeyAuthBody::on()).await;
    let req = post("/", "multipart/form-data; boundary=B")
        .body(body(multipart(&[("apikey", "alice-key"), ("apikey", "alice-key")])))
        .expect("request");
    assert_401(&send(proxy.addr, req).await, DUPLICATE);
}

#[tokio::test]
async fn unknown_key_is_401_invalid() {
    let proxy = auth_proxy(mk_key_auth()).await;
    assert_401(&send(proxy.addr, with_key("/", "nobody-key")).await, INVALID);
}

#[tokio::test]
async fn expired_credential_is_401_invalid() {
    let proxy = auth_proxy(mk_key_auth()).await;
    assert_401(&send(proxy.addr, with_key("/", "old-key")).await, INVALID);
}

#[tokio::test]
async fn anonymous_naming_no_consumer_is_500() {
    let mut config = mk_key_auth();
    config.anonymous = Some("ghost".into());
    let proxy = auth_proxy(config).await;
    let resp = get_path(proxy.addr, "/").await;
    assert_eq!(resp.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(resp.text(), UNEXPECTED);
    assert_eq!(resp.header("content-type"), Some(JSON_UTF8));
    assert_eq!(resp.header("www-authenticate"), None);
}

#[tokio::test]
async fn realm_changes_www_authenticate() {
    let mut config = mk_key_auth();
    config.www_authenticate = HeaderValue::from_static("Key realm=\"portcullis-test\"");
    let proxy = auth_proxy(config).await;
    let resp = get_path(proxy.addr, "/").await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED);
    assert_eq!(resp.header("www-authenticate"), Some("Key realm=\"portcullis-test\""));
}

#[tokio::test]
async fn key_auth_401_stays_json_when_client_prefers_text() {
    let proxy = auth_proxy(mk_key_auth()).await;
    let resp = send(proxy.addr, get("/").header("accept", "text/plain").body(empty()).expect("request")).await;
    assert_401(&resp, NO_KEY);
}

// ---------- success and identity headers ----------

#[tokio::test]
async fn valid_key_sets_identity_headers() {
    let proxy = auth_proxy(mk_key_auth()).await;
    let up = send(proxy.addr, with_key("/", "alice-key")).await.echo();
    assert_eq!(up.header("x-consumer-id").as_deref(), Some("id-alice"));
    assert_eq!(up.header("x-consumer-username").as_deref(), Some("alice"));
    assert_eq!(up.header("x-consumer-custom-id").as_deref(), Some("c-alice"));
    assert_eq!(up.header("x-credential-identifier").as_deref(), Some("cred-alice"));
    assert_eq!(up.header("x-anonymous-consumer"), None);
    // hide_credentials is off: the key goes on.
    assert_eq!(up.header("apikey").as_deref(), Some("alice-key"));
}

#[tokio::test]
async fn absent_identity_values_remove_the_headers() {
    let proxy = auth_proxy(mk_key_auth()).await;
    let req = get("/")
        .header("apikey", "bob-key")
        .header("x-consumer-username", "spoofed")
        .header("x-consumer-custom-id", "spoofed")
        .body(empty())
        .expect("request");
    let up = send(proxy.addr, req).await.echo();
    assert_eq!(up.header("x-consumer-id").as_deref(), Some("id-bob"));
    assert_eq!(up.header("x-credential-identifier").as_deref(), Some("cred-bob"));
    assert_eq!(up.header("x-consumer-username"), None);
    assert_eq!(up.header("x-consumer-custom-id"), None);
}

#[tokio::test]
async fn spoofed_identity_headers_removed_on_authenticated_route() {
    let proxy = auth_proxy(mk_key_auth()).await;
    let req = get("/")
        .header("apikey", "alice-key")
        .header("x-consumer-id", "evil")
        .header("x-consumer-groups", "admin")
        .header("x-credential-identifier", "evil")
        .header("x-anonymous-consumer", "false")
        .body(empty())
        .expect("request");
    let up = send(proxy.addr, req).await.echo();
    assert_eq!(up.headers("x-consumer-id"), ["id-alice"]);
    assert_eq!(up.headers("x-credential-identifier"), ["cred-alice"]);
    assert!(up.headers("x-consumer-groups").is_empty());
    assert!(up.headers("x-anonymous-consumer").is_empty());
}

// ---------- key_names, locations, order ----------

#[tokio::test]
async fn key_names_are_tried_in_order() {
    let mut config = mk_key_auth();
    config.key_names = vec![mk_key_name("first"), mk_key_name("second")];
    let proxy = auth_proxy(config).await;
    // Only the second name present: found.
    let up = send(proxy.addr, get("/").header("second", "alice-key").body(empty()).expect("req")).await.echo();
    assert_eq!(up.header("x-consumer-username").as_deref(), Some("alice"));
    // Both present: the first name wins, even with a bad key.
    let req = get("/").header("first", "wrong").header("second", "alice-key").body(empty()).expect("req");
    assert_401(&send(proxy.addr, req).await, INVALID);
    // The first name in the query beats the second in a header: names
    // come before locations.
    let req = get("/?first=alice-key").header("second", "wrong").body(empty()).expect("req");
    assert_eq!(send(proxy.addr, req).await.status, StatusCode::OK);
    // The default name no longer counts.
    assert_401(&send(proxy.addr, with_key("/", "alice-key")).await, NO_KEY);
}

#[tokio::test]
async fn header_names_are_case_insensitive_and_underscore_matches_dash() {
    let mut config = mk_key_auth();
    config.key_names = vec![mk_key_name("api_key")];
    let proxy = auth_proxy(config).await;
    for name in ["API_KEY", "api-key", "Api-Key"] {
        let req = get("/").header(name, "alice-key").body(empty()).expect("req");
        assert_eq!(send(proxy.addr, req).await.status, StatusCode::OK, "{name}");
    }
    // Query names are exact.
    assert_401(&get_path(proxy.addr, "/?api-key=alice-key").await, NO_KEY);
    assert_eq!(get_path(proxy.addr, "/?api_key=alice-key").await.status, StatusCode::OK);
}

#[tokio::test]
async fn query_names_and_values_are_percent_decoded() {
    let proxy = auth_proxy(mk_key_auth()).await;
    assert_eq!(get_path(proxy.addr, "/?api%6Bey=alice%2Dkey").await.status, StatusCode::OK);
}

#[tokio::test]
async fn key_in_header_false_ignores_headers() {
    let mut config = mk_key_auth();
    config.key_in_header = false;
    let proxy = auth_proxy(config).await;
    assert_401(&send(proxy.addr, with_key("/", "alice-key")).await, NO_KEY);
    assert_eq!(get_path(proxy.addr, "/?apikey=alice-key").await.status, StatusCode::OK);
}

#[tokio::test]
async fn key_in_query_false_ignores_query() {
    let mut config = mk_key_auth();
    config.key_in_query = false;
    let proxy = auth_proxy(config).await;
    assert_401(&get_path(proxy.addr, "/?apikey=alice-key").await, NO_KEY);
    assert_eq!(send(proxy.addr, with_key("/", "alice-key")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn key_in_body_false_ignores_body() {
    let proxy = auth_proxy(mk_key_auth()).await;
    let req = post("/", "application/json").body(body(r#"{"apikey":"alice-key"}"#)).expect("request");
    assert_401(&send(proxy.addr, req).await, NO_KEY);
}

#[tokio::test]
async fn header_beats_query_beats_body() {
    let proxy = auth_proxy(KeyAuthBody::on()).await;
    // Header valid, query bad: header wins.
    let req = post("/?apikey=wrong", "application/json")
        .header("apikey", "alice-key")
        .body(body(r#"{"apikey":"wrong"}"#))
        .expect("req");
    assert_eq!(send(proxy.addr, req).await.status, StatusCode::OK);
    // Header bad, query valid: header wins.
    let req = get("/?apikey=alice-key").header("apikey", "wrong").body(empty()).expect("req");
    assert_401(&send(proxy.addr, req).await, INVALID);
    // Query bad, body valid: query wins.
    let req = post("/?apikey=wrong", "application/json").body(body(r#"{"apikey":"alice-key"}"#)).expect("req");
    assert_401(&send(proxy.addr, req).await, INVALID);
    // Query valid, body bad: query wins.
    let req = post("/?apikey=alice-key", "application/json").body(body(r#"{"apikey":"wrong"}"#)).expect("req");
    assert_eq!(send(proxy.addr, req).await.status, StatusCode::OK);
}

#[tokio::test]
async fn valueless_query_arg_is_skipped() {
    let mut config = mk_key_auth();
    config.key_names = vec![mk_key_name("apikey"), mk_key_name("other")];
    let proxy = auth_proxy(config).await;
    assert_401(&get_path(proxy.addr, "/?apikey").await, NO_KEY);
    assert_eq!(get_path(proxy.addr, "/?apikey&other=alice-key").await.status, StatusCode::OK);
}

// ---------- key_in_body ----------

struct KeyAuthBody;

impl KeyAuthBody {
    fn on() -> portcullis::snapshot::KeyAuthConfig {
        let mut config = mk_key_auth();
        config.key_in_body = true;
        config
    }

    fn hiding() -> portcullis::snapshot::KeyAuthConfig {
        let mut config = Self::on();
        config.hide_credentials = true;
        config
    }
}

fn multipart(fields: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (n, v) in fields {
        s.push_str(&format!("--B\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n"));
    }
    s.push_str("--B--\r\n");
    s
}

#[tokio::test]
async fn key_in_body_form_json_multipart() {
    let proxy = auth_proxy(KeyAuthBody::on()).await;
    let cases = [
        ("application/x-www-form-urlencoded", "a=1&apikey=alice-key".to_owned()),
        ("application/json; charset=utf-8", r#"{"a":1,"apikey":"alice-key"}"#.to_owned()),
        ("multipart/form-data; boundary=B", multipart(&[("a", "1"), ("apikey", "alice-key")])),
    ];
    for (content_type, payload) in cases {
        let req = post("/", content_type).body(body(payload.clone())).expect("req");
        let up = send(proxy.addr, req).await.echo();
        assert_eq!(up.header("x-consumer-username").as_deref(), Some("alice"), "{content_type}");
        // Not hidden: the upstream gets the body as sent.
        assert_eq!(up.body(), payload, "{content_type}");
    }
    // Any method: a key in a PUT body counts too.
    let req = Request::put("/").header("host", HOST).header("content-type", "application/json");
    let req = req.body(body(r#"{"apikey":"alice-key"}"#)).expect("req");
    assert_eq!(send(proxy.addr, req).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unparsable_or_other_bodies_have_no_key() {
    let proxy = auth_proxy(KeyAuthBody::on()).await;
    for (content_type, payload) in [
        ("application/json", "{not json"),
        ("application/json", r#"["apikey","alice-key"]"#),
        ("multipart/form-data; boundary=B", "garbage"),
        ("text/plain", "apikey=alice-key"),
    ] {
        let req = post("/", content_type).body(body(payload)).expect("req");
        assert_401(&send(proxy.addr, req).await, NO_KEY);
    }
}

#[tokio::test]
async fn body_over_limit_is_413() {
    let echo = start_echo().await;
    let route = with_auth(mk_route("auth", prefix("/"), mk_backend(&[echo])), KeyAuthBody::on());
    let config = ProxyConfig { max_body_bytes: 1024, ..ProxyConfig::default() };
    let proxy = start_proxy_with(mk_snapshot(vec![route], mk_consumers()), config).await;
    const TOO_LARGE: &str = "{\n  \"message\":\"Request size limit exceeded\"\n}";
    // Declared too large: refused before reading.
    let req = post("/", "application/json").body(body(vec![b' '; 2048])).expect("req");
    let resp = send(proxy.addr, req).await;
    assert_eq!(resp.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(resp.text(), TOO_LARGE);
    // Chunked, no length: refused while reading.
    let chunk = "x".repeat(1500);
    let request = format!(
        "POST / HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let resp = raw(proxy.addr, request.as_bytes()).await;
    assert_eq!(resp.status, 413);
    // A key in a header needs no body reading: the big body streams through.
    let req = post("/", "application/json").header("apikey", "alice-key").body(body(vec![b' '; 4096])).expect("r");
    assert_eq!(send(proxy.addr, req).await.echo().body_len(), 4096);
}

// ---------- hide_credentials ----------

#[tokio::test]
async fn hide_credentials_removes_header_in_both_spellings() {
    let mut config = mk_key_auth();
    config.key_names = vec![mk_key_name("api_key")];
    config.hide_credentials = true;
    let proxy = auth_proxy(config).await;
    let req = get("/").header("api_key", "alice-key").header("api-key", "other").body(empty()).expect("req");
    let up = send(proxy.addr, req).await.echo();
    assert_eq!(up.header("x-consumer-username").as_deref(), Some("alice"));
    assert_eq!(up.header("api_key"), None);
    assert_eq!(up.header("api-key"), None);
}

#[tokio::test]
async fn hide_credentials_removes_query_arg_keeping_others_raw() {
    let mut config = mk_key_auth();
    config.hide_credentials = true;
    let proxy = auth_proxy(config).await;
    let up = get_path(proxy.addr, "/p?a=%2F&apikey=alice-key&b=x+y&c").await.echo();
    assert_eq!(up.path(), "/p?a=%2F&b=x+y&c");
    let up = get_path(proxy.addr, "/p?apikey=alice-key").await.echo();
    assert_eq!(up.path(), "/p");
}

#[tokio::test]
async fn hide_credentials_removes_form_field() {
    let proxy = auth_proxy(KeyAuthBody::hiding()).await;
    let req = post("/", "application/x-www-form-urlencoded").body(body("a=%2F&apikey=alice-key&b=2")).expect("req");
    let up = send(proxy.addr, req).await.echo();
    assert_eq!(up.body(), "a=%2F&b=2");
    assert_eq!(up.header("content-length").as_deref(), Some("9"));
}

#[tokio::test]
async fn hide_credentials_removes_json_field() {
    let proxy = auth_proxy(KeyAuthBody::hiding()).await;
    let req = post("/", "application/json").body(body(r#"{"a":1,"apikey":"alice-key","b":"x"}"#)).expect("req");
    let up = send(proxy.addr, req).await.echo();
    let json: serde_json::Value = serde_json::from_str(up.body()).expect("json body");
    assert_eq!(json, serde_json::json!({"a": 1, "b": "x"}));
    assert_eq!(up.header("content-length"), Some(up.body().len().to_string()));
}

#[tokio::test]
async fn hide_credentials_removes_multipart_part() {
    let proxy = auth_proxy(KeyAuthBody::hiding()).await;
    let req = post("/", "multipart/form-data; boundary=B")
        .body(body(multipart(&[("a", "1"), ("apikey", "alice-key"), ("b", "2")])))
        .expect("req");
    let up = send(proxy.addr, req).await.echo();
    assert!(!up.body().contains("alice-key"), "{}", up.body());
    assert!(up.body().contains("name=\"a\"\r\n\r\n1\r\n"), "{}", up.body());
    assert!(up.body().contains("name=\"b\"\r\n\r\n2\r\n"), "{}", up.body());
    assert_eq!(up.header("content-length"), Some(up.body().len().to_string()));
}

#[tokio::test]
async fn hide_credentials_with_key_in_header_also_cleans_body() {
    let proxy = auth_proxy(KeyAuthBody::hiding()).await;
    let req = post("/", "application/x-www-form-urlencoded")
        .header("apikey", "alice-key")
        .body(body("apikey=stale&a=1"))
        .expect("req");
    let up = send(proxy.addr, req).await.echo();
    assert_eq!(up.header("apikey"), None);
    assert_eq!(up.body(), "a=1");
}

// ---------- anonymous ----------

#[tokio::test]
async fn anonymous_proxies_every_401_case() {
    let mut config = mk_key_auth();
    config.anonymous = Some("anon".into());
    let proxy = auth_proxy(config).await;
    let requests = [
        get("/").body(empty()).expect("no key"),
        with_key("/", "wrong"),
        with_key("/", "old-key"),
        get("/?apikey=a&apikey=b").body(empty()).expect("duplicate"),
    ];
    for req in requests {
        let up = send(proxy.addr, req).await.echo();
        assert_eq!(up.header("x-anonymous-consumer").as_deref(), Some("true"));
        assert_eq!(up.header("x-consumer-username").as_deref(), Some("anon"));
        assert_eq!(up.header("x-consumer-id").as_deref(), Some("id-anon"));
        assert_eq!(up.header("x-credential-identifier"), None);
    }
    // A valid key is still the real consumer.
    let up = send(proxy.addr, with_key("/", "alice-key")).await.echo();
    assert_eq!(up.header("x-consumer-username").as_deref(), Some("alice"));
    assert_eq!(up.header("x-anonymous-consumer"), None);
}

#[tokio::test]
async fn anonymous_found_by_id() {
    let mut config = mk_key_auth();
    config.anonymous = Some("id-anon".into());
    let proxy = auth_proxy(config).await;
    let up = get_path(proxy.addr, "/").await.echo();
    assert_eq!(up.header("x-consumer-id").as_deref(), Some("id-anon"));
}

// ---------- run_on_preflight, protocols ----------

fn preflight() -> Request<http_body_util::Full<bytes::Bytes>> {
    Request::options("/")
        .header("host", HOST)
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .header("x-consumer-id", "spoofed")
        .body(empty())
        .expect("preflight")
}

#[tokio::test]
async fn run_on_preflight_false_lets_options_through() {
    let mut config = mk_key_auth();
    config.run_on_preflight = false;
    let proxy = auth_proxy(config).await;
    let up = send(proxy.addr, preflight()).await.echo();
    assert_eq!(up.0["method"], "OPTIONS");
    // Still no spoofing on the bypass.
    assert_eq!(up.header("x-consumer-id"), None);
    // Kong skips any OPTIONS, not only CORS preflights.
    let plain = Request::options("/").header("host", HOST).body(empty()).expect("options");
    assert_eq!(send(proxy.addr, plain).await.status, StatusCode::OK);
    // Other methods still need a key.
    assert_401(&get_path(proxy.addr, "/").await, NO_KEY);
}

#[tokio::test]
async fn run_on_preflight_true_authenticates_options() {
    let proxy = auth_proxy(mk_key_auth()).await;
    assert_401(&send(proxy.addr, preflight()).await, NO_KEY);
}

#[tokio::test]
async fn plugin_protocols_without_http_skip_auth_on_plain_http() {
    let mut config = mk_key_auth();
    config.protocols = Protocols { http: false, https: true };
    let proxy = auth_proxy(config).await;
    let up = get_path(proxy.addr, "/").await.echo();
    assert_eq!(up.header("x-consumer-id"), None);
}

// ---------- inputs a client library would not send ----------

#[tokio::test]
async fn invalid_utf8_key_and_malformed_query_do_not_break_anything() {
    let proxy = auth_proxy(mk_key_auth()).await;
    let resp =
        raw(proxy.addr, b"GET / HTTP/1.1\r\nHost: example.com\r\napikey: \xff\xfe\r\nConnection: close\r\n\r\n").await;
    assert_raw_401(&resp, INVALID);
    let resp =
        raw(proxy.addr, b"GET /?%zz&apikey=%&=&&apikey HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
            .await;
    assert_raw_401(&resp, DUPLICATE);
    let resp = raw(proxy.addr, b"GET /?apikey=%E2%28 HTTP/1.1\r\nHost: \xff\r\nConnection: close\r\n\r\n").await;
    assert_raw_401(&resp, INVALID);
}

#[tokio::test]
async fn credential_changes_apply_on_the_next_request() {
    let proxy = auth_proxy(mk_key_auth()).await;
    assert_eq!(send(proxy.addr, with_key("/", "alice-key")).await.status, StatusCode::OK);
    let current = proxy.snapshot.load_full();
    let swapped = portcullis::snapshot::Snapshot::new(current.routes.clone(), Default::default());
    proxy.snapshot.store(std::sync::Arc::new(swapped));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_401(&send(proxy.addr, with_key("/", "alice-key")).await, INVALID);
}
