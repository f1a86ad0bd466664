//! Kubernetes-facing types: the Kong CRDs Portcullis reads, and the label and
//! annotation names shared by translation, sources and reporting.
//!
//! Depends on kube / k8s-openapi / schemars / serde only.

mod consumer;
mod crd;
mod plugin;
mod status;

pub use consumer::KongConsumer;
pub use crd::{all_crds, crds_yaml};
pub use plugin::{
    ConfigFrom, KongClusterPlugin, KongPlugin, NamespacedConfigFrom, NamespacedSecretKeyRef, SecretKeyRef,
};
pub use status::CrdStatus;

/// API group of the Kong CRDs.
pub const GROUP: &str = "configuration.konghq.com";
/// Served (and stored) version of the Kong CRDs.
pub const VERSION: &str = "v1";

/// Label on a Secret naming the credential type it holds (`key-auth`, `basic-auth`, ...).
pub const LABEL_CREDENTIAL: &str = "konghq.com/credential";
/// Label on a KongClusterPlugin that applies it to every route.
pub const LABEL_GLOBAL: &str = "global";
/// Label EndpointSlices carry naming their Service.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// Ingress class annotation (Ingress, KongConsumer, KongClusterPlugin).
pub const ANN_INGRESS_CLASS: &str = "kubernetes.io/ingress.class";
/// IngressClass annotation marking the cluster default.
pub const ANN_DEFAULT_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";
/// Plugin attachment on Service / Ingress.
pub const ANN_PLUGINS: &str = "konghq.com/plugins";
pub const ANN_STRIP_PATH: &str = "konghq.com/strip-path";
pub const ANN_PRESERVE_HOST: &str = "konghq.com/preserve-host";
pub const ANN_METHODS: &str = "konghq.com/methods";
pub const ANN_HTTPS_REDIRECT: &str = "konghq.com/https-redirect-status-code";
pub const ANN_PROTOCOLS: &str = "konghq.com/protocols";
pub const ANN_HEADERS_PREFIX: &str = "konghq.com/headers.";
pub const ANN_HOST_ALIASES: &str = "konghq.com/host-aliases";
pub const ANN_REGEX_PRIORITY: &str = "konghq.com/regex-priority";
pub const ANN_PATH: &str = "konghq.com/path";
pub const ANN_CONNECT_TIMEOUT: &str = "konghq.com/connect-timeout";
pub const ANN_READ_TIMEOUT: &str = "konghq.com/read-timeout";
pub const ANN_WRITE_TIMEOUT: &str = "konghq.com/write-timeout";
pub const ANN_RETRIES: &str = "konghq.com/retries";
pub const ANN_HOST_HEADER: &str = "konghq.com/host-header";
pub const ANN_SERVICE_UPSTREAM: &str = "ingress.kubernetes.io/service-upstream";

/// Default `--ingress-class`.
pub const DEFAULT_INGRESS_CLASS: &str = "kong";
/// Default `--controller-name`: the IngressClass controller string KIC uses,
/// so IngressClasses created for KIC keep working.
pub const DEFAULT_CONTROLLER_NAME: &str = "ingress-controllers.konghq.com/kong";

/// Condition type reported on Kong CRDs.
pub const CONDITION_PROGRAMMED: &str = "Programmed";
