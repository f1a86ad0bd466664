//! An echo upstream for the demo and tests: answers every request with 200
//! `application/json` describing what it received — method, raw path with
//! query, HTTP version, headers, body (lossy UTF-8) and its length, its own
//! listen address (to tell round-robin targets apart) and the client's
//! address (to tell connections apart). `?sleep_ms=N` delays the answer
//! (timeout tests), `?status=N` sets the status.
//!
//! Headers are listed as `[name, value]` pairs in hyper's `HeaderMap`
//! order: names by first appearance, each name's repeated values together
//! in the order received (so interleaved repeats are regrouped).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

/// Longest `?sleep_ms` honoured, so a typo cannot park a connection forever.
const MAX_SLEEP: Duration = Duration::from_secs(600);

pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let service = service_fn(move |req| echo(req, local, peer));
                    let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "echo: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

async fn echo(
    req: Request<Incoming>,
    local: SocketAddr,
    peer: SocketAddr,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut sleep = Duration::ZERO;
    let mut status = StatusCode::OK;
    for (name, value) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
        match &*name {
            "sleep_ms" => sleep = value.parse().map(Duration::from_millis).unwrap_or_default().min(MAX_SLEEP),
            "status" => status = value.parse().ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(status),
            _ => {}
        }
    }
    if !sleep.is_zero() {
        tokio::time::sleep(sleep).await;
    }
    let headers: Vec<[String; 2]> = parts
        .headers
        .iter()
        .map(|(n, v)| [n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()])
        .collect();
    let description = describe(&[
        ("method", serde_json::json!(parts.method.as_str())),
        ("path", serde_json::json!(parts.uri.path_and_query().map_or("/", |pq| pq.as_str()))),
        ("version", serde_json::json!(format!("{:?}", parts.version))),
        ("headers", serde_json::json!(headers)),
        ("body", serde_json::json!(String::from_utf8_lossy(&body))),
        ("body_len", serde_json::json!(body.len())),
        ("listen", serde_json::json!(local.to_string())),
        ("peer", serde_json::json!(peer.to_string())),
    ]);
    let mut response = Response::new(Full::new(Bytes::from(description)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// JSON laid out for people reading curl output: one field per line, one
/// header per line.
fn describe(fields: &[(&str, serde_json::Value)]) -> String {
    let mut out = String::from("{\n");
    for (i, (name, value)) in fields.iter().enumerate() {
        let rendered = match value {
            serde_json::Value::Array(items) if !items.is_empty() => {
                let lines: Vec<String> = items.iter().map(|v| format!("    {v}")).collect();
                format!("[\n{}\n  ]", lines.join(",\n"))
            }
            other => other.to_string(),
        };
        let comma = if i + 1 < fields.len() { "," } else { "" };
        out.push_str(&format!("  {}: {rendered}{comma}\n", serde_json::Value::from(*name)));
    }
    out.push_str("}\n");
    out
}
