//! One KongConsumer -> a Consumer (KONG_COMPAT §5), as far as the object
//! alone decides: a consumer that cannot be one at all (wrong class, no
//! username/custom_id, value unfit for a header) is left out with a Problem.
//! The rules between consumers are `consumer_index`'s.

use std::sync::Arc;

use http::HeaderValue;

use crate::api::ANN_PLUGINS;
use crate::snapshot::Consumer;
use crate::world::{Kind, KongConsumerObj, ObjectRef, World};

use super::annotations::{comma_list, field, object_ref, printable};
use super::class::ClassFilter;
use super::plugins::{KEY_AUTH, plugin_type};
use super::{Problem, Reason};

/// What one KongConsumer is on its own, before it is weighed against the
/// others (the contests for usernames, custom_ids and Secrets).
pub struct Alone {
    /// The consumer, unless something about this object alone rules it out.
    pub consumer: Option<Consumer>,
    pub problems: Vec<Problem>,
    /// It names plugins: their changes may change its problems.
    pub names_plugins: bool,
}

/// Reads one KongConsumer: class, plugins, identity fields.
pub fn alone(world: &World, class: &ClassFilter<'_>, c: &Arc<KongConsumerObj>) -> Alone {
    let mut problems = Vec::new();
    let names_plugins = c.meta.annotation(ANN_PLUGINS).is_some();
    if let Err(p) = class.annotated(Kind::KongConsumer, &c.meta) {
        problems.push(p);
        return Alone { consumer: None, problems, names_plugins };
    }
    // Built only for a Problem: this runs for every consumer.
    let object = || object_ref(Kind::KongConsumer, &c.meta);
    if names_plugins {
        check_plugins(world, class, c, &object(), &mut problems);
    }
    let consumer = consumer(c, object, &mut problems);
    Alone { consumer, problems, names_plugins }
}

/// The Problem of a consumer whose username or custom_id an older accepted
/// consumer holds (both are unique in Kong).
pub fn taken(object: &ObjectRef, field: &str, value: &str, owner: &ObjectRef) -> Problem {
    Problem::new(
        object.clone(),
        field,
        Reason::Conflict,
        format!(
            "{field} '{}' is already used by the older {owner}; it must be unique; this consumer is ignored",
            printable(value)
        ),
    )
}

fn consumer(c: &Arc<KongConsumerObj>, object: impl Fn() -> ObjectRef, problems: &mut Vec<Problem>) -> Option<Consumer> {
    let mut reject = |field: &str, reason: Reason, why: String| {
        problems.push(Problem::new(object(), field, reason, format!("{why}; this consumer is ignored")));
    };
    if c.username().is_none() && c.custom_id().is_none() {
        reject("username", Reason::InvalidField, "needs username or custom_id (or both)".into());
        return None;
    }
    // The snapshot reads the names from this object: nothing is copied.
    let Some(consumer) = Consumer::new(c.clone()) else {
        let uid = c.meta.uid().to_string();
        let fields = [("username", c.username()), ("custom_id", c.custom_id()), ("metadata.uid", Some(&*uid))];
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
    let ns = c.meta.namespace().unwrap_or_default();
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
