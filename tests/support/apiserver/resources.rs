//! The resource registry: which (group, version, plural) the server serves, their kind, scope and
//! whether `.status` is a separate subresource. Everything else in the server is generic over it.

/// One served resource type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core (legacy `/api/v1`) group.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// `.status` lives behind `/status`: main-resource writes keep the stored status, status writes
    /// change nothing else, and create drops any status sent (what kube-apiserver does).
    pub status_subresource: bool,
    pub short_names: &'static [&'static str],
}

impl ResourceType {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// How kube-apiserver names the resource in error messages: `secrets`, `ingresses.networking.k8s.io`.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() { self.plural.to_string() } else { format!("{}.{}", self.plural, self.group) }
    }

    fn answers_to(&self, name: &str) -> bool {
        let (base, group) = match name.split_once('.') {
            Some((base, group)) => (base, Some(group)),
            None => (name, None),
        };
        let base_matches = base.eq_ignore_ascii_case(self.plural)
            || base.eq_ignore_ascii_case(self.singular)
            || base.eq_ignore_ascii_case(self.kind)
            || self.short_names.iter().any(|s| base.eq_ignore_ascii_case(s));
        base_matches && group.is_none_or(|g| g.eq_ignore_ascii_case(self.group))
    }
}

const fn rt(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    status_subresource: bool,
) -> ResourceType {
    ResourceType { group, version: "v1", plural, singular, kind, namespaced, status_subresource, short_names: &[] }
}

/// What Portcullis reads and writes, plus a few core kinds that make kubectl and fixtures pleasant.
pub const DEFAULT_RESOURCES: &[ResourceType] = &[
    rt("", "namespaces", "namespace", "Namespace", false, true),
    rt("", "services", "service", "Service", true, true),
    rt("", "secrets", "secret", "Secret", true, false),
    rt("", "configmaps", "configmap", "ConfigMap", true, false),
    rt("", "events", "event", "Event", true, false),
    rt("discovery.k8s.io", "endpointslices", "endpointslice", "EndpointSlice", true, false),
    rt("networking.k8s.io", "ingresses", "ingress", "Ingress", true, true),
    rt("networking.k8s.io", "ingressclasses", "ingressclass", "IngressClass", false, false),
    rt("events.k8s.io", "events", "event", "Event", true, false),
    rt("coordination.k8s.io", "leases", "lease", "Lease", true, false),
    ResourceType {
        short_names: &["kc"],
        ..rt("configuration.konghq.com", "kongconsumers", "kongconsumer", "KongConsumer", true, true)
    },
    ResourceType {
        short_names: &["kp"],
        ..rt("configuration.konghq.com", "kongplugins", "kongplugin", "KongPlugin", true, true)
    },
    ResourceType {
        short_names: &["kcp"],
        ..rt("configuration.konghq.com", "kongclusterplugins", "kongclusterplugin", "KongClusterPlugin", false, true)
    },
];

/// Index of a resource type in the registry; cheap key for stored objects and history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rid(usize);

#[derive(Debug)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Registry {
    pub fn new(extra: &[ResourceType]) -> Self {
        Registry { types: DEFAULT_RESOURCES.iter().chain(extra).copied().collect() }
    }

    pub fn get(&self, rid: Rid) -> &ResourceType {
        &self.types[rid.0]
    }

    pub fn iter(&self) -> impl Iterator<Item = (Rid, &ResourceType)> {
        self.types.iter().enumerate().map(|(i, t)| (Rid(i), t))
    }

    pub fn by_path(&self, group: &str, version: &str, plural: &str) -> Option<Rid> {
        self.iter().find(|(_, t)| t.group == group && t.version == version && t.plural == plural).map(|(r, _)| r)
    }

    pub fn by_type(&self, api_version: &str, kind: &str) -> Option<Rid> {
        self.iter().find(|(_, t)| t.api_version() == api_version && t.kind == kind).map(|(r, _)| r)
    }

    /// Test-facing lookup: plural, singular, kind or short name, optionally qualified by group
    /// (`events.events.k8s.io`). The first registered match wins, so bare `events` is core/v1.
    pub fn lookup(&self, name: &str) -> Option<Rid> {
        self.iter().find(|(_, t)| t.answers_to(name)).map(|(r, _)| r)
    }

    /// Served group/versions in registration order, each once.
    pub fn group_versions(&self) -> Vec<(&'static str, &'static str)> {
        let mut out: Vec<(&'static str, &'static str)> = Vec::new();
        for t in &self.types {
            if !out.contains(&(t.group, t.version)) {
                out.push((t.group, t.version));
            }
        }
        out
    }
}
