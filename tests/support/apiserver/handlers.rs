//! Resource requests: list, watch, get, create, replace, patch, delete, on objects and `/status`.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::{
    Shared,
    body::{self, Body},
    errors::ApiError,
    object::Sub,
    patch::{self, PatchKind},
    resources::{Registry, Rid},
    selectors::{FieldSelector, LabelSelector},
    store::Preconditions,
    watch::{self, View, WatchSpec},
};

/// kube-apiserver's request body limit.
const MAX_BODY: usize = 3 * 1024 * 1024;

enum Target {
    Collection { ns: Option<String> },
    Object { ns: String, name: String, sub: Sub },
}

/// `[namespaces/{ns}/]{plural}[/{name}[/status]]` under a group-version.
fn parse_target(registry: &Registry, group: &str, version: &str, rest: &[&str]) -> Result<(Rid, Target), ApiError> {
    let (ns, plural, tail) = match rest {
        // `namespaces/{name}/status` is the Namespace object's own subresource, not a collection.
        ["namespaces", ns, plural, tail @ ..] if !matches!(*plural, "status" | "finalize") => {
            (Some(*ns), *plural, tail)
        }
        [plural, tail @ ..] => (None, *plural, tail),
        [] => return Err(ApiError::no_route()),
    };
    let rid = registry.by_path(group, version, plural).ok_or_else(ApiError::no_route)?;
    let rt = registry.get(rid);
    if ns.is_some() && !rt.namespaced {
        return Err(ApiError::no_route());
    }
    let target = match tail {
        [] => Target::Collection { ns: ns.map(str::to_string) },
        [name] | [name, "status"] => {
            let sub = if tail.len() == 2 { Sub::Status } else { Sub::Main };
            if (rt.namespaced && ns.is_none()) || (sub == Sub::Status && !rt.status_subresource) {
                return Err(ApiError::no_route());
            }
            Target::Object { ns: ns.unwrap_or("").to_string(), name: name.to_string(), sub }
        }
        _ => return Err(ApiError::no_route()),
    };
    Ok((rid, target))
}

struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Self {
        Query(form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        self.get(key).map(|v| v.parse().map_err(|_| ApiError::bad_request(format!("invalid {key}: {v:?}")))).transpose()
    }

    fn view(&self, ns: Option<String>, partial_metadata: bool) -> Result<View, ApiError> {
        Ok(View {
            ns,
            labels: LabelSelector::parse(self.get("labelSelector").unwrap_or(""))?,
            fields: FieldSelector::parse(self.get("fieldSelector").unwrap_or(""))?,
            partial_metadata,
        })
    }
}

pub async fn resource(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Response<Body>, ApiError> {
    let (rid, target) = parse_target(shared.store.registry(), group, version, rest)?;
    let query = Query::parse(req.uri().query());
    let partial = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("as=PartialObjectMetadata"));
    let method = req.method().clone();
    match (target, method) {
        (Target::Collection { ns }, Method::GET) if query.flag("watch") => watch(shared, rid, ns, &query, partial),
        (Target::Collection { ns }, Method::GET) => list(shared, rid, ns, &query, partial),
        (Target::Collection { ns }, Method::POST) => {
            let obj = read_object(req).await?;
            let created = shared.store.create(rid, ns.as_deref(), obj, query.dry_run())?;
            Ok(body::json(201, &created))
        }
        (Target::Collection { ns }, Method::DELETE) => delete_collection(shared, rid, ns, &query),
        // The legacy watch of one object is a collection watch narrowed to its name.
        (Target::Object { ns, name, sub: Sub::Main }, Method::GET) if query.flag("watch") => {
            let rt = shared.store.registry().get(rid);
            let mut narrowed = query;
            let fields = match narrowed.get("fieldSelector") {
                Some(f) => format!("{f},metadata.name={name}"),
                None => format!("metadata.name={name}"),
            };
            narrowed.0.retain(|(k, _)| k != "fieldSelector");
            narrowed.0.push(("fieldSelector".into(), fields));
            watch(shared, rid, rt.namespaced.then_some(ns), &narrowed, partial)
        }
        (Target::Object { ns, name, .. }, Method::GET) => {
            let obj = shared.store.get(rid, &ns, &name)?;
            Ok(body::json(200, &query.view(None, partial)?.render(&obj)))
        }
        (Target::Object { ns, name, sub }, Method::PUT) => {
            let new = read_object(req).await?;
            let rt = *shared.store.registry().get(rid);
            let (obj, _) = shared.store.write(rid, &ns, &name, sub, query.dry_run(), |current| match current {
                Some(_) => Ok(new),
                None => Err(ApiError::not_found(&rt, &name)),
            })?;
            Ok(body::json(200, &obj))
        }
        (Target::Object { ns, name, sub }, Method::PATCH) => patch(shared, req, rid, &ns, &name, sub, &query).await,
        (Target::Object { ns, name, sub: Sub::Main }, Method::DELETE) => {
            let options = read_body(req).await?;
            delete(shared, rid, &ns, &name, &options, &query)
        }
        (_, method) => Err(ApiError::method_not_allowed(method.as_str())),
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let collected = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::new(413, "RequestEntityTooLarge", format!("reading the request body: {e}")))?;
    Ok(collected.to_bytes())
}

/// A POST/PUT body: JSON or YAML. Protobuf and CBOR (what kubectl's typed clients send first) get
/// 415, on which client-go falls back to JSON.
async fn read_object(req: Request<Incoming>) -> Result<Value, ApiError> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let bytes = read_body(req).await?;
    match media.as_str() {
        "" | "application/json" | "*/*" => parse_json(&bytes),
        "application/yaml" => serde_yaml_ng::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("the body of the request is not valid YAML: {e}"))),
        _ => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type:?})"
            ),
        )),
    }
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the body of the request is not valid JSON: {e}")))
}

/// List, with kube-apiserver's resourceVersion semantics: unset, "0" or NotOlderThan serve the
/// current state; `Exact` (and, as in kube-apiserver, an unmatched non-zero version with a limit)
/// serves exactly that version or 410; continue tokens serve their first page's version.
fn list(
    shared: &Arc<Shared>,
    rid: Rid,
    ns: Option<String>,
    q: &Query,
    partial: bool,
) -> Result<Response<Body>, ApiError> {
    let rt = *shared.store.registry().get(rid);
    let view = q.view(ns.clone(), partial)?;
    let limit = q.number::<usize>("limit")?.filter(|l| *l > 0);
    let rv = q.number::<u64>("resourceVersion")?;
    let rv_match = q.get("resourceVersionMatch");
    if !matches!(rv_match, None | Some("NotOlderThan" | "Exact")) {
        return Err(ApiError::bad_request(format!("invalid resourceVersionMatch: {rv_match:?}")));
    }
    let token = q.get("continue").map(ContinueToken::decode).transpose()?;
    let at = match (&token, rv) {
        (Some(token), _) => Some(token.rv),
        (None, Some(rv)) if rv > 0 && (rv_match == Some("Exact") || (rv_match.is_none() && limit.is_some())) => {
            Some(rv)
        }
        _ => None,
    };
    let after = token.as_ref().map(|t| (t.ns.as_str(), t.name.as_str()));
    let page = shared
        .store
        .list_page(rid, ns.as_deref(), at, after, limit.unwrap_or(usize::MAX), view.selects().then_some(|o: &Arc<Value>| view.visible(o)))
        .map_err(|err| match (&token, err.code) {
            (Some(_), 410) => ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ),
            _ => err,
        })?;
    let (list_rv, remaining) = (page.rv, page.remaining);
    let items: Vec<Value> = page.items.iter().map(|o| view.render(o)).collect();
    let mut metadata = json!({ "resourceVersion": list_rv.to_string() });
    if remaining > 0
        && let Some(last) = items.last()
    {
        let next = ContinueToken {
            rv: list_rv,
            ns: super::object::namespace(last).to_string(),
            name: super::object::name(last).to_string(),
        };
        metadata["continue"] = json!(next.encode());
        if !view.selects() {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    let (api_version, kind) = if partial {
        ("meta.k8s.io/v1".to_string(), "PartialObjectMetadataList".to_string())
    } else {
        (rt.api_version(), rt.list_kind())
    };
    Ok(body::json(200, &json!({ "apiVersion": api_version, "kind": kind, "metadata": metadata, "items": items })))
}

/// Opaque to clients; says which version the list is served at and where the last page ended.
struct ContinueToken {
    rv: u64,
    ns: String,
    name: String,
}

impl ContinueToken {
    fn encode(&self) -> String {
        let key: String = format!("{}/{}", self.ns, self.name).bytes().map(|b| format!("{b:02x}")).collect();
        format!("{}.{key}", self.rv)
    }

    fn decode(token: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
        let (rv, key) = token.split_once('.').ok_or_else(invalid)?;
        let rv = rv.parse().map_err(|_| invalid())?;
        if key.len() % 2 != 0 || !key.is_ascii() {
            return Err(invalid());
        }
        let bytes: Vec<u8> = (0..key.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&key[i..i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| invalid())?;
        let key = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (ns, name) = key.split_once('/').ok_or_else(invalid)?;
        Ok(ContinueToken { rv, ns: ns.to_string(), name: name.to_string() })
    }
}

fn watch(
    shared: &Arc<Shared>,
    rid: Rid,
    ns: Option<String>,
    q: &Query,
    partial: bool,
) -> Result<Response<Body>, ApiError> {
    let view = q.view(ns, partial)?;
    let send_initial_events = q.get("sendInitialEvents").map(|v| v == "true" || v == "1");
    let bookmarks = q.flag("allowWatchBookmarks");
    if send_initial_events == Some(true) {
        if !bookmarks {
            return Err(ApiError::new(
                422,
                "Invalid",
                "allowWatchBookmarks: Required value: allowWatchBookmarks must be set to true when sendInitialEvents is true",
            ));
        }
        if q.get("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(ApiError::new(
                422,
                "Invalid",
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
    }
    let spec = WatchSpec {
        rid,
        ns: view.ns,
        labels: view.labels,
        fields: view.fields,
        resource_version: q.number::<u64>("resourceVersion")?.filter(|rv| *rv > 0),
        send_initial_events,
        bookmarks,
        timeout: q.number::<u64>("timeoutSeconds")?.filter(|t| *t > 0).map(Duration::from_secs),
        partial_metadata: partial,
    };
    Ok(watch::start(shared.clone(), spec))
}

async fn patch(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    rid: Rid,
    ns: &str,
    name: &str,
    sub: Sub,
    q: &Query,
) -> Result<Response<Body>, ApiError> {
    let rt = *shared.store.registry().get(rid);
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let kind =
        PatchKind::from_content_type(&content_type).ok_or_else(|| ApiError::unsupported_media_type(&content_type))?;
    let bytes = read_body(req).await?;
    let patch = match kind {
        // Apply bodies are YAML (JSON is YAML too).
        PatchKind::Apply => serde_json::from_slice(&bytes).or_else(|_| {
            serde_yaml_ng::from_slice::<Value>(&bytes)
                .map_err(|e| ApiError::bad_request(format!("invalid apply body: {e}")))
        })?,
        _ => parse_json(&bytes)?,
    };
    if kind == PatchKind::Apply && q.get("fieldManager").is_none() {
        return Err(ApiError::bad_request("PATCH: fieldManager is required for apply requests"));
    }
    let (obj, created) = shared.store.write(rid, ns, name, sub, q.dry_run(), |current| {
        let Some(current) = current else {
            return if kind == PatchKind::Apply { Ok(patch) } else { Err(ApiError::not_found(&rt, name)) };
        };
        let mut doc = current.clone();
        match kind {
            PatchKind::Merge | PatchKind::Strategic => patch::merge_patch(&mut doc, &patch),
            PatchKind::Json => patch::json_patch(&mut doc, &patch)?,
            PatchKind::Apply => patch::apply(&mut doc, &patch),
        }
        Ok(doc)
    })?;
    Ok(body::json(if created { 201 } else { 200 }, &obj))
}

fn delete(
    shared: &Arc<Shared>,
    rid: Rid,
    ns: &str,
    name: &str,
    options: &[u8],
    q: &Query,
) -> Result<Response<Body>, ApiError> {
    let options = if options.iter().all(u8::is_ascii_whitespace) { json!({}) } else { parse_json(options)? };
    let text = |ptr: &str| options.pointer(ptr).and_then(Value::as_str).map(str::to_string);
    let pre =
        Preconditions { uid: text("/preconditions/uid"), resource_version: text("/preconditions/resourceVersion") };
    let dry_run =
        q.dry_run() || options.get("dryRun").and_then(Value::as_array).is_some_and(|d| d.iter().any(|v| v == "All"));
    let obj = shared.store.delete(rid, ns, name, &pre, dry_run)?;
    Ok(body::json(200, &obj))
}

fn delete_collection(
    shared: &Arc<Shared>,
    rid: Rid,
    ns: Option<String>,
    q: &Query,
) -> Result<Response<Body>, ApiError> {
    let rt = *shared.store.registry().get(rid);
    let view = q.view(ns.clone(), false)?;
    let (_, objects) = shared.store.list(rid, ns.as_deref(), None)?;
    let mut items = Vec::new();
    for obj in objects.iter().filter(|o| view.visible(o)) {
        let (o_ns, o_name) = (super::object::namespace(obj), super::object::name(obj));
        match shared.store.delete(rid, o_ns, o_name, &Preconditions::default(), q.dry_run()) {
            Ok(deleted) => items.push((*deleted).clone()),
            Err(err) if err.code == 404 => {}
            Err(err) => return Err(err),
        }
    }
    let rv = shared.store.resource_version().to_string();
    Ok(body::json(
        200,
        &json!({ "apiVersion": rt.api_version(), "kind": rt.list_kind(), "metadata": { "resourceVersion": rv }, "items": items }),
    ))
}
