//! Compact object identities for the manifests folder's records: with
//! 100,000s of objects, an `ObjectRef` per record (two `String`s, 56 bytes
//! plus two heap blocks) is most of the folder's memory. A `Key` is 24
//! bytes with one heap block: the namespace is interned (a folder has few).

use crate::world::{Kind, ObjectRef};

/// One object: kind, interned namespace, name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    kind: Kind,
    /// Index in `Namespaces`, or `NO_NAMESPACE`.
    namespace: u32,
    name: Box<str>,
}

const NO_NAMESPACE: u32 = u32::MAX;

impl Key {
    /// This key with its namespace numbered by `numbers` (from
    /// `Namespaces::adopt` of the `Namespaces` that made it).
    pub fn renumbered(self, numbers: &[u32]) -> Key {
        let namespace = numbers.get(self.namespace as usize).copied().unwrap_or(NO_NAMESPACE);
        Key { namespace, ..self }
    }
}

/// The namespaces seen, numbered in order of appearance (never removed: a
/// folder names few).
#[derive(Default)]
pub struct Namespaces {
    names: Vec<Box<str>>,
    numbers: foldhash::HashMap<Box<str>, u32>,
}

impl Namespaces {
    pub fn key(&mut self, r: &ObjectRef) -> Key {
        let namespace = r.namespace.as_deref().map_or(NO_NAMESPACE, |ns| self.number(ns));
        Key { kind: r.kind, namespace, name: r.name.as_str().into() }
    }

    fn number(&mut self, ns: &str) -> u32 {
        if let Some(&n) = self.numbers.get(ns) {
            return n;
        }
        let n = self.names.len() as u32;
        self.names.push(ns.into());
        self.numbers.insert(ns.into(), n);
        n
    }

    /// Numbers here for the namespaces `other` numbered, by `other`'s
    /// number: what `Key::renumbered` takes to move `other`'s keys here
    /// (keys made on a parsing thread).
    pub fn adopt(&mut self, other: &Namespaces) -> Vec<u32> {
        other.names.iter().map(|ns| self.number(ns)).collect()
    }

    pub fn object_ref(&self, key: &Key) -> ObjectRef {
        let namespace = self.names.get(key.namespace as usize).map(|n| n.to_string());
        ObjectRef::new(key.kind, namespace, key.name.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_share_namespaces() {
        let mut ns = Namespaces::default();
        let a = ObjectRef::namespaced(Kind::Secret, "team-a", "k");
        let b = ObjectRef::namespaced(Kind::KongConsumer, "team-a", "k");
        let c = ObjectRef::new(Kind::KongClusterPlugin, None, "p");
        let (ka, kb, kc) = (ns.key(&a), ns.key(&b), ns.key(&c));
        assert_ne!(ka, kb, "kind is part of the identity");
        assert_eq!(ka, ns.key(&a.clone()));
        assert_eq!([ns.object_ref(&ka), ns.object_ref(&kb), ns.object_ref(&kc)], [a.clone(), b, c]);
        assert_eq!(ns.names.len(), 1);

        // Keys made with another thread's numbering, moved here.
        let mut theirs = Namespaces::default();
        let d = ObjectRef::namespaced(Kind::Secret, "team-b", "k");
        let (kd, ka2) = (theirs.key(&d), theirs.key(&a));
        let numbers = ns.adopt(&theirs);
        assert_eq!(ns.object_ref(&kd.renumbered(&numbers)), d);
        assert_eq!(ka2.renumbered(&numbers), ka);
        assert_eq!(kc.clone().renumbered(&numbers), kc, "no namespace stays none");
        assert_eq!(std::mem::size_of::<Key>(), 24);
    }
}
