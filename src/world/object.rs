use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;

use super::{Kind, ObjectRef};
use crate::api::{KongClusterPlugin, KongConsumer, KongPlugin};

/// One Kubernetes object of a kind Portcullis reads, as the API (or a
/// manifest) delivers it, before shrinking.
// Objects are transient (read, shrunk, dropped) and few at a time, so the
// size difference between variants costs nothing worth a Box per object.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Object {
    Ingress(Ingress),
    IngressClass(IngressClass),
    Service(Service),
    EndpointSlice(EndpointSlice),
    Secret(Secret),
    KongConsumer(KongConsumer),
    KongPlugin(KongPlugin),
    KongClusterPlugin(KongClusterPlugin),
}

/// Why an object could not be read. Never contains Secret data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ObjectError {
    #[error(
        "unsupported apiVersion/kind {api_version}/{kind}: Portcullis reads Ingress, IngressClass, Service, EndpointSlice, Secret, KongConsumer, KongPlugin and KongClusterPlugin"
    )]
    UnknownKind { api_version: String, kind: String },
    #[error("document has no `kind` or `apiVersion`; every manifest must name both")]
    MissingKind,
    #[error("{kind} has no metadata.name; set a name")]
    MissingName { kind: Kind },
    #[error("{kind} {name}: field `{field}`: {detail}")]
    Invalid { kind: Kind, name: String, field: String, detail: String },
    #[error("expected a {expected}, got a {found}")]
    WrongKind { expected: Kind, found: Kind },
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Ingress(_) => Kind::Ingress,
            Object::IngressClass(_) => Kind::IngressClass,
            Object::Service(_) => Kind::Service,
            Object::EndpointSlice(_) => Kind::EndpointSlice,
            Object::Secret(_) => Kind::Secret,
            Object::KongConsumer(_) => Kind::KongConsumer,
            Object::KongPlugin(_) => Kind::KongPlugin,
            Object::KongClusterPlugin(_) => Kind::KongClusterPlugin,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Ingress(o) => &o.metadata,
            Object::IngressClass(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::KongConsumer(o) => &o.metadata,
            Object::KongPlugin(o) => &o.metadata,
            Object::KongClusterPlugin(o) => &o.metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Ingress(o) => &mut o.metadata,
            Object::IngressClass(o) => &mut o.metadata,
            Object::Service(o) => &mut o.metadata,
            Object::EndpointSlice(o) => &mut o.metadata,
            Object::Secret(o) => &mut o.metadata,
            Object::KongConsumer(o) => &mut o.metadata,
            Object::KongPlugin(o) => &mut o.metadata,
            Object::KongClusterPlugin(o) => &mut o.metadata,
        }
    }

    /// The object's reference, when it has a name. Namespaced kinds without a
    /// namespace land in `default`, as `kubectl apply` would put them.
    pub fn object_ref(&self) -> Option<ObjectRef> {
        let kind = self.kind();
        let m = self.metadata();
        let name = m.name.clone().filter(|n| !n.is_empty())?;
        let ns = kind
            .is_namespaced()
            .then(|| m.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into()));
        Some(ObjectRef::new(kind, ns, name))
    }

    /// Reads one manifest document. `Ok(None)` for an empty document.
    /// Errors name the field at fault; for Secrets they never echo a value.
    pub fn from_value(value: serde_json::Value) -> Result<Self, ObjectError> {
        let api_version = value.get("apiVersion").and_then(|v| v.as_str()).ok_or(ObjectError::MissingKind)?;
        let kind_str = value.get("kind").and_then(|v| v.as_str()).ok_or(ObjectError::MissingKind)?;
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
                return Err(ObjectError::UnknownKind { api_version: api_version.into(), kind: kind_str.into() });
            }
        };
        let name = value.pointer("/metadata/name").and_then(|v| v.as_str()).unwrap_or("<unnamed>").to_string();
        Ok(match kind {
            Kind::Ingress => Object::Ingress(decode(kind, &name, value)?),
            Kind::IngressClass => Object::IngressClass(decode(kind, &name, value)?),
            Kind::Service => Object::Service(decode(kind, &name, value)?),
            Kind::EndpointSlice => Object::EndpointSlice(decode(kind, &name, value)?),
            Kind::Secret => Object::Secret(decode(kind, &name, value)?),
            Kind::KongConsumer => Object::KongConsumer(decode(kind, &name, value)?),
            Kind::KongPlugin => Object::KongPlugin(decode(kind, &name, value)?),
            Kind::KongClusterPlugin => Object::KongClusterPlugin(decode(kind, &name, value)?),
        })
    }
}

fn decode<T: DeserializeOwned>(kind: Kind, name: &str, value: serde_json::Value) -> Result<T, ObjectError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        // serde's messages quote the offending value; for a Secret that may be
        // a key, so only the location is reported.
        let detail = if kind == Kind::Secret {
            "has the wrong type or encoding (data values must be base64 strings, stringData values strings)".into()
        } else {
            e.into_inner().to_string()
        };
        ObjectError::Invalid { kind, name: name.to_string(), field, detail }
    })
}
