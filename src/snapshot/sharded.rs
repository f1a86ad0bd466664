//! A map split into fixed shards behind their own `Arc`s: cloning it (to
//! publish a new Snapshot) copies one pointer per shard, and changing one
//! entry copies one shard — about 1/256 of the map — instead of the whole
//! map. This is what keeps a credential change at 100k credentials in
//! microseconds while readers keep the previous Snapshot untouched.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

const SHARDS: usize = 256;

/// Picks a key's shard. Implementations must spread keys evenly and agree
/// with `Borrow` (a borrowed form must pick the same shard as the key).
pub trait ShardOf<Q: ?Sized> {
    fn shard_of(key: &Q) -> usize;
}

#[derive(Debug)]
pub struct Sharded<K, V, S> {
    shards: Box<[Arc<HashMap<K, V, S>>]>,
    len: usize,
}

impl<K, V, S> Clone for Sharded<K, V, S> {
    fn clone(&self) -> Self {
        Self { shards: self.shards.clone(), len: self.len }
    }
}

impl<K, V, S: Default> Default for Sharded<K, V, S> {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| Arc::new(HashMap::default())).collect(), len: 0 }
    }
}

impl<K, V, S> Sharded<K, V, S>
where
    K: Eq + Hash + Clone,
    V: Clone,
    S: BuildHasher + Clone,
{
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q> + ShardOf<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[K::shard_of(key) % SHARDS].get(key)
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V>
    where
        K: ShardOf<K>,
    {
        let shard = Arc::make_mut(&mut self.shards[K::shard_of(&key) % SHARDS]);
        let old = shard.insert(key, value);
        self.len += usize::from(old.is_none());
        old
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q> + ShardOf<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = &mut self.shards[K::shard_of(key) % SHARDS];
        // Only copy the shard when the key is there.
        slot.get(key)?;
        let old = Arc::make_mut(slot).remove(key);
        self.len -= usize::from(old.is_some());
        old
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(|s| s.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;

    #[derive(Clone, PartialEq, Eq, Hash, Debug)]
    struct K(u32);
    impl ShardOf<K> for K {
        fn shard_of(k: &K) -> usize {
            k.0 as usize
        }
    }

    #[test]
    fn a_change_copies_one_shard_and_leaves_the_published_copy_alone() {
        let mut map: Sharded<K, u32, RandomState> = Sharded::default();
        for i in 0..1000 {
            map.insert(K(i), i);
        }
        let published = map.clone();
        map.insert(K(7), 70);
        assert_eq!(map.remove(&K(8)), Some(8));
        assert_eq!(map.remove(&K(8)), None);
        assert_eq!((map.get(&K(7)), published.get(&K(7))), (Some(&70), Some(&7)));
        assert_eq!((map.get(&K(8)), published.get(&K(8))), (None, Some(&8)));
        assert_eq!((map.len(), published.len()), (999, 1000));
        let shared = map.shards.iter().zip(published.shards.iter()).filter(|(a, b)| Arc::ptr_eq(a, b)).count();
        assert_eq!(shared, SHARDS - 2, "only the shards of keys 7 and 8 were copied");
        assert_eq!(map.values().count(), 999);
    }
}
