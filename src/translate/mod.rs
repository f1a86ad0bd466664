//! World -> (Snapshot, Problems). Pure and synchronous: no I/O, no clock, no
//! tokio. Routes, consumers and TLS certificates are translated separately
//! so a credential change never rebuilds the router (and vice versa).

mod annotations;
mod anonymous;
mod backend;
mod class;
mod config_from;
mod conflicts;
mod consumer_full;
mod consumer_index;
mod consumer_state;
mod consumers;
mod credentials;
mod host;
mod ids;
mod ingress;
mod key_auth;
mod key_contests;
mod listed_secret;
mod path;
mod plugins;
mod problem;
mod references;
mod route_settings;
mod service_settings;
mod tls;
mod tls_secret;

use std::fmt;
use std::sync::Arc;

pub use consumer_index::ConsumerTranslation;
pub use problem::{Problem, Reason};
pub use references::referenced_secrets;
pub use tls_secret::{CertCache, TlsSecretError};

use crate::at_once::at_once;
use crate::snapshot::{Consumer, ConsumerIndex, RouteTable, Snapshot, Summary, TlsCertificates};
use crate::world::World;

/// Settings that change how objects are read (from CLI flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `--ingress-class` (default `kong`).
    pub ingress_class: String,
    /// `--controller-name`: the IngressClass `spec.controller` we answer to.
    pub controller_name: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ingress_class: crate::api::DEFAULT_INGRESS_CLASS.into(),
            controller_name: crate::api::DEFAULT_CONTROLLER_NAME.into(),
        }
    }
}

/// A translated Snapshot and every Problem found on the way.
pub struct Translation {
    pub snapshot: Snapshot,
    pub problems: Vec<Problem>,
    /// Knows every accepted consumer, credentials or not (the snapshot
    /// finds consumers only through credentials and `anonymous` settings);
    /// kept for `summary` only, so nothing is listed unless it is asked for.
    consumers: ConsumerTranslation,
}

impl fmt::Debug for Translation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Translation").field("snapshot", &self.snapshot).field("problems", &self.problems).finish()
    }
}

impl Translation {
    /// A serializable, secret-free view (for `check` and golden tests).
    pub fn summary(&self) -> Summary {
        let consumers: Vec<Consumer> = self.consumers.accepted().collect();
        Summary::of(&self.snapshot, &consumers)
    }
}

/// Translates the whole World.
pub fn translate(world: &World, cfg: &Config) -> Translation {
    let ((routes, mut problems), mut consumers) =
        at_once(|| routes(world, cfg), || ConsumerTranslation::full(world, cfg));
    consumers.want_anonymous(routes.anonymous_names());
    problems.extend(consumers.problems());
    let (certs, tls_problems) = tls(world, cfg, &mut CertCache::new());
    problems.extend(tls_problems);
    problems.sort();
    problems.dedup();
    let index = Arc::new(consumers.index().clone());
    let snapshot = Snapshot::new(Arc::new(routes), index).with_tls(Arc::new(certs));
    Translation { snapshot, problems, consumers }
}

/// Routes, backends and route auth: reads Ingress, IngressClass, Service,
/// EndpointSlice, KongPlugin and KongClusterPlugin.
pub fn routes(world: &World, cfg: &Config) -> (RouteTable, Vec<Problem>) {
    let mut problems = class::ingress_class_problems(world, cfg);
    let class = class::ClassFilter::new(world, cfg);
    let plugins = plugins::Plugins::new(world, &class, &mut problems);
    let mut backends = backend::Backends::new(world);
    let mut ingresses: Vec<_> = world.ingresses.values().collect();
    ingresses.sort_by_cached_key(|i| i.meta.age_key());
    let mut accepted = conflicts::Accepted::with_capacity(ingresses.len());
    for ing in ingresses {
        match class.ingress(ing) {
            Ok(()) => accepted.add(ingress::translate(ing, &mut backends, &plugins, &mut problems), &mut problems),
            Err(p) => problems.push(p),
        }
    }
    problems.sort();
    problems.dedup();
    (accepted.into_table(), problems)
}

/// Consumers and the credential index: reads KongConsumer, Secret and
/// IngressClass. No `anonymous` name is resolved: those come with the
/// routes (see `translate`).
pub fn consumers(world: &World, cfg: &Config) -> (ConsumerIndex, Vec<Problem>) {
    let translation = ConsumerTranslation::full(world, cfg);
    (translation.index().clone(), translation.problems())
}

/// TLS server certificates from the `spec.tls` of accepted Ingresses:
/// reads Ingress, IngressClass and Secret. `cache` keeps parsed Secrets
/// between calls (a memo: the result is the same without it).
pub fn tls(world: &World, cfg: &Config, cache: &mut CertCache) -> (TlsCertificates, Vec<Problem>) {
    let class = class::ClassFilter::new(world, cfg);
    let mut problems = Vec::new();
    let certs = tls::translate(world, &class, &mut cache.run(), &mut problems);
    problems.sort();
    problems.dedup();
    (certs, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{KeyDigest, RouteAuth};

    fn world(yaml: &str) -> World {
        let mut world = World::new();
        for doc in crate::source::manifest::parse(yaml).unwrap() {
            world.apply(doc.result.unwrap()).unwrap();
        }
        world
    }

    const ROUTES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default, annotations: {konghq.com/plugins: auth}}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: configuration.konghq.com/v1
kind: KongPlugin
metadata: {name: auth, namespace: default}
plugin: key-auth
config: {key_names: [api_key]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default, annotations: {konghq.com/plugins: rl}}
spec:
  ingressClassName: kong
  rules:
  - http:
      paths:
      - {path: /a, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
      - {path: /b, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
---
apiVersion: configuration.konghq.com/v1
kind: KongPlugin
metadata: {name: rl, namespace: default}
plugin: rate-limiting
"#;

    #[test]
    fn routes_to_one_service_port_share_one_backend() {
        let (table, _) = routes(&world(ROUTES), &Config::default());
        let [a, b] = table.routes() else { panic!("two routes expected") };
        assert!(Arc::ptr_eq(&a.backend, &b.backend));
    }

    #[test]
    fn key_auth_config_reaches_the_route_and_unsupported_plugins_do_not_block_it() {
        let (table, problems) = routes(&world(ROUTES), &Config::default());
        let route = &table.routes()[0];
        let RouteAuth::KeyAuth(cfg) = &route.auth else { panic!("key-auth expected, got {:?}", route.auth) };
        assert_eq!(cfg.key_names[0].header, "api_key");
        assert_eq!(cfg.key_names[0].header_alt.as_ref().map(|h| h.as_str()), Some("api-key"));
        assert_eq!(route.plugins, ["rl", "auth"]);
        assert_eq!(problems.iter().map(|p| p.reason).collect::<Vec<_>>(), [Reason::UnsupportedPlugin]);
    }

    #[test]
    fn a_missing_plugin_fails_closed() {
        let yaml = ROUTES.replace("konghq.com/plugins: rl", "konghq.com/plugins: gone");
        let (table, problems) = routes(&world(&yaml), &Config::default());
        assert!(table.routes().iter().all(|r| matches!(r.auth, RouteAuth::Unavailable)));
        assert!(problems.iter().any(|p| p.reason == Reason::PluginNotFound));
    }

    const CONSUMERS: &str = r#"
apiVersion: configuration.konghq.com/v1
kind: KongConsumer
metadata: {name: alex, namespace: default, uid: consumer-uid, annotations: {kubernetes.io/ingress.class: kong}}
username: alex
credentials: [alex-key]
---
apiVersion: configuration.konghq.com/v1
kind: KongConsumer
metadata: {name: sam, namespace: default, annotations: {kubernetes.io/ingress.class: kong}}
username: sam
credentials: [sam-key]
---
apiVersion: v1
kind: Secret
metadata:
  name: alex-key
  namespace: default
  uid: secret-uid
  creationTimestamp: "2024-01-01T00:00:00Z"
  labels: {konghq.com/credential: key-auth}
stringData: {key: hello_world, ttl: "60"}
---
apiVersion: v1
kind: Secret
metadata:
  name: sam-key
  namespace: default
  creationTimestamp: "2024-02-01T00:00:00Z"
  labels: {konghq.com/credential: key-auth}
stringData: {key: hello_world}
"#;

    #[test]
    fn credentials_are_found_by_key_digest_and_the_oldest_keeps_a_shared_key() {
        let (index, problems) = consumers(&world(CONSUMERS), &Config::default());
        let cred = index.credential(&KeyDigest::of(b"hello_world")).expect("credential for hello_world");
        assert_eq!(cred.source(), "default/alex-key");
        assert_eq!(cred.uid().to_string(), "secret-uid");
        assert_eq!(cred.consumer.uid().to_string(), "consumer-uid");
        let created = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_704_067_200);
        assert_eq!(cred.expires_at(), Some(created + std::time::Duration::from_secs(60)));
        assert_eq!(index.credential_count(), 1);
        assert_eq!(index.consumer_count(), 2, "the consumer losing a key still exists");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].reason, Reason::DuplicateKey);
        assert!(!problems[0].message.contains("hello_world"));
    }

    #[test]
    fn translate_sorts_and_dedups_problems() {
        let yaml = format!("{ROUTES}---\n{CONSUMERS}");
        let t = translate(&world(&yaml), &Config::default());
        assert!(t.problems.windows(2).all(|w| w[0] < w[1]), "{:#?}", t.problems);
    }
}
