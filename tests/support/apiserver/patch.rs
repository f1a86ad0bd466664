//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the approximation of
//! server-side apply. Strategic merge patch is served as a merge patch (lists are replaced, not
//! merged by key; `$patch` directives are not understood).

use serde_json::Value;

use super::errors::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Strategic,
    Json,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/merge-patch+json" => Some(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Some(PatchKind::Strategic),
            "application/json-patch+json" => Some(PatchKind::Json),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(PatchKind::Apply),
            _ => None,
        }
    }
}

/// RFC 7386: objects merge recursively, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(target) = target else { return };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Server-side apply, approximated: the applied configuration is merged into the live object like a
/// merge patch. There is no field ownership, so fields a manager stops applying are not removed and
/// there are never apply conflicts.
pub fn apply(target: &mut Value, applied: &Value) {
    merge_patch(target, applied);
}

/// RFC 6902 operations add, remove, replace, move, copy and test. Failures are 422 Invalid, as in
/// kube-apiserver.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), ApiError> {
    let ops = ops.as_array().ok_or_else(|| ApiError::bad_request("json patch must be an array of operations"))?;
    for op in ops {
        apply_op(doc, op).map_err(|msg| ApiError::new(422, "Invalid", format!("json patch {op}: {msg}")))?;
    }
    Ok(())
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), String> {
    let field = |name: &str| op.get(name).and_then(Value::as_str).ok_or_else(|| format!("missing {name:?}"));
    let path = parse_pointer(field("path")?)?;
    let value = || op.get("value").cloned().ok_or_else(|| "missing \"value\"".to_string());
    match field("op")? {
        "add" => add(doc, &path, value()?),
        "remove" => remove(doc, &path).map(drop),
        "replace" => {
            remove(doc, &path)?;
            add(doc, &path, value()?)
        }
        "move" => {
            let moved = remove(doc, &parse_pointer(field("from")?)?)?;
            add(doc, &path, moved)
        }
        "copy" => {
            let copied = get(doc, &parse_pointer(field("from")?)?).cloned().ok_or("\"from\" does not exist")?;
            add(doc, &path, copied)
        }
        "test" => match get(doc, &path) {
            Some(actual) if *actual == value()? => Ok(()),
            _ => Err("test failed".to_string()),
        },
        other => Err(format!("unknown op {other:?}")),
    }
}

fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer.strip_prefix('/').ok_or_else(|| format!("invalid pointer {pointer:?}"))?;
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

fn get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, token| match v {
        Value::Object(map) => map.get(token),
        Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

fn parent<'a>(doc: &'a mut Value, path: &[String]) -> Result<(&'a mut Value, String), String> {
    let (last, init) = path.split_last().ok_or("the document root has no parent")?;
    let mut current = doc;
    for token in init {
        current = match current {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path segment {token:?} does not exist"))?;
    }
    Ok((current, last.clone()))
}

fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (container, token) = parent(doc, path)?;
    match container {
        Value::Object(map) => {
            map.insert(token, value);
            Ok(())
        }
        Value::Array(items) => {
            let index = if token == "-" { items.len() } else { token.parse().map_err(|_| "bad array index")? };
            if index > items.len() {
                return Err(format!("index {index} out of bounds"));
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err("parent is not a container".to_string()),
    }
}

fn remove(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    if path.is_empty() {
        return Ok(std::mem::take(doc));
    }
    let (container, token) = parent(doc, path)?;
    let removed = match container {
        Value::Object(map) => map.remove(&token),
        Value::Array(items) => match token.parse::<usize>() {
            Ok(i) if i < items.len() => Some(items.remove(i)),
            _ => None,
        },
        _ => None,
    };
    removed.ok_or_else(|| format!("path {token:?} does not exist"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_rfc7386() {
        let mut doc = json!({ "a": { "b": 1, "c": 2 }, "l": [1, 2], "x": "y" });
        merge_patch(&mut doc, &json!({ "a": { "b": null, "d": 3 }, "l": [3], "n": { "m": 1 } }));
        assert_eq!(doc, json!({ "a": { "c": 2, "d": 3 }, "l": [3], "x": "y", "n": { "m": 1 } }));
    }

    #[test]
    fn json_patch_ops() {
        let mut doc = json!({ "a": [1, 2], "b": { "c~/": 1 } });
        let ops = json!([
            { "op": "add", "path": "/a/-", "value": 3 },
            { "op": "add", "path": "/a/0", "value": 0 },
            { "op": "remove", "path": "/a/1" },
            { "op": "replace", "path": "/b/c~0~1", "value": 2 },
            { "op": "copy", "from": "/b", "path": "/d" },
            { "op": "move", "from": "/d", "path": "/e" },
            { "op": "test", "path": "/e/c~0~1", "value": 2 }
        ]);
        json_patch(&mut doc, &ops).unwrap();
        assert_eq!(doc, json!({ "a": [0, 2, 3], "b": { "c~/": 2 }, "e": { "c~/": 2 } }));
        let failing = json!([{ "op": "test", "path": "/a/0", "value": 9 }]);
        assert_eq!(json_patch(&mut doc, &failing).unwrap_err().code, 422);
        let missing = json!([{ "op": "remove", "path": "/nope" }]);
        assert_eq!(json_patch(&mut doc, &missing).unwrap_err().code, 422);
    }
}
