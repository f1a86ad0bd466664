//! Request entry point: injected delays and failures, routing, the request log.

use std::sync::Arc;

use http::{Method, Request, Response, header};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;

use super::{
    Shared,
    body::{self, Body},
    discovery,
    errors::ApiError,
    faults::RequestInfo,
    handlers, openapi,
};

pub async fn serve(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let info = RequestInfo {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        user_agent: req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_string),
    };
    let delay = shared.faults.delay_for(&info);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = match shared.faults.take_failure(&info) {
        Some(code) => body::error(&ApiError::from_code(code)),
        None => route(&shared, req).await.unwrap_or_else(|err| body::error(&err)),
    };
    shared.log.record(&info, response.status().as_u16());
    response
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let segments: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let registry = shared.store.registry();
    let discovery_doc = match segments.as_slice() {
        [] => Some(Ok(discovery::root_paths(registry))),
        ["version"] => Some(Ok(discovery::version())),
        ["healthz" | "livez" | "readyz"] => return Ok(body::text(200, "ok")),
        ["api"] => Some(Ok(discovery::api_versions())),
        ["apis"] => Some(Ok(discovery::group_list(registry))),
        ["api", version] => Some(discovery::resource_list(registry, "", version)),
        ["apis", group] => Some(discovery::group(registry, group)),
        ["apis", group, version] => Some(discovery::resource_list(registry, group, version)),
        ["openapi", "v3"] => Some(Ok(openapi::index(registry))),
        ["openapi", "v3", gv @ ..] => Some(openapi::group_version(registry, &gv.join("/"))),
        _ => None,
    };
    if let Some(doc) = discovery_doc {
        if req.method() != Method::GET {
            return Err(ApiError::method_not_allowed(req.method().as_str()));
        }
        return doc.map(|d| body::json(200, &d));
    }
    match segments.as_slice() {
        ["api", version, rest @ ..] => handlers::resource(shared, req, "", version, rest).await,
        ["apis", group, version, rest @ ..] => handlers::resource(shared, req, group, version, rest).await,
        _ => Err(ApiError::no_route()),
    }
}
