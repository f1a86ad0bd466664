//! key-auth at request time (KONG_COMPAT §6): find the key (per name:
//! header, then query, then body), optionally hide it, look its digest up,
//! and name the identity the upstream is told — or fall back to the
//! anonymous consumer.

use std::borrow::Cow;

use http::Method;

use super::args::{self, Lookup};
use super::body::{BodyKind, ParsedBody};
use super::clock;
use super::error::{AuthFailure, ProxyError};
use super::fields::RequestFields;
use super::headers::{
    X_ANONYMOUS_CONSUMER, X_CONSUMER_CUSTOM_ID, X_CONSUMER_ID, X_CONSUMER_USERNAME, X_CREDENTIAL_IDENTIFIER,
};
use super::lines::put_field;
use super::request_body::RequestBody;
use crate::snapshot::{Consumer, ConsumerIndex, Credential, KeyAuthConfig, KeyDigest, KeyName, Scheme};

/// The part of the request key-auth reads and may rewrite.
pub struct AuthRequest<'a, 'q> {
    pub fields: &'a mut RequestFields,
    /// The raw query string; replaced when `hide_credentials` removes the key.
    pub query: &'a mut Option<Cow<'q, str>>,
    pub body: &'a mut RequestBody,
    pub max_body_bytes: usize,
}

/// Whether the plugin runs for this request at all.
pub fn applies(config: &KeyAuthConfig, scheme: Scheme, method: &Method) -> bool {
    // The plugin's `protocols` must include the listener's (as Kong).
    if !config.protocols.allows(scheme) {
        return false;
    }
    // Kong skips every OPTIONS request (not only CORS preflights) when
    // run_on_preflight is off.
    config.run_on_preflight || method != Method::OPTIONS
}

/// Who the request authenticated as.
pub enum Identity {
    Credential(Credential),
    /// No valid key, and the plugin names an anonymous consumer.
    Anonymous(Consumer),
}

impl Identity {
    pub fn consumer(&self) -> &Consumer {
        match self {
            Identity::Credential(credential) => &credential.consumer,
            Identity::Anonymous(consumer) => consumer,
        }
    }

    /// Kong's identity fields for the upstream: X-Consumer-ID,
    /// -Custom-ID, -Username, then X-Credential-Identifier, or
    /// X-Anonymous-Consumer. Every value was checked to be a valid field
    /// value when its record was made; the client's own identity fields were
    /// removed before any plugin ran.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let consumer = self.consumer();
        consumer.uid().with_str(|id| put_field(out, &X_CONSUMER_ID, id.as_bytes()));
        if let Some(custom_id) = consumer.custom_id() {
            put_field(out, &X_CONSUMER_CUSTOM_ID, custom_id.as_bytes());
        }
        if let Some(username) = consumer.username() {
            put_field(out, &X_CONSUMER_USERNAME, username.as_bytes());
        }
        match self {
            Identity::Credential(credential) => {
                credential.uid().with_str(|id| put_field(out, &X_CREDENTIAL_IDENTIFIER, id.as_bytes()));
            }
            Identity::Anonymous(_) => put_field(out, &X_ANONYMOUS_CONSUMER, b"true"),
        }
    }
}

/// Authenticates from the request's fields and query alone, without
/// waiting for anything; None when the plugin may read the body too
/// (`key_in_body`), which `authenticate` does.
pub fn authenticate_now(
    config: &KeyAuthConfig,
    consumers: &ConsumerIndex,
    mut req: AuthRequest<'_, '_>,
) -> Option<Result<Identity, ProxyError>> {
    (!config.key_in_body).then(|| identify(config, consumers, find_key_now(config, &mut req)))
}

/// Authenticates the request: who it is, or why it is refused. Reading a
/// body makes this future large (a multipart parser's state is 1.5 KB):
/// callers box it rather than carry it in every request's future.
pub async fn authenticate(
    config: &KeyAuthConfig,
    consumers: &ConsumerIndex,
    mut req: AuthRequest<'_, '_>,
) -> Result<Identity, ProxyError> {
    let hit = find_key(config, &mut req).await?;
    identify(config, consumers, hit)
}

/// Who a search's outcome names: the key's credential, the anonymous
/// consumer, or a refusal.
fn identify(config: &KeyAuthConfig, consumers: &ConsumerIndex, hit: Hit) -> Result<Identity, ProxyError> {
    let failure = match hit {
        Hit::Duplicate => AuthFailure::Duplicate,
        Hit::Missing | Hit::Skip | Hit::Key(None) => AuthFailure::NoKey,
        Hit::Key(Some(digest)) => match consumers.credential(&digest) {
            Some(credential) if credential.is_valid_at(clock::wall()) => {
                return Ok(Identity::Credential(credential.clone()));
            }
            _ => AuthFailure::Invalid,
        },
    };
    let Some(anonymous) = &config.anonymous else {
        return Err(ProxyError::Unauthorized { failure, www_authenticate: config.www_authenticate.clone() });
    };
    match consumers.anonymous(anonymous) {
        Some(consumer) => Ok(Identity::Anonymous(consumer.clone())),
        None => {
            tracing::error!(plugin = %config.source, "key-auth anonymous consumer does not exist");
            Err(ProxyError::AnonymousNotFound)
        }
    }
}

/// The outcome of searching one location; owns nothing from the request, so
/// the request can be rewritten afterwards.
enum Hit {
    Missing,
    /// Present but not a usable value: the name is done, as in Kong.
    Skip,
    /// The key's digest; None for an empty key.
    Key(Option<KeyDigest>),
    Duplicate,
}

impl From<Lookup<'_>> for Hit {
    fn from(lookup: Lookup<'_>) -> Self {
        match lookup {
            Lookup::Missing => Hit::Missing,
            Lookup::Valueless => Hit::Skip,
            Lookup::Duplicate => Hit::Duplicate,
            // The one place the key is read: digested at once, never kept.
            Lookup::One(key) => Hit::Key((!key.is_empty()).then(|| KeyDigest::of(&key))),
        }
    }
}

/// `find_key` for a plugin that does not read bodies.
fn find_key_now(config: &KeyAuthConfig, req: &mut AuthRequest<'_, '_>) -> Hit {
    for key_name in &config.key_names {
        match in_fields_or_query(config, key_name, req) {
            Hit::Missing | Hit::Skip => continue,
            Hit::Duplicate => return Hit::Duplicate,
            hit @ Hit::Key(_) => {
                if config.hide_credentials {
                    hide_in_fields_and_query(key_name, req);
                }
                return hit;
            }
        }
    }
    Hit::Missing
}

async fn find_key(config: &KeyAuthConfig, req: &mut AuthRequest<'_, '_>) -> Result<Hit, ProxyError> {
    // Parsed on first need only, then shared by every key name.
    let mut body: Option<ParsedBody> = None;
    for key_name in &config.key_names {
        let mut hit = in_fields_or_query(config, key_name, req);
        if matches!(hit, Hit::Missing) && config.key_in_body {
            hit = parsed_body(&mut body, req).await?.lookup(&key_name.name).into();
        }
        match hit {
            Hit::Missing | Hit::Skip => continue,
            Hit::Duplicate => return Ok(Hit::Duplicate),
            Hit::Key(_) => {
                if config.hide_credentials {
                    hide(config, key_name, &mut body, req).await?;
                }
                return Ok(hit);
            }
        }
    }
    Ok(Hit::Missing)
}

/// One key name looked up in the fields, then the query (as Kong).
fn in_fields_or_query(config: &KeyAuthConfig, key_name: &KeyName, req: &AuthRequest<'_, '_>) -> Hit {
    let mut hit = Hit::Missing;
    if config.key_in_header {
        hit = header_lookup(req.fields, key_name).into();
    }
    if matches!(hit, Hit::Missing) && config.key_in_query {
        let query = req.query.as_deref().unwrap_or("");
        hit = args::lookup(query.as_bytes(), &key_name.name).into();
    }
    hit
}

/// Header names are case-insensitive; `api_key` also matches `api-key`.
fn header_lookup<'h>(fields: &'h RequestFields, key_name: &'h KeyName) -> Lookup<'h> {
    let mut values = fields.get_all(key_name.header.as_str());
    let mut first = values.next();
    if first.is_none()
        && let Some(alt) = &key_name.header_alt
    {
        values = fields.get_all(alt.as_str());
        first = values.next();
    }
    match (first, values.next()) {
        (None, _) => Lookup::Missing,
        (Some(value), None) => Lookup::One(Cow::Borrowed(value)),
        (Some(_), Some(_)) => Lookup::Duplicate,
    }
}

async fn parsed_body<'b>(
    slot: &'b mut Option<ParsedBody>,
    req: &mut AuthRequest<'_, '_>,
) -> Result<&'b ParsedBody, ProxyError> {
    if slot.is_none() {
        // Only bodies that can hold a key are read; anything else streams on.
        let parsed = match BodyKind::of(req.fields) {
            None => ParsedBody::none(),
            Some(kind) => {
                let bytes = req.body.buffer(req.fields, req.max_body_bytes).await?;
                ParsedBody::parse(Some(kind), bytes).await
            }
        };
        *slot = Some(parsed);
    }
    Ok(slot.get_or_insert_with(ParsedBody::none))
}

/// `hide_credentials`: the name is removed from every location it may be
/// read from, wherever the key was actually found (as Kong does).
async fn hide(
    config: &KeyAuthConfig,
    key_name: &KeyName,
    body: &mut Option<ParsedBody>,
    req: &mut AuthRequest<'_, '_>,
) -> Result<(), ProxyError> {
    hide_in_fields_and_query(key_name, req);
    if config.key_in_body
        && let Some(rest) = parsed_body(body, req).await?.remove(&key_name.name)
    {
        *req.body = RequestBody::Buffered(rest);
    }
    Ok(())
}

fn hide_in_fields_and_query(key_name: &KeyName, req: &mut AuthRequest<'_, '_>) {
    req.fields.remove(key_name.header.as_str());
    if let Some(alt) = &key_name.header_alt {
        req.fields.remove(alt.as_str());
    }
    if let Some(query) = req.query.as_deref()
        && let Some(rest) = args::remove(query.as_bytes(), &key_name.name)
    {
        // Pieces of a str split at ASCII '&' are still valid UTF-8.
        *req.query = match String::from_utf8(rest) {
            Ok(rest) if rest.is_empty() => None,
            Ok(rest) => Some(Cow::Owned(rest)),
            Err(_) => req.query.take(),
        };
    }
}
