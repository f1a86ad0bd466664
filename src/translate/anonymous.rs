//! key-auth's `anonymous` names a consumer by id, else by username
//! (KONG_COMPAT §6). A request only ever looks a consumer up by such a name,
//! so the names the routes hold are resolved here and the index keeps the
//! answers, instead of a table of every consumer by id and one by username
//! (2.4 MB at 100k consumers).
//!
//! A name is resolved again when a consumer answering to it enters or
//! leaves the index, and when the routes start using it. Resolving reads
//! every consumer once (for the id; ~1 ms at 100k), which only happens on
//! those rare changes: a credential change never does it.

use std::collections::{BTreeMap, BTreeSet};

use crate::snapshot::{Consumer, Uid};
use crate::world::KongConsumerObj;

use super::consumer_index::ConsumerTranslation;
use super::consumer_state::{ConsumerState, Field, age};

/// The `anonymous` names the routes use.
#[derive(Default)]
pub(super) struct AnonymousNames {
    /// Each name, and the uid it would match.
    names: BTreeMap<Box<str>, Uid>,
    /// Names whose consumer may have changed since they were resolved.
    stale: BTreeSet<Box<str>>,
}

impl AnonymousNames {
    /// A consumer entered or left the index: the names it answers to (its
    /// id, its username) are resolved again.
    pub fn touch(&mut self, consumer: &KongConsumerObj) {
        if self.names.is_empty() {
            return;
        }
        let uid = consumer.meta.uid();
        for (name, id) in &self.names {
            if *id == uid || consumer.username() == Some(&**name) {
                self.stale.insert(name.clone());
            }
        }
    }
}

impl ConsumerTranslation {
    /// Sets the names the routes' `anonymous` settings hold, and resolves
    /// those new to it. False when the set is the one already held (then
    /// the index is unchanged).
    pub fn want_anonymous<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> bool {
        let names: BTreeSet<&str> = names.into_iter().collect();
        if names.iter().copied().eq(self.anonymous.names.keys().map(|n| &**n)) {
            return false;
        }
        let old = std::mem::take(&mut self.anonymous.names);
        for gone in old.keys().filter(|n| !names.contains(&***n)) {
            self.index.set_anonymous(gone, None);
            self.anonymous.stale.remove(gone);
        }
        for name in names {
            if !old.contains_key(name) {
                self.anonymous.stale.insert(name.into());
            }
            self.anonymous.names.insert(name.into(), Uid::new(name));
        }
        self.resolve_anonymous();
        true
    }

    /// Resolves the stale names: the oldest accepted consumer with that
    /// id, else the accepted consumer holding that username (one at most:
    /// usernames are unique among accepted consumers).
    pub(super) fn resolve_anonymous(&mut self) {
        for name in std::mem::take(&mut self.anonymous.stale) {
            let Some(uid) = self.anonymous.names.get(&name) else { continue };
            let accepted = |c: &&ConsumerState| c.accepted;
            let by_id = self
                .state
                .consumers
                .iter()
                .map(|(_, c)| c)
                .filter(|c| c.accepted && c.alone && c.obj.meta.uid() == *uid)
                .min_by(|a, b| age(&a.obj.meta).cmp(&age(&b.obj.meta)));
            let by_username = || {
                self.state.contest(Field::Username, &name).iter().filter_map(|&s| self.state.consumer(s)).find(accepted)
            };
            let found: Option<Consumer> = by_id.or_else(by_username).and_then(ConsumerState::consumer);
            self.index.set_anonymous(&name, found);
        }
    }

    /// Every accepted consumer, in no particular order.
    pub fn accepted(&self) -> impl Iterator<Item = Consumer> {
        self.state.consumers.iter().filter(|(_, c)| c.accepted).filter_map(|(_, c)| c.consumer())
    }
}
