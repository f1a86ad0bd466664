//! One accepted Ingress -> its routes: rules x paths, hosts, path matches,
//! backends, annotation settings and attached plugins.

use std::time::SystemTime;

use k8s_openapi::api::networking::v1::IngressBackend;

use crate::snapshot::{HostMatch, PathMatch, Route};
use crate::world::{IngressObj, Kind, ObjectRef};

use super::annotations::{Annotated, object_ref};
use super::backend::Backends;
use super::host::{parse_host, shown};
use super::path::{PathError, path_match};
use super::plugins::Plugins;
use super::route_settings::RouteSettings;
use super::{Problem, Reason};

/// A route and the field of the Ingress it came from (for conflict Problems).
pub struct Candidate {
    pub route: Route,
    pub at: PathField,
}

/// `spec.rules[i].http.paths[j]`: formatted only when a Problem names it
/// (most routes have none, and 10k Ingresses are 10k strings per rebuild).
#[derive(Clone, Copy, Debug)]
pub struct PathField {
    rule: usize,
    path: usize,
}

impl std::fmt::Display for PathField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "spec.rules[{}].http.paths[{}]", self.rule, self.path)
    }
}

pub struct IngressRoutes {
    pub object: ObjectRef,
    pub routes: Vec<Candidate>,
    pub default_backend: Option<Route>,
}

/// What every route of one Ingress shares, and where its results go.
struct Context<'a, 'w> {
    ann: Annotated<'a>,
    ns: &'a str,
    settings: RouteSettings,
    created: SystemTime,
    /// `namespace/name`, which every route carries.
    source: String,
    backends: &'a mut Backends<'w>,
    plugins: &'a Plugins,
    problems: &'a mut Vec<Problem>,
}

pub fn translate(
    ing: &IngressObj,
    backends: &mut Backends<'_>,
    plugins: &Plugins,
    problems: &mut Vec<Problem>,
) -> IngressRoutes {
    let object = object_ref(Kind::Ingress, &ing.meta);
    let ann = Annotated { object: &object, meta: &ing.meta };
    let settings = RouteSettings::read(&ann, problems);
    let ns = ing.meta.namespace().unwrap_or_default();
    let mut cx = Context {
        ann,
        ns,
        settings,
        created: SystemTime::from(ing.meta.created()),
        source: [ns, ing.meta.name()].join("/"),
        backends,
        plugins,
        problems,
    };
    let mut routes = Vec::new();
    for (i, rule) in ing.spec.rules.iter().flatten().enumerate() {
        let Some(hosts) = cx.rule_hosts(rule.host.as_deref(), i) else { continue };
        let paths = rule.http.as_ref().map(|h| h.paths.as_slice()).unwrap_or_default();
        if paths.is_empty() {
            cx.problems.push(Problem::new(
                object.clone(),
                format!("spec.rules[{i}].http"),
                Reason::InvalidField,
                "rule has no http paths, so nothing is routed for it; add http.paths",
            ));
        }
        for (j, p) in paths.iter().enumerate() {
            let at = PathField { rule: i, path: j };
            let path = match path_match(p.path.as_deref(), &p.path_type, cx.settings.regex_priority) {
                Ok(m) => m,
                Err(e) => {
                    let field = if matches!(e, PathError::UnknownType(_)) { "pathType" } else { "path" };
                    cx.problems.push(Problem::new(
                        object.clone(),
                        format!("{at}.{field}"),
                        Reason::InvalidField,
                        format!("{e}; this path is not served"),
                    ));
                    continue;
                }
            };
            let name = route_name(cx.ns, ing.meta.name(), &[i, j]);
            if let Some(route) = cx.route(name, hosts.clone(), path, &p.backend, &format_args!("{at}.backend")) {
                routes.push(Candidate { route, at });
            }
        }
    }
    let default_backend = ing.spec.default_backend.as_ref().and_then(|b| {
        let name = format!("{}.{}.default-backend", cx.ns, ing.meta.name());
        // The router hands the default backend every unmatched request, so
        // method and header conditions would never be checked: leave them out.
        cx.route(name, Vec::new(), PathMatch::Prefix("/".into()), b, &"spec.defaultBackend").map(|mut r| {
            r.methods.clear();
            r.headers.clear();
            r
        })
    });
    IngressRoutes { object, routes, default_backend }
}

/// `namespace.name.i.j`: built by hand because it runs for every path of
/// every Ingress on each rebuild, where `format!` was a fifth of the time.
fn route_name(ns: &str, name: &str, indexes: &[usize]) -> String {
    let mut out = String::with_capacity(ns.len() + name.len() + 2 + 4 * indexes.len());
    out.push_str(ns);
    out.push('.');
    out.push_str(name);
    for i in indexes {
        out.push('.');
        out.push_str(itoa::Buffer::new().format(*i));
    }
    out
}

impl Context<'_, '_> {
    /// The rule's host plus `konghq.com/host-aliases` (as KIC: aliases are
    /// added to every rule). None when the host is invalid: serving the rule
    /// for every host instead would widen it.
    fn rule_hosts(&mut self, host: Option<&str>, i: usize) -> Option<Vec<HostMatch>> {
        let mut hosts = Vec::new();
        if let Some(h) = host.filter(|h| !h.is_empty()) {
            match parse_host(h) {
                Ok(h) => hosts.push(h),
                Err(e) => {
                    self.problems.push(Problem::new(
                        self.ann.object.clone(),
                        format!("spec.rules[{i}].host"),
                        Reason::InvalidField,
                        format!("{e}; this rule is not served"),
                    ));
                    return None;
                }
            }
        }
        for alias in &self.settings.host_aliases {
            if !hosts.iter().any(|h| shown(h) == shown(alias)) {
                hosts.push(alias.clone());
            }
        }
        Some(hosts)
    }

    fn route(
        &mut self,
        name: String,
        hosts: Vec<HostMatch>,
        path: PathMatch,
        backend: &IngressBackend,
        at: &dyn std::fmt::Display,
    ) -> Option<Route> {
        let resolved = self.backends.resolve(self.ann.object, self.ns, backend, at, self.problems)?;
        let svc_ref = resolved.service.as_ref().map(|s| object_ref(Kind::Service, &s.meta));
        let svc_ann =
            resolved.service.as_ref().zip(svc_ref.as_ref()).map(|(s, r)| Annotated { object: r, meta: &s.meta });
        let attached = self.plugins.attach(&self.ann, svc_ann.as_ref(), self.problems);
        let s = &self.settings;
        Some(Route {
            name,
            source: self.source.clone(),
            hosts,
            path,
            methods: s.methods.clone(),
            headers: s.headers.clone(),
            protocols: s.protocols,
            https_redirect_status: s.https_redirect_status,
            strip_path: s.strip_path,
            preserve_host: s.preserve_host,
            backend: resolved.backend,
            auth: attached.auth,
            plugins: attached.names,
            created: self.created,
        })
    }
}
