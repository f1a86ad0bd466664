//! Giving back the code pages startup used (Linux).
//!
//! Loading 100k credentials runs code the serving process never runs again
//! (argument parsing, the first list and its bulk decode, the full
//! translation), and the kernel maps code in 64 KB runs around each page
//! that faults, so after startup ~8 MB of the binary's and libc's code and
//! read-only data stays in the process's resident set. Once the first
//! snapshot is live the process drops every such page it holds; the ones
//! serving and watching use fault back in from the page cache (a minor
//! fault each, once), the rest stay out. Measured in docs/benchmarks.md,
//! "Startup code given back".
//!
//! Only mappings whose pages are all the file's own are dropped: read-only,
//! file-backed and without a page the process wrote (`Anonymous: 0 kB` in
//! `/proc/self/smaps`). A relocated read-only page (RELRO) holds data
//! the file does not and is never touched.

use std::io;

/// A file-backed mapping that can be dropped and read back unchanged.
#[derive(Debug, PartialEq, Eq)]
struct Clean {
    start: usize,
    end: usize,
    resident_kb: u64,
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
/// The mappings of `smaps` (the text of `/proc/<pid>/smaps`) whose pages
/// all equal their file's.
fn clean_file_mappings(smaps: &str) -> Vec<Clean> {
    // Read-only private file mappings, each with whether its `Anonymous`
    // line said 0 kB (a missing or unreadable line counts as written).
    let mut candidates: Vec<(Clean, bool)> = Vec::new();
    // Whether the lines being read belong to the last candidate.
    let mut reading = false;
    for line in smaps.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some(name) = first.strip_suffix(':') {
            let Some((m, unwritten)) = candidates.last_mut().filter(|_| reading) else { continue };
            let kb = fields.next().and_then(|v| v.parse::<u64>().ok());
            match name {
                "Rss" => m.resident_kb = kb.unwrap_or(0),
                "Anonymous" => *unwritten = kb == Some(0),
                _ => {}
            }
            continue;
        }
        // "start-end perms offset dev inode path"
        let (Some((start, end)), Some(perms), Some(_offset), Some(_dev), Some(inode), Some(path)) =
            (first.split_once('-'), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            reading = false;
            continue;
        };
        let readonly_private = perms.as_bytes().get(1) == Some(&b'-') && perms.as_bytes().get(3) == Some(&b'p');
        reading = false;
        if readonly_private
            && inode != "0"
            && path.starts_with('/')
            && let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16))
        {
            candidates.push((Clean { start, end, resident_kb: 0 }, false));
            reading = true;
        }
    }
    candidates.into_iter().filter(|(m, unwritten)| *unwritten && m.resident_kb > 0).map(|(m, _)| m).collect()
}

#[cfg(not(target_os = "linux"))]
pub fn drop_resident_code() -> io::Result<u64> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(target_os = "linux")]
/// Drops this process's resident pages of clean file mappings (code and
/// read-only data); returns how many KB were resident. Best effort: a
/// mapping the kernel refuses is left as it is.
pub fn drop_resident_code() -> io::Result<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut dropped = 0;
    for m in clean_file_mappings(&smaps) {
        // SAFETY: the range is a whole mapping of this process that is
        // read-only, private and holds no page the process wrote, so every
        // page reads back from its file exactly as it was; the mapping
        // stays in place. Nothing can write to it meanwhile: it is not
        // writable, and nothing in this process makes it so after startup.
        let result = unsafe {
            rustix::mm::madvise(m.start as *mut std::ffi::c_void, m.end - m.start, rustix::mm::Advice::LinuxDontNeed)
        };
        if result.is_ok() {
            dropped += m.resident_kb;
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d000000000-55d000100000 r--p 00000000 08:01 4242    /usr/bin/portcullis
Size:               1024 kB
Rss:                 300 kB
Anonymous:             0 kB
55d000100000-55d000900000 r-xp 00100000 08:01 4242    /usr/bin/portcullis
Rss:                5000 kB
Anonymous:             0 kB
55d000900000-55d000a00000 r--p 00900000 08:01 4242    /usr/bin/portcullis
Rss:                 400 kB
Anonymous:           400 kB
55d000a00000-55d000a10000 rw-p 00a00000 08:01 4242    /usr/bin/portcullis
Rss:                  64 kB
Anonymous:            64 kB
55d000a10000-55d000a20000 r-xp 00000000 08:01 4243    /usr/lib/libc.so.6
Rss:                   0 kB
Anonymous:             0 kB
7f0000000000-7f0000100000 r--p 00000000 00:00 0 
Rss:                  12 kB
Anonymous:            12 kB
7f0000100000-7f0000200000 r-xs 00000000 00:05 77      /dev/shm/shared
Rss:                  40 kB
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0       [vdso]
Rss:                   8 kB
Anonymous:             0 kB
7f0000300000-7f0000310000 r-xp 00000000 08:01 4244    /usr/lib/libm.so.6
Rss:                  16 kB
";

    #[test]
    fn only_unwritten_private_read_only_file_mappings_are_clean() {
        let clean = clean_file_mappings(SMAPS);
        assert_eq!(
            clean,
            [
                Clean { start: 0x55d0_0000_0000, end: 0x55d0_0010_0000, resident_kb: 300 },
                Clean { start: 0x55d0_0010_0000, end: 0x55d0_0090_0000, resident_kb: 5000 },
            ],
            "RELRO (written), writable, anonymous, shared, vdso and non-resident mappings stay; \
             a mapping whose Anonymous line is missing counts as written"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_code_to_give_back_and_runs_on_after() {
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            eprintln!("skipped: no /proc/self/smaps");
            return;
        };
        assert!(!clean_file_mappings(&smaps).is_empty(), "the test binary's own code is a clean mapping");
        let dropped = drop_resident_code().expect("smaps readable");
        assert!(dropped > 0);
        // The code this test runs, and what it calls, fault back in.
        assert!(std::fs::read_to_string("/proc/self/smaps").is_ok());
    }
}
