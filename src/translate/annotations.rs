//! Reading annotation values the way KIC does, and naming them in Problems.

use crate::world::{Kind, Meta, ObjectRef};

use super::{Problem, Reason};

/// The Problem `field` of an annotation: `metadata.annotations["konghq.com/methods"]`.
pub fn field(key: &str) -> String {
    format!("metadata.annotations[\"{key}\"]")
}

/// The reference of a shrunk object.
pub fn object_ref(kind: Kind, meta: &Meta) -> ObjectRef {
    meta.object_ref(kind)
}

/// Items of a comma-separated annotation value, trimmed, empty ones skipped.
pub fn comma_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// `"true"` / `"false"`, any case (KIC compares lower-cased).
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// An annotation of one object, with the means to report a bad value.
pub struct Annotated<'a> {
    pub object: &'a ObjectRef,
    pub meta: &'a Meta,
}

impl Annotated<'_> {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.meta.annotation(key)
    }

    /// A Problem for an unusable value; `fix` says what to write instead and
    /// which default applies meanwhile.
    pub fn invalid(&self, key: &str, fix: impl std::fmt::Display) -> Problem {
        let value = self.get(key).unwrap_or_default();
        Problem::new(
            self.object.clone(),
            field(key),
            Reason::InvalidAnnotation,
            format!("invalid value '{}': {fix}", printable(value)),
        )
    }

    /// Reads a boolean annotation; a bad value is reported and `default` used.
    pub fn bool_or(&self, key: &str, default: bool, problems: &mut Vec<Problem>) -> bool {
        match self.get(key) {
            None => default,
            Some(v) => parse_bool(v).unwrap_or_else(|| {
                problems.push(self.invalid(key, format!("use \"true\" or \"false\"; using the default {default}")));
                default
            }),
        }
    }

    /// Reports every `konghq.com/*` annotation not in `known` (prefix match
    /// for entries ending in `.`), so a typo or an unimplemented KIC feature
    /// is visible instead of silently ignored. `elsewhere` names annotations
    /// that belong on another kind.
    pub fn report_unknown(&self, known: &[&str], elsewhere: &[(&str, &str)], problems: &mut Vec<Problem>) {
        for key in self.meta.annotations().keys() {
            if !key.starts_with("konghq.com/") && !key.starts_with("ingress.kubernetes.io/") {
                continue;
            }
            if known.iter().any(|k| key == *k || (k.ends_with('.') && key.starts_with(k) && key.len() > k.len())) {
                continue;
            }
            let message = match elsewhere.iter().find(|(k, _)| key == *k) {
                Some((_, kind)) => format!("has no effect on this {}; put it on the {kind}", self.object.kind),
                None => format!("is not supported by Portcullis and has no effect on this {}", self.object.kind),
            };
            problems.push(Problem::new(self.object.clone(), field(key), Reason::UnsupportedAnnotation, message));
        }
    }
}

/// A value shown in a message: control characters escaped, long values cut,
/// so one bad annotation cannot flood a log line.
pub fn printable(value: &str) -> String {
    const MAX: usize = 100;
    let mut out = String::new();
    for c in value.chars().take(MAX) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if value.chars().count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_list_trims_and_skips_empty() {
        assert_eq!(comma_list(" a, b ,,c,").collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(comma_list("").count(), 0);
    }

    #[test]
    fn bools_are_case_insensitive_and_strict() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(parse_bool(""), None);
    }

    #[test]
    fn printable_escapes_and_cuts() {
        assert_eq!(printable("a\nb"), "a\\nb");
        assert_eq!(printable(&"x".repeat(150)).chars().count(), 101);
    }
}
