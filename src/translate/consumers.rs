//! KongConsumers -> Consumers (KONG_COMPAT §5). A consumer is kept with
//! whatever credentials are usable; one that cannot be a consumer at all
//! (no username/custom_id, taken username, value unfit for a header) is
//! left out with a Problem.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderValue;

use crate::api::ANN_PLUGINS;
use crate::snapshot::{Consumer, ConsumerIndex};
use crate::world::{Kind, KongConsumerObj, ObjectRef, World};

use super::annotations::{comma_list, field, object_ref, printable};
use super::class::ClassFilter;
use super::credentials::Credentials;
use super::plugins::{KEY_AUTH, plugin_type};
use super::{Config, Problem, Reason};

pub fn translate(world: &World, cfg: &Config) -> (ConsumerIndex, Vec<Problem>) {
    let class = ClassFilter::new(world, cfg);
    let mut problems = Vec::new();
    let mut index = ConsumerIndex::new();
    let mut taken = Taken::default();
    let mut credentials = Credentials::new(world);
    let mut consumers: Vec<_> = world.consumers.values().collect();
    // Oldest first: the older consumer keeps a contested username or Secret.
    consumers.sort_by(|a, b| a.meta.age_key().cmp(&b.meta.age_key()));
    for c in consumers {
        if let Err(p) = class.annotated(Kind::KongConsumer, &c.meta) {
            problems.push(p);
            continue;
        }
        let object = object_ref(Kind::KongConsumer, &c.meta);
        check_plugins(world, &class, c, &object, &mut problems);
        let Some(consumer) = consumer(c, &object, &mut taken, &mut problems) else { continue };
        let consumer = Arc::new(consumer);
        index.insert_consumer(consumer.clone());
        credentials.collect(c, &object, &consumer, &mut problems);
    }
    credentials.insert_into(&mut index, &mut problems);
    (index, problems)
}

/// Usernames and custom_ids in use, with the consumer holding each: both
/// are unique in Kong.
#[derive(Default)]
struct Taken {
    username: HashMap<String, ObjectRef>,
    custom_id: HashMap<String, ObjectRef>,
}

fn consumer(
    c: &KongConsumerObj,
    object: &ObjectRef,
    taken: &mut Taken,
    problems: &mut Vec<Problem>,
) -> Option<Consumer> {
    let mut reject = |field: &str, reason: Reason, why: String| {
        problems.push(Problem::new(object.clone(), field, reason, format!("{why}; this consumer is ignored")));
    };
    if c.username.is_none() && c.custom_id.is_none() {
        reject("username", Reason::InvalidField, "needs username or custom_id (or both)".into());
        return None;
    }
    let source = format!("{}/{}", c.meta.namespace.as_deref().unwrap_or_default(), c.meta.name);
    let Some(consumer) = Consumer::new(c.meta.uid.clone(), c.username.clone(), c.custom_id.clone(), source) else {
        let fields = [
            ("username", c.username.as_deref()),
            ("custom_id", c.custom_id.as_deref()),
            ("metadata.uid", Some(&c.meta.uid)),
        ];
        let (field, value) = fields
            .into_iter()
            .find_map(|(f, v)| v.filter(|v| HeaderValue::from_str(v).is_err()).map(|v| (f, v)))
            .unwrap_or(("username", ""));
        reject(
            field,
            Reason::InvalidField,
            format!("'{}' cannot be sent as a header value; remove control characters", printable(value)),
        );
        return None;
    };
    for (field, value, map) in
        [("username", &c.username, &taken.username), ("custom_id", &c.custom_id, &taken.custom_id)]
    {
        if let Some(owner) = value.as_ref().and_then(|v| map.get(v)) {
            let shown = printable(value.as_deref().unwrap_or_default());
            reject(
                field,
                Reason::Conflict,
                format!("{field} '{shown}' is already used by the older {owner}; it must be unique"),
            );
            return None;
        }
    }
    if let Some(u) = &c.username {
        taken.username.insert(u.clone(), object.clone());
    }
    if let Some(id) = &c.custom_id {
        taken.custom_id.insert(id.clone(), object.clone());
    }
    Some(consumer)
}

/// Plugins on a consumer: key-auth is not allowed there (Kong rejects
/// consumer-scoped key-auth); other consumer plugins are not implemented.
fn check_plugins(
    world: &World,
    class: &ClassFilter<'_>,
    c: &KongConsumerObj,
    object: &ObjectRef,
    problems: &mut Vec<Problem>,
) {
    let ns = c.meta.namespace.as_deref().unwrap_or_default();
    for name in c.meta.annotation(ANN_PLUGINS).map(comma_list).into_iter().flatten() {
        let (reason, message) = match plugin_type(world, class, ns, name) {
            Some(KEY_AUTH) => (
                Reason::PluginNotAllowed,
                format!(
                    "'{name}' is a key-auth plugin, which cannot apply to a consumer; attach it to the Service or Ingress instead"
                ),
            ),
            Some(other) => (
                Reason::UnsupportedPlugin,
                format!(
                    "'{name}' ({}): plugins on consumers are not supported by Portcullis and are not enforced",
                    printable(other)
                ),
            ),
            None => (
                Reason::PluginNotFound,
                format!("plugin '{}' not found in namespace {ns} or as a KongClusterPlugin", printable(name)),
            ),
        };
        problems.push(Problem::new(object.clone(), field(ANN_PLUGINS), reason, message));
    }
}
