//! Key digest -> the listed Secrets carrying that key, oldest first. The
//! digest is not stored a second time: every Secret in a list carries it,
//! so a lookup compares the first one's. An entry is 16 bytes where a map
//! keyed by the digest took 48 (~45 bytes less per credential at 100k, with
//! the table's spare room).

use hashbrown::HashTable;

use crate::snapshot::KeyDigest;
use crate::world::CredentialKey;

use super::consumer_state::{ListedId, ListedSecret, Slab};
use super::ids::Ids;

#[derive(Default)]
pub struct KeyContests(HashTable<Ids>);

/// The key a listed Secret carries (as last settled).
fn key_of(listed: &Slab<ListedSecret>, id: ListedId) -> Option<KeyDigest> {
    match listed.get(id)?.secret.as_ref()?.key {
        CredentialKey::Digest(d) => Some(d),
        _ => None,
    }
}

/// The key a contest is about: the one its first Secret carries.
fn key_of_list(listed: &Slab<ListedSecret>, list: &Ids) -> Option<KeyDigest> {
    list.first().and_then(|id| key_of(listed, id))
}

/// A stored contest's hash, for the table to grow.
fn rehash(listed: &Slab<ListedSecret>) -> impl Fn(&Ids) -> u64 + '_ {
    move |list| key_of_list(listed, list).map_or(0, |d| d.table_hash())
}

impl KeyContests {
    pub fn with_capacity(n: usize) -> Self {
        Self(HashTable::with_capacity(n))
    }

    /// The Secrets competing for `digest`, oldest first.
    pub fn get(&self, digest: &KeyDigest, listed: &Slab<ListedSecret>) -> Option<&Ids> {
        self.0.find(digest.table_hash(), |list| key_of_list(listed, list).as_ref() == Some(digest))
    }

    /// Sets the list for `digest` (forgets it when empty). Every Secret in
    /// `ids` must carry `digest` as settled in `listed`.
    pub fn set(&mut self, digest: &KeyDigest, ids: Ids, listed: &Slab<ListedSecret>) {
        let same = |list: &Ids| key_of_list(listed, list).as_ref() == Some(digest);
        match self.0.entry(digest.table_hash(), same, rehash(listed)) {
            hashbrown::hash_table::Entry::Occupied(e) if ids.is_empty() => {
                e.remove();
            }
            hashbrown::hash_table::Entry::Occupied(mut e) => *e.get_mut() = ids,
            hashbrown::hash_table::Entry::Vacant(e) if !ids.is_empty() => {
                e.insert(ids);
            }
            hashbrown::hash_table::Entry::Vacant(_) => {}
        }
    }

    /// Appends `id`, which carries `digest` as settled in `listed`, to that
    /// key's list, in whatever order the caller goes (a full translation,
    /// which sorts the few lists with more than one Secret afterwards).
    /// Returns whether the key already had a Secret.
    pub fn append(&mut self, digest: &KeyDigest, id: ListedId, listed: &Slab<ListedSecret>) -> bool {
        let same = |list: &Ids| key_of_list(listed, list).as_ref() == Some(digest);
        match self.0.entry(digest.table_hash(), same, rehash(listed)) {
            hashbrown::hash_table::Entry::Occupied(mut e) => {
                e.get_mut().push(id);
                true
            }
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(Ids::One(id));
                false
            }
        }
    }
}
