use std::ops::Deref;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use arc_swap::{ArcSwapOption, Guard};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use uuid::Uuid;

use super::interned::{Interned, intern};
use super::packed::{Pairs, put_pairs, put_text, take_text};
use super::shared::Sharing;
use super::{ConditionState, Kind, ObjectError, ObjectRef, Observed, Uid};

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

/// The metadata translation reads, in 64 bytes (144 with a field per
/// value) and one heap block of its own, the name: 200,000 of these at 100k
/// credentials.
#[derive(Clone)]
pub struct Meta {
    /// Namespace, kept annotations and kept labels, interned as one text
    /// (`put_text(namespace)`, `put_text(annotations)`, then the labels; see
    /// `packed`): objects in a namespace nearly all share them. The
    /// namespace is empty for cluster-scoped kinds.
    shared: Interned,
    name: Box<str>,
    /// `metadata.uid` when it is a UUID (see `Uid`), as it nearly always
    /// is; otherwise zeros, and the text is in `rare`.
    uuid: [u8; 16],
    /// `metadata.creationTimestamp` taken apart: a `Timestamp` takes 16
    /// bytes, 4 of them padding, where `generation` fits instead.
    created_second: i64,
    created_nanosecond: i32,
    /// `metadata.generation` + 1 when it is below `BIG_GENERATION` (as
    /// generations are: they count spec changes from 1), `NO_GENERATION`
    /// when absent, `BIG_GENERATION` when `rare` holds it.
    generation: u32,
    /// None for nearly every object (see `Rare`). Swappable in place:
    /// when only an object's status changes, the World keeps the object
    /// that translation and the snapshot hold and swaps in the new status
    /// (`take_status`), instead of storing a second copy of the object.
    rare: RareCell,
}

/// `Meta::rare`: a clone holds the same `Rare`.
#[derive(Default)]
struct RareCell(ArcSwapOption<Rare>);

impl Clone for RareCell {
    fn clone(&self) -> Self {
        Self(ArcSwapOption::new(self.0.load_full()))
    }
}

impl Deref for RareCell {
    type Target = ArcSwapOption<Rare>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

const NO_GENERATION: u32 = 0;
const BIG_GENERATION: u32 = u32::MAX;

/// What few objects have, boxed only when there is any: a status (local
/// manifests and Secrets never carry one; an inline `Observed` would cost
/// ~150 bytes in every object), a uid that is not a UUID (an inline `Uid`
/// takes 24 bytes where a UUID needs 16) and a generation that does not fit
/// in `Meta::generation`. In cluster mode every KongConsumer has one once
/// its status is written, so the common part, the `Programmed` condition,
/// is kept apart from the rarer ones: 40 bytes, a 64-byte block with its
/// `Arc` (128 when they were together; 6.4 MB at 100k consumers).
#[derive(Clone, Default)]
struct Rare {
    /// Status as last seen (ignored by equality; see `Observed`).
    programmed: Option<ConditionState>,
    /// None when all of it is empty.
    odd: Option<Box<Odd>>,
}

/// The rarer parts of `Rare`.
#[derive(Clone, Default)]
struct Odd {
    /// Ingress `status.loadBalancer`, as last seen.
    load_balancer: Option<Vec<String>>,
    uid_text: Option<Box<str>>,
    generation: Option<i64>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.programmed.is_none() && self.odd.is_none()
    }

    fn odd(&self) -> Option<&Odd> {
        self.odd.as_deref()
    }

    fn uid_text(&self) -> Option<&str> {
        self.odd().and_then(|o| o.uid_text.as_deref())
    }

    /// Changes the rarer parts, boxing them only when there is something
    /// (every object passes here when it is shrunk; almost none keeps any).
    fn change_odd(&mut self, change: impl FnOnce(&mut Odd)) {
        let mut odd = self.odd.take().map_or_else(Odd::default, |o| *o);
        change(&mut odd);
        let Odd { load_balancer, uid_text, generation } = &odd;
        if load_balancer.is_some() || uid_text.is_some() || generation.is_some() {
            self.odd = Some(Box::new(odd));
        }
    }
}

/// The `Rare` of objects whose whole rare part is one `Programmed`
/// condition, shared by all that say the same. In cluster mode every
/// KongConsumer holds one once its status is written, and the write-back
/// gives them all the same condition but for the second it was written: a
/// block each was 6.4 MB at 100k consumers, shared it is a few dozen
/// blocks. A `Rare` is never changed in place (`change_rare` makes a new
/// one), so sharing it is safe.
fn shared_status(state: ConditionState) -> Arc<Rare> {
    static STATUSES: LazyLock<Mutex<Sharing<ConditionState, Rare>>> = LazyLock::new(Mutex::default);
    // Nothing panics while holding the lock, so a poisoned table is intact.
    let mut table = STATUSES.lock().unwrap_or_else(PoisonError::into_inner);
    table.share(state, || Rare { programmed: Some(state), odd: None })
}

/// An object's status as last seen, read from its `Meta` (see `observed`).
pub struct ObservedRef(Guard<Option<Arc<Rare>>>);

impl ObservedRef {
    pub fn programmed(&self) -> Option<ConditionState> {
        self.0.as_deref().and_then(|r| r.programmed)
    }

    pub fn load_balancer(&self) -> Option<&[String]> {
        self.0.as_deref().and_then(Rare::odd).and_then(|o| o.load_balancer.as_deref())
    }
}

impl std::fmt::Debug for ObservedRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("programmed", &self.programmed())
            .field("load_balancer", &self.load_balancer())
            .finish()
    }
}

/// Equal when translation would read the same: status is not an input.
impl PartialEq for Meta {
    fn eq(&self, other: &Self) -> bool {
        self.shared == other.shared
            && self.name == other.name
            && self.uuid == other.uuid
            && self.with_rare(|a| other.with_rare(|b| a.and_then(Rare::uid_text) == b.and_then(Rare::uid_text)))
            && (self.created_second, self.created_nanosecond) == (other.created_second, other.created_nanosecond)
            && self.generation() == other.generation()
    }
}

impl Meta {
    pub fn shrink(kind: Kind, m: &ObjectMeta) -> Result<Self, ObjectError> {
        let name = m.name.as_deref().filter(|n| !n.is_empty()).ok_or(ObjectError::MissingName { kind })?;
        let namespace = match kind.is_namespaced() {
            true => m.namespace.as_deref().filter(|n| !n.is_empty()).unwrap_or("default"),
            false => "",
        };
        let uid = match m.uid.as_deref() {
            Some(uid) if !uid.is_empty() => Uid::new(uid),
            _ => stable_uid(kind, namespace, name),
        };
        let (uuid, uid_text) = match uid {
            Uid::Uuid(uuid) => (uuid, None),
            Uid::Text(text) => ([0; 16], Some(text)),
        };
        let keep = |k: &str| KEPT_PREFIXES.iter().any(|p| k.starts_with(p));
        let mut annotations = String::new();
        put_pairs(&mut annotations, m.annotations.iter().flatten().filter(|(k, _)| keep(k)));
        let mut shared = String::with_capacity(8 + namespace.len() + annotations.len());
        put_text(&mut shared, namespace);
        put_text(&mut shared, &annotations);
        put_pairs(&mut shared, m.labels.iter().flatten().filter(|(k, _)| KEPT_LABELS.contains(&k.as_str())));
        let mut meta = Self {
            shared: intern(&shared),
            name: name.into(),
            uuid,
            created_second: 0,
            created_nanosecond: 0,
            generation: NO_GENERATION,
            rare: RareCell::default(),
        };
        meta.set_created(m.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(Timestamp::UNIX_EPOCH));
        let small = m.generation.and_then(|g| u32::try_from(g).ok()).filter(|g| *g < BIG_GENERATION - 1);
        meta.generation = match (m.generation, small) {
            (None, _) => NO_GENERATION,
            (Some(_), Some(g)) => g + 1,
            (Some(_), None) => BIG_GENERATION,
        };
        meta.change_rare(|r| {
            r.change_odd(|o| {
                o.uid_text = uid_text;
                o.generation = m.generation.filter(|_| small.is_none());
            })
        });
        Ok(meta)
    }

    /// Changes `rare`, boxed only while it holds anything (changed on the
    /// stack: shrinking 200,000 objects allocates no box for nothing).
    fn change_rare(&mut self, change: impl FnOnce(&mut Rare)) {
        let mut rare = self.with_rare(|r| r.cloned()).unwrap_or_default();
        change(&mut rare);
        let stored = match rare {
            _ if rare.is_empty() => None,
            Rare { programmed: Some(state), odd: None } => Some(shared_status(state)),
            _ => Some(Arc::new(rare)),
        };
        self.rare.store(stored);
    }

    fn with_rare<R>(&self, read: impl FnOnce(Option<&Rare>) -> R) -> R {
        read(self.rare.load().as_deref())
    }

    /// `metadata.uid`, or a UUIDv5 of kind/namespace/name when absent.
    pub fn uid(&self) -> Uid {
        // A text uid leaves `uuid` zero: a UUID (the request path's case)
        // is answered without reading `rare`.
        if self.uuid != [0; 16] {
            return Uid::Uuid(self.uuid);
        }
        match self.with_rare(|r| r.and_then(Rare::uid_text).map(Box::from)) {
            Some(text) => Uid::Text(text),
            None => Uid::Uuid(self.uuid),
        }
    }

    /// Status as last seen (empty when none).
    pub fn observed(&self) -> ObservedRef {
        ObservedRef(self.rare.load())
    }

    pub fn set_observed(&mut self, observed: Observed) {
        let Observed { programmed, load_balancer } = observed;
        self.change_rare(|r| {
            r.programmed = programmed;
            r.change_odd(|o| o.load_balancer = load_balancer);
        });
    }

    /// Takes the status of `newer`, an equal object seen later (equality
    /// ignores status), in place: everything else `rare` holds is equal.
    pub fn take_status(&self, newer: &Meta) {
        self.rare.store(newer.rare.load_full());
    }

    /// (namespace, annotations, labels) as packed in `shared`.
    fn shared_parts(&self) -> (&str, &str, &str) {
        let mut rest: &str = &self.shared;
        let namespace = take_text(&mut rest).unwrap_or_default();
        let annotations = take_text(&mut rest).unwrap_or_default();
        (namespace, annotations, rest)
    }

    /// The first text of `shared` alone: stores compare keys with it.
    fn namespace_or_empty(&self) -> &str {
        let mut rest: &str = &self.shared;
        take_text(&mut rest).unwrap_or_default()
    }

    /// None for cluster-scoped kinds.
    pub fn namespace(&self) -> Option<&str> {
        Some(self.namespace_or_empty()).filter(|ns| !ns.is_empty())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// (namespace, name), namespace "" for cluster-scoped kinds: how stores
    /// find objects.
    pub fn key(&self) -> (&str, &str) {
        (self.namespace_or_empty(), &self.name)
    }

    /// The reference of this object, of kind `kind`.
    pub fn object_ref(&self, kind: Kind) -> ObjectRef {
        ObjectRef::new(kind, self.namespace().map(str::to_string), self.name())
    }

    /// `metadata.creationTimestamp`; the source fills it in with the time
    /// the object was first seen when the manifest has none.
    pub fn created(&self) -> Timestamp {
        // Taken apart from a Timestamp, so always in range.
        Timestamp::new(self.created_second, self.created_nanosecond).unwrap_or_default()
    }

    pub fn set_created(&mut self, created: Timestamp) {
        self.created_second = created.as_second();
        self.created_nanosecond = created.subsec_nanosecond();
    }

    pub fn generation(&self) -> Option<i64> {
        match self.generation {
            NO_GENERATION => None,
            BIG_GENERATION => self.with_rare(|r| r.and_then(Rare::odd).and_then(|o| o.generation)),
            small => Some(i64::from(small - 1)),
        }
    }

    /// The kept annotations (see `KEPT_PREFIXES`).
    pub fn annotations(&self) -> Pairs<'_> {
        Pairs::new(self.shared_parts().1)
    }

    /// The kept labels (see `KEPT_LABELS`).
    pub fn labels(&self) -> Pairs<'_> {
        Pairs::new(self.shared_parts().2)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations().get(key)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels().get(key)
    }

    /// Sort key for "oldest wins" rules: creation time, then namespace/name.
    pub fn age_key(&self) -> (Timestamp, &str, &str) {
        let (namespace, name) = self.key();
        (self.created(), namespace, name)
    }
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta")
            .field("namespace", &self.namespace())
            .field("name", &self.name())
            .field("uid", &self.uid())
            .field("created", &self.created())
            .field("generation", &self.generation())
            .field("annotations", &self.annotations())
            .field("labels", &self.labels())
            .field("observed", &self.observed())
            .finish()
    }
}

/// The identity of an object that has no `metadata.uid`.
pub fn stable_uid(kind: Kind, namespace: &str, name: &str) -> Uid {
    Uuid::new_v5(&UID_NAMESPACE, format!("{kind}/{namespace}/{name}").as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn namespace_annotations_and_labels_read_back_and_are_shared() {
        let m = ObjectMeta {
            name: Some("n".into()),
            namespace: Some("ns".into()),
            annotations: Some(BTreeMap::from([
                ("konghq.com/plugins".into(), "a,b".into()),
                ("kubectl.kubernetes.io/last-applied-configuration".into(), "{}".into()),
            ])),
            labels: Some(BTreeMap::from([("konghq.com/credential".into(), "key-auth".into())])),
            generation: Some(3),
            ..Default::default()
        };
        let a = Meta::shrink(Kind::Secret, &m).unwrap();
        assert_eq!((a.namespace(), a.name(), a.key()), (Some("ns"), "n", ("ns", "n")));
        assert_eq!(a.annotations().iter().collect::<Vec<_>>(), [("konghq.com/plugins", "a,b")]);
        assert_eq!(a.label("konghq.com/credential"), Some("key-auth"));
        assert_eq!((a.generation(), a.created()), (Some(3), Timestamp::UNIX_EPOCH));
        let b = Meta::shrink(Kind::Secret, &ObjectMeta { name: Some("other".into()), ..m.clone() }).unwrap();
        assert_eq!(std::ptr::from_ref::<str>(&a.shared), std::ptr::from_ref::<str>(&b.shared));

        let bare = ObjectMeta { name: Some("c".into()), ..Default::default() };
        let cluster = Meta::shrink(Kind::IngressClass, &bare).unwrap();
        assert_eq!((cluster.namespace(), cluster.key()), (None, ("", "c")));
        assert!(cluster.annotations().is_empty() && cluster.labels().is_empty() && cluster.generation().is_none());
        assert_eq!(Meta::shrink(Kind::Service, &bare).unwrap().namespace(), Some("default"));
    }

    #[test]
    fn created_keeps_its_nanoseconds_and_generation_survives_setting_it() {
        let m = ObjectMeta { name: Some("n".into()), generation: Some(-1), ..Default::default() };
        let mut meta = Meta::shrink(Kind::Service, &m).unwrap();
        for t in [Timestamp::new(1_700_000_000, 123_456_789).unwrap(), Timestamp::new(-5, -7).unwrap(), Timestamp::MAX]
        {
            meta.set_created(t);
            assert_eq!((meta.created(), meta.generation()), (t, Some(-1)));
        }
    }

    #[test]
    fn a_text_uid_and_a_status_live_in_the_rare_box_and_status_is_not_compared() {
        let uuid = "c97fd9a1-d1c0-5560-9308-9f19b8f50ae4";
        let m = |uid: &str| ObjectMeta { name: Some("n".into()), uid: Some(uid.into()), ..Default::default() };
        let plain = Meta::shrink(Kind::KongConsumer, &m(uuid)).unwrap();
        assert!(plain.rare.load().is_none());
        assert_eq!(plain.uid(), uuid);
        let mut text = Meta::shrink(Kind::KongConsumer, &m("1234")).unwrap();
        assert_eq!(text.uid(), "1234");
        assert_ne!(text, Meta::shrink(Kind::KongConsumer, &m("12345")).unwrap());
        let before = text.clone();
        let programmed = super::super::ConditionState::new("True", "Programmed", "", None, None);
        text.set_observed(Observed { programmed: Some(programmed), load_balancer: None });
        assert_eq!((text.uid(), text.observed().programmed().is_some()), (Uid::new("1234"), true));
        assert_eq!(text, before, "status is not a translation input");
        text.set_observed(Observed::default());
        assert_eq!((text.uid(), text.observed().programmed().is_none()), (Uid::new("1234"), true));
    }

    #[test]
    fn a_status_alone_keeps_the_rarer_parts_unboxed() {
        let m = ObjectMeta { name: Some("n".into()), ..Default::default() };
        let mut meta = Meta::shrink(Kind::KongConsumer, &m).unwrap();
        let programmed = super::super::ConditionState::new("True", "Programmed", "", Some(1), None);
        meta.set_observed(Observed { programmed: Some(programmed), load_balancer: None });
        assert!(meta.rare.load().as_deref().is_some_and(|r| r.odd.is_none()));
        assert_eq!(meta.observed().programmed(), Some(programmed));

        let lb = Some(vec!["10.0.0.1".to_string()]);
        meta.set_observed(Observed { programmed: None, load_balancer: lb });
        assert_eq!(meta.observed().load_balancer(), Some(&["10.0.0.1".to_string()][..]));
        assert_eq!(meta.observed().programmed(), None);
        meta.set_observed(Observed::default());
        assert!(meta.rare.load().is_none(), "nothing left: no box");

        // Objects whose status says the same share one block.
        let mut other = Meta::shrink(Kind::KongConsumer, &ObjectMeta { name: Some("o".into()), ..m }).unwrap();
        meta.set_observed(Observed { programmed: Some(programmed), load_balancer: None });
        other.set_observed(Observed { programmed: Some(programmed), load_balancer: None });
        assert!(Arc::ptr_eq(&meta.rare.load_full().unwrap(), &other.rare.load_full().unwrap()));
        let later = super::super::ConditionState::new("True", "Programmed", "", Some(2), None);
        other.set_observed(Observed { programmed: Some(later), load_balancer: None });
        assert!(!Arc::ptr_eq(&meta.rare.load_full().unwrap(), &other.rare.load_full().unwrap()));
        assert_eq!((meta.observed().programmed(), other.observed().programmed()), (Some(programmed), Some(later)));
        // The `Arc` and `Rare` together fit mimalloc's 64-byte blocks.
        assert_eq!(std::mem::size_of::<Rare>(), 40);
    }

    #[test]
    fn every_generation_reads_back_and_only_unusual_ones_are_boxed() {
        let small = [None, Some(0), Some(1), Some(i64::from(u32::MAX) - 2)];
        let big = [Some(i64::from(u32::MAX) - 1), Some(-1), Some(i64::MAX), Some(i64::MIN)];
        for (generation, boxed) in small.map(|g| (g, false)).into_iter().chain(big.map(|g| (g, true))) {
            let meta = Meta::shrink(
                Kind::KongConsumer,
                &ObjectMeta { name: Some("n".into()), generation, ..Default::default() },
            );
            let meta = meta.unwrap();
            assert_eq!((meta.generation(), meta.rare.load().is_some()), (generation, boxed));
            let other = Meta::shrink(
                Kind::KongConsumer,
                &ObjectMeta { name: Some("n".into()), generation: Some(5), ..Default::default() },
            );
            assert_ne!(meta, other.unwrap());
        }
    }
}
