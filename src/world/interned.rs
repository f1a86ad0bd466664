//! One shared copy of a text that many objects repeat word for word: at
//! 100k credentials, 200,000 objects spread over a few namespaces carry the
//! same namespace and the same one or two annotations or labels.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// A shared text, in one pointer: an `Arc<str>` would take two (16 bytes in
/// each of 200,000 objects), at the cost of one more hop to the text.
/// Equality compares pointers first (as `Arc` does for `Eq` contents).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Interned(Arc<Box<str>>);

impl std::ops::Deref for Interned {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// Hashes as its text, so the table is searched by `&str`.
impl Borrow<str> for Interned {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// Every text handed out and still held somewhere (plus, until the next
/// sweep, some no longer held).
#[derive(Default)]
struct Table {
    texts: HashSet<Interned, foldhash::fast::RandomState>,
    /// How many texts the last sweep kept: the next one runs when the table
    /// has doubled since, so sweeping costs O(1) per text and the table
    /// stays within twice the texts in use.
    kept: usize,
}

/// Sweeps wait for at least this many texts (a sweep of a few is churn).
const MIN_SWEEP: usize = 64;

// Global because objects are shrunk in the sources, before there is a World
// to own a table; the lock is held for one lookup and never across a call
// out.
static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(|| Mutex::new(Table::default()));

/// The shared copy of `text`.
pub fn intern(text: &str) -> Interned {
    // Nothing panics while holding the lock, so a poisoned table is intact.
    TABLE.lock().unwrap_or_else(PoisonError::into_inner).intern(text)
}

impl Table {
    fn intern(&mut self, text: &str) -> Interned {
        if let Some(shared) = self.texts.get(text) {
            return shared.clone();
        }
        if self.texts.len() >= (2 * self.kept).max(MIN_SWEEP) {
            // A text held only here cannot be cloned without the lock, so it
            // stays unused. (One dropped elsewhere meanwhile waits for the
            // next sweep.)
            self.texts.retain(|t| Arc::strong_count(&t.0) > 1);
            self.kept = self.texts.len();
        }
        let shared = Interned(Arc::new(text.into()));
        self.texts.insert(shared.clone());
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_share_one_copy_and_unused_ones_are_swept() {
        let mut table = Table::default();
        let a = table.intern("a");
        let b = table.intern(&String::from("a"));
        assert!(Arc::ptr_eq(&a.0, &b.0));
        drop((a, b));
        let held: Vec<_> = (0..MIN_SWEEP).map(|i| table.intern(&i.to_string())).collect();
        assert!(!table.texts.contains("a"), "swept once the table filled up");
        assert_eq!(table.kept, MIN_SWEEP - 1);
        assert!(Arc::ptr_eq(&held[7].0, &table.intern("7").0));
        assert_eq!(&*held[7], "7");
        let shared = intern("interned-test");
        assert!(Arc::ptr_eq(&shared.0, &intern("interned-test").0));
    }
}
