use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CrdStatus;

/// KongConsumer: a client of the proxied APIs. As in KIC the fields sit at the
/// top level of the object (there is no `spec`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.username) || has(self.custom_id)",
    "message": "Need to provide either username or custom_id"
}]))]
pub struct KongConsumer {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Unique username of the consumer; sent upstream as X-Consumer-Username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Identifier of the consumer in another system; sent upstream as X-Consumer-Custom-ID.
    #[serde(rename = "custom_id", default, skip_serializing_if = "Option::is_none")]
    pub custom_id: Option<String>,
    /// Names of credential Secrets (same namespace) that belong to this consumer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<String>,
    /// Consumer groups this consumer belongs to (accepted for compatibility; unused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumer_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CrdStatus>,
}

super::crd::impl_resource!(KongConsumer, "KongConsumer", "kongconsumers", NamespaceResourceScope);
