//! The committed CRDs are exactly what the code generates, they are valid
//! structural schemas, and they carry KIC's names, short names and columns.

use std::process::Command;

use serde_json::Value;

const COMMITTED: &str = "crds/portcullis-crds.yaml";

#[test]
fn committed_crds_match_the_code() {
    let generated = portcullis::api::crds_yaml();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(COMMITTED);
    if std::env::var_os("UPDATE_CRDS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    assert!(
        committed == generated,
        "{COMMITTED} is stale: regenerate with `cargo run -- crds > {COMMITTED}` (or UPDATE_CRDS=1 cargo test --test crds)"
    );
}

#[test]
fn crds_subcommand_prints_them() {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis")).arg("crds").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), portcullis::api::crds_yaml());
}

fn crds() -> Vec<Value> {
    portcullis::api::all_crds().iter().map(|c| serde_json::to_value(c).unwrap()).collect()
}

fn crd(kind: &str) -> Value {
    crds().into_iter().find(|c| c["spec"]["names"]["kind"] == kind).unwrap()
}

#[test]
fn names_and_scopes_match_kic() {
    for (kind, plural, short, scope) in [
        ("KongConsumer", "kongconsumers", "kc", "Namespaced"),
        ("KongPlugin", "kongplugins", "kp", "Namespaced"),
        ("KongClusterPlugin", "kongclusterplugins", "kcp", "Cluster"),
    ] {
        let c = crd(kind);
        assert_eq!(c["metadata"]["name"], format!("{plural}.configuration.konghq.com"));
        assert_eq!(c["spec"]["group"], "configuration.konghq.com");
        assert_eq!(c["spec"]["names"]["plural"], plural);
        assert_eq!(c["spec"]["names"]["shortNames"], serde_json::json!([short]));
        assert_eq!(c["spec"]["scope"], scope);
        let v = &c["spec"]["versions"][0];
        assert_eq!(v["name"], "v1");
        assert_eq!(v["served"], true);
        assert_eq!(v["storage"], true);
        assert!(v["subresources"]["status"].is_object(), "{kind} needs the status subresource");
    }
}

fn columns(kind: &str) -> Vec<String> {
    crd(kind)["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn printer_columns_match_kic() {
    assert_eq!(columns("KongConsumer"), ["Username", "Age", "Programmed"]);
    assert_eq!(columns("KongPlugin"), ["Plugin-Type", "Age", "Disabled", "Config", "Programmed"]);
    assert_eq!(columns("KongClusterPlugin"), ["Plugin-Type", "Age", "Disabled", "Config", "Programmed"]);
    let c = crd("KongConsumer");
    let programmed = &c["spec"]["versions"][0]["additionalPrinterColumns"][2];
    assert_eq!(programmed["jsonPath"], ".status.conditions[?(@.type==\"Programmed\")].status");
}

#[test]
fn fields_sit_at_the_top_level_like_kic() {
    let schema = |kind: &str| crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    let consumer = schema("KongConsumer");
    for f in ["username", "custom_id", "credentials", "consumerGroups", "status"] {
        assert!(consumer["properties"][f].is_object(), "KongConsumer.{f} missing");
    }
    for kind in ["KongPlugin", "KongClusterPlugin"] {
        let plugin = schema(kind);
        for f in ["plugin", "config", "configFrom", "disabled", "protocols", "instance_name", "status"] {
            assert!(plugin["properties"][f].is_object(), "{kind}.{f} missing");
        }
        assert_eq!(plugin["required"], serde_json::json!(["plugin"]));
        assert_eq!(plugin["properties"]["config"]["x-kubernetes-preserve-unknown-fields"], true);
    }
    let cluster = schema("KongClusterPlugin");
    assert_eq!(
        cluster["properties"]["configFrom"]["properties"]["secretKeyRef"]["required"],
        serde_json::json!(["key", "name", "namespace"])
    );
}

/// The rules of a structural schema (Kubernetes "Specifying a structural
/// schema"): every node has a type unless it preserves unknown fields or is
/// int-or-string; no $ref/definitions; no additionalProperties beside
/// properties; metadata only `type: object` at the root.
fn assert_structural(path: &str, node: &Value) {
    let obj = node.as_object().unwrap_or_else(|| panic!("{path}: not an object"));
    for banned in ["$ref", "definitions", "$defs", "$schema", "oneOf", "anyOf", "allOf", "not"] {
        assert!(!obj.contains_key(banned), "{path}: `{banned}` is not allowed in a structural schema");
    }
    let preserves = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    assert!(obj.contains_key("type") || preserves || int_or_string, "{path}: missing `type`");
    assert!(
        !(obj.contains_key("properties") && obj.contains_key("additionalProperties")),
        "{path}: properties and additionalProperties are mutually exclusive"
    );
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            assert_structural(&format!("{path}.{k}"), v);
        }
    }
    if let Some(items) = obj.get("items") {
        assert_structural(&format!("{path}[]"), items);
    }
    if let Some(ap) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        assert_structural(&format!("{path}{{}}"), ap);
    }
}

#[test]
fn schemas_are_structural() {
    for c in crds() {
        let kind = c["spec"]["names"]["kind"].as_str().unwrap().to_string();
        let schema = &c["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert_structural(&kind, schema);
        assert_eq!(schema["properties"]["metadata"], serde_json::json!({"type": "object"}), "{kind}.metadata");
    }
}

#[test]
fn structural_check_catches_a_missing_type() {
    let bad = serde_json::json!({"type": "object", "properties": {"x": {"description": "no type"}}});
    let caught = std::panic::catch_unwind(|| assert_structural("bad", &bad));
    assert!(caught.is_err(), "the structural check must reject a node without a type");
}
