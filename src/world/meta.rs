use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use uuid::Uuid;

use super::{Kind, ObjectError};

/// Namespace for the UUIDv5 identities of objects that carry no
/// `metadata.uid` (local mode): stable across restarts and machines.
const UID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a8e_93d4_4b7e_a1f0_5c2d_8e4b_7a90);

/// Annotation and label prefixes translation reads; everything else (notably
/// `kubectl.kubernetes.io/last-applied-configuration`, which repeats a
/// Secret's data in clear) is dropped on arrival.
const KEPT_PREFIXES: [&str; 5] = [
    "konghq.com/",
    "kubernetes.io/ingress.class",
    "ingress.kubernetes.io/",
    "ingressclass.kubernetes.io/",
    "kubernetes.io/service-name",
];
const KEPT_LABELS: [&str; 3] = [crate::api::LABEL_CREDENTIAL, crate::api::LABEL_GLOBAL, crate::api::LABEL_SERVICE_NAME];

/// The metadata translation reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    pub namespace: Option<String>,
    pub name: String,
    /// `metadata.uid`, or a UUIDv5 of kind/namespace/name when absent.
    pub uid: String,
    /// `metadata.creationTimestamp`; the source fills it in with the time the
    /// object was first seen when the manifest has none.
    pub created: Timestamp,
    pub generation: Option<i64>,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Status as last seen (ignored by equality; see `Observed`).
    pub observed: super::Observed,
}

impl Meta {
    pub fn shrink(kind: Kind, m: &ObjectMeta) -> Result<Self, ObjectError> {
        let name = m.name.clone().filter(|n| !n.is_empty()).ok_or(ObjectError::MissingName { kind })?;
        let namespace = if kind.is_namespaced() {
            Some(m.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".to_string()))
        } else {
            None
        };
        let uid = match m.uid.as_deref() {
            Some(uid) if !uid.is_empty() => uid.to_string(),
            _ => stable_uid(kind, namespace.as_deref().unwrap_or(""), &name),
        };
        let keep = |k: &String| KEPT_PREFIXES.iter().any(|p| k.starts_with(p));
        Ok(Self {
            namespace,
            name,
            uid,
            created: m.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(Timestamp::UNIX_EPOCH),
            generation: m.generation,
            annotations: m
                .annotations
                .iter()
                .flatten()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            labels: m
                .labels
                .iter()
                .flatten()
                .filter(|(k, _)| KEPT_LABELS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            observed: super::Observed::default(),
        })
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Sort key for "oldest wins" rules: creation time, then namespace/name.
    pub fn age_key(&self) -> (Timestamp, &str, &str) {
        (self.created, self.namespace.as_deref().unwrap_or(""), &self.name)
    }
}

/// The identity of an object that has no `metadata.uid`.
pub fn stable_uid(kind: Kind, namespace: &str, name: &str) -> String {
    Uuid::new_v5(&UID_NAMESPACE, format!("{kind}/{namespace}/{name}").as_bytes()).to_string()
}
