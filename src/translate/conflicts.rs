//! Routes that would answer exactly the same requests, and the one
//! cluster-wide default backend: the oldest Ingress wins (Ingresses arrive
//! oldest first), the newer one gets a Conflict Problem.

use hashbrown::HashMap;

use crate::snapshot::{PathMatch, Route, RouteTable};
use crate::world::ObjectRef;

use super::host::shown;
use super::ingress::IngressRoutes;
use super::{Problem, Reason};

/// Everything a route matches on: hosts, path, methods, headers (sorted, so
/// order in the manifest does not matter).
#[derive(PartialEq, Eq, Hash)]
struct MatchKey {
    hosts: Vec<String>,
    path: (&'static str, String),
    methods: Vec<String>,
    headers: Vec<String>,
}

impl MatchKey {
    fn of(r: &Route) -> Self {
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v.dedup();
            v
        };
        let path = match &r.path {
            PathMatch::Exact(p) => ("Exact", p.clone()),
            PathMatch::Prefix(p) => ("Prefix", p.clone()),
            PathMatch::Plain(p) => ("Plain", p.clone()),
            PathMatch::Regex { source, .. } => ("Regex", source.clone()),
        };
        MatchKey {
            hosts: sorted(r.hosts.iter().map(shown).collect()),
            path,
            methods: sorted(r.methods.iter().map(|m| m.to_string()).collect()),
            headers: sorted(
                r.headers
                    .iter()
                    .map(|h| {
                        let values = sorted(h.values.clone());
                        format!("{}: {}", h.name, values.join(","))
                    })
                    .collect(),
            ),
        }
    }
}

/// The routes accepted so far.
#[derive(Default)]
pub struct Accepted {
    routes: Vec<Route>,
    /// Match -> the accepted route (in `routes`) that holds it.
    taken: HashMap<MatchKey, usize>,
    default_backend: Option<(Route, ObjectRef)>,
}

impl Accepted {
    /// Room for about `routes` routes (one per Ingress is typical).
    pub fn with_capacity(routes: usize) -> Self {
        Self { routes: Vec::with_capacity(routes), taken: HashMap::with_capacity(routes), default_backend: None }
    }

    /// Adds one Ingress's routes; call in age order (oldest first).
    pub fn add(&mut self, ingress: IngressRoutes, problems: &mut Vec<Problem>) {
        for c in ingress.routes {
            let key = MatchKey::of(&c.route);
            if let Some(&held) = self.taken.get(&key) {
                let Route { name, source, .. } = &self.routes[held];
                let owner = if *source == c.route.source {
                    format!("route {name}, earlier in this Ingress, which wins")
                } else {
                    format!("route {name} of Ingress {source}, which wins (oldest first, then by namespace/name)")
                };
                problems.push(Problem::new(
                    ingress.object.clone(),
                    c.at.to_string(),
                    Reason::Conflict,
                    format!(
                        "same hosts and path as {owner}; this path is not served: change its host or path, or remove one of them"
                    ),
                ));
                continue;
            }
            self.taken.insert(key, self.routes.len());
            self.routes.push(c.route);
        }
        if let Some(route) = ingress.default_backend {
            match &self.default_backend {
                Some((_, owner)) => problems.push(Problem::new(
                    ingress.object.clone(),
                    "spec.defaultBackend",
                    Reason::Conflict,
                    format!(
                        "{owner} already sets the cluster-wide default backend and wins (oldest first, then by namespace/name); this one is not used: remove one of them"
                    ),
                )),
                None => self.default_backend = Some((route, ingress.object.clone())),
            }
        }
    }

    pub fn into_table(self) -> RouteTable {
        RouteTable::new(self.routes, self.default_backend.map(|(r, _)| r))
    }
}
