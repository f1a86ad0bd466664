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

/// The child's log lines, read on a thread of their own so a wait can
/// time out.
fn log_lines(log: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(log)).map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The first line containing `what` within 20 s, or None.
fn log_line(lines: &std::sync::mpsc::Receiver<String>, what: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = lines.recv_timeout(deadline.checked_duration_since(Instant::now())?).ok()?;
        if line.contains(what) {
            return Some(line);
        }
    }
}
#[test]
fn startup_code_pages_are_given_back_once_the_first_snapshot_is_live() {
    let quickstart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("run")
        .arg("--manifests")
        .arg(&quickstart)
        .args(["--proxy-listen", "127.0.0.1:0", "--proxy-tls-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let log = log_lines(child.stderr.take().unwrap());
    let live = log_line(&log, "first snapshot live");
    let given_back = log_line(&log, "startup code pages given back");
    // The process runs on after its code pages went: it still answers
    // for its state (and the kernel shows its mappings).
    let still_running = child.try_wait().unwrap().is_none();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    child.kill().ok();
    child.wait().ok();
    assert!(live.is_some(), "no 'first snapshot live' line");
    let given_back = given_back.expect("no 'startup code pages given back' line after the first snapshot");
    let kb: u64 = given_back
        .split_whitespace()
        .find_map(|f| f.strip_prefix("kb="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no kb= field in {given_back:?}"));
    assert!(kb > 0, "{given_back}");
    assert!(still_running, "the process exited after giving its code pages back");
    assert!(smaps.contains("portcullis"), "the binary is still mapped");
}
