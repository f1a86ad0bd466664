//! key-auth plugin configuration (KONG_COMPAT §6), validated the way Kong's
//! schema validates it: every field typed, unknown fields rejected, defaults
//! filled in, and everything the request path needs precomputed.

use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};

use crate::snapshot::{KeyAuthConfig, KeyName, Protocols};

use super::annotations::printable;

/// Every setting key-auth has, in Kong's order.
const SETTINGS: [&str; 8] = [
    "key_names",
    "key_in_header",
    "key_in_query",
    "key_in_body",
    "hide_credentials",
    "anonymous",
    "run_on_preflight",
    "realm",
];
const DEFAULT_KEY_NAME: &str = "apikey";
const DEFAULT_REALM: &str = "kong";
/// Protocols Kong allows key-auth on (its `protocols_http` set).
const KONG_PROTOCOLS: [&str; 6] = ["grpc", "grpcs", "http", "https", "ws", "wss"];

/// One reason a configuration is unusable, at a field of the KongPlugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// `config.key_names[1]`, `protocols`.
    pub field: String,
    pub message: String,
}

fn error(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), message: message.into() }
}

/// Validates a KongPlugin's `config` and `protocols` into a key-auth
/// configuration, or every error found (not just the first).
pub fn parse(source: String, config: Option<&Value>, protocols: &[String]) -> Result<KeyAuthConfig, Vec<ConfigError>> {
    let empty = Map::new();
    let mut errors = Vec::new();
    let settings = match config {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(vec![error("config", "must be an object of key-auth settings")]),
    };
    for key in settings.keys().filter(|k| !SETTINGS.contains(&k.as_str())) {
        errors.push(error(
            format!("config.{}", printable(key)),
            format!(
                "unknown field: key-auth has no such setting and Kong rejects it; remove it (settings: {})",
                SETTINGS.join(", ")
            ),
        ));
    }
    // Kong fills in the default for a missing or null setting.
    let get = |k: &str| settings.get(k).filter(|v| !v.is_null());
    let mut boolean = |k: &str, default: bool| match get(k) {
        None => default,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(error(format!("config.{k}"), "must be a boolean (true or false)"));
            default
        }
    };
    let key_in_header = boolean("key_in_header", true);
    let key_in_query = boolean("key_in_query", true);
    let key_in_body = boolean("key_in_body", false);
    let hide_credentials = boolean("hide_credentials", false);
    let run_on_preflight = boolean("run_on_preflight", true);
    let key_names = key_names(get("key_names"), &mut errors);
    let anonymous = string(get("anonymous"), "config.anonymous", &mut errors).filter(|a| !a.is_empty());
    let realm = string(get("realm"), "config.realm", &mut errors);
    let www_authenticate = www_authenticate(realm.as_deref().unwrap_or(DEFAULT_REALM), &mut errors);
    let protocols = plugin_protocols(protocols, &mut errors);
    match (www_authenticate, errors.is_empty()) {
        (Some(www_authenticate), true) => Ok(KeyAuthConfig {
            source,
            key_names,
            key_in_header,
            key_in_query,
            key_in_body,
            hide_credentials,
            anonymous,
            run_on_preflight,
            www_authenticate,
            protocols,
        }),
        _ => Err(errors),
    }
}

fn string(value: Option<&Value>, field: &str, errors: &mut Vec<ConfigError>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        _ => {
            errors.push(error(field, "must be a string"));
            None
        }
    }
}

fn key_names(value: Option<&Value>, errors: &mut Vec<ConfigError>) -> Vec<KeyName> {
    let Some(value) = value else {
        return vec![KeyName {
            name: DEFAULT_KEY_NAME.into(),
            header: HeaderName::from_static(DEFAULT_KEY_NAME),
            header_alt: None,
        }];
    };
    let Value::Array(items) = value else {
        errors.push(error("config.key_names", "must be a list of names (for example [apikey])"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("config.key_names[{i}]");
        match item {
            Value::String(name) => match key_name(name) {
                Some(k) => out.push(k),
                // Kong's exact wording, which users may search for.
                None => errors.push(error(
                    field,
                    format!(
                        "bad header name '{}', allowed characters are A-Z, a-z, 0-9, '_', and '-'",
                        printable(name)
                    ),
                )),
            },
            _ => errors.push(error(field, "must be a string")),
        }
    }
    out
}

/// A key name if it matches `^[a-zA-Z0-9_-]+$`. A name with `_` also
/// matches the header spelled with `-`, which proxies often rewrite it to.
fn key_name(name: &str) -> Option<KeyName> {
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return None;
    }
    let header = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).ok()?;
    let header_alt = match name.contains('_') {
        true => Some(HeaderName::from_bytes(name.to_ascii_lowercase().replace('_', "-").as_bytes()).ok()?),
        false => None,
    };
    Some(KeyName { name: name.to_string(), header, header_alt })
}

/// `Key realm="<realm>"`. A realm that cannot sit inside the quotes as is
/// would make a malformed header, so it is an error rather than escaped.
fn www_authenticate(realm: &str, errors: &mut Vec<ConfigError>) -> Option<HeaderValue> {
    let fits = realm.chars().all(|c| c != '"' && c != '\\' && !c.is_control());
    match HeaderValue::from_str(&format!("Key realm=\"{realm}\"")) {
        Ok(v) if fits => Some(v),
        _ => {
            errors.push(error("config.realm", "must be printable text without '\"' or '\\'"));
            None
        }
    }
}

/// The KongPlugin's `protocols`: empty means all. Only http and https reach
/// Portcullis; a list naming neither would leave the route unprotected, so
/// it is an error (fail closed) rather than Kong's silent no-op.
fn plugin_protocols(protocols: &[String], errors: &mut Vec<ConfigError>) -> Protocols {
    if protocols.is_empty() {
        return Protocols::default();
    }
    let mut p = Protocols { http: false, https: false };
    for (i, proto) in protocols.iter().enumerate() {
        match proto.as_str() {
            "http" => p.http = true,
            "https" => p.https = true,
            other if KONG_PROTOCOLS.contains(&other) => {}
            other => errors.push(error(
                format!("protocols[{i}]"),
                format!("'{}' is not a protocol key-auth runs on (use http, https)", printable(other)),
            )),
        }
    }
    if !(p.http || p.https) {
        errors.push(error(
            "protocols",
            "key-auth would run on none of the protocols Portcullis serves, leaving routes unprotected; list http and/or https or remove protocols",
        ));
    }
    p
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ok(config: Value) -> KeyAuthConfig {
        parse("default/key-auth".into(), Some(&config), &[]).unwrap()
    }

    fn errors(config: Value) -> Vec<String> {
        parse("p".into(), Some(&config), &[]).unwrap_err().iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn defaults() {
        let c = parse("default/key-auth".into(), None, &[]).unwrap();
        assert_eq!(c.key_names.len(), 1);
        assert_eq!(c.key_names[0].name, "apikey");
        assert_eq!(c.key_names[0].header, "apikey");
        assert!(c.key_names[0].header_alt.is_none());
        assert!(c.key_in_header && c.key_in_query && !c.key_in_body && !c.hide_credentials && c.run_on_preflight);
        assert_eq!(c.anonymous, None);
        assert_eq!(c.www_authenticate, "Key realm=\"kong\"");
        assert_eq!(c.protocols, Protocols::default());
        assert_eq!(c.source, "default/key-auth");
        // null settings take their defaults, as in Kong.
        let c = ok(json!({"key_names": null, "anonymous": null, "hide_credentials": null}));
        assert_eq!(c.key_names[0].name, "apikey");
        assert!(!c.hide_credentials);
    }

    #[test]
    fn every_setting() {
        let c = ok(json!({
            "key_names": ["X-Api_Key", "token"],
            "key_in_header": false, "key_in_query": false, "key_in_body": true,
            "hide_credentials": true, "anonymous": "guest", "run_on_preflight": false, "realm": "my api"
        }));
        assert_eq!(c.key_names[0].name, "X-Api_Key");
        assert_eq!(c.key_names[0].header, "x-api_key");
        assert_eq!(c.key_names[0].header_alt.as_ref().unwrap(), "x-api-key");
        assert_eq!(c.key_names[1].header, "token");
        assert!(!c.key_in_header && !c.key_in_query && c.key_in_body && c.hide_credentials && !c.run_on_preflight);
        assert_eq!(c.anonymous.as_deref(), Some("guest"));
        assert_eq!(c.www_authenticate, "Key realm=\"my api\"");
        assert_eq!(ok(json!({"anonymous": ""})).anonymous, None);
    }

    #[test]
    fn bad_key_names_use_kongs_message() {
        assert_eq!(
            errors(json!({"key_names": ["ok", "bad name", ""]})),
            [
                "config.key_names[1]: bad header name 'bad name', allowed characters are A-Z, a-z, 0-9, '_', and '-'",
                "config.key_names[2]: bad header name '', allowed characters are A-Z, a-z, 0-9, '_', and '-'",
            ]
        );
        assert_eq!(
            errors(json!({"key_names": "apikey"})),
            ["config.key_names: must be a list of names (for example [apikey])"]
        );
        assert_eq!(errors(json!({"key_names": [1]})), ["config.key_names[0]: must be a string"]);
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_all_reported() {
        let e = errors(json!({"hide_credential": true, "key_in_body": "yes", "anonymous": 5, "realm": "a\"b"}));
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e[0].starts_with("config.hide_credential: unknown field"), "{e:?}");
        assert!(e.contains(&"config.key_in_body: must be a boolean (true or false)".to_string()));
        assert!(e.contains(&"config.anonymous: must be a string".to_string()));
        assert!(e.iter().any(|m| m.starts_with("config.realm:")));
        assert_eq!(errors(json!(["key_names"])), ["config: must be an object of key-auth settings"]);
    }

    #[test]
    fn protocols() {
        let p = |list: &[&str]| {
            parse("p".into(), None, &list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map(|c| c.protocols)
        };
        assert_eq!(p(&["https"]).unwrap(), Protocols { http: false, https: true });
        assert_eq!(p(&["http", "grpc"]).unwrap(), Protocols { http: true, https: false });
        assert!(p(&["grpc"]).is_err());
        assert!(p(&["tcp", "http"]).is_err());
    }
}
