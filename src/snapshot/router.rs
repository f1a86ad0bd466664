use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::sync::Arc;

use hashbrown::HashMap;
use http::{HeaderMap, Method};

use super::{HostMatch, PathMatch, Route, RouteAuth, Scheme};

/// Routes indexed by host, each bucket sorted by precedence, so a lookup
/// touches only the routes that could answer for the request's host.
///
/// Precedence (KONG_COMPAT §4): exact host, then wildcard host, then no host;
/// within a bucket Exact path, then longest Prefix/prefix, then regexes by
/// priority; routes with more conditions (methods, headers) first; ties go
/// to the oldest Ingress, then by name.
///
/// The host tables hash with foldhash (hashbrown's default): their keys come
/// from configuration, and every request hashes its Host once or twice.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact: HashMap<String, Vec<Arc<Route>>>,
    wildcard: HashMap<String, Vec<Arc<Route>>>,
    any_host: Vec<Arc<Route>>,
    default_backend: Option<Arc<Route>>,
    all: Vec<Arc<Route>>,
}

impl RouteTable {
    pub fn new(routes: Vec<Route>, default_backend: Option<Route>) -> Self {
        let mut table = RouteTable { default_backend: default_backend.map(Arc::new), ..Default::default() };
        let mut all: Vec<Arc<Route>> = routes.into_iter().map(Arc::new).collect();
        all.sort_by(|a, b| precedence(a).cmp(&precedence(b)));
        for route in &all {
            if route.hosts.is_empty() {
                table.any_host.push(route.clone());
            }
            for host in &route.hosts {
                let bucket = match host {
                    HostMatch::Exact(h) => table.exact.entry(h.clone()).or_default(),
                    HostMatch::Wildcard(suffix) => table.wildcard.entry(suffix.clone()).or_default(),
                };
                bucket.push(route.clone());
            }
        }
        table.all = all;
        table
    }

    /// The route for a plain-HTTP request (see `find_for`).
    pub fn find(&self, host: &str, path: &str, method: &Method, headers: &impl FieldValues) -> Option<&Arc<Route>> {
        self.find_for(Scheme::Http, host, path, method, headers)
    }

    /// The route for a request. `host` is lower-cased without port; `path`
    /// is the normalized request path.
    ///
    /// Over plain HTTP every route is a candidate, so an https-only route can
    /// answer 426 or redirect. Over TLS a route limited to http is not a
    /// candidate at all: Kong's router adds `net.protocol == "http"` to such
    /// a route, so the request falls through to the next match (or 404).
    pub fn find_for(
        &self,
        scheme: Scheme,
        host: &str,
        path: &str,
        method: &Method,
        headers: &impl FieldValues,
    ) -> Option<&Arc<Route>> {
        let reachable = |r: &&Arc<Route>| scheme == Scheme::Http || r.protocols.https;
        let wildcard = host.split_once('.').and_then(|(_, suffix)| self.wildcard.get(suffix));
        [self.exact.get(host), wildcard, Some(&self.any_host)]
            .into_iter()
            .flatten()
            .flat_map(|bucket| bucket.iter())
            .filter(reachable)
            .find(|r| r.path.matches(path) && method_matches(r, method) && headers_match(r, headers))
            .or(self.default_backend.as_ref().filter(reachable))
    }

    /// Every route, in precedence order (default backend excluded).
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.all
    }

    pub fn default_backend(&self) -> Option<&Arc<Route>> {
        self.default_backend.as_ref()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.default_backend.is_none()
    }

    /// The consumer names key-auth's `anonymous` settings hold, over every
    /// route: what the consumer index must be able to answer for.
    pub fn anonymous_names(&self) -> BTreeSet<&str> {
        let routes = self.all.iter().chain(&self.default_backend);
        let configs = routes.filter_map(|r| match &r.auth {
            RouteAuth::KeyAuth(config) => config.anonymous.as_deref(),
            RouteAuth::Open | RouteAuth::Unavailable => None,
        });
        configs.collect()
    }
}

fn method_matches(r: &Route, method: &Method) -> bool {
    r.methods.is_empty() || r.methods.contains(method)
}

/// A request's header fields as routing reads them: each value of a
/// (lower-case) name. The proxy's own field list and `HeaderMap` both are.
pub trait FieldValues {
    fn field_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;
}

impl FieldValues for HeaderMap {
    fn field_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).into_iter().map(|v| v.as_bytes())
    }
}

/// Every header condition holds: one of the field's values is one of the
/// wanted ones, exactly. A value that is not visible ASCII matches none.
fn headers_match(r: &Route, headers: &impl FieldValues) -> bool {
    r.headers.iter().all(|h| {
        headers.field_values(h.name.as_str()).any(|v| v.is_ascii() && h.values.iter().any(|want| want.as_bytes() == v))
    })
}

type Precedence<'a> = (u8, Reverse<i64>, Reverse<usize>, std::time::SystemTime, &'a str);

fn precedence(r: &Route) -> Precedence<'_> {
    let (class, weight) = match &r.path {
        PathMatch::Exact(p) => (0, p.len() as i64),
        PathMatch::Prefix(p) | PathMatch::Plain(p) => (1, p.len() as i64),
        PathMatch::Regex { priority, .. } => (2, *priority),
    };
    let conditions = r.headers.len() + usize::from(!r.methods.is_empty());
    (class, Reverse(weight), Reverse(conditions), r.created, &r.name)
}
