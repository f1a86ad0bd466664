//! Label and field selectors as kube-apiserver parses and applies them to list and watch.

use serde_json::Value;

use super::errors::ApiError;

#[derive(Clone, Debug, PartialEq)]
enum LabelOp {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
}

/// `a=b,c!=d,e in (x,y),f notin (z),g,!h` — all requirements must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<(String, LabelOp)>,
}

impl LabelSelector {
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for term in split_top_level(input) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_label_term(term)?);
        }
        Ok(LabelSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|(key, op)| match op {
            LabelOp::Eq(v) => label(key) == Some(v.as_str()),
            // As in Kubernetes, `!=` and `notin` also match objects without the label.
            LabelOp::NotEq(v) => label(key) != Some(v.as_str()),
            LabelOp::In(vs) => label(key).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelOp::NotIn(vs) => label(key).is_none_or(|l| !vs.iter().any(|v| v == l)),
            LabelOp::Exists => label(key).is_some(),
            LabelOp::NotExists => label(key).is_none(),
        })
    }
}

/// Splits on commas outside parentheses, so `a in (x,y),b` is two terms.
fn split_top_level(input: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&input[start..]);
    terms
}

fn parse_label_term(term: &str) -> Result<(String, LabelOp), ApiError> {
    let bad = || ApiError::bad_request(format!("unable to parse requirement: {term:?}"));
    let key_ok = |k: &str| !k.is_empty() && !k.contains(char::is_whitespace) && !k.contains(['=', '!', '(', ')']);
    let value_ok = |v: &str| !v.contains(char::is_whitespace) && !v.contains(['=', '!', '(', ')', ',']);

    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        return if key_ok(key) { Ok((key.to_string(), LabelOp::NotExists)) } else { Err(bad()) };
    }
    for (sep, not) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = term.split_once(sep) {
            let (key, value) = (key.trim(), value.trim());
            if !key_ok(key) || !value_ok(value) {
                return Err(bad());
            }
            let op = if not { LabelOp::NotEq(value.to_string()) } else { LabelOp::Eq(value.to_string()) };
            return Ok((key.to_string(), op));
        }
    }
    if let Some(open) = term.find('(') {
        let inner = term[open..].strip_prefix('(').and_then(|s| s.strip_suffix(')')).ok_or_else(bad)?;
        let mut head = term[..open].split_whitespace();
        let (key, op, rest) = (head.next().ok_or_else(bad)?, head.next().ok_or_else(bad)?, head.next());
        if rest.is_some() || !key_ok(key) {
            return Err(bad());
        }
        let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(|v| !value_ok(v)) || values.iter().all(String::is_empty) {
            return Err(bad());
        }
        return match op {
            "in" => Ok((key.to_string(), LabelOp::In(values))),
            "notin" => Ok((key.to_string(), LabelOp::NotIn(values))),
            _ => Err(bad()),
        };
    }
    if key_ok(term) { Ok((term.to_string(), LabelOp::Exists)) } else { Err(bad()) }
}

/// `metadata.name=x,metadata.namespace!=y`. Kubernetes allows only a few fields per kind; this
/// accepts any dotted path to a scalar (a missing field reads as ""), which is a superset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector {
    requirements: Vec<(Vec<String>, bool, String)>,
}

impl FieldSelector {
    pub fn parse(input: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for term in input.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, negate, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, false, v)
            } else {
                return Err(ApiError::bad_request(format!("invalid field selector: {term:?}")));
            };
            let path: Vec<String> = field.trim().split('.').map(str::to_string).collect();
            if path.iter().any(String::is_empty) {
                return Err(ApiError::bad_request(format!("invalid field selector: {term:?}")));
            }
            requirements.push((path, negate, value.trim().to_string()));
        }
        Ok(FieldSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements.iter().all(|(path, negate, value)| {
            let found = path.iter().try_fold(obj, |v, seg| v.get(seg));
            let actual = match found {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *value) != *negate
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(labels: Value) -> Value {
        json!({ "metadata": { "name": "a", "namespace": "ns", "labels": labels } })
    }

    #[test]
    fn label_selector_operators() {
        let o = obj(json!({ "app": "web", "tier": "front" }));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(m("app=web") && m("app==web") && m("app") && m("!missing") && m("missing!=x"));
        assert!(m("app in (web, api),tier notin (back)") && m("missing notin (x)") && m(""));
        assert!(!m("app!=web") && !m("!app") && !m("app in (api)") && !m("missing") && !m("missing in (x)"));
    }

    #[test]
    fn label_selector_rejects_garbage() {
        for s in ["a b", "a=(", "a in x", "a in ()", "=x", "a foo (x)", "!"] {
            assert!(LabelSelector::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn field_selector() {
        let o = obj(json!({}));
        let m = |s: &str| FieldSelector::parse(s).unwrap().matches(&o);
        assert!(m("metadata.name=a") && m("metadata.namespace==ns,metadata.name!=b") && m("spec.x!=y"));
        assert!(!m("metadata.name=b") && !m("metadata.name!=a"));
        assert!(FieldSelector::parse("metadata.name").is_err());
    }
}
