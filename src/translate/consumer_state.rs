//! The state `ConsumerTranslation` keeps between publishes, laid out to be
//! small: consumers, and listed Secrets that exist, are numbered slots
//! holding the World's own object (an `Arc`, so no name is copied), tables
//! find slots by (namespace, name), by username and by custom_id by hashing
//! the text the objects already hold, and problems are stored only where
//! there are some.

use std::cmp::Ordering;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder as RandomState, HashTable};
use jiff::Timestamp;

use crate::snapshot::Consumer;
use crate::world::{Kind, KongConsumerObj, ObjectRef};

use super::Problem;
use super::ids::{Ids, Lists};
use super::key_contests::KeyContests;
use super::listed_secret::ListedSecret;

/// A consumer's number while it exists (reused after it is deleted).
pub type Slot = u32;
/// A listed Secret's number while some accepted consumer lists it.
pub type ListedId = u32;

/// One KongConsumer as last translated.
pub struct ConsumerState {
    pub obj: Arc<KongConsumerObj>,
    /// Whether the object alone makes a consumer (`consumers::alone`);
    /// only such consumers take part in the username and custom_id
    /// contests. A flag and not the `Consumer`: 16 bytes less per consumer
    /// (1.6 MB at 100k), and the consumer is the object itself.
    pub alone: bool,
    /// Won its username and custom_id contests (then `alone` is in the index).
    pub accepted: bool,
    /// Boxed: almost every consumer has none.
    pub troubles: Option<Box<Troubles>>,
}

/// The problems of one consumer, by where they come from.
#[derive(Default)]
pub struct Troubles {
    pub alone: Vec<Problem>,
    pub conflict: Option<Problem>,
    /// At `credentials[i]` (accepted consumers only).
    pub listing: Vec<Problem>,
}

impl Troubles {
    fn is_empty(&self) -> bool {
        self.alone.is_empty() && self.conflict.is_none() && self.listing.is_empty()
    }
}

impl ConsumerState {
    /// The consumer this object makes, if it makes one.
    pub fn consumer(&self) -> Option<Consumer> {
        // The object never changes, so this gives what `alone` found.
        self.alone.then(|| Consumer::new(self.obj.clone())).flatten()
    }

    pub fn object(&self) -> ObjectRef {
        object_ref(Kind::KongConsumer, &self.obj.meta)
    }

    pub fn conflict(&self) -> Option<&Problem> {
        self.troubles.as_ref().and_then(|t| t.conflict.as_ref())
    }

    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.troubles.iter().flat_map(|t| t.alone.iter().chain(&t.conflict).chain(&t.listing))
    }

    pub fn has_problems(&self) -> bool {
        self.problems().next().is_some()
    }

    /// Changes one kind of problem, boxing only when there is something.
    pub fn set_troubles(&mut self, change: impl FnOnce(&mut Troubles)) {
        match &mut self.troubles {
            Some(t) => {
                change(t);
                if t.is_empty() {
                    self.troubles = None;
                }
            }
            None => {
                let mut t = Troubles::default();
                change(&mut t);
                if !t.is_empty() {
                    self.troubles = Some(Box::new(t));
                }
            }
        }
    }
}

/// "The oldest wins": creation time, then namespace/name.
pub fn age(meta: &crate::world::Meta) -> (Timestamp, &str, &str) {
    meta.age_key()
}

pub fn object_ref(kind: Kind, meta: &crate::world::Meta) -> ObjectRef {
    meta.object_ref(kind)
}

/// Numbered values with reusable numbers.
pub struct Slab<T> {
    items: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self { items: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    pub fn with_capacity(n: usize) -> Self {
        Self { items: Vec::with_capacity(n), free: Vec::new() }
    }

    pub fn add(&mut self, value: T) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.items[id as usize] = Some(value);
                id
            }
            None => {
                self.items.push(Some(value));
                (self.items.len() - 1) as u32
            }
        }
    }

    pub fn take(&mut self, id: u32) -> Option<T> {
        let old = self.items.get_mut(id as usize)?.take();
        if old.is_some() {
            self.free.push(id);
        }
        old
    }

    pub fn get(&self, id: u32) -> Option<&T> {
        self.items.get(id as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.items.get_mut(id as usize)?.as_mut()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.items.iter().enumerate().filter_map(|(i, v)| Some((i as u32, v.as_ref()?)))
    }
}

/// Everything the consumer translation keeps.
pub struct State {
    pub hasher: RandomState,
    pub consumers: Slab<ConsumerState>,
    /// Consumer slots by (namespace, name).
    pub by_name: HashTable<Slot>,
    /// Consumers usable on their own, by username and by custom_id, oldest
    /// first (the text is the first consumer's).
    pub usernames: HashTable<Ids>,
    pub custom_ids: HashTable<Ids>,
    /// The lists of two or more of `usernames`, `custom_ids` and the
    /// claimants of `listed`.
    lists: Lists,
    pub listed: Slab<ListedSecret>,
    pub listed_by_name: HashTable<ListedId>,
    /// Key digest -> listed Secrets in its contest, oldest Secret first.
    pub digests: KeyContests,
}

/// Which of the two unique consumer fields a contest is about.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Username,
    CustomId,
}

impl Field {
    pub const BOTH: [Field; 2] = [Field::Username, Field::CustomId];

    pub fn name(self) -> &'static str {
        match self {
            Field::Username => "username",
            Field::CustomId => "custom_id",
        }
    }

    pub fn of(self, obj: &KongConsumerObj) -> Option<&str> {
        match self {
            Field::Username => obj.username(),
            Field::CustomId => obj.custom_id(),
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl State {
    /// Sized for `n` consumers with a credential each (a full translation):
    /// no table grows, nor re-hashes what it holds, on the way.
    pub fn with_capacity(n: usize) -> Self {
        let hasher = RandomState::default();
        Self {
            consumers: Slab::with_capacity(n),
            by_name: HashTable::with_capacity(n),
            usernames: HashTable::with_capacity(n),
            custom_ids: HashTable::new(),
            lists: Lists::default(),
            listed: Slab::with_capacity(n),
            listed_by_name: HashTable::with_capacity(n),
            digests: KeyContests::with_capacity(n),
            hasher,
        }
    }

    pub fn consumer(&self, slot: Slot) -> Option<&ConsumerState> {
        self.consumers.get(slot)
    }

    fn name_hash(&self, ns: &str, name: &str) -> u64 {
        self.hasher.hash_one((ns, name))
    }

    pub fn find_consumer(&self, ns: &str, name: &str) -> Option<Slot> {
        let consumers = &self.consumers;
        self.by_name
            .find(self.name_hash(ns, name), |&s| consumers.get(s).is_some_and(|c| key(&c.obj.meta) == (ns, name)))
            .copied()
    }

    /// Numbers a new consumer.
    pub fn add_consumer(&mut self, state: ConsumerState) -> Slot {
        let hash = {
            let (ns, name) = key(&state.obj.meta);
            self.name_hash(ns, name)
        };
        let slot = self.consumers.add(state);
        let (consumers, hasher) = (&self.consumers, &self.hasher);
        self.by_name.insert_unique(hash, slot, |&s| rehash_consumer(hasher, consumers, s));
        slot
    }

    /// Forgets a consumer (it must be out of every contest and claim).
    pub fn remove_consumer(&mut self, slot: Slot) -> Option<ConsumerState> {
        let state = self.consumers.get(slot)?;
        let (ns, name) = key(&state.obj.meta);
        let hash = self.name_hash(ns, name);
        if let Ok(e) = self.by_name.find_entry(hash, |&s| s == slot) {
            e.remove();
        }
        self.consumers.take(slot)
    }

    fn contest_table(&self, field: Field) -> &HashTable<Ids> {
        match field {
            Field::Username => &self.usernames,
            Field::CustomId => &self.custom_ids,
        }
    }

    /// The consumers usable alone whose `field` is `value`, oldest first.
    pub fn contest(&self, field: Field, value: &str) -> &[Slot] {
        let (consumers, lists) = (&self.consumers, &self.lists);
        let same = |list: &Ids| first_value(consumers, lists, field, list) == Some(value);
        self.contest_table(field).find(self.hasher.hash_one(value), same).map_or(&[], |list| lists.get(list))
    }

    /// Enters a consumer in the contest for its `field` (in age order);
    /// returns the younger rivals, whose verdicts may change.
    pub fn enter(&mut self, field: Field, slot: Slot) -> Vec<Slot> {
        let Some(value) = self.consumers.get(slot).and_then(|c| field.of(&c.obj)) else { return Vec::new() };
        let hash = self.hasher.hash_one(value);
        let (consumers, hasher, lists) = (&self.consumers, &self.hasher, &mut self.lists);
        let table = match field {
            Field::Username => &mut self.usernames,
            Field::CustomId => &mut self.custom_ids,
        };
        let same = |list: &Ids| first_value(consumers, lists, field, list) == Some(value);
        let rehash = |list: &Ids| hasher.hash_one(first_value(consumers, lists, field, list).unwrap_or_default());
        let list = table.entry(hash, same, rehash).or_insert_with(Ids::default).into_mut();
        let at = lists.get(list).partition_point(|&s| older(consumers, s, slot));
        if lists.get(list).get(at) == Some(&slot) {
            return Vec::new();
        }
        lists.insert(list, at, slot);
        lists.get(list)[at + 1..].to_vec()
    }

    /// Takes a consumer out of the contest for its `field`; returns the
    /// younger rivals.
    pub fn leave(&mut self, field: Field, slot: Slot) -> Vec<Slot> {
        let Some(value) = self.consumers.get(slot).and_then(|c| field.of(&c.obj)) else { return Vec::new() };
        let hash = self.hasher.hash_one(value);
        let (consumers, lists) = (&self.consumers, &mut self.lists);
        let table = match field {
            Field::Username => &mut self.usernames,
            Field::CustomId => &mut self.custom_ids,
        };
        let same = |list: &Ids| first_value(consumers, lists, field, list) == Some(value);
        let Ok(mut entry) = table.find_entry(hash, same) else { return Vec::new() };
        let list = entry.get_mut();
        let Some(at) = lists.remove(list, slot) else { return Vec::new() };
        let younger = lists.get(list)[at..].to_vec();
        if list.is_empty() {
            entry.remove();
        }
        younger
    }

    pub fn find_listed(&self, ns: &str, name: &str) -> Option<ListedId> {
        let listed = &self.listed;
        self.listed_by_name
            .find(self.name_hash(ns, name), |&id| listed.get(id).is_some_and(|l| (l.ns(), l.name()) == (ns, name)))
            .copied()
    }

    /// The listed Secret `ns/name`, numbered now if it was not listed.
    pub fn listed_or_new(&mut self, ns: &str, name: &str) -> ListedId {
        if let Some(id) = self.find_listed(ns, name) {
            return id;
        }
        let hash = self.name_hash(ns, name);
        let id = self.listed.add(ListedSecret::new(ns, name));
        let (listed, hasher) = (&self.listed, &self.hasher);
        self.listed_by_name.insert_unique(hash, id, |&i| {
            listed.get(i).map(|l| hasher.hash_one((l.ns(), l.name()))).unwrap_or_default()
        });
        id
    }

    /// The accepted consumers listing Secret `id`, oldest first.
    pub fn claimants(&self, id: ListedId) -> &[Slot] {
        self.listed.get(id).map_or(&[], |l| self.lists.get(&l.claimants))
    }

    /// The consumer listed Secret `id` belongs to: the oldest listing it,
    /// when the Secret exists.
    pub fn owner(&self, id: ListedId) -> Option<Slot> {
        let l = self.listed.get(id)?;
        l.secret().and(self.lists.first(&l.claimants))
    }

    /// Notes that accepted consumer `slot` lists Secret `id` (in age order).
    pub fn add_claimant(&mut self, id: ListedId, slot: Slot) {
        let Some(l) = self.listed.get_mut(id) else { return };
        let at = self.lists.get(&l.claimants).partition_point(|&s| older(&self.consumers, s, slot));
        if self.lists.get(&l.claimants).get(at) != Some(&slot) {
            self.lists.insert(&mut l.claimants, at, slot);
        }
    }

    pub fn remove_claimant(&mut self, id: ListedId, slot: Slot) {
        if let Some(l) = self.listed.get_mut(id) {
            self.lists.remove(&mut l.claimants, slot);
        }
    }

    /// Forgets a listed Secret (no consumer may list it any more).
    pub fn remove_listed(&mut self, id: ListedId) {
        let Some(l) = self.listed.get(id) else { return };
        debug_assert!(l.claimants.is_empty(), "a listed Secret is forgotten only when unclaimed");
        let hash = self.name_hash(l.ns(), l.name());
        if let Ok(e) = self.listed_by_name.find_entry(hash, |&i| i == id) {
            e.remove();
        }
        self.listed.take(id);
    }

    /// Whether every list kept belongs to a contest or a listed Secret
    /// (none was lost), and how many there are.
    #[cfg(test)]
    pub fn lists_held(&self) -> Option<usize> {
        let many = |ids: &Ids| matches!(ids, Ids::Many(_));
        let contests = self.usernames.iter().chain(&self.custom_ids).filter(|&ids| many(ids)).count();
        let claimants = self.listed.iter().filter(|(_, l)| many(&l.claimants)).count();
        (contests + claimants == self.lists.len()).then_some(self.lists.len())
    }

    /// Whether listed Secret `a` is older than `b` (both must exist).
    pub fn secret_older(&self, a: ListedId, b: ListedId) -> bool {
        let age_of = |id| self.listed.get(id).and_then(ListedSecret::secret).map(|s| age(&s.meta));
        age_of(a) < age_of(b)
    }
}

fn key(meta: &crate::world::Meta) -> (&str, &str) {
    (meta.namespace().unwrap_or(""), meta.name())
}

fn rehash_consumer(hasher: &RandomState, consumers: &Slab<ConsumerState>, slot: Slot) -> u64 {
    consumers.get(slot).map(|c| hasher.hash_one(key(&c.obj.meta))).unwrap_or_default()
}

fn first_value<'a>(consumers: &'a Slab<ConsumerState>, lists: &Lists, field: Field, list: &Ids) -> Option<&'a str> {
    lists.first(list).and_then(|s| field.of(&consumers.get(s)?.obj))
}

/// Whether consumer `a` is older than `b`.
pub fn older(consumers: &Slab<ConsumerState>, a: Slot, b: Slot) -> bool {
    compare(consumers, a, b) == Ordering::Less
}

pub fn compare(consumers: &Slab<ConsumerState>, a: Slot, b: Slot) -> Ordering {
    let age_of = |s| consumers.get(s).map(|c| age(&c.obj.meta));
    age_of(a).cmp(&age_of(b)).then(a.cmp(&b))
}
