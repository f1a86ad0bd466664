//! One shared block for a value that many objects hold word for word, found
//! by a key. `interned` does this for texts; this is for other values, such
//! as the status every KongConsumer carries in cluster mode.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Weak};

/// Every value handed out and still held somewhere (plus, until the next
/// sweep, entries of some no longer held).
pub struct Sharing<K, V> {
    values: HashMap<K, Weak<V>, foldhash::fast::RandomState>,
    /// How many entries the last sweep kept: the next one runs when the
    /// table has doubled since, so sweeping costs O(1) per value handed out
    /// and the table stays within twice the values in use.
    kept: usize,
}

/// Sweeps wait for at least this many entries (a sweep of a few is churn).
const MIN_SWEEP: usize = 64;

impl<K, V> Default for Sharing<K, V> {
    fn default() -> Self {
        Self { values: HashMap::default(), kept: 0 }
    }
}

impl<K: Hash + Eq, V> Sharing<K, V> {
    /// The shared value for `key`, made by `make` when none is held.
    pub fn share(&mut self, key: K, make: impl FnOnce() -> V) -> Arc<V> {
        if let Some(held) = self.values.get(&key).and_then(Weak::upgrade) {
            return held;
        }
        if self.values.len() >= (2 * self.kept).max(MIN_SWEEP) {
            // A dead entry keeps its block (the weak count) until it goes.
            self.values.retain(|_, v| v.strong_count() > 0);
            self.kept = self.values.len();
        }
        let value = Arc::new(make());
        self.values.insert(key, Arc::downgrade(&value));
        value
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_share_one_block_while_it_is_held() {
        let mut table = Sharing::default();
        let a = table.share(1, || "one".to_string());
        let b = table.share(1, || unreachable!("held: not made again"));
        assert!(Arc::ptr_eq(&a, &b));
        let c = table.share(2, || "two".to_string());
        assert!(!Arc::ptr_eq(&a, &c) && *c == "two");
        drop((a, b));
        let again = table.share(1, || "one, again".to_string());
        assert_eq!(*again, "one, again", "a value no longer held is made anew");
    }

    #[test]
    fn entries_of_dropped_values_are_swept() {
        let mut table = Sharing::default();
        for i in 0..10_000 {
            drop(table.share(i, || i));
        }
        assert!(table.len() <= 2 * MIN_SWEEP, "{} entries", table.len());
    }
}
