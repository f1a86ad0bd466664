//! The full consumer translation (startup, an IngressClass change): the
//! state `ConsumerTranslation::update` keeps, built in a few passes over the
//! consumers sorted by age once, instead of one object at a time. Each pass
//! settles one rule for everyone, oldest first, so each verdict is made
//! after those it depends on, exactly as the incremental path decides them
//! (a test compares the two).

use std::sync::Arc;

use crate::at_once::map_halves;
use crate::world::{KongConsumerObj, SecretObj, World};

use super::Config;
use super::class::ClassFilter;
use super::consumer_index::{ConsumerTranslation, KeyUse};
use super::consumer_state::{ConsumerState, Field, Slot, State, age};
use super::consumers;
use super::listed_secret::ListedSecret;

impl ConsumerTranslation {
    /// Translates every consumer of `world` from scratch.
    pub fn full(world: &World, cfg: &Config) -> Self {
        let mut t = Self::new(cfg.clone());
        let class = ClassFilter::new(world, cfg);
        let n = world.consumers.len();
        t.state = State::with_capacity(n);
        t.index.reserve(n);
        // Each consumer on its own reads nothing else that changes here:
        // both halves at once.
        let objs: Vec<&Arc<KongConsumerObj>> = world.consumers.values().collect();
        let alones = map_halves(&objs, |obj| consumers::alone(world, &class, obj));
        // Numbered in (namespace, name) order.
        let mut ages = Vec::with_capacity(n);
        for (obj, alone) in objs.into_iter().zip(alones) {
            let state =
                ConsumerState { obj: obj.clone(), alone: alone.consumer.is_some(), accepted: false, troubles: None };
            let slot = t.state.add_consumer(state);
            ages.push((obj.meta.created(), slot));
            if let Some(c) = t.state.consumers.get_mut(slot) {
                c.set_troubles(|tr| tr.alone = alone.problems);
            }
            if alone.names_plugins {
                t.naming_plugins.insert(slot);
            }
        }
        // Equal creation times stay in (namespace, name) order, the slots'.
        // The times are read once, here, not at each of the sort's ~17
        // comparisons per consumer (each a cache miss on its object).
        ages.sort_unstable();
        let order: Vec<Slot> = ages.into_iter().map(|(_, slot)| slot).collect();

        // Usernames and custom_ids, then the claims on the Secrets it lists:
        // a consumer's verdict and its claims depend on older consumers
        // only, all settled before it, so one pass in age order decides both
        // (and reads each consumer once).
        // Every listed Secret is settled below: nothing to queue.
        let mut settled_below = Vec::new();
        for &slot in &order {
            if t.state.consumer(slot).is_none_or(|c| !c.alone) {
                continue;
            }
            for field in Field::BOTH {
                t.state.enter(field, slot);
            }
            let verdict = t.verdict(slot);
            let Some(c) = t.state.consumers.get_mut(slot) else { continue };
            c.accepted = verdict.is_none();
            let accepted = c.accepted;
            c.set_troubles(|tr| tr.conflict = verdict);
            if accepted {
                // No `anonymous` names yet: a count is all the index needs.
                t.index.count_consumer(true);
            }
            if accepted {
                t.claim(slot, &mut settled_below);
                settled_below.clear();
            }
        }

        // The World's Secrets, for those listed, in (namespace, name) order,
        // which is close to the order their consumers and listings were
        // made in: settling them in this order reads memory nearly in
        // sequence, where the order of their digests read it at random
        // (most of this pass's time was cache misses). Each is first read
        // on its own, both halves at once.
        let secrets: Vec<&Arc<SecretObj>> = world.secrets.values().collect();
        let state = &t.state;
        let read = map_halves(&secrets, |secret| {
            let m = &secret.meta;
            let id = state.find_listed(m.namespace().unwrap_or_default(), m.name())?;
            Some((id, KeyUse::of(secret)))
        });
        let mut usable = Vec::new();
        let mut contested = Vec::new();
        for (secret, read) in secrets.into_iter().zip(read) {
            let Some((id, key)) = read else { continue };
            if let Some(l) = t.state.listed.get_mut(id) {
                l.settle(Some(secret.clone()));
            }
            if let Some(digest) = t.mark_key_use(id, key) {
                if t.state.digests.append(&digest, id, &t.state.listed) {
                    contested.push(digest);
                }
                usable.push((digest, id));
            }
        }
        // A key carried by two Secrets or more: its list, oldest first.
        contested.sort_unstable();
        contested.dedup();
        for digest in &contested {
            let State { digests, listed, .. } = &mut t.state;
            digests
                .sort_by_key(digest, listed, |&id| listed.get(id).and_then(ListedSecret::secret).map(|s| age(&s.meta)));
        }
        let mut touched = Vec::new();
        for (digest, id) in usable {
            if contested.binary_search(&digest).is_err() {
                t.settle_holders(&digest, &[id], &mut touched);
                touched.clear();
            }
        }
        for digest in &contested {
            let holders = t.state.digests.get(digest, &t.state.listed).to_vec();
            t.settle_holders(digest, &holders, &mut touched);
        }

        for &slot in &order {
            t.list(slot);
            t.note_consumer_problems(slot);
        }
        let listed: Vec<_> = t.state.listed.iter().map(|(id, _)| id).collect();
        for id in listed {
            t.note_secret_problems(id);
        }
        t
    }
}
