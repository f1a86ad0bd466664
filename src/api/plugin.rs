use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CrdStatus;

/// KongPlugin: a plugin instance in one namespace, attached to Services and
/// Ingresses with the `konghq.com/plugins` annotation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!(has(self.config) && has(self.configFrom))", "message": "Using both config and configFrom fields is not allowed."},
    {"rule": "self.plugin == oldSelf.plugin", "message": "The plugin field is immutable"}
]))]
pub struct KongPlugin {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Name of the plugin type, for example `key-auth`.
    pub plugin: String,
    /// Plugin configuration; its fields depend on the plugin type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub config: Option<serde_json::Value>,
    /// Read the configuration from a Secret instead of `config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_from: Option<ConfigFrom>,
    /// Whether the plugin is disabled (present but not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Protocols the plugin runs on (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocols: Vec<String>,
    /// Name of this plugin instance in the gateway.
    #[serde(rename = "instance_name", default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CrdStatus>,
}

/// KongClusterPlugin: a cluster-scoped plugin instance. Labelled `global: "true"`
/// it applies to every route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!(has(self.config) && has(self.configFrom))", "message": "Using both config and configFrom fields is not allowed."},
    {"rule": "self.plugin == oldSelf.plugin", "message": "The plugin field is immutable"}
]))]
pub struct KongClusterPlugin {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Name of the plugin type, for example `key-auth`.
    pub plugin: String,
    /// Plugin configuration; its fields depend on the plugin type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub config: Option<serde_json::Value>,
    /// Read the configuration from a Secret (namespace required) instead of `config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_from: Option<NamespacedConfigFrom>,
    /// Whether the plugin is disabled (present but not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// Protocols the plugin runs on (default: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocols: Vec<String>,
    /// Name of this plugin instance in the gateway.
    #[serde(rename = "instance_name", default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CrdStatus>,
}

/// `configFrom` of a KongPlugin.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFrom {
    pub secret_key_ref: SecretKeyRef,
}

/// `configFrom` of a KongClusterPlugin.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedConfigFrom {
    pub secret_key_ref: NamespacedSecretKeyRef,
}

/// A key of a Secret in the plugin's namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// Key in the Secret's data holding the JSON or YAML configuration.
    pub key: String,
}

/// A key of a Secret in a named namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NamespacedSecretKeyRef {
    /// Namespace of the Secret.
    pub namespace: String,
    /// Name of the Secret.
    pub name: String,
    /// Key in the Secret's data holding the JSON or YAML configuration.
    pub key: String,
}

super::crd::impl_resource!(KongPlugin, "KongPlugin", "kongplugins", NamespaceResourceScope);
super::crd::impl_resource!(KongClusterPlugin, "KongClusterPlugin", "kongclusterplugins", ClusterResourceScope);

/// `config` is free-form per plugin type: an object whose fields the API
/// server keeps as written (a structural schema without `additionalProperties`).
fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "description": "Plugin configuration; its fields depend on the plugin type.",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
