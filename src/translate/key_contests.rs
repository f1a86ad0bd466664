//! Key digest -> the listed Secrets carrying that key, oldest first. The
//! digest is not stored a second time: every Secret in a list carries it,
//! so a lookup compares the first one's. An entry is 8 bytes (an `Ids`)
//! where a map keyed by the digest took 48 (~50 bytes less per credential
//! at 100k, with the table's spare room).

use hashbrown::HashTable;
use hashbrown::hash_table::{Entry, OccupiedEntry};

use crate::snapshot::KeyDigest;
use crate::world::CredentialKey;

use super::consumer_state::{ListedId, Slab};
use super::ids::{Ids, Lists};
use super::listed_secret::ListedSecret;

#[derive(Default)]
pub struct KeyContests {
    table: HashTable<Ids>,
    /// The lists of the keys two Secrets or more carry.
    lists: Lists,
}

/// The key a listed Secret carries (as last settled).
fn key_of(listed: &Slab<ListedSecret>, id: ListedId) -> Option<KeyDigest> {
    match listed.get(id)?.secret()?.key {
        CredentialKey::Digest(d) => Some(d),
        _ => None,
    }
}

/// The key a contest is about: the one its first Secret carries.
fn key_of_list(listed: &Slab<ListedSecret>, lists: &Lists, list: &Ids) -> Option<KeyDigest> {
    lists.first(list).and_then(|id| key_of(listed, id))
}

impl KeyContests {
    pub fn with_capacity(n: usize) -> Self {
        Self { table: HashTable::with_capacity(n), lists: Lists::default() }
    }

    /// The contest for `digest`, to change: every Secret in it must carry
    /// `digest` as settled in `listed`.
    fn entry<'a>(&'a mut self, digest: &KeyDigest, listed: &Slab<ListedSecret>) -> (Entry<'a, Ids>, &'a mut Lists) {
        let Self { table, lists } = self;
        let same = |list: &Ids| key_of_list(listed, lists, list).as_ref() == Some(digest);
        let rehash = |list: &Ids| key_of_list(listed, lists, list).map_or(0, |d| d.table_hash());
        (table.entry(digest.table_hash(), same, rehash), lists)
    }

    /// `entry`, when there is a contest for `digest`.
    fn occupied<'a>(
        &'a mut self,
        digest: &KeyDigest,
        listed: &Slab<ListedSecret>,
    ) -> Option<(OccupiedEntry<'a, Ids>, &'a mut Lists)> {
        let Self { table, lists } = self;
        let same = |list: &Ids| key_of_list(listed, lists, list).as_ref() == Some(digest);
        let entry = table.find_entry(digest.table_hash(), same).ok()?;
        Some((entry, lists))
    }

    /// The Secrets competing for `digest`, oldest first.
    pub fn get(&self, digest: &KeyDigest, listed: &Slab<ListedSecret>) -> &[ListedId] {
        let same = |list: &Ids| key_of_list(listed, &self.lists, list).as_ref() == Some(digest);
        self.table.find(digest.table_hash(), same).map_or(&[], |list| self.lists.get(list))
    }

    /// Enters `id`, which carries `digest` as settled in `listed`, in that
    /// key's contest at `at`.
    pub fn insert(&mut self, digest: &KeyDigest, at: usize, id: ListedId, listed: &Slab<ListedSecret>) {
        match self.entry(digest, listed) {
            (Entry::Occupied(mut e), lists) => lists.insert(e.get_mut(), at, id),
            (Entry::Vacant(e), _) => {
                e.insert(Ids::One(id));
            }
        }
    }

    /// Takes `id` out of the contest for `digest`, which it still carries
    /// as settled in `listed` (forgets the contest when it is empty).
    pub fn remove(&mut self, digest: &KeyDigest, id: ListedId, listed: &Slab<ListedSecret>) {
        if let Some((mut e, lists)) = self.occupied(digest, listed) {
            lists.remove(e.get_mut(), id);
            if e.get().is_empty() {
                e.remove();
            }
        }
    }

    /// Appends `id`, which carries `digest` as settled in `listed`, to that
    /// key's list, in whatever order the caller goes (a full translation,
    /// which sorts the few lists with more than one Secret afterwards).
    /// Returns whether the key already had a Secret.
    pub fn append(&mut self, digest: &KeyDigest, id: ListedId, listed: &Slab<ListedSecret>) -> bool {
        match self.entry(digest, listed) {
            (Entry::Occupied(mut e), lists) => {
                lists.push(e.get_mut(), id);
                true
            }
            (Entry::Vacant(e), _) => {
                e.insert(Ids::One(id));
                false
            }
        }
    }

    /// Sorts the contest for `digest` by `key` (stable).
    pub fn sort_by_key<K: Ord>(&mut self, digest: &KeyDigest, listed: &Slab<ListedSecret>, key: impl FnMut(&u32) -> K) {
        if let Some((e, lists)) = self.occupied(digest, listed) {
            lists.sort_by_key(e.get(), key);
        }
    }

    /// Whether every list kept belongs to a contest (none was lost), and
    /// how many there are.
    #[cfg(test)]
    pub fn lists_held(&self) -> Option<usize> {
        let contests = self.table.iter().filter(|ids| matches!(ids, Ids::Many(_))).count();
        (contests == self.lists.len()).then_some(contests)
    }
}
