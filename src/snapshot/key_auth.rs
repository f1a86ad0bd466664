use http::{HeaderName, HeaderValue};

use super::Protocols;

/// A validated key-auth plugin configuration, with everything the request
/// path needs precomputed.
#[derive(Clone, Debug)]
pub struct KeyAuthConfig {
    /// `namespace/name` (KongPlugin) or `name` (KongClusterPlugin), for logs.
    pub source: String,
    pub key_names: Vec<KeyName>,
    pub key_in_header: bool,
    pub key_in_query: bool,
    pub key_in_body: bool,
    pub hide_credentials: bool,
    /// Consumer username or id to proxy as when authentication fails.
    pub anonymous: Option<String>,
    pub run_on_preflight: bool,
    /// `WWW-Authenticate` value, `Key realm="<realm or kong>"`.
    pub www_authenticate: HeaderValue,
    /// Protocols the plugin runs on (KongPlugin `protocols`; all when empty).
    pub protocols: Protocols,
}

/// One entry of `key_names`.
#[derive(Clone, Debug)]
pub struct KeyName {
    /// As configured: the exact query/body field name.
    pub name: String,
    /// The header carrying it (header names are case-insensitive).
    pub header: HeaderName,
    /// For a name containing `_`, the same name with `-` (`api_key` also
    /// matches a header `api-key`), since many clients and proxies rewrite it.
    pub header_alt: Option<HeaderName>,
}
