use std::fmt;

use serde::Serialize;

/// The kinds of object Portcullis reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Kind {
    Ingress,
    IngressClass,
    Service,
    EndpointSlice,
    Secret,
    KongConsumer,
    KongPlugin,
    KongClusterPlugin,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Ingress,
        Kind::IngressClass,
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Secret,
        Kind::KongConsumer,
        Kind::KongPlugin,
        Kind::KongClusterPlugin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ingress => "Ingress",
            Kind::IngressClass => "IngressClass",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Secret => "Secret",
            Kind::KongConsumer => "KongConsumer",
            Kind::KongPlugin => "KongPlugin",
            Kind::KongClusterPlugin => "KongClusterPlugin",
        }
    }

    /// `apiVersion` this kind is read as.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Ingress | Kind::IngressClass => "networking.k8s.io/v1",
            Kind::Service | Kind::Secret => "v1",
            Kind::EndpointSlice => "discovery.k8s.io/v1",
            Kind::KongConsumer | Kind::KongPlugin | Kind::KongClusterPlugin => "configuration.konghq.com/v1",
        }
    }

    pub fn is_namespaced(self) -> bool {
        !matches!(self, Kind::IngressClass | Kind::KongClusterPlugin)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names one object: `Ingress default/echo`, `KongClusterPlugin auth`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: Kind, namespace: Option<String>, name: impl Into<String>) -> Self {
        Self { kind, namespace: namespace.filter(|n| !n.is_empty()), name: name.into() }
    }

    pub fn namespaced(kind: Kind, namespace: &str, name: &str) -> Self {
        Self::new(kind, Some(namespace.to_string()), name)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}
