//! Secrets that objects reference by name: KongPlugin/KongClusterPlugin
//! `configFrom.secretKeyRef` and Ingress `spec.tls[].secretName`. Cluster
//! mode watches exactly these (plus labelled credentials), never every
//! Secret of the cluster.

use std::collections::BTreeSet;

use crate::world::World;

/// (namespace, name) of every referenced Secret.
pub fn referenced_secrets(world: &World) -> BTreeSet<(String, String)> {
    let plugins = world.plugins.values().chain(world.cluster_plugins.values());
    let from_plugins = plugins.filter_map(|p| p.config_from.as_ref()).map(|(ns, name, _)| (ns.clone(), name.clone()));
    let from_ingresses = world.ingresses.values().flat_map(|ing| {
        let ns = ing.meta.namespace().unwrap_or_default().to_string();
        ing.spec.tls.iter().flatten().filter_map(move |t| t.secret_name.clone().map(|name| (ns.clone(), name)))
    });
    from_plugins.chain(from_ingresses).filter(|(ns, name)| !ns.is_empty() && !name.is_empty()).collect()
}
