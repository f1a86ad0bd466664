//! Shrunk forms of each kind: only what translation reads.

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, IngressSpec};
use serde_json::Value;

use super::packed::{Texts, TextsIter, put_text, take_text};
use super::{HasMeta, Kind, Meta, ObjectError};
use crate::api::{self, KongClusterPlugin, KongConsumer, KongPlugin};

macro_rules! has_meta {
    ($($t:ty),*) => {$(impl HasMeta for $t { fn meta(&self) -> &Meta { &self.meta } })*};
}
has_meta!(IngressObj, IngressClassObj, ServiceObj, EndpointSliceObj, KongConsumerObj, KongPluginObj);

#[derive(Clone, Debug, PartialEq)]
pub struct IngressObj {
    pub meta: Meta,
    pub spec: IngressSpec,
}

impl IngressObj {
    pub fn shrink(o: &Ingress) -> Result<Self, ObjectError> {
        let mut meta = Meta::shrink(Kind::Ingress, &o.metadata)?;
        meta.set_observed(super::Observed::from_ingress(o));
        Ok(Self { meta, spec: o.spec.clone().unwrap_or_default() })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct IngressClassObj {
    pub meta: Meta,
    pub controller: String,
    /// `ingressclass.kubernetes.io/is-default-class: "true"`.
    pub is_default: bool,
}

impl IngressClassObj {
    pub fn shrink(o: &IngressClass) -> Result<Self, ObjectError> {
        let meta = Meta::shrink(Kind::IngressClass, &o.metadata)?;
        Ok(Self {
            is_default: meta.annotation(api::ANN_DEFAULT_CLASS) == Some("true"),
            controller: o.spec.as_ref().and_then(|s| s.controller.clone()).unwrap_or_default(),
            meta,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceObj {
    pub meta: Meta,
    /// `spec.type`: ClusterIP (default), NodePort, LoadBalancer, ExternalName.
    pub type_: String,
    pub cluster_ip: Option<String>,
    pub external_name: Option<String>,
    pub ports: Vec<ServicePort>,
}

impl ServiceObj {
    pub fn shrink(o: &Service) -> Result<Self, ObjectError> {
        let spec = o.spec.clone().unwrap_or_default();
        Ok(Self {
            meta: Meta::shrink(Kind::Service, &o.metadata)?,
            type_: spec.type_.unwrap_or_else(|| "ClusterIP".into()),
            cluster_ip: spec.cluster_ip.filter(|ip| !ip.is_empty() && ip != "None"),
            external_name: spec.external_name.filter(|n| !n.is_empty()),
            ports: spec.ports.unwrap_or_default(),
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct EndpointSliceObj {
    pub meta: Meta,
    /// Label `kubernetes.io/service-name`.
    pub service_name: Option<String>,
    /// IPv4, IPv6 or FQDN.
    pub address_type: String,
    pub ports: Vec<SlicePort>,
    pub endpoints: Vec<SliceEndpoint>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SlicePort {
    pub name: Option<String>,
    pub port: Option<i32>,
    pub protocol: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SliceEndpoint {
    pub addresses: Vec<String>,
    /// `conditions.ready`; nil counts as ready (EndpointSlice API semantics).
    pub ready: bool,
}

impl EndpointSliceObj {
    pub fn shrink(o: &EndpointSlice) -> Result<Self, ObjectError> {
        let meta = Meta::shrink(Kind::EndpointSlice, &o.metadata)?;
        Ok(Self {
            service_name: meta.label(api::LABEL_SERVICE_NAME).map(str::to_string),
            address_type: o.address_type.clone(),
            ports: o
                .ports
                .iter()
                .flatten()
                .map(|p| SlicePort { name: p.name.clone(), port: p.port, protocol: p.protocol.clone() })
                .collect(),
            endpoints: o
                .endpoints
                .iter()
                .map(|e| SliceEndpoint {
                    addresses: e.addresses.clone(),
                    ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
                })
                .collect(),
            meta,
        })
    }
}

/// 80 bytes and one heap block besides the name (100k of them at 100k
/// credentials), where three fields of their own took 48 bytes and a block
/// per text.
#[derive(Clone, PartialEq)]
pub struct KongConsumerObj {
    pub meta: Meta,
    /// `username`, `custom_id` (each empty when absent), then every name in
    /// `credentials`, packed (see `packed`).
    texts: Box<str>,
}

/// The snapshot's consumers read their names from the World's object.
impl crate::snapshot::ConsumerNames for KongConsumerObj {
    fn uid(&self) -> crate::snapshot::Uid {
        self.meta.uid()
    }
    fn namespace(&self) -> &str {
        self.meta.namespace().unwrap_or_default()
    }
    fn name(&self) -> &str {
        self.meta.name()
    }
    fn username(&self) -> Option<&str> {
        KongConsumerObj::username(self)
    }
    fn custom_id(&self) -> Option<&str> {
        KongConsumerObj::custom_id(self)
    }
}

impl KongConsumerObj {
    pub fn new<'a>(
        meta: Meta,
        username: Option<&str>,
        custom_id: Option<&str>,
        credentials: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut texts = String::new();
        put_text(&mut texts, username.unwrap_or_default());
        put_text(&mut texts, custom_id.unwrap_or_default());
        for name in credentials {
            put_text(&mut texts, name);
        }
        Self { meta, texts: texts.into_boxed_str() }
    }

    pub fn shrink(o: &KongConsumer) -> Result<Self, ObjectError> {
        let mut meta = Meta::shrink(Kind::KongConsumer, &o.metadata)?;
        meta.set_observed(super::Observed::from_crd_status(o.status.as_ref()));
        Ok(Self::new(meta, o.username.as_deref(), o.custom_id.as_deref(), o.credentials.iter().map(String::as_str)))
    }

    fn texts(&self) -> TextsIter<'_> {
        Texts::new(&self.texts).iter()
    }

    /// `username`; None when absent or empty.
    pub fn username(&self) -> Option<&str> {
        self.texts().next().filter(|u| !u.is_empty())
    }

    /// `custom_id`; None when absent or empty.
    pub fn custom_id(&self) -> Option<&str> {
        self.texts().nth(1).filter(|u| !u.is_empty())
    }

    /// The names in `credentials`, in order.
    pub fn credentials(&self) -> Texts<'_> {
        let mut rest: &str = &self.texts;
        take_text(&mut rest);
        take_text(&mut rest);
        Texts::new(rest)
    }
}

impl std::fmt::Debug for KongConsumerObj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KongConsumerObj")
            .field("meta", &self.meta)
            .field("username", &self.username())
            .field("custom_id", &self.custom_id())
            .field("credentials", &self.credentials())
            .finish()
    }
}

/// A KongPlugin or KongClusterPlugin (the store says which).
#[derive(Clone, Debug, PartialEq)]
pub struct KongPluginObj {
    pub meta: Meta,
    pub plugin: String,
    pub config: Option<Value>,
    /// `configFrom.secretKeyRef`: (namespace, name, key). The namespace is
    /// the plugin's own for a KongPlugin.
    pub config_from: Option<(String, String, String)>,
    pub disabled: bool,
    pub protocols: Vec<String>,
    pub instance_name: Option<String>,
}

impl KongPluginObj {
    pub fn shrink_namespaced(o: &KongPlugin) -> Result<Self, ObjectError> {
        let mut meta = Meta::shrink(Kind::KongPlugin, &o.metadata)?;
        meta.set_observed(super::Observed::from_crd_status(o.status.as_ref()));
        let ns = meta.namespace().unwrap_or_default().to_string();
        Ok(Self {
            plugin: o.plugin.clone(),
            config: o.config.clone(),
            config_from: o
                .config_from
                .as_ref()
                .map(|c| (ns, c.secret_key_ref.name.clone(), c.secret_key_ref.key.clone())),
            disabled: o.disabled.unwrap_or(false),
            protocols: o.protocols.clone(),
            instance_name: o.instance_name.clone(),
            meta,
        })
    }

    pub fn shrink_cluster(o: &KongClusterPlugin) -> Result<Self, ObjectError> {
        let mut meta = Meta::shrink(Kind::KongClusterPlugin, &o.metadata)?;
        meta.set_observed(super::Observed::from_crd_status(o.status.as_ref()));
        Ok(Self {
            meta,
            plugin: o.plugin.clone(),
            config: o.config.clone(),
            config_from: o.config_from.as_ref().map(|c| {
                let r = &c.secret_key_ref;
                (r.namespace.clone(), r.name.clone(), r.key.clone())
            }),
            disabled: o.disabled.unwrap_or(false),
            protocols: o.protocols.clone(),
            instance_name: o.instance_name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    /// The snapshot's consumer built on the World's object reads the same
    /// names, without a copy.
    #[test]
    fn a_snapshot_consumer_reads_its_names_from_the_object() {
        let meta = ObjectMeta { name: Some("c".into()), namespace: Some("team-a".into()), ..Default::default() };
        let meta = Meta::shrink(Kind::KongConsumer, &meta).unwrap();
        let obj = std::sync::Arc::new(KongConsumerObj::new(meta, Some(""), Some("id-1"), ["k"]));
        let c = crate::snapshot::Consumer::new(obj.clone()).unwrap();
        assert_eq!((c.source(), c.namespace()), ("team-a/c".to_string(), "team-a"));
        assert_eq!((c.username(), c.custom_id()), (None, Some("id-1")), "an empty username is none");
        assert_eq!(c.uid(), obj.meta.uid(), "the object's uid (here its UUIDv5)");
        let owned = crate::snapshot::Consumer::owned(obj.meta.uid(), None, Some("id-1"), "team-a", "c").unwrap();
        assert_eq!(c, owned, "equal by value, wherever the names are kept");
        let bad = KongConsumerObj::new(obj.meta.clone(), Some("a\nb"), None, []);
        let bad = crate::snapshot::Consumer::new(std::sync::Arc::new(bad));
        assert!(bad.is_none(), "a name that cannot be a header value makes no consumer");
    }

    #[test]
    fn consumer_fields_read_back_from_their_packed_texts() {
        let meta = Meta::shrink(Kind::KongConsumer, &ObjectMeta { name: Some("c".into()), ..Default::default() });
        let c = KongConsumerObj::new(meta.unwrap(), Some("alex"), None, ["a-key", "", "a-key", "é,\n"]);
        assert_eq!((c.username(), c.custom_id()), (Some("alex"), None));
        assert_eq!(c.credentials().iter().collect::<Vec<_>>(), ["a-key", "", "a-key", "é,\n"]);
        assert_eq!(c.credentials().len(), 4);
        let c = KongConsumerObj::new(c.meta.clone(), Some(""), Some("id-1"), []);
        assert_eq!((c.username(), c.custom_id()), (None, Some("id-1")));
        assert!(c.credentials().is_empty());
    }
}
