//! Ingress hosts: lower-cased DNS names, `*.example.com` wildcards, as the
//! Kubernetes API validates `spec.rules[].host`.

use std::net::IpAddr;

use crate::snapshot::HostMatch;

/// Longest DNS name (RFC 1123).
const MAX_HOST_LEN: usize = 253;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("host '{0}' is an IP address; Ingress hosts must be DNS names (leave the host out to match any host)")]
    IpAddress(String),
    #[error(
        "host '{0}' is not a valid DNS name: use lower-case letters, digits, '-' and '.', optionally starting with '*.' (for example app.example.com or *.example.com)"
    )]
    Invalid(String),
}

pub fn parse_host(raw: &str) -> Result<HostMatch, HostError> {
    let host = raw.trim().to_ascii_lowercase();
    let shown = || super::annotations::printable(raw);
    if host.parse::<IpAddr>().is_ok() {
        return Err(HostError::IpAddress(shown()));
    }
    match host.strip_prefix("*.") {
        Some(suffix) if is_dns_subdomain(suffix) => Ok(HostMatch::Wildcard(suffix.to_string())),
        None if is_dns_subdomain(&host) => Ok(HostMatch::Exact(host)),
        _ => Err(HostError::Invalid(shown())),
    }
}

/// RFC 1123 subdomain: dot-separated labels of `[a-z0-9-]`, each starting and
/// ending alphanumeric (the same check the API server applies).
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_HOST_LEN
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b.first() != Some(&b'-')
                && b.last() != Some(&b'-')
        })
}

/// The text form, as written in the summary and used for comparisons.
pub fn shown(h: &HostMatch) -> String {
    match h {
        HostMatch::Exact(h) => h.clone(),
        HostMatch::Wildcard(s) => format!("*.{s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard() {
        assert_eq!(parse_host("Foo.Example.COM"), Ok(HostMatch::Exact("foo.example.com".into())));
        assert_eq!(parse_host("*.example.com"), Ok(HostMatch::Wildcard("example.com".into())));
        assert_eq!(parse_host("localhost"), Ok(HostMatch::Exact("localhost".into())));
    }

    #[test]
    fn invalid_hosts() {
        for bad in ["", "*", "*.", "a..b", "-a.com", "a-.com", "foo.*.com", "a_b.com", "host:80", "a.com.", "é.com"] {
            assert!(matches!(parse_host(bad), Err(HostError::Invalid(_))), "{bad}");
        }
        assert!(matches!(parse_host("10.0.0.1"), Err(HostError::IpAddress(_))));
        assert!(parse_host(&format!("{}.com", "a".repeat(260))).is_err());
    }
}
