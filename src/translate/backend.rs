//! Ingress backends -> shared `Backend`s: the Service port (by number or
//! name), its ready targets and the Service's annotations. One `Arc<Backend>`
//! per (Service, port), so every route to it shares the round-robin cursor.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hashbrown::HashMap;
use k8s_openapi::api::core::v1::ServicePort;
use k8s_openapi::api::networking::v1::IngressBackend;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::ANN_SERVICE_UPSTREAM;
use crate::snapshot::{Backend, Target};
use crate::world::{EndpointSliceObj, Kind, ObjectRef, ServiceObj, World};

use super::annotations::{Annotated, field, object_ref, printable};
use super::service_settings::ServiceSettings;
use super::{Problem, Reason};

const EXTERNAL_NAME: &str = "ExternalName";
const FQDN: &str = "FQDN";

/// A backend for a route, with the Service it reached (for its plugins).
pub struct Resolved {
    pub backend: Arc<Backend>,
    pub service: Option<Arc<ServiceObj>>,
}

/// Resolves backends for one translation, caching per (Service, port).
pub struct Backends<'w> {
    world: &'w World,
    /// By (namespace, Service, port number), borrowing the Service's names.
    backends: HashMap<(&'w str, &'w str, i32), Arc<Backend>>,
    /// Backends without targets, by (namespace, Service, port as written).
    unresolved: HashMap<(String, String, String), Arc<Backend>>,
    settings: HashMap<(&'w str, &'w str), ServiceSettings>,
    /// EndpointSlices by (namespace, `kubernetes.io/service-name`), in store
    /// order: looked up per Service instead of scanning every slice.
    slices: HashMap<(&'w str, &'w str), Vec<&'w EndpointSliceObj>>,
}

/// `backend.service.port` as written.
enum PortRef<'a> {
    Number(i32),
    Name(&'a str),
}

impl std::fmt::Display for PortRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => f.write_str(n),
        }
    }
}

impl<'w> Backends<'w> {
    pub fn new(world: &'w World) -> Self {
        let mut slices: HashMap<(&str, &str), Vec<&EndpointSliceObj>> =
            HashMap::with_capacity(world.endpoint_slices.len());
        for slice in world.endpoint_slices.values() {
            if let (Some(ns), Some(service)) = (slice.meta.namespace(), slice.service_name.as_deref()) {
                slices.entry((ns, service)).or_default().push(slice);
            }
        }
        // Most Services back some route: size for all of them once.
        let services = world.services.len();
        Self {
            world,
            backends: HashMap::with_capacity(services),
            unresolved: HashMap::new(),
            settings: HashMap::with_capacity(services),
            slices,
        }
    }

    /// The backend of one Ingress path (or default backend) at `at`
    /// (`spec.rules[0].http.paths[1].backend`). None when the reference
    /// itself is unusable; a Service or port that does not exist yields a
    /// backend without targets (503) so the route still fails safe.
    pub fn resolve(
        &mut self,
        ingress: &ObjectRef,
        ns: &str,
        b: &IngressBackend,
        at: &dyn std::fmt::Display,
        problems: &mut Vec<Problem>,
    ) -> Option<Resolved> {
        let Some(svc_ref) = &b.service else {
            problems.push(match &b.resource {
                Some(r) => Problem::new(
                    ingress.clone(),
                    format!("{at}.resource"),
                    Reason::UnsupportedBackend,
                    format!(
                        "a {} backend is not supported; Portcullis routes to Services only: use {at}.service",
                        printable(&r.kind)
                    ),
                ),
                None => Problem::new(
                    ingress.clone(),
                    at.to_string(),
                    Reason::InvalidField,
                    "backend names no Service; set service.name and service.port",
                ),
            });
            return None;
        };
        let port = match svc_ref.port.as_ref().map(|p| (p.number, p.name.as_deref().filter(|n| !n.is_empty()))) {
            Some((Some(n), _)) => PortRef::Number(n),
            Some((None, Some(name))) => PortRef::Name(name),
            _ => {
                problems.push(Problem::new(
                    ingress.clone(),
                    format!("{at}.service.port"),
                    Reason::InvalidField,
                    "no port; set service.port.number or service.port.name",
                ));
                return None;
            }
        };
        let name = &svc_ref.name;
        let world = self.world;
        let Some(svc) = world.services.get(&(ns, name.as_str())) else {
            problems.push(Problem::new(
                ingress.clone(),
                format!("{at}.service.name"),
                Reason::ServiceNotFound,
                format!("Service {ns}/{name} does not exist; requests to this path answer 503 until it does"),
            ));
            return Some(Resolved { backend: self.unresolved(ns, name, &port), service: None });
        };
        let Some(svc_port) = find_port(svc, &port) else {
            problems.push(Problem::new(
                ingress.clone(),
                format!("{at}.service.port"),
                Reason::PortNotFound,
                format!(
                    "Service {ns}/{name} has no port {port} (it has: {}); requests to this path answer 503 until it does",
                    port_list(svc)
                ),
            ));
            // Still read the Service's annotations so their Problems show.
            self.settings(svc, problems);
            return Some(Resolved { backend: self.unresolved(ns, name, &port), service: Some(svc.clone()) });
        };
        let key = (svc.meta.namespace().unwrap_or_default(), svc.meta.name(), svc_port.port);
        if let Some(backend) = self.backends.get(&key) {
            return Some(Resolved { backend: backend.clone(), service: Some(svc.clone()) });
        }
        let settings = self.settings(svc, problems);
        let mut backend = Backend::new(
            [ns, name.as_str(), itoa::Buffer::new().format(svc_port.port)].join("."),
            targets(&self.slices, svc, &svc_port, &settings, problems),
        );
        backend.path = settings.path;
        backend.host_header = settings.host_header;
        backend.timeouts = settings.timeouts;
        backend.retries = settings.retries;
        let backend = Arc::new(backend);
        self.backends.insert(key, backend.clone());
        Some(Resolved { backend, service: Some(svc.clone()) })
    }

    /// A backend without targets for a reference that leads nowhere.
    fn unresolved(&mut self, ns: &str, name: &str, port: &PortRef<'_>) -> Arc<Backend> {
        let key = (ns.to_string(), name.to_string(), port.to_string());
        self.unresolved
            .entry(key)
            .or_insert_with(|| Arc::new(Backend::new(format!("{ns}.{name}.{port}"), Vec::new())))
            .clone()
    }

    /// Settings are read (and their Problems reported) once per Service.
    fn settings(&mut self, svc: &'w ServiceObj, problems: &mut Vec<Problem>) -> ServiceSettings {
        let key = (svc.meta.namespace().unwrap_or_default(), svc.meta.name());
        self.settings
            .entry(key)
            .or_insert_with(|| {
                let object = object_ref(Kind::Service, &svc.meta);
                ServiceSettings::read(&Annotated { object: &object, meta: &svc.meta }, problems)
            })
            .clone()
    }
}

/// The Service port a backend names. An ExternalName Service may list no
/// ports; a port number then stands for itself, as in KIC.
fn find_port<'s>(svc: &'s ServiceObj, port: &PortRef<'_>) -> Option<Cow<'s, ServicePort>> {
    let found = svc.ports.iter().find(|p| match port {
        PortRef::Number(n) => p.port == *n,
        PortRef::Name(name) => p.name.as_deref() == Some(*name),
    });
    match (found, port) {
        (Some(p), _) => Some(Cow::Borrowed(p)),
        (None, PortRef::Number(n)) if svc.type_ == EXTERNAL_NAME => {
            Some(Cow::Owned(ServicePort { port: *n, ..Default::default() }))
        }
        _ => None,
    }
}

fn port_list(svc: &ServiceObj) -> String {
    if svc.ports.is_empty() {
        return "no ports".into();
    }
    let shown: Vec<String> = svc
        .ports
        .iter()
        .map(|p| match &p.name {
            Some(n) if !n.is_empty() => format!("{} ({n})", p.port),
            _ => p.port.to_string(),
        })
        .collect();
    shown.join(", ")
}

fn targets(
    slices: &HashMap<(&str, &str), Vec<&EndpointSliceObj>>,
    svc: &ServiceObj,
    port: &ServicePort,
    settings: &ServiceSettings,
    problems: &mut Vec<Problem>,
) -> Vec<Target> {
    let object = || object_ref(Kind::Service, &svc.meta);
    let service_port = u16::try_from(port.port).ok().filter(|p| *p != 0);
    if svc.type_ == EXTERNAL_NAME {
        let (Some(host), Some(port)) = (&svc.external_name, service_port) else {
            problems.push(Problem::new(
                object(),
                "spec.externalName",
                Reason::InvalidField,
                "an ExternalName Service needs spec.externalName and a port from 1 to 65535; no targets meanwhile",
            ));
            return Vec::new();
        };
        return vec![Target::Name { host: host.clone(), port }];
    }
    if settings.service_upstream {
        match (svc.cluster_ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok()), service_port) {
            (Some(ip), Some(port)) => return vec![Target::Addr(SocketAddr::new(ip, port))],
            _ => problems.push(Problem::new(
                object(),
                field(ANN_SERVICE_UPSTREAM),
                Reason::InvalidAnnotation,
                "the Service has no ClusterIP (headless?); sending to its endpoints instead; remove the annotation or give the Service a ClusterIP",
            )),
        }
    }
    let ns = svc.meta.namespace().unwrap_or_default();
    let mut out: Vec<Target> = Vec::new();
    for slice in slices.get(&(ns, svc.meta.name())).into_iter().flatten() {
        slice_targets(slice, port, &mut out, problems);
    }
    out
}

/// Adds to `out` the ready endpoints of one slice (those not already there)
/// on the slice port serving `port`. Slice ports carry the Service port's
/// name; a slice written by hand may instead use the targetPort's name or
/// number, so those are tried next.
fn slice_targets(slice: &EndpointSliceObj, port: &ServicePort, out: &mut Vec<Target>, problems: &mut Vec<Problem>) {
    let svc_port_name = port.name.as_deref().unwrap_or_default();
    let by_service_port = slice.ports.iter().find(|p| p.name.as_deref().unwrap_or_default() == svc_port_name);
    let by_target = || {
        slice.ports.iter().find(|p| match port.target_port.as_ref() {
            Some(IntOrString::String(name)) => p.name.as_deref() == Some(name.as_str()),
            Some(IntOrString::Int(n)) => p.port == Some(*n),
            None => p.port == Some(port.port),
        })
    };
    let Some(number) =
        by_service_port.or_else(by_target).and_then(|p| p.port).and_then(|n| u16::try_from(n).ok()).filter(|n| *n != 0)
    else {
        return;
    };
    let mut add = |t: Target| {
        if !out.contains(&t) {
            out.push(t);
        }
    };
    for (i, endpoint) in slice.endpoints.iter().enumerate() {
        if !endpoint.ready {
            continue;
        }
        for (j, address) in endpoint.addresses.iter().enumerate() {
            if slice.address_type == FQDN {
                add(Target::Name { host: address.clone(), port: number });
                continue;
            }
            match address.parse::<IpAddr>() {
                Ok(ip) => add(Target::Addr(SocketAddr::new(ip, number))),
                Err(_) => problems.push(Problem::new(
                    object_ref(Kind::EndpointSlice, &slice.meta),
                    format!("endpoints[{i}].addresses[{j}]"),
                    Reason::InvalidField,
                    format!("'{}' is not an IP address; this endpoint is skipped", printable(address)),
                )),
            }
        }
    }
}
