//! Ingress `spec.tls` -> server certificates by host.
//!
//! Each entry names a Secret in the Ingress's namespace and the hosts it is
//! for. An entry without hosts is for the hosts of the Ingress's own rules:
//! Kubernetes leaves that case to the controller ("the wildcard host
//! setting"), and Portcullis has no default certificate, so the entry is
//! scoped to what the Ingress already routes rather than to every unknown
//! name. A host claimed with different Secrets goes to the oldest Ingress
//! (then the earlier entry); the newer claim is a Conflict. Only usable
//! certificates claim hosts, so a broken Secret leaves its hosts to the next
//! claim (or to none: the handshake then fails).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::networking::v1::IngressTLS;
use rustls::sign::CertifiedKey;

use crate::snapshot::{HostMatch, TlsCert, TlsCertificates};
use crate::world::{IngressObj, Kind, ObjectRef, World};

use super::annotations::{object_ref, printable};
use super::class::ClassFilter;
use super::host::{parse_host, shown};
use super::tls_secret::{CacheRun, covers};
use super::{Problem, Reason};

/// Who holds a host: the Secret (`namespace/name`), the Ingress and the field.
struct Claim {
    secret: String,
    ingress: ObjectRef,
    at: String,
}

pub fn translate(
    world: &World,
    class: &ClassFilter<'_>,
    cache: &mut CacheRun<'_>,
    problems: &mut Vec<Problem>,
) -> TlsCertificates {
    let mut ingresses: Vec<_> = world.ingresses.values().filter(|ing| class.ingress(ing).is_ok()).collect();
    ingresses.sort_by(|a, b| a.meta.age_key().cmp(&b.meta.age_key()));
    let mut certs = TlsCertificates::new();
    let mut claims: BTreeMap<String, Claim> = BTreeMap::new();
    for ing in ingresses {
        let object = object_ref(Kind::Ingress, &ing.meta);
        for (i, entry) in ing.spec.tls.iter().flatten().enumerate() {
            let Some(hosts) = entry_hosts(ing, &object, entry, i, problems) else { continue };
            let Some((secret, key)) = certificate(world, ing, &object, entry, i, cache, problems) else { continue };
            for (host, at) in hosts {
                let name = shown(&host);
                match claims.get(&name) {
                    Some(c) if c.secret == secret => {}
                    Some(c) => problems.push(conflict(&object, at, &name, &secret, c)),
                    None => {
                        if !covers(&key, &host) {
                            problems.push(Problem::new(
                                object.clone(),
                                at.clone(),
                                Reason::TlsHostNotCovered,
                                format!(
                                    "the certificate in Secret {secret} is not valid for '{name}' (see its subject alternative names); it is served for '{name}' anyway, but clients that check names will reject it: issue a certificate that covers the host"
                                ),
                            ));
                        }
                        let cert = TlsCert { secret: secret.clone(), key: key.clone() };
                        certs.insert(&host, cert);
                        claims.insert(name, Claim { secret: secret.clone(), ingress: object.clone(), at });
                    }
                }
            }
        }
    }
    certs
}

/// The entry's hosts with the field each comes from; None when there are
/// none to serve.
fn entry_hosts(
    ing: &IngressObj,
    object: &ObjectRef,
    entry: &IngressTLS,
    i: usize,
    problems: &mut Vec<Problem>,
) -> Option<Vec<(HostMatch, String)>> {
    let listed = entry.hosts.as_deref().unwrap_or_default();
    let mut hosts: Vec<(HostMatch, String)> = Vec::new();
    let push = |hosts: &mut Vec<(HostMatch, String)>, h: HostMatch, at: String| {
        if !hosts.iter().any(|(seen, _)| *seen == h) {
            hosts.push((h, at));
        }
    };
    if listed.is_empty() {
        // Invalid rule hosts are reported with the routes; skipped here.
        for h in ing.spec.rules.iter().flatten().filter_map(|r| r.host.as_deref()).filter(|h| !h.is_empty()) {
            if let Ok(h) = parse_host(h) {
                push(&mut hosts, h, format!("spec.tls[{i}].hosts"));
            }
        }
        if hosts.is_empty() {
            problems.push(Problem::new(
                object.clone(),
                format!("spec.tls[{i}].hosts"),
                Reason::InvalidField,
                "no hosts here and no host in the rules either: certificates are picked by the name the client asks for (SNI) and there is no default certificate, so this entry is not used; list the hosts it is for",
            ));
            return None;
        }
    }
    for (j, raw) in listed.iter().enumerate() {
        match parse_host(raw) {
            Ok(h) => push(&mut hosts, h, format!("spec.tls[{i}].hosts[{j}]")),
            Err(e) => problems.push(Problem::new(
                object.clone(),
                format!("spec.tls[{i}].hosts[{j}]"),
                Reason::InvalidField,
                format!("{e}; no certificate is served for it"),
            )),
        }
    }
    (!hosts.is_empty()).then_some(hosts)
}

/// The entry's Secret, read as a certificate: (`namespace/name`, key).
fn certificate(
    world: &World,
    ing: &IngressObj,
    object: &ObjectRef,
    entry: &IngressTLS,
    i: usize,
    cache: &mut CacheRun<'_>,
    problems: &mut Vec<Problem>,
) -> Option<(String, Arc<CertifiedKey>)> {
    let ns = ing.meta.namespace().unwrap_or_default();
    let at = format!("spec.tls[{i}].secretName");
    let Some(name) = entry.secret_name.as_deref().filter(|n| !n.is_empty()) else {
        problems.push(Problem::new(
            object.clone(),
            at,
            Reason::InvalidField,
            format!(
                "no secretName: Portcullis terminates TLS with the certificate of a Secret; set secretName to a kubernetes.io/tls Secret in namespace {ns}"
            ),
        ));
        return None;
    };
    let key = (ns.to_string(), name.to_string());
    let secret_ref = format!("{ns}/{}", printable(name));
    let Some(secret) = world.secrets.get(&key) else {
        problems.push(Problem::new(
            object.clone(),
            at,
            Reason::TlsSecretNotFound,
            format!(
                "Secret {secret_ref} does not exist, so these hosts get no certificate from it; create a kubernetes.io/tls Secret with tls.crt and tls.key in namespace {ns} (the Secret must be in the Ingress's namespace)"
            ),
        ));
        return None;
    };
    match cache.parse(&key, secret) {
        Ok(certified) => Some((secret_ref, certified)),
        Err(e) => {
            problems.push(Problem::new(
                object.clone(),
                at,
                Reason::InvalidTlsSecret,
                format!("Secret {secret_ref} cannot be used, so these hosts get no certificate from it: {e}"),
            ));
            None
        }
    }
}

fn conflict(object: &ObjectRef, at: String, host: &str, secret: &str, owner: &Claim) -> Problem {
    let holder = if owner.ingress == *object {
        format!("{} of this Ingress", owner.at)
    } else {
        format!("{} (oldest first, then by namespace/name)", owner.ingress)
    };
    Problem::new(
        object.clone(),
        at,
        Reason::Conflict,
        format!(
            "host '{host}' already has the certificate of Secret {} from {holder}, which wins; Secret {secret} is not served for it: use the same Secret in both places, or remove one",
            owner.secret
        ),
    )
}
