//! A skeletal OpenAPI v3: no schemas, only each resource's PATCH operation declaring the
//! `fieldValidation` parameter. That is what kubectl looks for to leave validation to the server
//! (which here accepts any fields), so `kubectl apply -f` works without `--validate=false`.

use serde_json::{Map, Value, json};

use super::{errors::ApiError, resources::Registry};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

pub fn index(registry: &Registry) -> Value {
    let paths: Map<String, Value> = registry
        .group_versions()
        .into_iter()
        .map(|(g, v)| {
            let path = gv_path(g, v);
            let url = format!("/openapi/v3/{path}");
            (path, json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

/// `/openapi/v3/{api/v1 | apis/group/version}`.
pub fn group_version(registry: &Registry, gv: &str) -> Result<Value, ApiError> {
    let mut paths = Map::new();
    for (_, rt) in registry.iter().filter(|(_, t)| gv_path(t.group, t.version) == gv) {
        let scope = if rt.namespaced { "namespaces/{namespace}/" } else { "" };
        let operation = json!({
            "x-kubernetes-group-version-kind": { "group": rt.group, "version": rt.version, "kind": rt.kind },
            "parameters": [{ "name": "fieldValidation", "in": "query", "schema": { "type": "string" } }],
            "responses": { "200": { "description": "OK" } },
        });
        paths.insert(format!("/{gv}/{scope}{}/{{name}}", rt.plural), json!({ "patch": operation }));
    }
    if paths.is_empty() {
        return Err(ApiError::no_route());
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes (Portcullis test API server)", "version": "v1.33.0" },
        "paths": paths,
    }))
}
