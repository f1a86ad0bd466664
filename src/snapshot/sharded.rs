//! A map split into fixed shards behind their own `Arc`s: cloning it (to
//! publish a new Snapshot) copies one pointer per shard, and changing one
//! entry copies one shard — about 1/256 of the map — instead of the whole
//! map. This is what keeps a credential change at 100k credentials in
//! microseconds while readers keep the previous Snapshot untouched.

use std::sync::Arc;

use hashbrown::HashTable;

const SHARDS: usize = 256;

/// A hash table split into fixed shards, for values that carry their own
/// key (a consumer holds its id and username, a credential its Secret and
/// so the key's digest): the key is not stored a second time. Callers pass
/// the key's hash and an equality test on values.
#[derive(Debug)]
pub struct ShardedTable<T> {
    shards: Box<[Arc<HashTable<T>>]>,
    len: usize,
}

impl<T> Clone for ShardedTable<T> {
    fn clone(&self) -> Self {
        Self { shards: self.shards.clone(), len: self.len }
    }
}

impl<T> Default for ShardedTable<T> {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| Arc::new(HashTable::new())).collect(), len: 0 }
    }
}

/// Bits 32..40 of the hash pick the shard: the table itself uses the low
/// bits (bucket) and the top seven (tag), which must still vary in a shard.
fn table_shard(hash: u64) -> usize {
    (hash >> 32) as usize % SHARDS
}

impl<T: Clone> ShardedTable<T> {
    pub fn find(&self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&T> {
        self.shards[table_shard(hash)].find(hash, eq)
    }

    /// Inserts, replacing the value `eq` matches; `rehash` gives the hash
    /// of a stored value (for growing).
    pub fn insert(&mut self, hash: u64, value: T, eq: impl FnMut(&T) -> bool, rehash: impl Fn(&T) -> u64) {
        let shard = Arc::make_mut(&mut self.shards[table_shard(hash)]);
        match shard.entry(hash, eq, rehash) {
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = value,
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(value);
                self.len += 1;
            }
        }
    }

    /// Removes the value `eq` matches, if any.
    pub fn remove(&mut self, hash: u64, mut eq: impl FnMut(&T) -> bool) -> Option<T> {
        let slot = &mut self.shards[table_shard(hash)];
        // Only copy the shard when the value is there.
        slot.find(hash, &mut eq)?;
        let (old, _) = Arc::make_mut(slot).find_entry(hash, eq).ok()?.remove();
        self.len -= 1;
        Some(old)
    }

    /// Room for `n` more values spread evenly over the shards (see `Sharded::reserve`).
    pub fn reserve(&mut self, n: usize, rehash: impl Fn(&T) -> u64) {
        for shard in self.shards.iter_mut() {
            Arc::make_mut(shard).reserve(n / SHARDS, &rehash);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.shards.iter().flat_map(|s| s.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;

    #[test]
    fn a_table_finds_values_by_their_own_key_and_copies_one_shard_per_change() {
        let hasher = RandomState::new();
        let hash = |s: &str| hasher.hash_one(s);
        let mut table: ShardedTable<Arc<str>> = ShardedTable::default();
        let names: Vec<String> = (0..1000).map(|i| format!("name-{i}")).collect();
        for n in &names {
            table.insert(hash(n), n.as_str().into(), |v| **v == **n, |v| hash(v));
        }
        let published = table.clone();
        table.insert(hash("name-7"), "name-7".into(), |v| &**v == "name-7", |v| hash(v));
        assert_eq!(table.len(), 1000, "replaced, not added");
        assert_eq!(table.remove(hash("name-8"), |v| &**v == "name-8").as_deref(), Some("name-8"));
        assert_eq!(table.remove(hash("name-8"), |v| &**v == "name-8"), None);
        assert!(table.find(hash("name-8"), |v| &**v == "name-8").is_none());
        assert!(published.find(hash("name-8"), |v| &**v == "name-8").is_some());
        assert_eq!((table.len(), published.len(), table.values().count()), (999, 1000, 999));
        let shared = table.shards.iter().zip(published.shards.iter()).filter(|(a, b)| Arc::ptr_eq(a, b)).count();
        assert!(shared >= SHARDS - 2, "only the shards of name-7 and name-8 were copied");
    }
}
