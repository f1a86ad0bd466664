//! The rules of one credential Secret: whether it is usable, and the
//! Problems about it. Problems name Secrets, never keys.

use crate::snapshot::KeyDigest;
use crate::world::{CredentialKey, ObjectRef, SecretObj};

use super::annotations::printable;
use super::{Problem, Reason};

/// The only credential type Portcullis implements.
const KEY_AUTH: &str = "key-auth";

/// The Problem at `credentials[i]` of a consumer listing Secret `ns/name`.
pub fn listing_problem(object: &ObjectRef, i: usize, ns: &str, name: &str, issue: Listing<'_>) -> Problem {
    let secret = format!("Secret {ns}/{}", printable(name));
    let (reason, message) = match issue {
        Listing::NotFound => (
            Reason::CredentialNotFound,
            format!("{secret} does not exist; create it with label konghq.com/credential: key-auth and a key"),
        ),
        Listing::Twice => (Reason::InvalidField, format!("{secret} is listed twice; list it once")),
        Listing::Claimed(owner) => (
            Reason::Conflict,
            format!(
                "{secret} is already a credential of the older {owner}; a Secret belongs to one consumer only, so it is not used here"
            ),
        ),
        Listing::Unusable(reason, why) => (reason, format!("{secret} {why}")),
    };
    Problem::new(object.clone(), format!("credentials[{i}]"), reason, message)
}

/// What is wrong with one entry of a consumer's `credentials`.
pub enum Listing<'a> {
    NotFound,
    Twice,
    /// An older consumer lists the same Secret and keeps it.
    Claimed(&'a ObjectRef),
    Unusable(Reason, String),
}

/// The Problem of a credential whose key an older credential holds. Keys
/// are unique: the oldest keeps it (divergence: KIC drops every consumer
/// involved).
pub fn duplicate_key(secret: &ObjectRef, older: &ObjectRef, older_owner: &ObjectRef, owner: &ObjectRef) -> Problem {
    Problem::new(
        secret.clone(),
        "key",
        Reason::DuplicateKey,
        format!(
            "has the same key as the older {older} (credential of {older_owner}), which keeps it; this credential of {owner} is rejected: give it a different key"
        ),
    )
}

/// The Problem of a credential whose uid cannot be a header value.
pub fn invalid_uid(secret: &ObjectRef) -> Problem {
    Problem::new(
        secret.clone(),
        "metadata.uid",
        Reason::InvalidCredential,
        "metadata.uid cannot be sent as X-Credential-Identifier; this credential is not used",
    )
}

/// The key digest of a usable key-auth Secret, or why it is not usable.
pub fn usable(secret: &SecretObj) -> Result<KeyDigest, (Reason, String)> {
    let invalid = |why: &str| Err((Reason::InvalidCredential, why.to_string()));
    match secret.credential_type() {
        None => return invalid("has no konghq.com/credential label; label it konghq.com/credential: key-auth"),
        Some(KEY_AUTH) => {}
        Some(other) => {
            return Err((
                Reason::UnsupportedCredential,
                format!(
                    "is a credential of type '{}'; Portcullis supports key-auth only, so it is not used",
                    printable(other)
                ),
            ));
        }
    }
    if let Some(Err(why)) = secret.ttl() {
        return invalid(&format!("has an invalid ttl: {why}; this credential is not used"));
    }
    match secret.key {
        CredentialKey::Missing => invalid("has no key; add a non-empty key"),
        CredentialKey::Empty => invalid("has an empty key; set a non-empty key"),
        CredentialKey::Digest(d) => Ok(d),
    }
}
