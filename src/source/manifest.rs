//! Reading manifests exactly as a user writes them for `kubectl apply`:
//! YAML (multi-document) or JSON, `List` kinds expanded.

use serde::Deserialize;

use crate::world::{Object, ObjectError};

/// One object read from a manifest, or why it could not be read.
#[derive(Debug)]
pub struct Document {
    /// 1-based position of the document in the file (after `List` expansion
    /// the list's position, with `item` set).
    pub index: usize,
    pub item: Option<usize>,
    pub result: Result<Object, ObjectError>,
}

impl Document {
    /// "document 2" / "document 2, item 5", for messages.
    pub fn position(&self) -> String {
        match self.item {
            Some(i) => format!("document {}, item {}", self.index, i + 1),
            None => format!("document {}", self.index),
        }
    }
}

/// Why a whole file could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Parses a manifest file's text. A syntax error anywhere fails the whole
/// file (as `kubectl apply` would); per-object errors are returned per
/// document so the rest of the file still counts.
pub fn parse(text: &str) -> Result<Vec<Document>, ParseError> {
    let mut values = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = serde_json::Value::deserialize(doc).map_err(|e| ParseError(describe_yaml_error(i + 1, &e)))?;
        values.push((i + 1, value));
    }
    let mut docs = Vec::new();
    for (index, value) in values {
        match value {
            serde_json::Value::Null => {}
            serde_json::Value::Object(ref map) if is_list(map) => {
                let items = map.get("items").and_then(|v| v.as_array()).cloned().unwrap_or_default();
                for (item, v) in items.into_iter().enumerate() {
                    docs.push(Document { index, item: Some(item), result: Object::from_value(v) });
                }
            }
            serde_json::Value::Object(_) => {
                docs.push(Document { index, item: None, result: Object::from_value(value) })
            }
            _ => docs.push(Document { index, item: None, result: Err(ObjectError::MissingKind) }),
        }
    }
    Ok(docs)
}

fn is_list(map: &serde_json::Map<String, serde_json::Value>) -> bool {
    map.get("kind").and_then(|k| k.as_str()).is_some_and(|k| k == "List" || k.ends_with("List"))
        && map.get("items").is_some()
}

/// A YAML error names the document and position, never the offending text
/// (a broken Secret's line could hold a key).
fn describe_yaml_error(index: usize, e: &serde_yaml_ng::Error) -> String {
    match e.location() {
        Some(loc) => format!("YAML syntax error in document {index} at line {}, column {}", loc.line(), loc.column()),
        None => format!("YAML syntax error in document {index}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Kind;

    #[test]
    fn multi_document_and_lists() {
        let docs = parse(
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n  stringData: {key: k}\n- apiVersion: v9\n  kind: Nope\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].result.as_ref().unwrap().kind(), Kind::Service);
        assert_eq!(docs[1].result.as_ref().unwrap().kind(), Kind::Secret);
        assert_eq!(docs[1].position(), "document 3, item 1");
        assert!(matches!(docs[2].result, Err(ObjectError::UnknownKind { .. })));
    }

    #[test]
    fn json_files_parse_too() {
        let docs = parse(r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}}"#).unwrap();
        assert_eq!(docs.len(), 1);
        assert!(docs[0].result.is_ok());
    }

    #[test]
    fn syntax_error_names_position_not_content() {
        let err = parse("apiVersion: v1\nkind: Secret\nstringData:\n  key: [hello_world\n").unwrap_err();
        assert!(err.0.contains("line"), "{err}");
        assert!(!err.0.contains("hello_world"), "{err}");
    }

    #[test]
    fn wrong_field_type_names_field_but_never_secret_value() {
        let docs =
            parse("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n  key: [not, a, string]\n").unwrap();
        let err = docs[0].result.as_ref().unwrap_err().to_string();
        assert!(err.contains("stringData.key"), "{err}");
        assert!(!err.contains("not"), "{err}");
        let docs = parse("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: 5\n").unwrap();
        let err = docs[0].result.as_ref().unwrap_err().to_string();
        assert!(err.contains("spec.ports"), "{err}");
    }
}
