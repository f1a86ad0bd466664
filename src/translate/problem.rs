use std::fmt;

use serde::Serialize;

use crate::world::ObjectRef;

/// Something about one object that Portcullis could not use as written.
/// Data, never a panic: it goes to logs, `check` output, Events and status
/// conditions. Never contains a key or other Secret data.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Problem {
    /// The object at fault.
    pub object: ObjectRef,
    /// The field or annotation at fault (`spec.rules[0].http.paths[1].backend.service.port`,
    /// `metadata.annotations["konghq.com/plugins"]`, `credentials[2]`).
    pub field: String,
    pub reason: Reason,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Problem {
    pub fn new(object: ObjectRef, field: impl Into<String>, reason: Reason, message: impl Into<String>) -> Self {
        Self { object, field: field.into(), reason, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {} ({})", self.object, self.field, self.message, self.reason.as_str())
    }
}

/// Machine-readable problem kind (used as the Event reason detail and in
/// metrics labels, so the set is closed and small).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// An object from the API that cannot be read (cluster mode: a custom
    /// object that does not fit its schema); skipped by itself.
    InvalidObject,
    /// Ignored because of its ingress class (or missing class annotation).
    IgnoredClass,
    /// A `konghq.com/*` (or other) annotation has a value we cannot use.
    InvalidAnnotation,
    /// A `konghq.com/*` annotation Portcullis does not implement, or one put
    /// on a kind it has no effect on.
    UnsupportedAnnotation,
    /// A field has a value we cannot use (path, host, port...).
    InvalidField,
    /// A referenced Service does not exist.
    ServiceNotFound,
    /// The backend port matches none of the Service's ports.
    PortNotFound,
    /// An Ingress backend that is not a Service (`backend.resource`).
    UnsupportedBackend,
    /// A plugin named in `konghq.com/plugins` exists neither as KongPlugin nor KongClusterPlugin.
    PluginNotFound,
    /// A plugin's configuration is invalid.
    InvalidPluginConfig,
    /// A plugin type Portcullis does not implement (reported, route still served).
    UnsupportedPlugin,
    /// A plugin that cannot be attached where it is (e.g. key-auth on a consumer).
    PluginNotAllowed,
    /// A KongConsumer lists a Secret that does not exist.
    CredentialNotFound,
    /// A credential Secret is unusable (not labelled, no key, bad ttl).
    InvalidCredential,
    /// A credential type other than key-auth.
    UnsupportedCredential,
    /// The same key is used by two credentials; the newer is rejected.
    DuplicateKey,
    /// A route conflicts with another one (same host/path), or a TLS host
    /// is claimed with another Secret: the newer loses.
    Conflict,
    /// An Ingress `spec.tls[].secretName` names a Secret that does not exist.
    TlsSecretNotFound,
    /// A TLS Secret is unusable (wrong type, bad PEM, key not matching the certificate).
    InvalidTlsSecret,
    /// A TLS host that the Secret's certificate is not valid for (served anyway).
    TlsHostNotCovered,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidObject => "invalid-object",
            Reason::IgnoredClass => "ignored-class",
            Reason::InvalidAnnotation => "invalid-annotation",
            Reason::UnsupportedAnnotation => "unsupported-annotation",
            Reason::InvalidField => "invalid-field",
            Reason::ServiceNotFound => "service-not-found",
            Reason::PortNotFound => "port-not-found",
            Reason::UnsupportedBackend => "unsupported-backend",
            Reason::PluginNotFound => "plugin-not-found",
            Reason::InvalidPluginConfig => "invalid-plugin-config",
            Reason::UnsupportedPlugin => "unsupported-plugin",
            Reason::PluginNotAllowed => "plugin-not-allowed",
            Reason::CredentialNotFound => "credential-not-found",
            Reason::InvalidCredential => "invalid-credential",
            Reason::UnsupportedCredential => "unsupported-credential",
            Reason::DuplicateKey => "duplicate-key",
            Reason::Conflict => "conflict",
            Reason::TlsSecretNotFound => "tls-secret-not-found",
            Reason::InvalidTlsSecret => "invalid-tls-secret",
            Reason::TlsHostNotCovered => "tls-host-not-covered",
        }
    }
}
