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
//! made after the verdicts it depends on.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;

use crate::snapshot::{Consumer, ConsumerIndex, KeyDigest};
use crate::world::{KeyChanges, Kind, ObjectRef, SecretObj, World};

use super::class::ClassFilter;
use super::consumers::{self, Alone};
use super::credentials::{self, Listing};
use super::{Config, Problem};

/// (namespace, name), shared: the same key sits in several contests.
type Key = Arc<(String, String)>;

/// Sort order of "the oldest wins": creation time, then namespace/name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Age(Timestamp, Key);

struct ConsumerState {
    age: Age,
    alone: Alone,
    username: Option<String>,
    custom_id: Option<String>,
    /// Secret names in `credentials`, in order.
    listed: Vec<String>,
    /// The consumer, once it won its username and custom_id contests.
    accepted: Option<Arc<Consumer>>,
    conflict: Option<Problem>,
    /// Problems at `credentials[i]` (accepted consumers only).
    listing_problems: Vec<Problem>,
}

impl ConsumerState {
    fn object(&self) -> ObjectRef {
        consumer_ref(&self.age.1)
    }

    fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.alone.problems.iter().chain(&self.conflict).chain(&self.listing_problems)
    }
}

/// A Secret some accepted consumer lists.
#[derive(Default)]
struct SecretState {
    age: Option<Age>,
    /// The Secret as translated (read once, not looked up again).
    secret: Option<Arc<SecretObj>>,
    /// The consumer it belongs to (it exists and that consumer lists it
    /// first).
    owner: Option<Key>,
    /// Its key, when it is a usable credential of its owner.
    digest: Option<KeyDigest>,
    problem: Option<Problem>,
}

/// The incremental translation of consumers and credentials.
pub struct ConsumerTranslation {
    cfg: Config,
    consumers: HashMap<Key, ConsumerState>,
    /// Consumers usable on their own, by username and by custom_id, oldest
    /// first.
    usernames: HashMap<String, Vec<Age>>,
    custom_ids: HashMap<String, Vec<Age>>,
    /// Secret -> accepted consumers listing it, oldest first.
    claims: HashMap<Key, Vec<Age>>,
    secrets: HashMap<Key, SecretState>,
    /// Key digest -> usable Secrets carrying it, oldest first.
    digests: HashMap<KeyDigest, Vec<Age>>,
    /// Consumers that name plugins (re-read when plugins change).
    naming_plugins: BTreeSet<Key>,
    /// Current problems by object (KongConsumer or Secret), only objects
    /// that have some.
    problems: HashMap<(Kind, Key), Vec<Problem>>,
    index: ConsumerIndex,
}

/// What one update must revisit, filled as verdicts change.
#[derive(Default)]
struct Work {
    /// Consumers to re-decide, oldest first.
    decide: BTreeSet<Age>,
    /// Accepted consumers whose `credentials[i]` problems may change.
    listings: HashSet<Key>,
    secrets: HashSet<Key>,
    digests: HashSet<KeyDigest>,
}

impl ConsumerTranslation {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            consumers: HashMap::new(),
            usernames: HashMap::new(),
            custom_ids: HashMap::new(),
            claims: HashMap::new(),
            secrets: HashMap::new(),
            digests: HashMap::new(),
            naming_plugins: BTreeSet::new(),
            problems: HashMap::new(),
            index: ConsumerIndex::new(),
        }
    }

    /// Translates every consumer of `world` from scratch.
    pub fn full(world: &World, cfg: &Config) -> Self {
        let mut t = Self::new(cfg.clone());
        let key = |k: &(String, String)| Arc::new(k.clone());
        t.apply(world, world.consumers.keys().map(key).collect(), world.secrets.keys().map(key).collect());
        t
    }

    pub fn index(&self) -> &ConsumerIndex {
        &self.index
    }

    /// Every current problem, sorted.
    pub fn problems(&self) -> Vec<Problem> {
        let mut all: Vec<Problem> = self.problems.values().flatten().cloned().collect();
        all.sort();
        all.dedup();
        all
    }

    /// Applies the changes of `world` since the last update: the KongConsumers
    /// and Secrets in `changes`, and (with `plugins_changed`) the consumers
    /// naming plugins. IngressClass changes need a `full` translation.
    pub fn update(&mut self, world: &World, changes: &KeyChanges, plugins_changed: bool) {
        let mut consumers: Vec<Key> = changes.consumers.iter().map(|k| Arc::new(k.clone())).collect();
        if plugins_changed {
            consumers.extend(self.naming_plugins.iter().cloned());
        }
        self.apply(world, consumers, changes.secrets.iter().map(|k| Arc::new(k.clone())).collect());
    }

    fn apply(&mut self, world: &World, consumers: Vec<Key>, secrets: HashSet<Key>) {
        let cfg = self.cfg.clone();
        let class = ClassFilter::new(world, &cfg);
        let mut work = Work { secrets, ..Work::default() };
        let mut touched: HashSet<Key> = HashSet::with_capacity(consumers.len());
        for key in consumers {
            if touched.insert(key.clone()) {
                self.reread_consumer(world, &class, &key, &mut work);
            }
        }
        while let Some(age) = work.decide.pop_first() {
            touched.insert(age.1.clone());
            self.decide(&age, &mut work);
        }
        // Ownership first: listing problems name owners.
        let secrets = std::mem::take(&mut work.secrets);
        for key in &secrets {
            self.settle_secret(world, key, &mut work);
        }
        for key in std::mem::take(&mut work.listings) {
            self.list(&key);
            touched.insert(key);
        }
        let mut secrets_touched: HashSet<Key> = secrets;
        for digest in std::mem::take(&mut work.digests) {
            self.settle_digest(&digest, &mut secrets_touched);
        }
        for key in touched {
            let problems = self.consumers.get(&key).map(|c| c.problems().cloned().collect()).unwrap_or_default();
            set_problems(&mut self.problems, (Kind::KongConsumer, key), problems);
        }
        for key in secrets_touched {
            let problems = self.secrets.get(&key).and_then(|s| s.problem.clone()).into_iter().collect();
            set_problems(&mut self.problems, (Kind::Secret, key), problems);
        }
    }

    /// Reads one KongConsumer again (or notes it is gone) and queues what
    /// its change can affect.
    fn reread_consumer(&mut self, world: &World, class: &ClassFilter<'_>, key: &Key, work: &mut Work) {
        if let Some(old) = self.consumers.remove(key) {
            self.naming_plugins.remove(key);
            for (value, map) in [(&old.username, &mut self.usernames), (&old.custom_id, &mut self.custom_ids)] {
                if let Some(v) = value {
                    // Younger rivals may win now.
                    work.decide.extend(map.get(v).into_iter().flatten().filter(|a| **a > old.age).cloned());
                    remove_sorted(map, v, &old.age);
                }
            }
            if let Some(c) = &old.accepted {
                self.index.remove_consumer(c);
                self.unclaim(&old.age, &old.listed, work);
            }
        }
        let Some(obj) = world.consumers.get(&**key) else { return };
        let alone = consumers::alone(world, class, obj);
        if alone.names_plugins {
            self.naming_plugins.insert(key.clone());
        }
        let age = Age(obj.meta.created, key.clone());
        let (username, custom_id) = match &alone.consumer {
            Some(_) => (obj.username.clone(), obj.custom_id.clone()),
            None => (None, None),
        };
        for (value, map) in [(&username, &mut self.usernames), (&custom_id, &mut self.custom_ids)] {
            if let Some(v) = value {
                work.decide.extend(map.get(v).into_iter().flatten().filter(|a| **a > age).cloned());
                insert_sorted(map.entry(v.clone()).or_default(), age.clone());
            }
        }
        work.decide.insert(age.clone());
        let state = ConsumerState {
            age,
            alone,
            username,
            custom_id,
            listed: obj.credentials.clone(),
            accepted: None,
            conflict: None,
            listing_problems: Vec::new(),
        };
        self.consumers.insert(key.clone(), state);
    }

    /// Decides whether one consumer is accepted: it is, unless an older
    /// accepted consumer holds its username or custom_id.
    fn decide(&mut self, age: &Age, work: &mut Work) {
        let Some(state) = self.consumers.get(&age.1) else { return };
        if state.age != *age {
            // Queued under an older creation time; its current age is queued too.
            return;
        }
        let verdict = state.alone.consumer.as_ref().and_then(|_| {
            [("username", &state.username, &self.usernames), ("custom_id", &state.custom_id, &self.custom_ids)]
                .into_iter()
                .find_map(|(field, value, map)| {
                    let value = value.as_ref()?;
                    let holder = map
                        .get(value)?
                        .iter()
                        .take_while(|a| *a < age)
                        .find(|a| self.consumers.get(&a.1).is_some_and(|c| c.accepted.is_some()))?;
                    Some(consumers::taken(&state.object(), field, value, &consumer_ref(&holder.1)))
                })
        });
        let accepted = match verdict {
            Some(_) => None,
            None => state.alone.consumer.clone(),
        };
        let same = match (&state.accepted, &accepted) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same && state.conflict == verdict {
            return;
        }
        let was_accepted = state.accepted.clone();
        let (listed, username, custom_id) = (state.listed.clone(), state.username.clone(), state.custom_id.clone());
        // Younger rivals for the same values are decided again.
        for (value, map) in [(&username, &self.usernames), (&custom_id, &self.custom_ids)] {
            if let Some(v) = value {
                work.decide.extend(map.get(v).into_iter().flatten().filter(|a| *a > age).cloned());
            }
        }
        if !same {
            if let Some(c) = &was_accepted {
                self.index.remove_consumer(c);
                self.unclaim(age, &listed, work);
            }
            if let Some(c) = &accepted {
                self.index.insert_consumer(c.clone());
                let ns = &age.1.0;
                for name in &listed {
                    let secret = Arc::new((ns.clone(), name.clone()));
                    insert_sorted(self.claims.entry(secret.clone()).or_default(), age.clone());
                    work.secrets.insert(secret);
                }
                work.listings.insert(age.1.clone());
            }
        }
        if let Some(state) = self.consumers.get_mut(&age.1) {
            state.accepted = accepted;
            state.conflict = verdict;
            if state.accepted.is_none() {
                state.listing_problems.clear();
            }
        }
    }

    /// Withdraws a consumer's claims on the Secrets it lists.
    fn unclaim(&mut self, age: &Age, listed: &[String], work: &mut Work) {
        for name in listed {
            let secret = Arc::new((age.1.0.clone(), name.clone()));
            remove_sorted(&mut self.claims, &secret, age);
            work.secrets.insert(secret);
        }
    }

    /// Settles who owns one Secret and whether its key is in play; queues
    /// the listings and digests that depend on it.
    fn settle_secret(&mut self, world: &World, key: &Key, work: &mut Work) {
        let old = self.secrets.remove(key).unwrap_or_default();
        if let Some(owner) = &old.owner {
            work.listings.insert(owner.clone());
        }
        if let (Some(digest), Some(age)) = (old.digest, &old.age) {
            remove_sorted(&mut self.digests, &digest, age);
            work.digests.insert(digest);
        }
        let claimants = self.claims.get(key).map(Vec::as_slice).unwrap_or_default();
        // Every consumer listing it says something about it (or its absence).
        work.listings.extend(claimants.iter().map(|a| a.1.clone()));
        let Some(secret) = world.secrets.get(&**key) else { return };
        let Some(owner) = claimants.first().map(|a| a.1.clone()) else { return };
        let age = Age(secret.meta.created, key.clone());
        let mut state = SecretState {
            age: Some(age.clone()),
            secret: Some(secret.clone()),
            owner: Some(owner),
            digest: None,
            problem: None,
        };
        if let Ok(digest) = credentials::usable(secret) {
            if http::HeaderValue::from_str(&secret.meta.uid).is_ok() {
                insert_sorted(self.digests.entry(digest).or_default(), age);
                work.digests.insert(digest);
                state.digest = Some(digest);
            } else {
                state.problem = Some(credentials::invalid_uid(&secret_ref(key)));
            }
        }
        self.secrets.insert(key.clone(), state);
    }

    /// Recomputes the `credentials[i]` problems of one consumer.
    fn list(&mut self, key: &Key) {
        let Some(state) = self.consumers.get(key) else { return };
        if state.accepted.is_none() {
            return;
        }
        let object = state.object();
        let ns = &key.0;
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut problems = Vec::new();
        for (i, name) in state.listed.iter().enumerate() {
            // An existing Secret that an accepted consumer lists has an
            // owner, hence a settled state.
            let settled = self.secrets.get(&(ns.clone(), name.clone()));
            let issue = match settled.and_then(|s| Some((s.secret.as_ref()?, s.owner.as_ref()?))) {
                None => Some(Listing::NotFound),
                Some((secret, owner)) => match owner {
                    owner if *owner != *key => {
                        problems.push(credentials::listing_problem(
                            &object,
                            i,
                            ns,
                            name,
                            Listing::Claimed(&consumer_ref(owner)),
                        ));
                        None
                    }
                    _ if !seen.insert(name) => Some(Listing::Twice),
                    _ => credentials::usable(secret).err().map(|(reason, why)| Listing::Unusable(reason, why)),
                },
            };
            if let Some(issue) = issue {
                problems.push(credentials::listing_problem(&object, i, ns, name, issue));
            }
        }
        if let Some(state) = self.consumers.get_mut(key) {
            state.listing_problems = problems;
        }
    }

    /// Gives one key to the oldest usable Secret carrying it; the others
    /// get a DuplicateKey problem.
    fn settle_digest(&mut self, digest: &KeyDigest, touched: &mut HashSet<Key>) {
        let holders = self.digests.get(digest).cloned().unwrap_or_default();
        let Some(winner) = holders.first() else {
            self.index.set_credential(*digest, None);
            self.digests.remove(digest);
            return;
        };
        let owner_of = |secrets: &HashMap<Key, SecretState>, key: &Key| secrets.get(key).and_then(|s| s.owner.clone());
        let winner_owner = owner_of(&self.secrets, &winner.1);
        let secret = self.secrets.get(&winner.1).and_then(|s| s.secret.as_ref());
        let credential = winner_owner
            .as_ref()
            .and_then(|o| self.consumers.get(o)?.accepted.clone())
            .zip(secret)
            .and_then(|(consumer, secret)| credentials::credential(secret, consumer));
        self.index.set_credential(*digest, credential);
        touched.insert(winner.1.clone());
        if let Some(state) = self.secrets.get_mut(&winner.1) {
            state.problem = None;
        }
        if holders.len() == 1 {
            return;
        }
        let older = secret_ref(&winner.1);
        let older_owner = winner_owner.map(|o| consumer_ref(&o)).unwrap_or_else(unknown);
        for holder in &holders[1..] {
            touched.insert(holder.1.clone());
            let owner = owner_of(&self.secrets, &holder.1).map(|o| consumer_ref(&o)).unwrap_or_else(unknown);
            let problem = credentials::duplicate_key(&secret_ref(&holder.1), &older, &older_owner, &owner);
            if let Some(state) = self.secrets.get_mut(&holder.1) {
                state.problem = Some(problem);
            }
        }
    }
}

fn consumer_ref(key: &Key) -> ObjectRef {
    ObjectRef::new(Kind::KongConsumer, Some(key.0.clone()), key.1.clone())
}

/// Not reached: every Secret in a key contest has an owner.
fn unknown() -> ObjectRef {
    ObjectRef::new(Kind::KongConsumer, None, "?")
}

fn secret_ref(key: &Key) -> ObjectRef {
    ObjectRef::new(Kind::Secret, Some(key.0.clone()), key.1.clone())
}

fn set_problems(map: &mut HashMap<(Kind, Key), Vec<Problem>>, object: (Kind, Key), problems: Vec<Problem>) {
    if problems.is_empty() {
        map.remove(&object);
    } else {
        map.insert(object, problems);
    }
}

fn insert_sorted(list: &mut Vec<Age>, age: Age) {
    if let Err(at) = list.binary_search(&age) {
        list.insert(at, age);
    }
}

fn remove_sorted<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Vec<Age>>, key: &K, age: &Age) {
    if let Some(list) = map.get_mut(key) {
        if let Ok(at) = list.binary_search(age) {
            list.remove(at);
        }
        if list.is_empty() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Object;

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
            format!(
                "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata: {{name: c{}, namespace: {ns}, creationTimestamp: \"{created}\", annotations: {{kubernetes.io/ingress.class: {class}}}}}\n{fields}credentials: [{}]\n",
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
        let consumers: Vec<(String, String)> = world.consumers.keys().cloned().collect();
        let secrets: Vec<(String, String)> = world.secrets.keys().cloned().collect();
        let (kind, keys) = if rng.below(2) == 0 { (Kind::KongConsumer, consumers) } else { (Kind::Secret, secrets) };
        if keys.is_empty() {
            return;
        }
        let (ns, name) = keys[rng.below(keys.len() as u64) as usize].clone();
        world.delete(&ObjectRef::new(kind, Some(ns), name));
    }

    /// What a ConsumerIndex answers, in a comparable form.
    fn view(index: &ConsumerIndex) -> (Vec<String>, Vec<String>) {
        let mut credentials: Vec<String> = KEYS
            .iter()
            .filter_map(|k| {
                let c = index.credential(&KeyDigest::of(k.as_bytes()))?;
                Some(format!("{k} -> {} of {} ({:?}, {})", c.source, c.consumer.source, c.expires_at, c.id))
            })
            .collect();
        credentials.sort();
        assert_eq!(credentials.len(), index.credential_count());
        let mut consumers: Vec<String> =
            index.consumers().map(|c| format!("{} {:?} {:?} {}", c.source, c.username, c.custom_id, c.id)).collect();
        consumers.sort();
        for c in index.consumers() {
            assert!(Arc::ptr_eq(index.consumer(&c.id).unwrap(), c));
            if let Some(u) = &c.username {
                assert!(Arc::ptr_eq(index.consumer(u).unwrap(), c), "username {u}");
            }
        }
        (credentials, consumers)
    }

    #[test]
    fn updates_always_equal_a_translation_from_scratch() {
        let cfg = Config::default();
        for seed in 1..=60u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut world = World::new();
            let mut incremental = ConsumerTranslation::new(cfg.clone());
            for step in 0..60 {
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
                let fresh = ConsumerTranslation::full(&world, &cfg);
                assert_eq!(view(incremental.index()), view(fresh.index()), "seed {seed} step {step}");
                assert_eq!(incremental.problems(), fresh.problems(), "seed {seed} step {step}");
            }
        }
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
        assert_eq!(t.index().credential(&KeyDigest::of(b"new")).unwrap().source, "a/s");
        // The published copy is untouched.
        assert!(before.credential(&KeyDigest::of(b"old")).is_some());
        assert!(Arc::ptr_eq(
            &t.index().credential(&KeyDigest::of(b"new")).unwrap().consumer,
            before.consumer("u").unwrap()
        ));
    }
}
