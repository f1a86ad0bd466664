//! Process memory, for benchmarks that report it.

/// A `kB` field of /proc/<pid>/status, in MB (0 where there is none).
fn status_mb(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

/// This process's resident set size in MB (`VmRSS`).
pub fn rss_mb() -> u64 {
    status_mb("self", "VmRSS")
}

/// Another process's resident set: (total, anonymous, file-backed) in MB.
#[allow(dead_code)] // not every bench including this module reports one
pub fn rss_of(pid: u32) -> (u64, u64, u64) {
    let pid = pid.to_string();
    (status_mb(&pid, "VmRSS"), status_mb(&pid, "RssAnon"), status_mb(&pid, "RssFile"))
}

/// The highest resident set another process has had, in MB (`VmHWM`; a new
/// program starts its own count at exec).
#[allow(dead_code)]
pub fn peak_rss_of(pid: u32) -> u64 {
    status_mb(&pid.to_string(), "VmHWM")
}
