//! Plugin attachment (KONG_COMPAT §2): `konghq.com/plugins` on Ingress and
//! Service, global KongClusterPlugins, precedence route > service > global
//! per plugin type. Auth fails closed: a missing or invalid plugin makes the
//! route answer 503 instead of serving it unprotected (divergence).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::api::{ANN_PLUGINS, LABEL_GLOBAL};
use crate::snapshot::{KeyAuthConfig, RouteAuth};
use crate::world::{Kind, KongPluginObj, World};

use super::annotations::{Annotated, comma_list, field, object_ref, printable};
use super::class::ClassFilter;
use super::{Problem, Reason, config_from, key_auth};

pub const KEY_AUTH: &str = "key-auth";

/// One KongPlugin or KongClusterPlugin, validated once per translation.
struct Instance {
    name: String,
    plugin_type: String,
    disabled: bool,
    effect: Effect,
}

enum Effect {
    KeyAuth(Arc<KeyAuthConfig>),
    /// Unusable configuration: routes using it fail closed.
    Invalid,
    /// A type Portcullis does not implement: reported, not enforced.
    Unsupported,
}

/// What is attached to one route.
pub struct Attachment {
    pub auth: RouteAuth,
    /// Every plugin name attached (route, service, global), for display.
    pub names: Vec<String>,
}

/// How specific an attachment is; lower wins.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Route,
    Service,
    Global,
}

pub struct Plugins {
    namespaced: HashMap<(String, String), Arc<Instance>>,
    /// KongClusterPlugins of our ingress class.
    cluster: HashMap<String, Arc<Instance>>,
    /// Names of KongClusterPlugins ignored for their class (for messages).
    ignored_cluster: Vec<String>,
    /// Enabled global plugins, one per type (the oldest).
    global: Vec<Arc<Instance>>,
}

impl Plugins {
    /// Validates every plugin object, reporting each Problem once.
    pub fn new(world: &World, class: &ClassFilter<'_>, problems: &mut Vec<Problem>) -> Self {
        let mut namespaced = HashMap::new();
        for p in world.plugins.values() {
            let key = (p.meta.namespace().unwrap_or_default().to_string(), p.meta.name().to_string());
            let source = format!("{}/{}", key.0, key.1);
            namespaced.insert(key, Arc::new(instance(world, Kind::KongPlugin, p, source, problems)));
        }
        let mut cluster = HashMap::new();
        let mut ignored_cluster = Vec::new();
        let mut globals: Vec<(&KongPluginObj, Arc<Instance>)> = Vec::new();
        for p in world.cluster_plugins.values() {
            if let Err(problem) = class.annotated(Kind::KongClusterPlugin, &p.meta) {
                problems.push(problem);
                ignored_cluster.push(p.meta.name().to_string());
                continue;
            }
            let inst = Arc::new(instance(world, Kind::KongClusterPlugin, p, p.meta.name().to_string(), problems));
            if p.meta.label(LABEL_GLOBAL) == Some("true") && !inst.disabled {
                globals.push((p, inst.clone()));
            }
            cluster.insert(p.meta.name().to_string(), inst);
        }
        globals.sort_by(|a, b| a.0.meta.age_key().cmp(&b.0.meta.age_key()));
        let mut global: Vec<Arc<Instance>> = Vec::new();
        for (p, inst) in globals {
            match global.iter().find(|g| g.plugin_type == inst.plugin_type) {
                Some(older) => problems.push(Problem::new(
                    object_ref(Kind::KongClusterPlugin, &p.meta),
                    format!("metadata.labels[\"{LABEL_GLOBAL}\"]"),
                    Reason::Conflict,
                    format!(
                        "global KongClusterPlugin {} (older) already applies {} to every route; this one is not applied globally",
                        older.name, inst.plugin_type
                    ),
                )),
                None => global.push(inst),
            }
        }
        Self { namespaced, cluster, ignored_cluster, global }
    }

    /// Plugins of a route made from `ingress` to `service`.
    pub fn attach(
        &self,
        ingress: &Annotated<'_>,
        service: Option<&Annotated<'_>>,
        problems: &mut Vec<Problem>,
    ) -> Attachment {
        let mut names: Vec<String> = Vec::new();
        let mut missing = false;
        // plugin type -> (level, instance): the most specific one applies.
        let mut chosen: BTreeMap<&str, (Level, &Instance)> = BTreeMap::new();
        let referrers = [(Level::Route, Some(ingress)), (Level::Service, service)];
        for (level, referrer) in referrers.into_iter().filter_map(|(l, r)| r.map(|r| (l, r))) {
            let mut listed: Vec<&str> = Vec::new();
            for name in referrer.get(ANN_PLUGINS).map(comma_list).into_iter().flatten() {
                // A name repeated in one annotation is the same attachment.
                if listed.contains(&name) {
                    continue;
                }
                listed.push(name);
                push_unique(&mut names, name);
                let Some(inst) = self.resolve(referrer, name, problems) else {
                    missing = true;
                    continue;
                };
                // Kong skips disabled plugins entirely: they shadow nothing.
                if inst.disabled {
                    continue;
                }
                match chosen.get(inst.plugin_type.as_str()) {
                    Some((l, first)) if *l == level => problems.push(Problem::new(
                        referrer.object.clone(),
                        field(ANN_PLUGINS),
                        Reason::Conflict,
                        format!(
                            "'{}' and '{}' are both {} plugins; only '{}' (listed first) applies, remove the other",
                            first.name, inst.name, inst.plugin_type, first.name
                        ),
                    )),
                    Some(_) => {}
                    None => {
                        chosen.insert(&inst.plugin_type, (level, inst));
                    }
                }
            }
        }
        for inst in &self.global {
            push_unique(&mut names, &inst.name);
            chosen.entry(&inst.plugin_type).or_insert((Level::Global, inst));
        }
        let invalid = chosen.values().any(|(_, i)| matches!(i.effect, Effect::Invalid));
        let auth = match chosen.get(KEY_AUTH).map(|(_, i)| &i.effect) {
            _ if missing || invalid => RouteAuth::Unavailable,
            Some(Effect::KeyAuth(cfg)) => RouteAuth::KeyAuth(cfg.clone()),
            _ => RouteAuth::Open,
        };
        Attachment { auth, names }
    }

    /// A name from `konghq.com/plugins`: KongPlugin in the referrer's
    /// namespace, else a KongClusterPlugin of that name.
    fn resolve(&self, referrer: &Annotated<'_>, name: &str, problems: &mut Vec<Problem>) -> Option<&Instance> {
        let ns = referrer.meta.namespace().unwrap_or_default().to_string();
        if let Some(i) = self.namespaced.get(&(ns.clone(), name.to_string())).or_else(|| self.cluster.get(name)) {
            return Some(i);
        }
        let why = if self.ignored_cluster.iter().any(|n| n == name) {
            format!("KongClusterPlugin {} is ignored because of its ingress class (see its problem)", printable(name))
        } else {
            format!("there is no KongPlugin {ns}/{n} and no KongClusterPlugin {n}", n = printable(name))
        };
        problems.push(Problem::new(
            referrer.object.clone(),
            field(ANN_PLUGINS),
            Reason::PluginNotFound,
            format!("plugin '{}' not found: {why}; routes using it answer 503 until this is fixed", printable(name)),
        ));
        None
    }
}

fn push_unique(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|n| n == name) {
        names.push(name.to_string());
    }
}

fn instance(world: &World, kind: Kind, p: &KongPluginObj, source: String, problems: &mut Vec<Problem>) -> Instance {
    let object = object_ref(kind, &p.meta);
    let problem = |field: &str, reason: Reason, message: String| Problem::new(object.clone(), field, reason, message);
    let effect = match p.plugin.as_str() {
        "" => {
            problems.push(problem("plugin", Reason::InvalidField, "no plugin type; set plugin: key-auth".into()));
            Effect::Invalid
        }
        KEY_AUTH => key_auth_effect(world, p, source, &problem, problems),
        other => {
            problems.push(problem(
                "plugin",
                Reason::UnsupportedPlugin,
                format!(
                    "plugin type '{}' is not supported by Portcullis and is not enforced; routes using it are still served",
                    printable(other)
                ),
            ));
            Effect::Unsupported
        }
    };
    Instance { name: p.meta.name().to_string(), plugin_type: p.plugin.clone(), disabled: p.disabled, effect }
}

fn key_auth_effect(
    world: &World,
    p: &KongPluginObj,
    source: String,
    problem: &dyn Fn(&str, Reason, String) -> Problem,
    problems: &mut Vec<Problem>,
) -> Effect {
    let from_secret;
    let config = match (&p.config_from, &p.config) {
        (Some(_), Some(_)) => {
            problems.push(problem(
                "configFrom",
                Reason::InvalidPluginConfig,
                "config and configFrom cannot both be set; keep one (routes using this plugin answer 503 meanwhile)"
                    .into(),
            ));
            return Effect::Invalid;
        }
        (Some(reference), None) => match config_from::resolve(world, reference) {
            Ok(value) => {
                from_secret = value;
                Some(&from_secret)
            }
            Err((field, message)) => {
                let message = format!("{message} (routes using this plugin answer 503 meanwhile)");
                problems.push(problem(field, Reason::InvalidPluginConfig, message));
                return Effect::Invalid;
            }
        },
        (None, config) => config.as_ref(),
    };
    match key_auth::parse(source, config, &p.protocols) {
        Ok(cfg) => Effect::KeyAuth(Arc::new(cfg)),
        Err(errors) => {
            // Settings read from a Secret are named as such.
            let in_secret = |f: String| match &p.config_from {
                Some((ns, name, key)) => format!("configFrom (Secret {ns}/{name} key {key}): {f}"),
                None => f,
            };
            problems.extend(
                errors.into_iter().map(|e| problem(&in_secret(e.field), Reason::InvalidPluginConfig, e.message)),
            );
            Effect::Invalid
        }
    }
}

/// The type of the plugin `name` resolves to from namespace `ns`, without
/// validating it (for checks outside routes, such as consumers).
pub fn plugin_type<'w>(world: &'w World, class: &ClassFilter<'_>, ns: &str, name: &str) -> Option<&'w str> {
    if let Some(p) = world.plugins.get(&(ns.to_string(), name.to_string())) {
        return Some(&p.plugin);
    }
    world
        .cluster_plugins
        .get(&(String::new(), name.to_string()))
        .filter(|p| class.annotated(Kind::KongClusterPlugin, &p.meta).is_ok())
        .map(|p| p.plugin.as_str())
}
