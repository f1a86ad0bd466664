//! KongConsumers and their credential Secrets -> the ConsumerIndex, kept up
//! to date object by object. The result is always exactly what translating
//! the whole World from scratch gives (a test checks this on random change
//! sequences); only the work differs: a rotated key touches one Secret, its
//! digest and one index shard, not 100,000 credentials.
//!
//! The rules between objects are "the oldest wins" contests (age = creation
//! time, then namespace/name):
//! - a consumer is accepted unless an older *accepted* consumer holds its
//!   username (or else its custom_id);
//! - a Secret belongs to the oldest accepted consumer listing it;
//! - a key belongs to the oldest usable Secret carrying it.
//!
//! A change re-decides the changed objects and then only what their
//! verdicts can reach: the younger rivals for the same username, custom_id,
//! Secret or key. Consumers are re-decided oldest first, so every verdict is
//! made after the verdicts it depends on. A full translation (startup, an
//! IngressClass change) builds the same state in a few passes over the
//! consumers sorted by age once (`consumer_full`).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use crate::snapshot::{ConsumerIndex, Credential, KeyDigest};
use crate::world::{KeyChanges, KongConsumerObj, SecretObj, World};

use super::anonymous::AnonymousNames;
use super::class::ClassFilter;
use super::consumer_state::{ConsumerState, Field, ListedId, Slot, State, Troubles, age};
use super::consumers;
use super::credentials::{self, Listing};
use super::listed_secret::ListedSecret;
use super::{Config, Problem};

/// A consumer waiting to be decided, ordered by age: the object is the
/// version it was queued for (an entry whose age is no longer the
/// consumer's is skipped; versions of one age are one entry).
struct Queued(Arc<KongConsumerObj>, Slot);

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        age(&self.0.meta).cmp(&age(&other.0.meta)).then(self.1.cmp(&other.1))
    }
}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Queued {}

/// The incremental translation of consumers and credentials.
pub struct ConsumerTranslation {
    pub(super) cfg: Config,
    pub(super) state: State,
    /// Consumers that name plugins (re-read when plugins change).
    pub(super) naming_plugins: BTreeSet<Slot>,
    /// Consumers and listed Secrets that have problems now.
    pub(super) consumers_with_problems: BTreeSet<Slot>,
    pub(super) secrets_with_problems: BTreeSet<ListedId>,
    pub(super) index: ConsumerIndex,
    /// The names key-auth's `anonymous` settings hold (see `anonymous`).
    pub(super) anonymous: AnonymousNames,
}

/// What one update must revisit, filled as verdicts change.
#[derive(Default)]
pub(super) struct Work {
    /// Consumers to re-decide, oldest first.
    decide: BTreeSet<Queued>,
    /// Accepted consumers whose `credentials[i]` problems may change.
    listings: HashSet<Slot>,
    secrets: HashSet<ListedId>,
    digests: HashSet<KeyDigest>,
}

impl ConsumerTranslation {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            state: State::default(),
            naming_plugins: BTreeSet::new(),
            consumers_with_problems: BTreeSet::new(),
            secrets_with_problems: BTreeSet::new(),
            index: ConsumerIndex::new(),
            anonymous: AnonymousNames::default(),
        }
    }

    pub fn index(&self) -> &ConsumerIndex {
        &self.index
    }

    /// Every current problem, sorted.
    pub fn problems(&self) -> Vec<Problem> {
        let consumers = self.consumers_with_problems.iter().filter_map(|&s| self.state.consumer(s));
        let secrets = self.secrets_with_problems.iter().filter_map(|&id| self.state.listed.get(id)?.problem.as_deref());
        let mut all: Vec<Problem> = consumers.flat_map(ConsumerState::problems).chain(secrets).cloned().collect();
        all.sort();
        all.dedup();
        all
    }

    /// Applies the changes of `world` since the last update: the KongConsumers
    /// and Secrets in `changes`, and (with `plugins_changed`) the consumers
    /// naming plugins. IngressClass changes need a `full` translation.
    pub fn update(&mut self, world: &World, changes: &KeyChanges, plugins_changed: bool) {
        let mut consumers: Vec<(String, String)> = changes.consumers.iter().cloned().collect();
        if plugins_changed {
            for &slot in &self.naming_plugins {
                if let Some(c) = self.state.consumer(slot) {
                    let m = &c.obj.meta;
                    consumers.push((m.namespace().unwrap_or_default().to_string(), m.name().to_string()));
                }
            }
        }
        let cfg = self.cfg.clone();
        let class = ClassFilter::new(world, &cfg);
        let mut work = Work::default();
        for (ns, name) in &changes.secrets {
            if let Some(id) = self.state.find_listed(ns, name) {
                work.secrets.insert(id);
            }
        }
        let mut touched: HashSet<Slot> = HashSet::with_capacity(consumers.len());
        let mut seen: HashSet<&(String, String)> = HashSet::with_capacity(consumers.len());
        for key in &consumers {
            if seen.insert(key) {
                self.reread_consumer(world, &class, key, &mut work, &mut touched);
            }
        }
        while let Some(queued) = work.decide.pop_first() {
            touched.insert(queued.1);
            self.decide(&queued, &mut work);
        }
        // Ownership first: listing problems name owners.
        let secrets = std::mem::take(&mut work.secrets);
        let mut secrets_touched: HashSet<ListedId> = HashSet::with_capacity(secrets.len());
        for id in secrets {
            let found = self.state.listed.get(id).and_then(|l| world_secret(world, l.ns(), l.name()));
            if self.settle_secret(id, found, &mut work) {
                secrets_touched.insert(id);
            }
        }
        for slot in std::mem::take(&mut work.listings) {
            self.list(slot);
            touched.insert(slot);
        }
        let mut by_digests = Vec::new();
        for digest in std::mem::take(&mut work.digests) {
            self.settle_digest(&digest, &mut by_digests);
        }
        secrets_touched.extend(by_digests);
        for slot in touched {
            self.note_consumer_problems(slot);
        }
        for id in secrets_touched {
            self.note_secret_problems(id);
        }
        self.resolve_anonymous();
    }

    /// A consumer entered (`accepted`) or left the index.
    pub(super) fn indexed(&mut self, consumer: &KongConsumerObj, accepted: bool) {
        self.index.count_consumer(accepted);
        self.anonymous.touch(consumer);
    }

    pub(super) fn note_consumer_problems(&mut self, slot: Slot) {
        if self.state.consumer(slot).is_some_and(ConsumerState::has_problems) {
            self.consumers_with_problems.insert(slot);
        } else {
            self.consumers_with_problems.remove(&slot);
        }
    }

    pub(super) fn note_secret_problems(&mut self, id: ListedId) {
        if self.state.listed.get(id).is_some_and(|l| l.problem.is_some()) {
            self.secrets_with_problems.insert(id);
        } else {
            self.secrets_with_problems.remove(&id);
        }
    }

    /// Reads one KongConsumer again (or notes it is gone) and queues what
    /// its change can affect.
    fn reread_consumer(
        &mut self,
        world: &World,
        class: &ClassFilter<'_>,
        key: &(String, String),
        work: &mut Work,
        touched: &mut HashSet<Slot>,
    ) {
        let old_slot = self.state.find_consumer(&key.0, &key.1);
        if let Some(slot) = old_slot {
            self.naming_plugins.remove(&slot);
            self.withdraw(slot, work);
        }
        let Some(obj) = world.consumers.get(key) else {
            if let Some(slot) = old_slot {
                self.state.remove_consumer(slot);
                self.consumers_with_problems.remove(&slot);
                touched.remove(&slot);
            }
            return;
        };
        let alone = consumers::alone(world, class, obj);
        let state =
            ConsumerState { obj: obj.clone(), troubles: None, alone: alone.consumer.is_some(), accepted: false };
        let slot = match old_slot {
            // Same name, same number: the key is unchanged.
            Some(slot) => {
                if let Some(c) = self.state.consumers.get_mut(slot) {
                    *c = state;
                }
                slot
            }
            None => self.state.add_consumer(state),
        };
        if let Some(c) = self.state.consumers.get_mut(slot) {
            c.set_troubles(|t| t.alone = alone.problems);
        }
        if alone.names_plugins {
            self.naming_plugins.insert(slot);
        }
        if self.state.consumer(slot).is_some_and(|c| c.alone) {
            for field in Field::BOTH {
                let younger = self.state.enter(field, slot);
                self.queue(work, younger);
            }
        }
        self.queue(work, [slot]);
    }

    /// Takes a consumer about to be re-read out of every contest, the index
    /// and its claims.
    fn withdraw(&mut self, slot: Slot, work: &mut Work) {
        let Some(old) = self.state.consumer(slot) else { return };
        let (in_contests, accepted) = (old.alone, (old.alone && old.accepted).then(|| old.obj.clone()));
        if in_contests {
            for field in Field::BOTH {
                // Younger rivals may win now.
                let younger = self.state.leave(field, slot);
                self.queue(work, younger);
            }
        }
        if let Some(obj) = accepted {
            self.indexed(&obj, false);
            self.unclaim(slot, work);
        }
    }

    fn queue(&self, work: &mut Work, slots: impl IntoIterator<Item = Slot>) {
        for slot in slots {
            if let Some(c) = self.state.consumer(slot) {
                work.decide.insert(Queued(c.obj.clone(), slot));
            }
        }
    }

    /// Decides whether one consumer is accepted: it is, unless an older
    /// accepted consumer holds its username or custom_id.
    fn decide(&mut self, queued: &Queued, work: &mut Work) {
        let slot = queued.1;
        let Some(state) = self.state.consumer(slot) else { return };
        if age(&state.obj.meta) != age(&queued.0.meta) {
            // Queued for a version of another age (or a consumer since
            // deleted); the current one is queued under its own age.
            return;
        }
        let verdict = self.verdict(slot);
        let Some(state) = self.state.consumer(slot) else { return };
        let accepted = state.alone && verdict.is_none();
        let same = accepted == state.accepted;
        if same && state.conflict() == verdict.as_ref() {
            return;
        }
        let consumer = state.alone.then(|| state.obj.clone());
        if state.alone {
            // Younger rivals for the same values are decided again.
            for field in Field::BOTH {
                if let Some(value) = field.of(&state.obj) {
                    let list = self.state.contest(field, value);
                    let at = list.iter().position(|&s| s == slot).map_or(list.len(), |i| i + 1);
                    let younger = list[at..].to_vec();
                    self.queue(work, younger);
                }
            }
        }
        if !same {
            if let Some(c) = &consumer {
                self.indexed(c, accepted);
            }
            if let Some(c) = self.state.consumers.get_mut(slot) {
                c.accepted = accepted;
            }
            if accepted {
                self.claim(slot, &mut work.secrets);
                work.listings.insert(slot);
            } else {
                self.unclaim(slot, work);
            }
        }
        if let Some(c) = self.state.consumers.get_mut(slot) {
            c.set_troubles(|t| {
                t.conflict = verdict;
                if !accepted {
                    t.listing.clear();
                }
            });
        }
    }

    /// The conflict that keeps a consumer out, if any.
    pub(super) fn verdict(&self, slot: Slot) -> Option<Problem> {
        let state = self.state.consumer(slot)?;
        state.alone.then_some(())?;
        let mine = age(&state.obj.meta);
        Field::BOTH.into_iter().find_map(|field| {
            let value = field.of(&state.obj)?;
            let holder = self
                .state
                .contest(field, value)
                .iter()
                .find(|&&s| self.state.consumer(s).is_some_and(|c| c.accepted && age(&c.obj.meta) < mine))?;
            let owner = self.state.consumer(*holder)?.object();
            Some(consumers::taken(&state.object(), field.name(), value, &owner))
        })
    }

    /// Claims the Secrets an accepted consumer lists.
    pub(super) fn claim(&mut self, slot: Slot, settle: &mut impl Extend<ListedId>) {
        let Some(obj) = self.state.consumer(slot).map(|c| c.obj.clone()) else { return };
        let ns = obj.meta.namespace().unwrap_or_default();
        for name in obj.credentials() {
            let id = self.state.listed_or_new(ns, name);
            self.state.add_claimant(id, slot);
            settle.extend([id]);
        }
    }

    /// Withdraws a consumer's claims on the Secrets it lists.
    fn unclaim(&mut self, slot: Slot, work: &mut Work) {
        let Some(obj) = self.state.consumer(slot).map(|c| c.obj.clone()) else { return };
        let ns = obj.meta.namespace().unwrap_or_default();
        for name in obj.credentials() {
            let Some(id) = self.state.find_listed(ns, name) else { continue };
            self.state.remove_claimant(id, slot);
            work.secrets.insert(id);
        }
    }

    /// Settles who owns one listed Secret and whether its key is in play;
    /// queues the listings and digests that depend on it. `found` is the
    /// Secret as the World has it. False when the Secret is listed no more
    /// (and forgotten).
    fn settle_secret(&mut self, id: ListedId, found: Option<&Arc<SecretObj>>, work: &mut Work) -> bool {
        let Some(old_digest) = self.state.listed.get(id).map(|l| l.digest()) else { return false };
        if let Some(digest) = old_digest {
            self.leave_digest(digest, id);
            work.digests.insert(digest);
        }
        // Every consumer listing it says something about it (or its absence).
        let claimants = self.state.claimants(id);
        work.listings.extend(claimants.iter().copied());
        let claimed = !claimants.is_empty();
        if !claimed {
            self.state.remove_listed(id);
            self.secrets_with_problems.remove(&id);
            return false;
        }
        let Some(l) = self.state.listed.get_mut(id) else { return false };
        l.settle(found.cloned());
        l.problem = None;
        if let Some(digest) = self.usable_digest(id) {
            self.enter_digest(digest, id);
            work.digests.insert(digest);
        }
        true
    }

    /// Puts a claimed Secret in its key's contest when it is a usable
    /// credential; a Secret whose uid cannot be a header gets a problem.
    pub(super) fn usable_digest(&mut self, id: ListedId) -> Option<KeyDigest> {
        let key = KeyUse::of(self.state.listed.get(id)?.secret()?);
        self.mark_key_use(id, key)
    }

    /// `usable_digest`, with the Secret's `KeyUse` read already.
    pub(super) fn mark_key_use(&mut self, id: ListedId, key: KeyUse) -> Option<KeyDigest> {
        let l = self.state.listed.get_mut(id)?;
        match key {
            KeyUse::Unusable => None,
            KeyUse::BadUid => {
                l.problem = Some(Box::new(credentials::invalid_uid(&l.object())));
                None
            }
            KeyUse::Usable(digest) => {
                l.enter_contest();
                Some(digest)
            }
        }
    }

    /// Enters a Secret, already settled as carrying `digest`, in that key's contest.
    fn enter_digest(&mut self, digest: KeyDigest, id: ListedId) {
        let state = &self.state;
        let at = state.digests.get(&digest, &state.listed).partition_point(|&other| state.secret_older(other, id));
        self.state.digests.insert(&digest, at, id, &self.state.listed);
    }

    /// Takes a Secret out of the contest for `digest`, which it still
    /// carries as settled.
    fn leave_digest(&mut self, digest: KeyDigest, id: ListedId) {
        self.state.digests.remove(&digest, id, &self.state.listed);
    }

    /// Recomputes the `credentials[i]` problems of one consumer.
    pub(super) fn list(&mut self, slot: Slot) {
        let Some(state) = self.state.consumer(slot) else { return };
        if !state.accepted {
            return;
        }
        // Built only for a Problem: this runs for every accepted consumer.
        let object = || state.object();
        let ns = state.obj.meta.namespace().unwrap_or_default();
        let listed = state.obj.credentials();
        let mut problems = Vec::new();
        for (i, name) in listed.iter().enumerate() {
            // An existing Secret that an accepted consumer lists has an
            // owner, hence a settled state.
            let settled = self.state.find_listed(ns, name);
            let found = settled.and_then(|id| Some((self.state.listed.get(id)?.secret()?, self.state.owner(id)?)));
            let issue = match found {
                None => Some(Listing::NotFound),
                Some((secret, owner)) => match owner {
                    owner if owner != slot => {
                        let owner = self.state.consumer(owner).map(ConsumerState::object).unwrap_or_else(unknown);
                        problems.push(credentials::listing_problem(&object(), i, ns, name, Listing::Claimed(&owner)));
                        None
                    }
                    // Earlier entries with this name reached this arm too.
                    _ if listed.iter().take(i).any(|earlier| earlier == name) => Some(Listing::Twice),
                    _ => credentials::usable(secret).err().map(|(reason, why)| Listing::Unusable(reason, why)),
                },
            };
            if let Some(issue) = issue {
                problems.push(credentials::listing_problem(&object(), i, ns, name, issue));
            }
        }
        if problems.is_empty() && state.troubles.as_ref().is_none_or(|t| t.listing.is_empty()) {
            return;
        }
        if let Some(state) = self.state.consumers.get_mut(slot) {
            state.set_troubles(|t: &mut Troubles| t.listing = problems);
        }
    }

    /// Gives one key to the oldest usable Secret carrying it; the others
    /// get a DuplicateKey problem.
    pub(super) fn settle_digest(&mut self, digest: &KeyDigest, touched: &mut Vec<ListedId>) {
        let holders = self.state.digests.get(digest, &self.state.listed).to_vec();
        self.settle_holders(digest, &holders, touched);
    }

    /// `settle_digest` with the key's contest at hand (oldest first).
    pub(super) fn settle_holders(&mut self, digest: &KeyDigest, holders: &[ListedId], touched: &mut Vec<ListedId>) {
        let Some(&winner) = holders.first() else {
            self.index.set_credential(*digest, None);
            return;
        };
        let winner_owner = self.state.owner(winner);
        let credential = winner_owner
            .and_then(|o| {
                let c = self.state.consumer(o)?;
                c.consumer().filter(|_| c.accepted)
            })
            .zip(self.state.listed.get(winner).and_then(ListedSecret::secret))
            // It reads its Secret's fields from the World's object; None when
            // the uid cannot be a header value.
            .and_then(|(consumer, secret)| Credential::new(consumer, secret.clone()));
        self.index.set_credential(*digest, credential);
        touched.push(winner);
        if let Some(l) = self.state.listed.get_mut(winner) {
            l.problem = None;
        }
        if holders.len() == 1 {
            return;
        }
        let consumer_ref = |slot: Option<Slot>| {
            slot.and_then(|s| self.state.consumer(s)).map(ConsumerState::object).unwrap_or_else(unknown)
        };
        let Some(older) = self.state.listed.get(winner).map(|l| l.object()) else { return };
        let older_owner = consumer_ref(winner_owner);
        let mut problems = Vec::with_capacity(holders.len() - 1);
        for &holder in &holders[1..] {
            let Some(l) = self.state.listed.get(holder) else { continue };
            let owner = consumer_ref(self.state.owner(holder));
            problems.push((holder, credentials::duplicate_key(&l.object(), &older, &older_owner, &owner)));
        }
        for (holder, problem) in problems {
            touched.push(holder);
            if let Some(l) = self.state.listed.get_mut(holder) {
                l.problem = Some(Box::new(problem));
            }
        }
    }
}

/// What a claimed Secret's key can be, from the Secret alone.
pub(super) enum KeyUse {
    /// Not a usable key-auth credential (`list` reports why).
    Unusable,
    /// Usable, but its uid cannot be sent as a header.
    BadUid,
    Usable(KeyDigest),
}

impl KeyUse {
    pub(super) fn of(secret: &SecretObj) -> Self {
        match credentials::usable(secret) {
            Err(_) => KeyUse::Unusable,
            Ok(_) if !secret.meta.uid().is_header_safe() => KeyUse::BadUid,
            Ok(digest) => KeyUse::Usable(digest),
        }
    }
}

/// The Secret `ns/name` in the World.
fn world_secret<'w>(world: &'w World, ns: &str, name: &str) -> Option<&'w Arc<SecretObj>> {
    world.secrets.get(&(ns.to_string(), name.to_string()))
}

/// Not reached: every Secret in a key contest has an owner.
fn unknown() -> crate::world::ObjectRef {
    crate::world::ObjectRef::new(crate::world::Kind::KongConsumer, None, "?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{Kind, Object, ObjectRef};

    /// xorshift64*: deterministic, enough to shuffle small worlds.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const KEYS: [&str; 5] = ["k0", "k1", "k2", "k3", ""];

    fn apply(world: &mut World, yaml: &str) {
        for doc in crate::source::manifest::parse(yaml).unwrap() {
            let obj: Object = doc.result.unwrap();
            world.apply(obj).unwrap();
        }
    }

    /// A random KongConsumer or credential Secret: few names, values and
    /// creation times, so usernames, custom_ids, Secrets and keys collide.
    fn random_object(rng: &mut Rng) -> String {
        let ns = ["a", "b"][rng.below(2) as usize];
        let created = format!("2024-01-0{}T00:00:00Z", 1 + rng.below(3));
        if rng.below(2) == 0 {
            let mut fields = String::new();
            if rng.below(4) != 0 {
                fields.push_str(&format!("username: u{}\n", rng.below(3)));
            }
            if rng.below(2) == 0 {
                fields.push_str(&format!("custom_id: c{}\n", rng.below(3)));
            }
            let creds: Vec<String> = (0..rng.below(3)).map(|_| format!("s{}", rng.below(4))).collect();
            let class = if rng.below(8) == 0 { "other" } else { "kong" };
            // Some uids repeat, and some equal another consumer's username.
            let uid = match rng.below(4) {
                0 => format!("uid: id{}, ", rng.below(3)),
                1 => "uid: u2, ".to_string(),
                _ => String::new(),
            };
            format!(
                "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata: {{name: c{}, namespace: {ns}, {uid}creationTimestamp: \"{created}\", annotations: {{kubernetes.io/ingress.class: {class}}}}}\n{fields}credentials: [{}]\n",
                rng.below(5),
                creds.join(", ")
            )
        } else {
            let label = match rng.below(8) {
                0 => "",
                1 => "labels: {konghq.com/credential: basic-auth}, ",
                _ => "labels: {konghq.com/credential: key-auth}, ",
            };
            let ttl = if rng.below(6) == 0 { ", ttl: \"x\"" } else { "" };
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: s{}, namespace: {ns}, {label}creationTimestamp: \"{created}\"}}\nstringData: {{key: \"{}\"{ttl}}}\n",
                rng.below(4),
                KEYS[rng.below(KEYS.len() as u64) as usize]
            )
        }
    }

    fn delete_random(world: &mut World, rng: &mut Rng) {
        let owned = |(ns, name): (&str, &str)| (ns.to_string(), name.to_string());
        let consumers: Vec<(String, String)> = world.consumers.keys().map(owned).collect();
        let secrets: Vec<(String, String)> = world.secrets.keys().map(owned).collect();
        let (kind, keys) = if rng.below(2) == 0 { (Kind::KongConsumer, consumers) } else { (Kind::Secret, secrets) };
        if keys.is_empty() {
            return;
        }
        let (ns, name) = keys[rng.below(keys.len() as u64) as usize].clone();
        world.delete(&ObjectRef::new(kind, Some(ns), name));
    }

    /// Names key-auth's `anonymous` may hold in the random worlds: usernames
    /// and uids (some uids are also another consumer's username).
    const ANONYMOUS: [&[&str]; 2] = [&["u0", "u1", "id0", "id1", "u2"], &["u1", "id2", "c0"]];

    /// What a translation answers, in a comparable form: the credentials by
    /// key, the accepted consumers, and the consumer each `anonymous` name
    /// stands for.
    fn view(t: &ConsumerTranslation, names: &[&str]) -> (Vec<String>, Vec<String>, Vec<String>) {
        let index = t.index();
        let mut credentials: Vec<String> = KEYS
            .iter()
            .filter_map(|k| {
                let c = index.credential(&KeyDigest::of(k.as_bytes()))?;
                Some(format!("{k} -> {} of {} ({:?}, {})", c.source(), c.consumer.source(), c.expires_at(), c.uid()))
            })
            .collect();
        credentials.sort();
        assert_eq!(credentials.len(), index.credential_count());
        let mut consumers: Vec<String> = t
            .accepted()
            .map(|c| format!("{} {:?} {:?} {}", c.source(), c.username(), c.custom_id(), c.uid()))
            .collect();
        consumers.sort();
        assert_eq!(consumers.len(), index.consumer_count());
        // Every field: an entry must follow its consumer's changes too.
        let fields = |c: &crate::snapshot::Consumer| {
            format!("{} {:?} {:?} {}", c.source(), c.username(), c.custom_id(), c.uid())
        };
        let anonymous = names.iter().map(|&n| format!("{n} -> {:?}", index.anonymous(n).map(fields))).collect();
        (credentials, consumers, anonymous)
    }

    #[test]
    fn updates_always_equal_a_translation_from_scratch() {
        let cfg = Config::default();
        let mut longer_lists = (0, 0);
        let mut anonymous_found = 0;
        for seed in 1..=60u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut world = World::new();
            let mut incremental = ConsumerTranslation::new(cfg.clone());
            let mut names = ANONYMOUS[0];
            assert!(incremental.want_anonymous(names.iter().copied()));
            for step in 0..60 {
                if step % 20 == 19 {
                    // The routes start and stop using names.
                    names = ANONYMOUS[(step / 20 + 1) % 2];
                    assert!(incremental.want_anonymous(names.iter().copied()));
                }
                // Sometimes several changes land in one update.
                for _ in 0..1 + rng.below(3) {
                    if rng.below(4) == 0 {
                        delete_random(&mut world, &mut rng);
                    } else {
                        apply(&mut world, &random_object(&mut rng));
                    }
                }
                incremental.update(&world, &world.clone().take_key_changes(), false);
                world.take_key_changes();
                let mut fresh = ConsumerTranslation::full(&world, &cfg);
                fresh.want_anonymous(names.iter().copied());
                assert_eq!(view(&incremental, names), view(&fresh, names), "seed {seed} step {step}");
                let found = names.iter().filter(|n| incremental.index().anonymous(n).is_some()).count();
                anonymous_found += found;
                assert_eq!(incremental.problems(), fresh.problems(), "seed {seed} step {step}");
                for t in [&incremental, &fresh] {
                    let held = t.state.lists_held().zip(t.state.digests.lists_held());
                    let (contests, keys) = held.unwrap_or_else(|| panic!("a list lost: seed {seed} step {step}"));
                    longer_lists.0 += contests;
                    longer_lists.1 += keys;
                }
            }
        }
        // Names, values and keys collide often enough to need longer lists.
        assert!(longer_lists.0 > 0 && longer_lists.1 > 0, "{longer_lists:?}");
        assert!(anonymous_found > 0);
    }

    #[test]
    fn a_rotated_key_is_replaced_in_place() {
        let cfg = Config::default();
        let mut world = World::new();
        apply(
            &mut world,
            "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata: {name: c, namespace: a, annotations: {kubernetes.io/ingress.class: kong}}\nusername: u\ncredentials: [s]\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: a, labels: {konghq.com/credential: key-auth}}\nstringData: {key: old}\n",
        );
        let mut t = ConsumerTranslation::full(&world, &cfg);
        world.take_key_changes();
        let before = t.index().clone();
        apply(
            &mut world,
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: a, labels: {konghq.com/credential: key-auth}}\nstringData: {key: new}\n",
        );
        let changes = world.take_key_changes();
        assert_eq!(changes.secrets.len(), 1);
        t.update(&world, &changes, false);
        assert!(t.index().credential(&KeyDigest::of(b"old")).is_none());
        assert_eq!(t.index().credential(&KeyDigest::of(b"new")).unwrap().source(), "a/s");
        // The published copy is untouched.
        assert!(before.credential(&KeyDigest::of(b"old")).is_some());
        let consumer =
            |index: &ConsumerIndex, key: &[u8]| index.credential(&KeyDigest::of(key)).unwrap().consumer.clone();
        assert!(consumer(t.index(), b"new").is(&consumer(&before, b"old")));
    }
}
