//! Plugin configuration read from a Secret (`configFrom.secretKeyRef`): the
//! value is JSON or YAML. Errors name the Secret and key but never echo the
//! value — a plugin's configuration may hold secrets of its own.

use serde_json::Value;

use crate::world::World;

/// Why a `configFrom` reference cannot be used: (field, message).
pub type ConfigFromError = (&'static str, String);

/// Reads the configuration `configFrom` points at.
pub fn resolve(world: &World, (ns, name, key): &(String, String, String)) -> Result<Value, ConfigFromError> {
    let secret = world.secrets.get(&(ns.clone(), name.clone())).ok_or_else(|| {
        (
            "configFrom.secretKeyRef.name",
            format!("Secret {ns}/{name} not found; create it with the plugin configuration under key '{key}'"),
        )
    })?;
    if secret.credential_type().is_some() {
        return Err((
            "configFrom.secretKeyRef.name",
            format!(
                "Secret {ns}/{name} is a credential (labelled konghq.com/credential); keep plugin configuration in an unlabelled Secret"
            ),
        ));
    }
    let raw = secret.data().get(key).ok_or_else(|| {
        ("configFrom.secretKeyRef.key", format!("Secret {ns}/{name} has no key '{key}'; add it or fix the key name"))
    })?;
    let text = std::str::from_utf8(raw).map_err(|_| {
        ("configFrom.secretKeyRef.key", format!("Secret {ns}/{name} key '{key}' is not UTF-8 text; store JSON or YAML"))
    })?;
    // YAML is a superset of JSON: one parser reads both.
    let value: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let at = e.location().map(|l| format!(" at line {}, column {}", l.line(), l.column())).unwrap_or_default();
        ("configFrom.secretKeyRef.key", format!("Secret {ns}/{name} key '{key}' is not valid JSON or YAML{at}"))
    })?;
    match value {
        Value::Object(_) => Ok(value),
        _ => Err((
            "configFrom.secretKeyRef.key",
            format!("Secret {ns}/{name} key '{key}' must hold an object of plugin settings"),
        )),
    }
}
