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

/// The namespaces seen, numbered in order of appearance (never removed: a
/// folder names few).
#[derive(Default)]
pub struct Namespaces {
    names: Vec<Box<str>>,
    numbers: foldhash::HashMap<Box<str>, u32>,
}

impl Namespaces {
    pub fn key(&mut self, r: &ObjectRef) -> Key {
        let namespace = match &r.namespace {
            None => NO_NAMESPACE,
            Some(ns) => match self.numbers.get(ns.as_str()) {
                Some(&n) => n,
                None => {
                    let n = self.names.len() as u32;
                    self.names.push(ns.as_str().into());
                    self.numbers.insert(ns.as_str().into(), n);
                    n
                }
            },
        };
        Key { kind: r.kind, namespace, name: r.name.as_str().into() }
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
        assert_eq!([ns.object_ref(&ka), ns.object_ref(&kb), ns.object_ref(&kc)], [a, b, c]);
        assert_eq!(ns.names.len(), 1);
        assert_eq!(std::mem::size_of::<Key>(), 24);
    }
}
