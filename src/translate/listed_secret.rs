//! A Secret that accepted consumers list, as the consumer translation
//! keeps it: one per credential, so it holds the World's Secret rather than
//! a copy of its names whenever the Secret exists.

use std::sync::Arc;

use crate::snapshot::KeyDigest;
use crate::world::{Kind, ObjectRef, SecretObj};

use super::Problem;
use super::ids::Ids;

/// A Secret that accepted consumers list, by (namespace, name).
pub struct ListedSecret {
    settled: Settled,
    /// Accepted consumers listing it, oldest first; the first owns it
    /// (read through `State::claimants`).
    pub(super) claimants: Ids,
    pub problem: Option<Box<Problem>>,
}

/// A listed Secret as last settled. Its namespace and name are read from
/// the World's Secret while there is one, and copied only while there is
/// none: a listed Secret that exists (nearly all of them) costs no name
/// block (with the struct's 8 bytes less, 22 bytes less per credential at
/// 100k). Both variants fit in 24 bytes, the flag in the room the names'
/// length leaves.
enum Settled {
    /// The Secret as translated, when it exists and is claimed.
    Found {
        secret: Arc<SecretObj>,
        /// Its key is in that key's contest (a usable key-auth Secret).
        in_contest: bool,
    },
    /// No such Secret (or not settled yet): the namespace, then the name,
    /// in one block, 16 bytes less than two.
    Missing { names: Box<str>, ns_len: u32 },
}

impl Settled {
    /// The namespace is a World object's, which is at most 128 MiB
    /// (`packed`), so its length fits; were it longer, the names would
    /// read back empty rather than panic.
    fn missing(ns: &str, name: &str) -> Self {
        Settled::Missing { names: [ns, name].concat().into(), ns_len: u32::try_from(ns.len()).unwrap_or(u32::MAX) }
    }
}

impl ListedSecret {
    /// Listed by no one yet.
    pub(super) fn new(ns: &str, name: &str) -> Self {
        Self { settled: Settled::missing(ns, name), claimants: Ids::default(), problem: None }
    }

    /// (namespace, name): the same text whether the Secret is found or
    /// not, so `listed_by_name` finds it by the hash it was filed under.
    fn names(&self) -> (&str, &str) {
        match &self.settled {
            Settled::Found { secret, .. } => secret.meta.key(),
            Settled::Missing { names, ns_len } => names.split_at_checked(*ns_len as usize).unwrap_or_default(),
        }
    }

    pub fn ns(&self) -> &str {
        self.names().0
    }

    pub fn name(&self) -> &str {
        self.names().1
    }

    pub fn object(&self) -> ObjectRef {
        ObjectRef::new(Kind::Secret, Some(self.ns().to_string()), self.name())
    }

    /// The Secret as translated, when it exists and is claimed.
    pub fn secret(&self) -> Option<&Arc<SecretObj>> {
        match &self.settled {
            Settled::Found { secret, .. } => Some(secret),
            Settled::Missing { .. } => None,
        }
    }

    /// Settles it as the World's Secret `found` (which has its namespace
    /// and name), out of its key's contest; without one, it keeps a copy
    /// of its names, made before the Secret is let go.
    pub fn settle(&mut self, found: Option<Arc<SecretObj>>) {
        self.settled = match found {
            Some(secret) => {
                debug_assert_eq!(secret.meta.key(), self.names(), "a listed Secret keeps its names");
                Settled::Found { secret, in_contest: false }
            }
            None => match &self.settled {
                Settled::Found { secret, .. } => {
                    let (ns, name) = secret.meta.key();
                    Settled::missing(ns, name)
                }
                Settled::Missing { .. } => return,
            },
        };
    }

    /// Notes that its key is in that key's contest (only a found Secret's
    /// can be).
    pub fn enter_contest(&mut self) {
        if let Settled::Found { in_contest, .. } = &mut self.settled {
            *in_contest = true;
        }
    }

    /// The key it competes for.
    pub fn digest(&self) -> Option<KeyDigest> {
        match &self.settled {
            Settled::Found { secret, in_contest: true } => super::credentials::usable(secret).ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Kind;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn secret(ns: &str, name: &str) -> Arc<SecretObj> {
        let metadata =
            ObjectMeta { name: Some(name.to_string()), namespace: Some(ns.to_string()), ..Default::default() };
        Arc::new(SecretObj::shrink(&Secret { metadata, ..Default::default() }).unwrap())
    }

    #[test]
    fn a_listed_secret_reads_back_its_names_with_or_without_its_secret() {
        // (A Secret's namespace is never empty: shrinking fills in "default".)
        for (ns, name) in [("team-a", "alice-key"), ("é", "ü-key")] {
            let names = |l: &ListedSecret| {
                assert_eq!(l.object(), ObjectRef::new(Kind::Secret, Some(ns.to_string()), name));
                (l.ns().to_string(), l.name().to_string())
            };
            let mut l = ListedSecret::new(ns, name);
            assert_eq!(names(&l), (ns.to_string(), name.to_string()));
            let found = secret(ns, name);
            l.settle(Some(found.clone()));
            assert!(Arc::ptr_eq(l.secret().unwrap(), &found));
            assert_eq!(names(&l), (ns.to_string(), name.to_string()));
            // Copied from the Secret before it is let go.
            drop(found);
            l.settle(None);
            assert!(l.secret().is_none());
            assert_eq!(names(&l), (ns.to_string(), name.to_string()));
            l.settle(None);
            assert_eq!(names(&l), (ns.to_string(), name.to_string()));
        }
        for (ns, name) in [("", "k"), ("ns", "")] {
            let l = ListedSecret::new(ns, name);
            assert_eq!((l.ns(), l.name()), (ns, name));
        }
    }

    #[test]
    fn only_a_found_secret_enters_its_key_contest_and_settling_takes_it_out() {
        let mut l = ListedSecret::new("a", "s");
        l.enter_contest();
        assert!(matches!(l.settled, Settled::Missing { .. }));
        l.settle(Some(secret("a", "s")));
        l.enter_contest();
        assert!(matches!(l.settled, Settled::Found { in_contest: true, .. }));
        l.settle(Some(secret("a", "s")));
        assert!(matches!(l.settled, Settled::Found { in_contest: false, .. }));
    }

    #[test]
    fn a_listed_secret_is_small() {
        // One per credential: the Secret and its flag in the room its names
        // take (8 bytes less than side by side), its claimants in 8.
        assert_eq!(std::mem::size_of::<Settled>(), 24);
        assert_eq!(std::mem::size_of::<Option<ListedSecret>>(), 40);
    }
}
