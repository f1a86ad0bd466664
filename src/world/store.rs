//! Objects of one kind, sorted by (namespace, name) and found by it, keyed
//! by the names the objects already hold: a `BTreeMap<(String, String), _>`
//! would keep a second copy of both strings (two allocations and 48 bytes
//! per object, 200,000 times at 100k credentials).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;

use super::HasMeta;

/// Something that names an object: `(namespace, name)`, namespace "" for
/// cluster-scoped kinds.
pub trait Key {
    fn key(&self) -> (&str, &str);
}

impl Key for (String, String) {
    fn key(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

impl Key for (&str, &str) {
    fn key(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl PartialEq for dyn Key + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for dyn Key + '_ {}
impl PartialOrd for dyn Key + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for dyn Key + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// A stored object, ordered by its own (namespace, name).
struct Entry<T>(Arc<T>);

impl<T: HasMeta> Key for Entry<T> {
    fn key(&self) -> (&str, &str) {
        self.0.meta().key()
    }
}

impl<'a, T: HasMeta + 'a> Borrow<dyn Key + 'a> for Entry<T> {
    fn borrow(&self) -> &(dyn Key + 'a) {
        self
    }
}

impl<T: HasMeta> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl<T: HasMeta> Eq for Entry<T> {}
impl<T: HasMeta> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T: HasMeta> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl<T> Clone for Entry<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// Objects of one kind by (namespace, name), iterated in that order.
pub struct Store<T>(BTreeSet<Entry<T>>);

impl<T> Default for Store<T> {
    fn default() -> Self {
        Self(BTreeSet::new())
    }
}

impl<T> Clone for Store<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: HasMeta + std::fmt::Debug> std::fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.values()).finish()
    }
}

impl<T: HasMeta> Store<T> {
    pub fn get<K: Key>(&self, key: &K) -> Option<&Arc<T>> {
        self.0.get(key as &dyn Key).map(|e| &e.0)
    }

    pub fn contains_key<K: Key>(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Stores `obj` under its own name; returns the object it replaces.
    pub fn insert(&mut self, obj: Arc<T>) -> Option<Arc<T>> {
        self.0.replace(Entry(obj)).map(|e| e.0)
    }

    /// Stores many objects, as inserts of each in order would, by sorting
    /// them with the stored objects and building the tree bottom up: for a
    /// large batch (a first load: 100,000s of objects) cheaper than one
    /// insert each, and the tree's nodes are packed full (inserts leave them
    /// ~2/3 full). It costs a pass over the whole store, so small batches
    /// are better inserted.
    pub fn fill(&mut self, objs: Vec<Arc<T>>) {
        // The sort is stable and of equal names the last stays, so a
        // batch's object replaces the stored one, and the batch's last of a
        // name wins.
        let stored = std::mem::take(&mut self.0);
        self.0 = stored.into_iter().chain(objs.into_iter().map(Entry)).collect();
    }

    pub fn remove<K: Key>(&mut self, key: &K) -> Option<Arc<T>> {
        self.0.take(key as &dyn Key).map(|e| e.0)
    }

    /// Keeps the objects `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&Arc<T>) -> bool) {
        self.0.retain(|e| keep(&e.0));
    }

    /// Every object, sorted by (namespace, name).
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Arc<T>> + ExactSizeIterator {
        self.0.iter().map(|e| &e.0)
    }

    /// Every (namespace, name), sorted.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|e| e.key())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{Kind, KongConsumerObj, Meta};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn consumer(ns: &str, name: &str, username: &str) -> Arc<KongConsumerObj> {
        let m = ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() };
        let meta = Meta::shrink(Kind::KongConsumer, &m).unwrap();
        Arc::new(KongConsumerObj::new(meta, Some(username), None, []))
    }

    #[test]
    fn objects_are_found_by_their_own_names_and_kept_sorted() {
        let mut store = Store::default();
        assert!(store.insert(consumer("b", "x", "1")).is_none());
        assert!(store.insert(consumer("a", "y", "2")).is_none());
        assert!(store.insert(consumer("a", "x", "3")).is_none());
        let old = store.insert(consumer("b", "x", "4")).expect("replaced");
        assert_eq!(old.username(), Some("1"));
        assert_eq!(store.keys().collect::<Vec<_>>(), [("a", "x"), ("a", "y"), ("b", "x")]);
        assert_eq!(store.get(&("b", "x")).unwrap().username(), Some("4"));
        assert!(store.contains_key(&("a".to_string(), "y".to_string())));
        assert!(store.get(&("a", "z")).is_none());
        assert_eq!(store.remove(&("a", "y")).unwrap().username(), Some("2"));
        store.retain(|c| c.meta.name() != "x" || c.meta.namespace() != Some("a"));
        assert_eq!(store.keys().collect::<Vec<_>>(), [("b", "x")]);
    }

    #[test]
    fn a_fill_stores_like_inserts_in_order() {
        let batch = || {
            let mut objs = Vec::new();
            for i in (0..500).rev() {
                objs.push(consumer(&format!("ns-{}", i % 7), &format!("c-{i}"), "first"));
            }
            // The same names again: the last of each stays.
            objs.push(consumer("ns-3", "c-10", "second"));
            objs.push(consumer("ns-0", "c-0", "second"));
            objs
        };
        let (mut filled, mut inserted) = (Store::default(), Store::default());
        filled.fill(batch());
        for obj in batch() {
            inserted.insert(obj);
        }
        assert_eq!(filled.keys().collect::<Vec<_>>(), inserted.keys().collect::<Vec<_>>());
        assert_eq!(filled.len(), 500);
        assert_eq!(filled.get(&("ns-3", "c-10")).unwrap().username(), Some("second"));
        assert_eq!(filled.get(&("ns-0", "c-0")).unwrap().username(), Some("second"));
        assert_eq!(filled.get(&("ns-1", "c-1")).unwrap().username(), Some("first"));

        // Into a store that holds objects: merged, the batch replacing what
        // it names.
        let mut small = Store::default();
        small.insert(consumer("ns-2", "c-2", "stored"));
        small.insert(consumer("aa", "only-stored", "stored"));
        small.fill(batch());
        assert_eq!(small.len(), 501);
        assert_eq!(small.get(&("ns-2", "c-2")).unwrap().username(), Some("first"));
        assert_eq!(small.get(&("aa", "only-stored")).unwrap().username(), Some("stored"));
        assert_eq!(small.get(&("ns-0", "c-0")).unwrap().username(), Some("second"));
    }
}
