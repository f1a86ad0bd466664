//! The manifests folder's record of every object a file defines, in 24
//! bytes per object: there is one per object (200,000 at 100k
//! credentials), and the table's entries are most of the folder's memory.

use std::hash::BuildHasher;

use foldhash::HashMap;

use crate::world::{Kind, ObjectRef};

/// Files by number, so per-object records stay small.
pub type FileId = u32;

/// An object's identity in the folder's records: 80 bits of two keyed
/// hashes of its kind, namespace and name (a 64-bit hash and a 16-bit
/// check from an independent one). At 200,000 objects, two share a hash
/// with a chance of about 1e-9 (`Records` keeps both, told apart by the
/// check), and two identities are equal with a chance of about 2e-14. The
/// World holds the names; they are looked up there on the rare paths that
/// need one (an object to delete, an object two files define).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Id {
    hash: u64,
    check: u16,
}

/// Makes `Id`s, keyed per process.
#[derive(Clone, Default)]
pub struct Identify(foldhash::quality::RandomState, foldhash::quality::RandomState);

impl Identify {
    /// `namespace` is "" for cluster-scoped kinds, as the World keys them.
    pub fn of(&self, kind: Kind, namespace: &str, name: &str) -> Id {
        let parts = (kind, namespace, name);
        // The check is the top bits of a full hash (truncation keeps them uniform).
        Id { hash: self.0.hash_one(parts), check: (self.1.hash_one(parts) >> 48) as u16 }
    }

    pub fn of_ref(&self, r: &ObjectRef) -> Id {
        self.of(r.kind, r.namespace.as_deref().unwrap_or(""), &r.name)
    }
}

/// One file's definition of an object: the keyed hash of the text of the
/// document that defines it (its chunk, see `manifest::split`). The same
/// text defines the same object, so an unchanged hash means unchanged
/// content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Def {
    pub chunk: u64,
    pub file: FileId,
    /// Which of the World's stores would hold it (in what was padding).
    pub kind: Kind,
    /// It could not be applied: re-applied on the next read even if unchanged.
    pub failed: bool,
}

/// A `Def` with its identity's check in the two bytes a `Def` leaves
/// free: 16 bytes, so a table entry (its hash, then this) is 24.
#[derive(Clone, Copy)]
struct Stored {
    chunk: u64,
    file: FileId,
    kind: Kind,
    failed: bool,
    check: u16,
}

impl Stored {
    fn new(check: u16, def: Def) -> Self {
        Stored { chunk: def.chunk, file: def.file, kind: def.kind, failed: def.failed, check }
    }

    fn def(self) -> Def {
        Def { chunk: self.chunk, file: self.file, kind: self.kind, failed: self.failed }
    }
}

/// A `Def` per `Id`. Records are kept by their 64-bit hash; a record whose
/// hash another identity already holds (about never) is kept apart, by
/// its whole identity.
#[derive(Default)]
pub struct Records {
    by_hash: HashMap<u64, Stored>,
    apart: HashMap<Id, Def>,
}

impl Records {
    pub fn get(&self, id: &Id) -> Option<Def> {
        match self.by_hash.get(&id.hash) {
            Some(s) if s.check == id.check => Some(s.def()),
            Some(_) => self.apart.get(id).copied(),
            None => None,
        }
    }

    /// Sets the record of `id`; returns the one it replaces.
    pub fn insert(&mut self, id: Id, def: Def) -> Option<Def> {
        match self.by_hash.get_mut(&id.hash) {
            Some(s) if s.check == id.check => Some(std::mem::replace(s, Stored::new(id.check, def)).def()),
            Some(_) => self.apart.insert(id, def),
            None => {
                self.by_hash.insert(id.hash, Stored::new(id.check, def));
                None
            }
        }
    }

    pub fn remove(&mut self, id: &Id) -> Option<Def> {
        match self.by_hash.get(&id.hash) {
            Some(s) if s.check == id.check => {
                let removed = self.by_hash.remove(&id.hash).map(Stored::def);
                // A record kept apart under this hash takes its place.
                if let Some(other) = self.apart.keys().find(|other| other.hash == id.hash).copied()
                    && let Some(def) = self.apart.remove(&other)
                {
                    self.by_hash.insert(other.hash, Stored::new(other.check, def));
                }
                removed
            }
            Some(_) => self.apart.remove(id),
            None => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Id, Def)> + '_ {
        let by_hash = self.by_hash.iter().map(|(&hash, s)| (Id { hash, check: s.check }, s.def()));
        by_hash.chain(self.apart.iter().map(|(id, def)| (*id, *def)))
    }

    pub fn reserve(&mut self, additional: usize) {
        self.by_hash.reserve(additional);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(chunk: u64) -> Def {
        Def { chunk, file: 3, kind: Kind::Secret, failed: chunk.is_multiple_of(2) }
    }

    #[test]
    fn identities_that_share_a_hash_are_kept_apart_by_their_check() {
        let mut records = Records::default();
        let (a, b) = (Id { hash: 7, check: 1 }, Id { hash: 7, check: 2 });
        let c = Id { hash: 8, check: 1 };
        assert_eq!(records.insert(a, def(10)), None);
        assert_eq!(records.insert(b, def(11)), None);
        assert_eq!(records.insert(c, def(12)), None);
        assert_eq!((records.get(&a), records.get(&b), records.get(&c)), (Some(def(10)), Some(def(11)), Some(def(12))));
        assert_eq!(records.insert(b, def(13)), Some(def(11)));
        let mut all: Vec<_> = records.iter().collect();
        all.sort_by_key(|(_, d)| d.chunk);
        assert_eq!(all, [(a, def(10)), (c, def(12)), (b, def(13))]);
        assert_eq!(records.remove(&a), Some(def(10)));
        assert_eq!((records.get(&a), records.get(&b)), (None, Some(def(13))));
        assert_eq!(records.remove(&b), Some(def(13)));
        assert_eq!(records.remove(&b), None);
        assert_eq!(records.iter().count(), 1);
    }

    #[test]
    fn a_record_takes_24_bytes_in_its_table() {
        assert_eq!(std::mem::size_of::<(u64, Stored)>(), 24);
    }

    #[test]
    fn the_same_object_has_the_same_identity_and_others_differ() {
        let identify = Identify::default();
        let id = identify.of(Kind::Secret, "ns", "a");
        assert_eq!(id, identify.of_ref(&ObjectRef::new(Kind::Secret, Some("ns".into()), "a")));
        assert_ne!(id, identify.of(Kind::KongConsumer, "ns", "a"));
        assert_ne!(id, identify.of(Kind::Secret, "ns", "b"));
        assert_ne!(id, identify.of(Kind::Secret, "n", "sa"));
    }
}
