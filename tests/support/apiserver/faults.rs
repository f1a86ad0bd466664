//! Injected faults (failing and slow requests) and the request log tests count writes with.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

/// What fault predicates see of a request.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    pub method: String,
    pub path: String,
    pub query: String,
    pub user_agent: Option<String>,
}

impl RequestInfo {
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() { self.path.clone() } else { format!("{}?{}", self.path, self.query) }
    }

    pub fn is_watch(&self) -> bool {
        form_urlencoded::parse(self.query.as_bytes()).any(|(k, v)| k == "watch" && (v == "1" || v == "true"))
    }
}

pub type Predicate = Arc<dyn Fn(&RequestInfo) -> bool + Send + Sync>;

struct Failure {
    predicate: Predicate,
    remaining: usize,
    code: u16,
}

#[derive(Default)]
pub struct Faults {
    failures: Mutex<Vec<Failure>>,
    delays: Mutex<Vec<(Predicate, Duration)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Faults {
    pub fn fail(&self, predicate: Predicate, times: usize, code: u16) {
        if times > 0 {
            lock(&self.failures).push(Failure { predicate, remaining: times, code });
        }
    }

    /// The status code to fail this request with, using up one of the first matching rule's tries.
    pub fn take_failure(&self, info: &RequestInfo) -> Option<u16> {
        let mut failures = lock(&self.failures);
        let index = failures.iter().position(|f| (f.predicate)(info))?;
        let failure = &mut failures[index];
        failure.remaining -= 1;
        let code = failure.code;
        if failure.remaining == 0 {
            failures.remove(index);
        }
        Some(code)
    }

    pub fn add_delay(&self, predicate: Predicate, delay: Duration) {
        lock(&self.delays).push((predicate, delay));
    }

    pub fn clear_delays(&self) {
        lock(&self.delays).clear();
    }

    /// The longest delay among the rules matching this request.
    pub fn delay_for(&self, info: &RequestInfo) -> Duration {
        lock(&self.delays).iter().filter(|(p, _)| p(info)).map(|(_, d)| *d).max().unwrap_or_default()
    }

    pub fn clear(&self) {
        lock(&self.failures).clear();
        self.clear_delays();
    }
}

/// One answered request.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    /// Tells clients apart: `ApiServer::client_as(name)` sends `name` as its User-Agent.
    pub user_agent: Option<String>,
    pub watch: bool,
}

impl RequestRecord {
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
}

/// Bounded so a long test cannot grow it without limit; the oldest entries go first.
const REQUEST_LOG_LIMIT: usize = 100_000;

#[derive(Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<RequestRecord>>,
}

impl RequestLog {
    pub fn record(&self, info: &RequestInfo, status: u16) {
        let mut entries = lock(&self.entries);
        if entries.len() >= REQUEST_LOG_LIMIT {
            entries.pop_front();
        }
        entries.push_back(RequestRecord {
            method: info.method.clone(),
            path: info.path.clone(),
            query: info.query.clone(),
            status,
            user_agent: info.user_agent.clone(),
            watch: info.is_watch(),
        });
    }

    pub fn snapshot(&self) -> Vec<RequestRecord> {
        lock(&self.entries).iter().cloned().collect()
    }

    pub fn clear(&self) {
        lock(&self.entries).clear();
    }
}
