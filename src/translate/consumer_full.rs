//! The full consumer translation (startup, an IngressClass change): the
//! state `ConsumerTranslation::update` keeps, built in a few passes over the
//! consumers sorted by age once, instead of one object at a time. Each pass
//! settles one rule for everyone, oldest first, so each verdict is made
//! after those it depends on, exactly as the incremental path decides them
//! (a test compares the two).

use crate::world::World;

use super::Config;
use super::class::ClassFilter;
use super::consumer_index::ConsumerTranslation;
use super::consumer_state::{ConsumerState, Field, Slot, State};
use super::consumers;
use super::ids::Ids;

impl ConsumerTranslation {
    /// Translates every consumer of `world` from scratch.
    pub fn full(world: &World, cfg: &Config) -> Self {
        let mut t = Self::new(cfg.clone());
        let class = ClassFilter::new(world, cfg);
        let n = world.consumers.len();
        t.state = State::with_capacity(n);
        t.index.reserve(n);
        // Numbered in (namespace, name) order.
        for obj in world.consumers.values() {
            let alone = consumers::alone(world, &class, obj);
            let state = ConsumerState { obj: obj.clone(), alone: alone.consumer, accepted: false, troubles: None };
            let slot = t.state.add_consumer(state);
            if let Some(c) = t.state.consumers.get_mut(slot) {
                c.set_troubles(|tr| tr.alone = alone.problems);
            }
            if alone.names_plugins {
                t.naming_plugins.insert(slot);
            }
        }
        // Stable: equal creation times stay in (namespace, name) order.
        let mut order: Vec<Slot> = (0..n as Slot).collect();
        order.sort_by_key(|&s| t.state.consumer(s).map(|c| c.obj.meta.created()));

        // Usernames and custom_ids: each consumer after every older one.
        for &slot in &order {
            if t.state.consumer(slot).is_none_or(|c| c.alone.is_none()) {
                continue;
            }
            for field in Field::BOTH {
                t.state.enter(field, slot);
            }
            let verdict = t.verdict(slot);
            let Some(c) = t.state.consumers.get_mut(slot) else { continue };
            c.accepted = verdict.is_none();
            if let (true, Some(consumer)) = (c.accepted, &c.alone) {
                t.index.insert_consumer(consumer.clone());
            }
            c.set_troubles(|tr| tr.conflict = verdict);
        }

        // Claims, oldest claimant first.
        // Every listed Secret is settled below: nothing to queue.
        let mut settled_below = Vec::new();
        for &slot in &order {
            if t.state.consumer(slot).is_some_and(|c| c.accepted) {
                t.claim(slot, &mut settled_below);
                settled_below.clear();
            }
        }

        // The World's Secrets, for those listed, in (namespace, name) order.
        let mut usable = Vec::new();
        for secret in world.secrets.values() {
            let m = &secret.meta;
            let Some(id) = t.state.find_listed(m.namespace().unwrap_or_default(), m.name()) else { continue };
            if let Some(l) = t.state.listed.get_mut(id) {
                l.secret = Some(secret.clone());
            }
            if let Some(digest) = t.usable_digest(id) {
                usable.push((digest, m.created(), id));
            }
        }
        // Each key's Secrets together, the oldest first (stable, as above):
        // every contest is settled from this list, without looking it up.
        usable.sort_by_key(|&(digest, created, _)| (digest, created));
        let mut touched = Vec::new();
        for group in usable.chunk_by(|a, b| a.0 == b.0) {
            let digest = group[0].0;
            let mut holders = Ids::default();
            for &(_, _, id) in group {
                holders.push(id);
            }
            t.state.digests.push_new(&digest, holders.clone(), &t.state.listed);
            t.settle_holders(&digest, &holders, &mut touched);
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
