//! Backend settings from a Service's annotations (KONG_COMPAT §4). A bad
//! value is a Problem on the Service; that setting keeps Kong's default.

use std::time::Duration;

use http::HeaderValue;

use crate::api::{
    ANN_CONNECT_TIMEOUT, ANN_HOST_HEADER, ANN_PATH, ANN_PLUGINS, ANN_READ_TIMEOUT, ANN_RETRIES, ANN_SERVICE_UPSTREAM,
    ANN_WRITE_TIMEOUT,
};
use crate::snapshot::{DEFAULT_RETRIES, Timeouts};

use super::Problem;
use super::annotations::Annotated;

/// Kong's bounds for service timeouts (ms) and retries.
const MAX_TIMEOUT_MS: u64 = (1 << 31) - 2;
const MAX_RETRIES: u32 = 32_767;

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceSettings {
    pub path: String,
    pub host_header: Option<HeaderValue>,
    pub timeouts: Timeouts,
    pub retries: u32,
    /// `ingress.kubernetes.io/service-upstream: "true"`: send to the ClusterIP.
    pub service_upstream: bool,
}

impl ServiceSettings {
    pub fn read(svc: &Annotated<'_>, problems: &mut Vec<Problem>) -> Self {
        svc.report_unknown(
            &[
                ANN_PLUGINS,
                ANN_PATH,
                ANN_CONNECT_TIMEOUT,
                ANN_READ_TIMEOUT,
                ANN_WRITE_TIMEOUT,
                ANN_RETRIES,
                ANN_HOST_HEADER,
                ANN_SERVICE_UPSTREAM,
            ],
            &[],
            problems,
        );
        let defaults = Timeouts::default();
        Self {
            path: path(svc, problems),
            host_header: host_header(svc, problems),
            timeouts: Timeouts {
                connect: timeout(svc, ANN_CONNECT_TIMEOUT, defaults.connect, problems),
                read: timeout(svc, ANN_READ_TIMEOUT, defaults.read, problems),
                write: timeout(svc, ANN_WRITE_TIMEOUT, defaults.write, problems),
            },
            retries: retries(svc, problems),
            service_upstream: svc.bool_or(ANN_SERVICE_UPSTREAM, false, problems),
        }
    }
}

fn path(svc: &Annotated<'_>, problems: &mut Vec<Problem>) -> String {
    let Some(value) = svc.get(ANN_PATH) else { return "/".into() };
    let usable = value.starts_with('/')
        && !value.contains(['?', '#'])
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if usable {
        value.to_string()
    } else {
        problems.push(svc.invalid(
            ANN_PATH,
            "use an absolute path without spaces, '?' or '#' (for example /api); using / meanwhile",
        ));
        "/".into()
    }
}

fn host_header(svc: &Annotated<'_>, problems: &mut Vec<Problem>) -> Option<HeaderValue> {
    let value = svc.get(ANN_HOST_HEADER)?.trim();
    let usable = !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic());
    match HeaderValue::from_str(value) {
        Ok(h) if usable => Some(h),
        _ => {
            problems.push(svc.invalid(
                ANN_HOST_HEADER,
                "use a host name (for example internal.example.com); no Host override meanwhile",
            ));
            None
        }
    }
}

fn timeout(svc: &Annotated<'_>, key: &str, default: Duration, problems: &mut Vec<Problem>) -> Duration {
    let Some(value) = svc.get(key) else { return default };
    match value.trim().parse::<u64>() {
        Ok(ms) if (1..=MAX_TIMEOUT_MS).contains(&ms) => Duration::from_millis(ms),
        _ => {
            problems.push(svc.invalid(
                key,
                format!(
                    "use milliseconds from 1 to {MAX_TIMEOUT_MS} (for example 5000); using {} meanwhile",
                    default.as_millis()
                ),
            ));
            default
        }
    }
}

fn retries(svc: &Annotated<'_>, problems: &mut Vec<Problem>) -> u32 {
    let Some(value) = svc.get(ANN_RETRIES) else { return DEFAULT_RETRIES };
    match value.trim().parse::<u32>() {
        Ok(n) if n <= MAX_RETRIES => n,
        _ => {
            problems.push(svc.invalid(
                ANN_RETRIES,
                format!("use a whole number from 0 to {MAX_RETRIES}; using {DEFAULT_RETRIES} meanwhile"),
            ));
            DEFAULT_RETRIES
        }
    }
}
