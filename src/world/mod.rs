//! The World: per-kind stores of shrunk objects, fed by a source (cluster
//! watches or a manifests folder) through synchronous `apply` / `delete` /
//! `reset`. Only the fields translation reads are kept; credential Secrets are
//! reduced to a key digest on arrival. No I/O happens here.

mod interned;
mod meta;
mod object;
mod object_ref;
mod observed;
mod packed;
mod shared;
mod shrunk;
mod shrunk_object;
mod shrunk_secret;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use crate::snapshot::Uid;
pub use meta::{Meta, stable_uid};
pub use object::{Object, ObjectError};
pub use object_ref::{Kind, ObjectRef};
pub use observed::{ConditionState, Observed};
pub use packed::{Pairs, Texts};
pub use shrunk::{
    EndpointSliceObj, IngressClassObj, IngressObj, KongConsumerObj, KongPluginObj, ServiceObj, SliceEndpoint, SlicePort,
};
pub use shrunk_object::Shrunk;
pub use shrunk_secret::{CredentialKey, InvalidTtl, SecretData, SecretObj};
/// Objects of one kind keyed by (namespace, name); namespace is "" for
/// cluster-scoped kinds. Sorted, which keeps translation deterministic.
pub use store::{Key, Store};

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
    /// Objects that exist in the API but cannot be read (cluster mode):
    /// not a translation input, but status and Events need their identity.
    pub unreadable: BTreeMap<ObjectRef, Unreadable>,
    changed: BTreeSet<Kind>,
    /// A non-credential Secret (plugin configuration, TLS) changed: routes
    /// read those, while credential changes must not rebuild routes.
    config_secrets_changed: bool,
    /// Which KongConsumers and Secrets changed, so the consumer index is
    /// updated object by object instead of rebuilt.
    keys_changed: KeyChanges,
    /// True from `skip_key_changes_until_taken` to the next
    /// `take_key_changes`: a load whose changes nobody reads (the first
    /// publish translates consumers in full) does not build a set of
    /// 200,000 (namespace, name) pairs at 100k credentials.
    skip_keys: bool,
}

/// The (namespace, name) of every KongConsumer and Secret stored, replaced
/// or deleted since the last `take_key_changes`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyChanges {
    pub consumers: BTreeSet<(String, String)>,
    pub secrets: BTreeSet<(String, String)>,
}

impl KeyChanges {
    pub fn is_empty(&self) -> bool {
        self.consumers.is_empty() && self.secrets.is_empty()
    }

    fn note(&mut self, kind: Kind, key: (String, String)) {
        match kind {
            Kind::KongConsumer => self.consumers.insert(key),
            Kind::Secret => self.secrets.insert(key),
            _ => false,
        };
    }
}

/// The two ways cluster mode learns of Secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretSide {
    /// The watch of Secrets labelled `konghq.com/credential`.
    Credentials,
    /// Watches of the Secrets that objects reference by name.
    Referenced,
}

impl SecretSide {
    fn owns(self, s: &SecretObj) -> bool {
        match self {
            SecretSide::Credentials => s.credential_type().is_some(),
            SecretSide::Referenced => s.credential_type().is_none(),
        }
    }
}

/// An object the source could not read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub uid: String,
    pub generation: Option<i64>,
    pub reason: String,
}

/// Smallest batch of one kind `World::apply_all` stores at once.
const FILL_FROM: usize = 1024;

impl World {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores (or replaces) one object, shrunk. Returns its reference.
    pub fn apply(&mut self, obj: Object) -> Result<ObjectRef, ObjectError> {
        let shrunk = Shrunk::from_object(&obj)?;
        let r = shrunk.object_ref();
        self.apply_shrunk(shrunk);
        Ok(r)
    }

    /// Stores (or replaces) one already-shrunk object. An object equal to the
    /// stored one (a status-only update, say — status is not kept) changes
    /// nothing and triggers no rebuild.
    pub fn apply_shrunk(&mut self, obj: Shrunk) {
        let kind = obj.kind();
        // Named only when key changes are tracked (not at a first load).
        let key_change = (!self.skip_keys && matches!(kind, Kind::KongConsumer | Kind::Secret)).then(|| {
            let (ns, name) = obj.meta().key();
            (ns.to_string(), name.to_string())
        });
        let changed = match obj {
            Shrunk::Ingress(o) => insert(&mut self.ingresses, o),
            Shrunk::IngressClass(o) => insert(&mut self.ingress_classes, o),
            Shrunk::Service(o) => insert(&mut self.services, o),
            Shrunk::EndpointSlice(o) => insert(&mut self.endpoint_slices, o),
            Shrunk::Secret(o) => {
                // One walk down the tree: the replaced Secret tells both.
                let is_config = o.credential_type().is_none();
                let old = replace(&mut self.secrets, o);
                let was_config = old.as_ref().is_some_and(|r| r.old.credential_type().is_none());
                let changed = old.is_none_or(|r| !r.equal);
                self.config_secrets_changed |= changed && (was_config || is_config);
                changed
            }
            Shrunk::KongConsumer(o) => insert(&mut self.consumers, o),
            Shrunk::KongPlugin(o) => insert(&mut self.plugins, o),
            Shrunk::KongClusterPlugin(o) => insert(&mut self.cluster_plugins, o),
        };
        if changed {
            self.changed.insert(kind);
            if let Some(key) = key_change {
                self.keys_changed.note(kind, key);
            }
        }
    }

    /// Stores many shrunk objects, each name at most once, as
    /// `apply_shrunk` of each would. Thousands of Secrets or KongConsumers,
    /// at least half as many as are stored (a first load: 100,000s), are
    /// stored at once (`Store::fill`) rather than one tree insert each, and
    /// all count as changed (they nearly all are; a few extra objects for
    /// the incremental translation to look at cost far less than telling).
    pub fn apply_all(&mut self, objs: impl IntoIterator<Item = Shrunk>) {
        let (mut secrets, mut consumers) = (Vec::new(), Vec::new());
        for obj in objs {
            match obj {
                Shrunk::Secret(o) => secrets.push(o),
                Shrunk::KongConsumer(o) => consumers.push(o),
                other => self.apply_shrunk(other),
            }
        }
        let at_once = |batch: usize, stored: usize| batch >= FILL_FROM && batch * 2 >= stored;
        if at_once(secrets.len(), self.secrets.len()) {
            self.config_secrets_changed |= secrets.iter().any(|s| s.credential_type().is_none());
            self.note_all(Kind::Secret, &secrets);
            self.secrets.fill(secrets);
        } else {
            secrets.into_iter().for_each(|o| self.apply_shrunk(Shrunk::Secret(o)));
        }
        if at_once(consumers.len(), self.consumers.len()) {
            self.note_all(Kind::KongConsumer, &consumers);
            self.consumers.fill(consumers);
        } else {
            consumers.into_iter().for_each(|o| self.apply_shrunk(Shrunk::KongConsumer(o)));
        }
    }

    /// Notes every one of `objs` as changed.
    fn note_all<T: HasMeta>(&mut self, kind: Kind, objs: &[Arc<T>]) {
        self.changed.insert(kind);
        if !self.skip_keys {
            for o in objs {
                let (ns, name) = o.meta().key();
                self.keys_changed.note(kind, (ns.to_string(), name.to_string()));
            }
        }
    }

    /// Removes one object; returns whether it was present.
    pub fn delete(&mut self, r: &ObjectRef) -> bool {
        let key = (r.namespace.clone().unwrap_or_default(), r.name.clone());
        let removed = match r.kind {
            Kind::Ingress => self.ingresses.remove(&key).is_some(),
            Kind::IngressClass => self.ingress_classes.remove(&key).is_some(),
            Kind::Service => self.services.remove(&key).is_some(),
            Kind::EndpointSlice => self.endpoint_slices.remove(&key).is_some(),
            Kind::Secret => match self.secrets.remove(&key) {
                Some(old) => {
                    self.config_secrets_changed |= old.credential_type().is_none();
                    true
                }
                None => false,
            },
            Kind::KongConsumer => self.consumers.remove(&key).is_some(),
            Kind::KongPlugin => self.plugins.remove(&key).is_some(),
            Kind::KongClusterPlugin => self.cluster_plugins.remove(&key).is_some(),
        };
        if removed {
            self.changed.insert(r.kind);
            if !self.skip_keys {
                self.keys_changed.note(r.kind, key);
            }
        }
        removed
    }

    /// Replaces every object of `kind` with `objs` (a re-list). Objects that
    /// fail to shrink are returned with their error; the rest are stored.
    pub fn reset(&mut self, kind: Kind, objs: Vec<Object>) -> Vec<(Option<ObjectRef>, ObjectError)> {
        let mut errors = Vec::new();
        let mut shrunk = Vec::new();
        for obj in objs {
            match Shrunk::from_object(&obj) {
                Ok(s) if s.kind() == kind => shrunk.push(s),
                Ok(s) => errors.push((obj.object_ref(), ObjectError::WrongKind { expected: kind, found: s.kind() })),
                Err(e) => errors.push((obj.object_ref(), e)),
            }
        }
        self.reset_scope(kind, None, shrunk);
        errors
    }

    /// Replaces the objects of `kind` in `namespace` (all namespaces when
    /// None) with `objs`: what a watch's initial list means. Objects of
    /// another kind or namespace in `objs` are ignored.
    pub fn reset_scope(&mut self, kind: Kind, namespace: Option<&str>, objs: Vec<Shrunk>) {
        let in_scope = |ns: &str| namespace.is_none_or(|want| want == ns);
        match kind {
            Kind::Ingress => self.ingresses.retain(|o| !in_scope(ns_of(o))),
            Kind::IngressClass => self.ingress_classes.retain(|o| !in_scope(ns_of(o))),
            Kind::Service => self.services.retain(|o| !in_scope(ns_of(o))),
            Kind::EndpointSlice => self.endpoint_slices.retain(|o| !in_scope(ns_of(o))),
            Kind::Secret => {
                let changes = &mut self.keys_changed;
                self.secrets.retain(|o| !(in_scope(ns_of(o)) && removing(&mut changes.secrets, o)))
            }
            Kind::KongConsumer => {
                let changes = &mut self.keys_changed;
                self.consumers.retain(|o| !(in_scope(ns_of(o)) && removing(&mut changes.consumers, o)))
            }
            Kind::KongPlugin => self.plugins.retain(|o| !in_scope(ns_of(o))),
            Kind::KongClusterPlugin => self.cluster_plugins.retain(|o| !in_scope(ns_of(o))),
        }
        for obj in objs {
            if obj.kind() == kind && in_scope(obj.meta().key().0) {
                self.apply_shrunk(obj);
            }
        }
        self.changed.insert(kind);
        self.config_secrets_changed |= kind == Kind::Secret;
    }

    /// Which Secrets a source speaks for: the labelled-credential watch and
    /// the per-name watches of referenced Secrets see the same objects from
    /// two sides, and neither may remove what the other one owns.
    pub fn reset_secrets(&mut self, namespace: Option<&str>, side: SecretSide, objs: Vec<Shrunk>) {
        let in_scope = |ns: &str| namespace.is_none_or(|want| want == ns);
        let before = self.secrets.len();
        let changes = &mut self.keys_changed;
        self.secrets.retain(|s| !(in_scope(ns_of(s)) && side.owns(s) && removing(&mut changes.secrets, s)));
        if self.secrets.len() != before {
            self.changed.insert(Kind::Secret);
            self.config_secrets_changed |= side == SecretSide::Referenced;
        }
        for obj in objs {
            if obj.kind() == Kind::Secret && in_scope(obj.meta().key().0) {
                self.apply_shrunk(obj);
            }
        }
    }

    /// Deletes a Secret only if it is on `side` (see `reset_secrets`).
    pub fn delete_secret(&mut self, r: &ObjectRef, side: SecretSide) -> bool {
        let key = (r.namespace.clone().unwrap_or_default(), r.name.clone());
        if self.secrets.get(&key).is_some_and(|s| side.owns(s)) { self.delete(r) } else { false }
    }

    /// Whether a non-credential Secret changed since the last call.
    pub fn take_config_secret_change(&mut self) -> bool {
        std::mem::take(&mut self.config_secrets_changed)
    }

    /// The KongConsumers and Secrets changed since the last call. Empty after
    /// `skip_key_changes_until_taken` (and tracked again from here on).
    pub fn take_key_changes(&mut self) -> KeyChanges {
        self.skip_keys = false;
        std::mem::take(&mut self.keys_changed)
    }

    /// Stops noting which KongConsumers and Secrets are applied or deleted
    /// (a re-list still notes what it removes) until the next
    /// `take_key_changes`, for a caller whose next translation of consumers
    /// is a full one (the first publish) and so never reads them.
    pub fn skip_key_changes_until_taken(&mut self) {
        self.skip_keys = true;
        self.keys_changed = KeyChanges::default();
    }

    /// The kinds changed since the last call (what the publisher must rebuild).
    pub fn take_changes(&mut self) -> BTreeSet<Kind> {
        std::mem::take(&mut self.changed)
    }
}

/// Inserts `obj`; false when an equal object was already stored. One
/// lookup in the store: the new `Arc` is compared with the one it replaced.
/// Stores `obj`; returns whether that changed anything.
fn insert<T: HasMeta + PartialEq>(store: &mut Store<T>, obj: Arc<T>) -> bool {
    replace(store, obj).is_none_or(|old| !old.equal)
}

/// What `replace` replaced.
struct Replaced<T> {
    old: Arc<T>,
    /// The new object was equal to it (only its status differed, if
    /// anything): the old object was kept.
    equal: bool,
}

/// Stores `obj` in one walk down the tree. When the object it replaces is
/// equal (a status update, or a relist), the old object goes back with the
/// new status instead: translation's state and the snapshot hold the old
/// one, and storing the new one would keep both alive (~140 bytes per
/// KongConsumer once the controller has written its status).
fn replace<T: HasMeta + PartialEq>(store: &mut Store<T>, obj: Arc<T>) -> Option<Replaced<T>> {
    let new = obj.clone();
    let old = store.insert(obj)?;
    let equal = *old == *new;
    if equal && !Arc::ptr_eq(&old, &new) {
        old.meta().take_status(new.meta());
        store.insert(old.clone());
    }
    Some(Replaced { old, equal })
}

fn ns_of<T: HasMeta>(o: &Arc<T>) -> &str {
    o.meta().key().0
}

/// Notes `obj` as changed; true, so it reads as the condition of a removal.
fn removing<T: HasMeta>(changed: &mut BTreeSet<(String, String)>, obj: &Arc<T>) -> bool {
    let (ns, name) = obj.meta().key();
    changed.insert((ns.to_string(), name.to_string()));
    true
}

/// Every shrunk object carries its metadata.
pub trait HasMeta {
    fn meta(&self) -> &Meta;
}
