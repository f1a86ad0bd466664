//! Ingress path rules (KONG_COMPAT §4): Kubernetes semantics, matched
//! literally (divergence: KIC turns Exact/Prefix into unescaped regexes).

use crate::snapshot::PathMatch;

/// Path types of `spec.rules[].http.paths[].pathType`.
const EXACT: &str = "Exact";
const PREFIX: &str = "Prefix";
const IMPLEMENTATION_SPECIFIC: &str = "ImplementationSpecific";
/// KIC's marker for a regex path (ImplementationSpecific only).
const REGEX_MARKER: &str = "/~";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path '{0}' must start with '/'")]
    NotAbsolute(String),
    #[error("pathType '{0}' is not Exact, Prefix or ImplementationSpecific")]
    UnknownType(String),
    #[error("invalid regex after '/~': {0}; fix the expression (it is matched from the start of the path)")]
    BadRegex(String),
}

/// Empty becomes `/` and runs of slashes collapse to one, as Kubernetes
/// paths are compared.
pub fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len().max(1));
    for c in path.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The match for one Ingress path. `priority` is the Ingress's
/// `konghq.com/regex-priority` (only regexes use it). An empty pathType is
/// a missing one: ImplementationSpecific.
pub fn path_match(path: Option<&str>, path_type: &str, priority: i64) -> Result<PathMatch, PathError> {
    let raw = path.unwrap_or_default();
    let is_specific = path_type.is_empty() || path_type == IMPLEMENTATION_SPECIFIC;
    if is_specific && let Some(expr) = raw.strip_prefix(REGEX_MARKER) {
        // The regex text is kept as written: collapsing slashes could change
        // what it means.
        // Checked alone first so an unbalanced `)` cannot close our group
        // and escape the anchor (`a)|(.*`).
        let bad = |e: regex::Error| PathError::BadRegex(regex_reason(&e));
        regex::Regex::new(expr).map_err(bad)?;
        let regex = regex::Regex::new(&format!("^(?:{expr})")).map_err(bad)?;
        return Ok(PathMatch::Regex { source: raw.to_string(), regex, priority });
    }
    let path = normalize(raw);
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute(super::annotations::printable(raw)));
    }
    match path_type {
        EXACT => Ok(PathMatch::Exact(path)),
        PREFIX => Ok(PathMatch::Prefix(without_trailing_slash(path))),
        _ if is_specific => Ok(PathMatch::Plain(path)),
        other => Err(PathError::UnknownType(super::annotations::printable(other))),
    }
}

/// `/aaa/bbb/` as a Prefix is `/aaa/bbb`; `/` stays `/`.
fn without_trailing_slash(mut path: String) -> String {
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    path
}

/// The one-line cause of a regex error (its Display spans several lines with
/// a caret diagram).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(m: &PathMatch) -> String {
        match m {
            PathMatch::Exact(p) => format!("Exact {p}"),
            PathMatch::Prefix(p) => format!("Prefix {p}"),
            PathMatch::Plain(p) => format!("Plain {p}"),
            PathMatch::Regex { source, priority, .. } => format!("Regex {source} {priority}"),
        }
    }

    fn ok(path: Option<&str>, t: &str) -> String {
        shown(&path_match(path, t, 0).unwrap())
    }

    #[test]
    fn normalize_collapses_and_defaults() {
        assert_eq!(normalize(""), "/");
        assert_eq!(normalize("//a///b/"), "/a/b/");
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize("///"), "/");
    }

    #[test]
    fn path_types() {
        assert_eq!(ok(None, "Prefix"), "Prefix /");
        assert_eq!(ok(Some(""), "Exact"), "Exact /");
        assert_eq!(ok(Some("/foo/"), "Exact"), "Exact /foo/");
        assert_eq!(ok(Some("/aaa/bbb/"), "Prefix"), "Prefix /aaa/bbb");
        assert_eq!(ok(Some("//"), "Prefix"), "Prefix /");
        assert_eq!(ok(Some("/foo/"), "ImplementationSpecific"), "Plain /foo/");
        assert_eq!(ok(Some("/foo"), ""), "Plain /foo");
    }

    #[test]
    fn prefix_matches_by_segment() {
        let m = path_match(Some("/foo/"), "Prefix", 0).unwrap();
        assert!(m.matches("/foo") && m.matches("/foo/") && m.matches("/foo/bar"));
        assert!(!m.matches("/foobar"));
    }

    #[test]
    fn exact_is_literal() {
        let m = path_match(Some("/a.b"), "Exact", 0).unwrap();
        assert!(m.matches("/a.b") && !m.matches("/aXb") && !m.matches("/a.b/"));
    }

    #[test]
    fn regex_paths_are_anchored_at_the_start() {
        let m = path_match(Some("/~/v[0-9]+/users"), "ImplementationSpecific", 7).unwrap();
        assert_eq!(shown(&m), "Regex /~/v[0-9]+/users 7");
        assert!(m.matches("/v2/users/1"));
        assert!(!m.matches("/api/v2/users"));
        // An alternation must not escape the anchor.
        let m = path_match(Some("/~/a|/b"), "", 0).unwrap();
        assert!(!m.matches("/x/b"));
        assert!(path_match(Some("/~a)|(.*"), "", 0).is_err());
    }

    #[test]
    fn regex_marker_only_for_implementation_specific() {
        assert_eq!(ok(Some("/~foo"), "Prefix"), "Prefix /~foo");
        assert_eq!(ok(Some("/~foo"), "Exact"), "Exact /~foo");
    }

    #[test]
    fn errors() {
        assert_eq!(path_match(Some("foo"), "Prefix", 0).unwrap_err(), PathError::NotAbsolute("foo".into()));
        assert_eq!(path_match(Some("/"), "Regex", 0).unwrap_err(), PathError::UnknownType("Regex".into()));
        let e = path_match(Some("/~(unclosed"), "", 0).unwrap_err().to_string();
        assert!(e.contains("unclosed group") && !e.contains('\n'), "{e}");
    }
}
