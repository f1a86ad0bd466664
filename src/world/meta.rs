use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use uuid::Uuid;

use super::{Kind, ObjectError, Uid};

/// Namespace for the UUIDv5 identities of objects that carry no
/// `metadata.uid` (local mode): stable across restarts and machines.
const UID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a8e_93d4_4b7e_a1f0_5c2d_8e4b_7a90);

/// Annotation and label prefixes translation reads; everything else (notably
/// `kubectl.kubernetes.io/last-applied-configuration`, which repeats a
/// Secret's data in clear) is dropped on arrival.
const KEPT_PREFIXES: [&str; 5] = [
    "konghq.com/",
    "kubernetes.io/ingress.class",
    "ingress.kubernetes.io/",
    "ingressclass.kubernetes.io/",
    "kubernetes.io/service-name",
];
const KEPT_LABELS: [&str; 3] = [crate::api::LABEL_CREDENTIAL, crate::api::LABEL_GLOBAL, crate::api::LABEL_SERVICE_NAME];

/// The metadata translation reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    pub namespace: Option<String>,
    pub name: String,
    /// `metadata.uid`, or a UUIDv5 of kind/namespace/name when absent.
    pub uid: Uid,
    /// `metadata.creationTimestamp`; the source fills it in with the time the
    /// object was first seen when the manifest has none.
    pub created: Timestamp,
    pub generation: Option<i64>,
    pub annotations: Pairs,
    pub labels: Pairs,
    /// Status as last seen (ignored by equality; see `Observed`).
    pub observed: ObservedBox,
}

impl Meta {
    pub fn shrink(kind: Kind, m: &ObjectMeta) -> Result<Self, ObjectError> {
        let name = m.name.clone().filter(|n| !n.is_empty()).ok_or(ObjectError::MissingName { kind })?;
        let namespace = if kind.is_namespaced() {
            Some(m.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".to_string()))
        } else {
            None
        };
        let uid = match m.uid.as_deref() {
            Some(uid) if !uid.is_empty() => Uid::new(uid),
            _ => stable_uid(kind, namespace.as_deref().unwrap_or(""), &name),
        };
        let keep = |k: &str| KEPT_PREFIXES.iter().any(|p| k.starts_with(p));
        Ok(Self {
            namespace,
            name,
            uid,
            created: m.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(Timestamp::UNIX_EPOCH),
            generation: m.generation,
            annotations: m.annotations.iter().flatten().filter(|(k, _)| keep(k)).collect(),
            labels: m.labels.iter().flatten().filter(|(k, _)| KEPT_LABELS.contains(&k.as_str())).collect(),
            observed: ObservedBox::default(),
        })
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key)
    }

    /// Sort key for "oldest wins" rules: creation time, then namespace/name.
    pub fn age_key(&self) -> (Timestamp, &str, &str) {
        (self.created, self.namespace.as_deref().unwrap_or(""), &self.name)
    }
}

/// The identity of an object that has no `metadata.uid`.
pub fn stable_uid(kind: Kind, namespace: &str, name: &str) -> Uid {
    Uuid::new_v5(&UID_NAMESPACE, format!("{kind}/{namespace}/{name}").as_bytes()).into()
}

/// The few annotations or labels an object keeps, sorted by key, in one
/// allocation (none when empty): each entry is its key's and its value's
/// length followed by their text. A length is four 7-bit digits, each an
/// ASCII byte, so the whole is a `str` and reading it validates nothing.
/// Almost every Secret and KongConsumer keeps exactly one, where a
/// `BTreeMap` would allocate a ~500-byte node and a slice of boxed strings
/// three blocks.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pairs(Box<str>);

/// Longest key or value a length prefix can say (256 MiB; the API caps all
/// of an object's annotations at 256 KiB).
const MAX_TEXT: usize = (1 << 28) - 1;

impl Pairs {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Every (key, value), sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut rest: &str = &self.0;
        std::iter::from_fn(move || {
            let key = take_text(&mut rest)?;
            let value = take_text(&mut rest)?;
            Some((key, value))
        })
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(k, _)| k)
    }

    /// The entries whose key starts with `prefix`, sorted by key.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.iter().skip_while(move |(k, _)| *k < prefix).take_while(move |(k, _)| k.starts_with(prefix))
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Reads one length-prefixed text written by `Pairs::from_iter`.
fn take_text<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let (digits, _) = rest.as_bytes().split_first_chunk::<4>()?;
    let len = digits.iter().fold(0usize, |n, d| n << 7 | usize::from(*d));
    let text = rest.get(4..4 + len)?;
    *rest = &rest[4 + len..];
    Some(text)
}

/// Writes one text (at most `MAX_TEXT` bytes) with its length.
fn put_text(out: &mut String, text: &str) {
    for shift in [21, 14, 7, 0] {
        out.push(char::from(((text.len() >> shift) & 0x7f) as u8));
    }
    out.push_str(text);
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Pairs {
    /// Sorted by key; for a repeated key the last value wins (as a map would).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut v: Vec<(K, V)> = iter.into_iter().collect();
        v.reverse();
        v.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        v.dedup_by(|later, earlier| later.0.as_ref() == earlier.0.as_ref());
        let size = v.iter().map(|(k, v)| 8 + k.as_ref().len() + v.as_ref().len()).sum();
        let mut text = String::with_capacity(size);
        for t in v.iter().flat_map(|(k, v)| [k.as_ref(), v.as_ref()]) {
            // Longer texts cannot come from the API; they would be cut on
            // a char boundary below MAX_TEXT rather than misread.
            let mut t = t;
            while t.len() > MAX_TEXT {
                let mut end = MAX_TEXT;
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                t = &t[..end];
            }
            put_text(&mut text, t);
        }
        Self(text.into_boxed_str())
    }
}

impl std::fmt::Debug for Pairs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_look_up_by_key_and_prefix() {
        let p: Pairs = [("konghq.com/headers.b", "2"), ("konghq.com/path", "/x"), ("konghq.com/headers.a", "1")]
            .into_iter()
            .collect();
        assert_eq!(p.get("konghq.com/path"), Some("/x"));
        assert_eq!(p.get("konghq.com/nope"), None);
        let headers: Vec<_> = p.with_prefix("konghq.com/headers.").collect();
        assert_eq!(headers, [("konghq.com/headers.a", "1"), ("konghq.com/headers.b", "2")]);
        assert_eq!(p.keys().collect::<Vec<_>>(), ["konghq.com/headers.a", "konghq.com/headers.b", "konghq.com/path"]);
        assert!(Pairs::default().is_empty());
        let long = "é".repeat(300);
        let p: Pairs = [("k", long.as_str()), ("", "")].into_iter().collect();
        assert_eq!(p.iter().collect::<Vec<_>>(), [("", ""), ("k", long.as_str())]);
    }

    #[test]
    fn pairs_keep_the_last_value_of_a_repeated_key() {
        let p: Pairs = [("a", "1"), ("b", "2"), ("a", "3")].into_iter().collect();
        assert_eq!(p.len(), 2);
        assert_eq!(p.get("a"), Some("3"));
    }
}

/// An `Observed` status, boxed only when there is one: local manifests and
/// Secrets never carry status, and an inline `Observed` would cost ~150 bytes
/// in every object. Reads as an `Observed` (empty when absent).
#[derive(Clone, Default)]
pub struct ObservedBox(Option<Box<super::Observed>>);

/// Equal to any other, as `Observed` is: status is not a translation input.
impl PartialEq for ObservedBox {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

static NO_STATUS: super::Observed = super::Observed { programmed: None, load_balancer: None };

impl From<super::Observed> for ObservedBox {
    fn from(o: super::Observed) -> Self {
        let empty = o.programmed.is_none() && o.load_balancer.is_none();
        Self((!empty).then(|| Box::new(o)))
    }
}

impl std::ops::Deref for ObservedBox {
    type Target = super::Observed;

    fn deref(&self) -> &super::Observed {
        self.0.as_deref().unwrap_or(&NO_STATUS)
    }
}

impl std::fmt::Debug for ObservedBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}
