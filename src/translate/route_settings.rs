//! Route settings from an Ingress's `konghq.com/*` annotations. A bad value
//! is a Problem naming the annotation; that one setting keeps its default and
//! the rest of the Ingress still works.

use http::{HeaderName, Method, StatusCode};

use crate::api::{
    ANN_CONNECT_TIMEOUT, ANN_HEADERS_PREFIX, ANN_HOST_ALIASES, ANN_HOST_HEADER, ANN_HTTPS_REDIRECT, ANN_METHODS,
    ANN_PATH, ANN_PLUGINS, ANN_PRESERVE_HOST, ANN_PROTOCOLS, ANN_READ_TIMEOUT, ANN_REGEX_PRIORITY, ANN_RETRIES,
    ANN_SERVICE_UPSTREAM, ANN_STRIP_PATH, ANN_WRITE_TIMEOUT,
};
use crate::snapshot::{HeaderMatch, HostMatch, Protocols};

use super::Problem;
use super::annotations::{Annotated, comma_list, printable};
use super::host::parse_host;

/// Status codes Kong accepts for `https_redirect_status_code`.
const REDIRECT_CODES: [u16; 5] = [301, 302, 307, 308, 426];
const DEFAULT_REDIRECT: StatusCode = StatusCode::UPGRADE_REQUIRED;

#[derive(Clone, Debug)]
pub struct RouteSettings {
    pub strip_path: bool,
    pub preserve_host: bool,
    pub methods: Vec<Method>,
    pub headers: Vec<HeaderMatch>,
    pub protocols: Protocols,
    pub https_redirect_status: StatusCode,
    pub host_aliases: Vec<HostMatch>,
    pub regex_priority: i64,
}

impl RouteSettings {
    pub fn read(ing: &Annotated<'_>, problems: &mut Vec<Problem>) -> Self {
        ing.report_unknown(
            &[
                ANN_PLUGINS,
                ANN_STRIP_PATH,
                ANN_PRESERVE_HOST,
                ANN_METHODS,
                ANN_HTTPS_REDIRECT,
                ANN_PROTOCOLS,
                ANN_HEADERS_PREFIX,
                ANN_HOST_ALIASES,
                ANN_REGEX_PRIORITY,
            ],
            &[
                (ANN_PATH, "Service"),
                (ANN_CONNECT_TIMEOUT, "Service"),
                (ANN_READ_TIMEOUT, "Service"),
                (ANN_WRITE_TIMEOUT, "Service"),
                (ANN_RETRIES, "Service"),
                (ANN_HOST_HEADER, "Service"),
                (ANN_SERVICE_UPSTREAM, "Service"),
            ],
            problems,
        );
        Self {
            // KIC's Ingress defaults (Kong's own route default strips the path).
            strip_path: ing.bool_or(ANN_STRIP_PATH, false, problems),
            preserve_host: ing.bool_or(ANN_PRESERVE_HOST, true, problems),
            methods: methods(ing, problems),
            headers: headers(ing, problems),
            protocols: protocols(ing, problems),
            https_redirect_status: redirect_status(ing, problems),
            host_aliases: host_aliases(ing, problems),
            regex_priority: regex_priority(ing, problems),
        }
    }
}

fn methods(ing: &Annotated<'_>, problems: &mut Vec<Problem>) -> Vec<Method> {
    let Some(value) = ing.get(ANN_METHODS) else { return Vec::new() };
    // Kong's route schema: upper-case letters only.
    let parsed: Option<Vec<Method>> = comma_list(value)
        .map(|m| m.to_ascii_uppercase())
        .map(|m| m.bytes().all(|b| b.is_ascii_uppercase()).then(|| Method::from_bytes(m.as_bytes()).ok()).flatten())
        .collect();
    match parsed {
        Some(methods) if !methods.is_empty() => methods.into_iter().fold(Vec::new(), |mut seen, m| {
            if !seen.contains(&m) {
                seen.push(m);
            }
            seen
        }),
        _ => {
            problems.push(ing.invalid(
                ANN_METHODS,
                "list HTTP methods separated by commas, letters only (for example GET,POST); matching any method meanwhile",
            ));
            Vec::new()
        }
    }
}

fn headers(ing: &Annotated<'_>, problems: &mut Vec<Problem>) -> Vec<HeaderMatch> {
    let mut out = Vec::new();
    for (key, value) in ing.meta.annotations().with_prefix(ANN_HEADERS_PREFIX) {
        let Some(name) = key.strip_prefix(ANN_HEADERS_PREFIX) else { break };
        let values: Vec<String> = comma_list(value).map(str::to_string).collect();
        let header = HeaderName::from_bytes(name.as_bytes()).ok().filter(|h| h != http::header::HOST);
        match header {
            None => problems.push(ing.invalid(
                key,
                format!(
                    "'{}' is not a header name Portcullis can match on (hosts belong in spec.rules[].host); this header condition is not applied",
                    printable(name)
                ),
            )),
            Some(_) if values.is_empty() => problems.push(
                ing.invalid(key, "list the accepted values separated by commas; this header condition is not applied"),
            ),
            Some(name) => out.push(HeaderMatch { name, values }),
        }
    }
    out
}

fn protocols(ing: &Annotated<'_>, problems: &mut Vec<Problem>) -> Protocols {
    let Some(value) = ing.get(ANN_PROTOCOLS) else { return Protocols::default() };
    let mut p = Protocols { http: false, https: false };
    for item in comma_list(value) {
        match item.to_ascii_lowercase().as_str() {
            "http" => p.http = true,
            "https" => p.https = true,
            _ => {
                problems.push(ing.invalid(
                    ANN_PROTOCOLS,
                    "Portcullis routes http and https only (for example https or http,https); using http,https meanwhile",
                ));
                return Protocols::default();
            }
        }
    }
    if !(p.http || p.https) {
        problems.push(ing.invalid(ANN_PROTOCOLS, "list http and/or https; using http,https meanwhile"));
        return Protocols::default();
    }
    p
}

fn redirect_status(ing: &Annotated<'_>, problems: &mut Vec<Problem>) -> StatusCode {
    let Some(value) = ing.get(ANN_HTTPS_REDIRECT) else { return DEFAULT_REDIRECT };
    value
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|c| REDIRECT_CODES.contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or_else(|| {
            problems.push(ing.invalid(ANN_HTTPS_REDIRECT, "use one of 301, 302, 307, 308, 426; using 426 meanwhile"));
            DEFAULT_REDIRECT
        })
}

fn host_aliases(ing: &Annotated<'_>, problems: &mut Vec<Problem>) -> Vec<HostMatch> {
    let Some(value) = ing.get(ANN_HOST_ALIASES) else { return Vec::new() };
    let mut out = Vec::new();
    for alias in comma_list(value) {
        match parse_host(alias) {
            Ok(h) => out.push(h),
            // Only the bad alias is left out; the others still apply.
            Err(e) => problems.push(ing.invalid(ANN_HOST_ALIASES, format!("{e}; this alias is left out"))),
        }
    }
    out
}

fn regex_priority(ing: &Annotated<'_>, problems: &mut Vec<Problem>) -> i64 {
    let Some(value) = ing.get(ANN_REGEX_PRIORITY) else { return 0 };
    value.trim().parse().unwrap_or_else(|_| {
        problems.push(ing.invalid(ANN_REGEX_PRIORITY, "use a whole number (higher wins); using 0 meanwhile"));
        0
    })
}
