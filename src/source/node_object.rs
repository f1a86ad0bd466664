//! A fast-read document (`plain_yaml::Node`) to `Object`s: the same steps,
//! checks and messages as `Object::from_value` on the `serde_json::Value`
//! the full parser would have built (a differential test holds the two
//! paths to the same results).

use std::cell::Cell;

use serde::de::DeserializeOwned;

use super::node_de::NodeDe;
use super::plain_yaml::{Node, Unsupported};
use crate::world::{Kind, Object, ObjectError};

/// A document's objects, each with its `List` item position.
pub type Objects = Vec<(Option<usize>, Result<Object, ObjectError>)>;

/// The objects of one document, each with its `List` item position: none
/// (an empty document), one, or a `List`'s items. All or nothing: a part the
/// fast path cannot read sends the whole document to the full parser.
pub fn objects(node: &Node<'_>) -> Result<Objects, Unsupported> {
    Ok(match node {
        Node::Null => Vec::new(),
        Node::Map(_) if is_list(node) => match node.get("items") {
            Some(Node::Seq(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push((Some(i), object(item)?));
                }
                out
            }
            _ => Vec::new(),
        },
        Node::Map(_) => vec![(None, object(node)?)],
        _ => vec![(None, Err(ObjectError::MissingKind))],
    })
}

fn is_list(node: &Node<'_>) -> bool {
    node.get("kind").and_then(Node::as_str).is_some_and(|k| k == "List" || k.ends_with("List"))
        && node.get("items").is_some()
}

/// `Object::from_value`, from a node.
fn object(node: &Node<'_>) -> Result<Result<Object, ObjectError>, Unsupported> {
    let (Some(api_version), Some(kind_str)) =
        (node.get("apiVersion").and_then(Node::as_str), node.get("kind").and_then(Node::as_str))
    else {
        return Ok(Err(ObjectError::MissingKind));
    };
    let kind = match (api_version, kind_str) {
        ("networking.k8s.io/v1", "Ingress") => Kind::Ingress,
        ("networking.k8s.io/v1", "IngressClass") => Kind::IngressClass,
        ("v1", "Service") => Kind::Service,
        ("discovery.k8s.io/v1", "EndpointSlice") => Kind::EndpointSlice,
        ("v1", "Secret") => Kind::Secret,
        ("configuration.konghq.com/v1", "KongConsumer") => Kind::KongConsumer,
        ("configuration.konghq.com/v1", "KongPlugin") => Kind::KongPlugin,
        ("configuration.konghq.com/v1", "KongClusterPlugin") => Kind::KongClusterPlugin,
        _ => {
            return Ok(Err(ObjectError::UnknownKind { api_version: api_version.into(), kind: kind_str.into() }));
        }
    };
    let name = node.get("metadata").and_then(|m| m.get("name")).and_then(Node::as_str).unwrap_or("<unnamed>");
    Ok(match kind {
        Kind::Ingress => decode(kind, name, node)?.map(Object::Ingress),
        Kind::IngressClass => decode(kind, name, node)?.map(Object::IngressClass),
        Kind::Service => decode(kind, name, node)?.map(Object::Service),
        Kind::EndpointSlice => decode(kind, name, node)?.map(Object::EndpointSlice),
        Kind::Secret => decode(kind, name, node)?.map(Object::Secret),
        Kind::KongConsumer => decode(kind, name, node)?.map(Object::KongConsumer),
        Kind::KongPlugin => decode(kind, name, node)?.map(Object::KongPlugin),
        Kind::KongClusterPlugin => decode(kind, name, node)?.map(Object::KongClusterPlugin),
    })
}

fn decode<T: DeserializeOwned>(kind: Kind, name: &str, node: &Node<'_>) -> Result<Result<T, ObjectError>, Unsupported> {
    let unsupported = Cell::new(false);
    let result = serde_path_to_error::deserialize(NodeDe::new(node, &unsupported));
    if unsupported.get() {
        return Err(Unsupported);
    }
    Ok(result.map_err(|e| {
        let field = e.path().to_string();
        // As in `Object::from_value`: serde's messages quote the offending
        // value; for a Secret that may be a key, so only the location is
        // reported.
        let detail = if kind == Kind::Secret {
            "has the wrong type or encoding (data values must be base64 strings, stringData values strings)".into()
        } else {
            e.into_inner().to_string()
        };
        ObjectError::Invalid { kind, name: name.to_string(), field, detail }
    }))
}
