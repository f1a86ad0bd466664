//! Process-wide memory settings of the binary (Linux).

#![cfg(target_os = "linux")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `THP_enabled` line of a process's status, once the process has set it.
fn thp_enabled(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("THP_enabled:")).map(|v| v.trim().to_string())
}

#[test]
fn transparent_huge_pages_are_off_for_the_process() {
    if thp_enabled(std::process::id()).is_none() {
        eprintln!("skipped: this kernel does not report THP_enabled");
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["echo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Set first thing in main: poll until the process got there.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = thp_enabled(child.id());
    while seen.as_deref() != Some("0") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        seen = thp_enabled(child.id());
    }
    child.kill().ok();
    child.wait().ok();
    assert_eq!(seen.as_deref(), Some("0"), "THP_enabled in /proc/<pid>/status");
}

/// The binary's mimalloc options as mimalloc reports them at its start
/// (`MIMALLOC_VERBOSE=1` prints each one as it is first read).
fn allocator_options(env: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("crds")
        .env("MIMALLOC_VERBOSE", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn freed_pages_go_back_at_once_unless_the_environment_says_otherwise() {
    // Set before the first allocation, so mimalloc's own start sees them.
    let options = allocator_options(&[]);
    assert!(options.contains("option 'arena_eager_commit': 0"), "{options}");
    assert!(options.contains("option 'purge_delay': 0"), "{options}");

    let options = allocator_options(&[("MIMALLOC_PURGE_DELAY", "7"), ("MIMALLOC_ARENA_EAGER_COMMIT", "1")]);
    assert!(options.contains("option 'arena_eager_commit': 1"), "{options}");
    assert!(options.contains("option 'purge_delay': 7"), "{options}");
}
