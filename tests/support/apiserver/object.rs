//! The server's rules for object metadata: what create fills in, what an update may and may not
//! change, when generation moves, how the status subresource splits writes, finalizers.

use serde_json::{Map, Value, json};

use super::{errors::ApiError, resources::ResourceType, store::Preconditions};

/// Which part of an object a write targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sub {
    Main,
    Status,
}

/// Metadata only the server sets; updates cannot change it.
const SERVER_OWNED: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "resourceVersion",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace").unwrap_or("")
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let root = obj.as_object_mut().expect("checked to be an object");
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("just made an object")
}

/// RFC 3339 with second precision, as kube-apiserver writes `metadata.*Timestamp`.
pub fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn set_resource_version(obj: &mut Value, rv: u64) {
    metadata_mut(obj).insert("resourceVersion".into(), Value::String(rv.to_string()));
}

/// The body must be an object whose apiVersion/kind, when given, are the URL's.
fn check_shape(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if obj.get("metadata").is_some_and(|m| !m.is_object()) {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    let api_version = rt.api_version();
    if let Some(v) = non_empty(obj.get("apiVersion").and_then(Value::as_str))
        && v != api_version
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version ({api_version})"
        )));
    }
    if let Some(k) = non_empty(obj.get("kind").and_then(Value::as_str))
        && k != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

fn stamp_type(rt: &ResourceType, obj: &mut Value) {
    let root = obj.as_object_mut().expect("checked to be an object");
    root.insert("apiVersion".into(), Value::String(rt.api_version()));
    root.insert("kind".into(), Value::String(rt.kind.to_string()));
}

/// Fills in what create sets. The name may still be empty when `generateName` is used; the store
/// picks one (it knows which names are taken).
pub fn prepare_create(rt: &ResourceType, url_ns: Option<&str>, mut obj: Value) -> Result<Value, ApiError> {
    check_shape(rt, &obj)?;
    stamp_type(rt, &mut obj);
    if rt.status_subresource {
        // Status is written through /status only; create drops it (as kube-apiserver does).
        obj.as_object_mut().expect("checked").remove("status");
    }
    normalize(rt, &mut obj);
    let meta = metadata_mut(&mut obj);
    if rt.namespaced {
        let body_ns = non_empty(meta.get("namespace").and_then(Value::as_str)).map(str::to_string);
        let ns = match (url_ns, body_ns) {
            (Some(url), Some(body)) if url != body => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (Some(url), _) => url.to_string(),
            (None, Some(body)) => body,
            (None, None) => "default".to_string(),
        };
        meta.insert("namespace".into(), Value::String(ns));
    } else {
        meta.remove("namespace");
    }
    let has_name = non_empty(meta.get("name").and_then(Value::as_str)).is_some();
    let has_generate = non_empty(meta.get("generateName").and_then(Value::as_str)).is_some();
    if !has_name && !has_generate {
        return Err(ApiError::invalid(rt, "", "metadata.name: Required value: name or generateName is required"));
    }
    meta.insert("uid".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), Value::String(now()));
    meta.insert("generation".into(), json!(1));
    for field in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"] {
        meta.remove(field);
    }
    Ok(obj)
}

/// Create at a known URL (server-side apply of a missing object): the body may not name another.
pub fn prepare_create_named(rt: &ResourceType, ns: &str, name: &str, obj: Value) -> Result<Value, ApiError> {
    check_shape(rt, &obj)?;
    if let Some(body_name) = non_empty(meta_str(&obj, "name"))
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let mut obj = obj;
    metadata_mut(&mut obj).insert("name".into(), Value::String(name.to_string()));
    prepare_create(rt, rt.namespaced.then_some(ns), obj)
}

/// `generateName` plus five random characters from the alphabet kube-apiserver uses.
pub fn generate_name(obj: &mut Value) {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let prefix = meta_str(obj, "generateName").unwrap_or("").to_string();
    let random = uuid::Uuid::new_v4().into_bytes();
    let suffix: String = random[..5].iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    metadata_mut(obj).insert("name".into(), Value::String(format!("{prefix}{suffix}")));
}

/// Names must be RFC 1123 subdomains (what most kinds, including all of ours, require).
pub fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let valid_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok = !name.is_empty()
        && name.len() <= 253
        && valid_chars
        && alnum(name.bytes().next())
        && alnum(name.bytes().next_back());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            rt,
            name,
            format!(
                "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ))
    }
}

fn set_or_remove(obj: &mut Value, field: &str, value: Option<Value>) {
    let root = obj.as_object_mut().expect("checked to be an object");
    match value {
        Some(v) => root.insert(field.to_string(), v),
        None => root.remove(field),
    };
}

/// Everything but metadata and status, which is what generation tracks.
fn spec_part(obj: &Value) -> Vec<(&String, &Value)> {
    obj.as_object()
        .map(|m| {
            m.iter().filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")).collect()
        })
        .unwrap_or_default()
}

/// The object an update stores: optimistic concurrency on resourceVersion, server-owned metadata
/// kept, status or the rest taken from `new` depending on the subresource, generation moved on
/// when the spec part changed.
pub fn prepare_update(
    rt: &ResourceType,
    ns: &str,
    name: &str,
    old: &Value,
    new: Value,
    sub: Sub,
) -> Result<Value, ApiError> {
    check_shape(rt, &new)?;
    if let Some(rv) = non_empty(meta_str(&new, "resourceVersion"))
        && Some(rv) != meta_str(old, "resourceVersion")
    {
        return Err(ApiError::conflict(rt, name));
    }
    if let Some(uid) = non_empty(meta_str(&new, "uid"))
        && Some(uid) != meta_str(old, "uid")
    {
        let message = format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
            meta_str(old, "uid").unwrap_or("")
        );
        return Err(ApiError::precondition_failed(rt, name, message));
    }
    if let Some(body_name) = non_empty(meta_str(&new, "name"))
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if rt.namespaced && non_empty(meta_str(&new, "namespace")).is_some_and(|body_ns| body_ns != ns) {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let mut result = match sub {
        Sub::Status => {
            let mut r = old.clone();
            set_or_remove(&mut r, "status", new.get("status").cloned());
            r
        }
        Sub::Main => {
            let mut r = new;
            if rt.status_subresource {
                set_or_remove(&mut r, "status", old.get("status").cloned());
            }
            r
        }
    };
    stamp_type(rt, &mut result);
    normalize(rt, &mut result);
    let old_meta = old.get("metadata").and_then(Value::as_object);
    let meta = metadata_mut(&mut result);
    for field in SERVER_OWNED {
        match old_meta.and_then(|m| m.get(*field)) {
            Some(v) => meta.insert(field.to_string(), v.clone()),
            None => meta.remove(*field),
        };
    }
    if spec_part(old) != spec_part(&result) {
        let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0) + 1;
        metadata_mut(&mut result).insert("generation".into(), json!(generation));
    }
    Ok(result)
}

/// Kind-specific write-time conversions kube-apiserver does. For Secrets: `stringData` is
/// write-only and merged into `data` (base64), which is what readers see.
fn normalize(rt: &ResourceType, obj: &mut Value) {
    if !(rt.group.is_empty() && rt.kind == "Secret") {
        return;
    }
    let root = obj.as_object_mut().expect("checked to be an object");
    let Some(Value::Object(string_data)) = root.remove("stringData") else { return };
    let data = root.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    let data = data.as_object_mut().expect("just made an object");
    for (key, value) in string_data {
        let text = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        data.insert(key, Value::String(base64(text.as_bytes())));
    }
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn check_preconditions(rt: &ResourceType, obj: &Value, pre: &Preconditions) -> Result<(), ApiError> {
    let name = name(obj);
    for (label, wanted, field) in
        [("UID", &pre.uid, "uid"), ("ResourceVersion", &pre.resource_version, "resourceVersion")]
    {
        let actual = meta_str(obj, field).unwrap_or("");
        if let Some(wanted) = wanted
            && wanted != actual
        {
            let message =
                format!("Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}");
            return Err(ApiError::precondition_failed(rt, name, message));
        }
    }
    Ok(())
}

pub fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty())
}

pub fn is_terminating(obj: &Value) -> bool {
    non_empty(meta_str(obj, "deletionTimestamp")).is_some()
}

pub fn mark_terminating(obj: &mut Value) {
    let meta = metadata_mut(obj);
    meta.insert("deletionTimestamp".into(), Value::String(now()));
    meta.insert("deletionGracePeriodSeconds".into(), json!(0));
}

/// A terminating object whose last finalizer was just removed is deleted by that update.
pub fn deletion_finished(obj: &Value) -> bool {
    is_terminating(obj) && !has_finalizers(obj)
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_padding() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg==")] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
