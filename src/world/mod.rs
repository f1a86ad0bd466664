//! The World: per-kind stores of shrunk objects, fed by a source (cluster
//! watches or a manifests folder) through synchronous `apply` / `delete` /
//! `reset`. Only the fields translation reads are kept; credential Secrets are
//! reduced to a key digest on arrival. No I/O happens here.

mod meta;
mod object;
mod object_ref;
mod shrunk;
mod shrunk_secret;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use meta::{Meta, stable_uid};
pub use object::{Object, ObjectError};
pub use object_ref::{Kind, ObjectRef};
pub use shrunk::{
    EndpointSliceObj, IngressClassObj, IngressObj, KongConsumerObj, KongPluginObj, ServiceObj, SliceEndpoint, SlicePort,
};
pub use shrunk_secret::{CredentialKey, SecretObj};

/// Objects of one kind keyed by (namespace, name); namespace is "" for
/// cluster-scoped kinds. BTreeMap keeps translation deterministic.
pub type Store<T> = BTreeMap<(String, String), Arc<T>>;

#[derive(Clone, Debug, Default)]
pub struct World {
    pub ingresses: Store<IngressObj>,
    pub ingress_classes: Store<IngressClassObj>,
    pub services: Store<ServiceObj>,
    pub endpoint_slices: Store<EndpointSliceObj>,
    pub secrets: Store<SecretObj>,
    pub consumers: Store<KongConsumerObj>,
    pub plugins: Store<KongPluginObj>,
    pub cluster_plugins: Store<KongPluginObj>,
    changed: BTreeSet<Kind>,
}

impl World {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores (or replaces) one object, shrunk. Returns its reference.
    pub fn apply(&mut self, obj: Object) -> Result<ObjectRef, ObjectError> {
        let kind = obj.kind();
        let r = match obj {
            Object::Ingress(o) => insert(&mut self.ingresses, IngressObj::shrink(&o)?),
            Object::IngressClass(o) => insert(&mut self.ingress_classes, IngressClassObj::shrink(&o)?),
            Object::Service(o) => insert(&mut self.services, ServiceObj::shrink(&o)?),
            Object::EndpointSlice(o) => insert(&mut self.endpoint_slices, EndpointSliceObj::shrink(&o)?),
            Object::Secret(o) => insert(&mut self.secrets, SecretObj::shrink(&o)?),
            Object::KongConsumer(o) => insert(&mut self.consumers, KongConsumerObj::shrink(&o)?),
            Object::KongPlugin(o) => insert(&mut self.plugins, KongPluginObj::shrink_namespaced(&o)?),
            Object::KongClusterPlugin(o) => insert(&mut self.cluster_plugins, KongPluginObj::shrink_cluster(&o)?),
        };
        self.changed.insert(kind);
        Ok(ObjectRef::new(kind, r.0, r.1))
    }

    /// Removes one object; returns whether it was present.
    pub fn delete(&mut self, r: &ObjectRef) -> bool {
        let key = (r.namespace.clone().unwrap_or_default(), r.name.clone());
        let removed = match r.kind {
            Kind::Ingress => self.ingresses.remove(&key).is_some(),
            Kind::IngressClass => self.ingress_classes.remove(&key).is_some(),
            Kind::Service => self.services.remove(&key).is_some(),
            Kind::EndpointSlice => self.endpoint_slices.remove(&key).is_some(),
            Kind::Secret => self.secrets.remove(&key).is_some(),
            Kind::KongConsumer => self.consumers.remove(&key).is_some(),
            Kind::KongPlugin => self.plugins.remove(&key).is_some(),
            Kind::KongClusterPlugin => self.cluster_plugins.remove(&key).is_some(),
        };
        if removed {
            self.changed.insert(r.kind);
        }
        removed
    }

    /// Replaces every object of `kind` with `objs` (a re-list). Objects that
    /// fail to shrink are returned with their error; the rest are stored.
    pub fn reset(&mut self, kind: Kind, objs: Vec<Object>) -> Vec<(Option<ObjectRef>, ObjectError)> {
        self.clear(kind);
        let mut errors = Vec::new();
        for obj in objs {
            if obj.kind() != kind {
                errors.push((obj.object_ref(), ObjectError::WrongKind { expected: kind, found: obj.kind() }));
                continue;
            }
            let r = obj.object_ref();
            if let Err(e) = self.apply(obj) {
                errors.push((r, e));
            }
        }
        self.changed.insert(kind);
        errors
    }

    fn clear(&mut self, kind: Kind) {
        match kind {
            Kind::Ingress => self.ingresses.clear(),
            Kind::IngressClass => self.ingress_classes.clear(),
            Kind::Service => self.services.clear(),
            Kind::EndpointSlice => self.endpoint_slices.clear(),
            Kind::Secret => self.secrets.clear(),
            Kind::KongConsumer => self.consumers.clear(),
            Kind::KongPlugin => self.plugins.clear(),
            Kind::KongClusterPlugin => self.cluster_plugins.clear(),
        }
    }

    /// The kinds changed since the last call (what the publisher must rebuild).
    pub fn take_changes(&mut self) -> BTreeSet<Kind> {
        std::mem::take(&mut self.changed)
    }
}

fn insert<T: HasMeta>(store: &mut Store<T>, obj: T) -> (Option<String>, String) {
    let meta = obj.meta();
    let ns = meta.namespace.clone();
    let name = meta.name.clone();
    store.insert((ns.clone().unwrap_or_default(), name.clone()), Arc::new(obj));
    (ns, name)
}

/// Every shrunk object carries its metadata.
pub trait HasMeta {
    fn meta(&self) -> &Meta;
}
