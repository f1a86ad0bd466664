//! Reading manifests at scale: the 100k-credential file of
//! `bench/proxy/gen.py` (100,000 key-auth Secrets + 100,000 KongConsumers in
//! one 34 MB multi-document file), stage by stage: split, parse to objects
//! (fast path, and the reference path libyaml -> serde_json::Value ->
//! object), shrink, and the whole folder load into a World.
//!
//!     cargo bench --bench manifests
//!
//! Prints the CPU time of each stage (this thread's, from
//! /proc/thread-self/schedstat: steadier than wall time on a shared
//! machine) and the RSS after the folder load. Results: docs/benchmarks.md.

use std::time::Instant;

use portcullis::source::files::Folder;
use portcullis::source::manifest;
use portcullis::world::{Shrunk, World};

#[path = "support/process.rs"]
mod process;
use process::rss_mb;

// The binary's allocator, so the numbers are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CREDENTIALS: usize = 100_000;

/// The same text as `bench/proxy/gen.py` writes to consumers.yaml.
fn consumers_yaml() -> String {
    let mut out = String::new();
    for i in 0..CREDENTIALS {
        let key = format!("bench-key-{i:07}-{:08x}", (i as u64 * 2654435761) % 4294967296);
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: key-{i}\n  labels: {{konghq.com/credential: key-auth}}\nstringData: {{key: {key}}}\n---\napiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: consumer-{i}\n  annotations: {{kubernetes.io/ingress.class: kong}}\nusername: consumer-{i}\ncredentials: [key-{i}]\n"
        ));
    }
    out
}

/// CPU time of this thread so far, in ms.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    stat.split_whitespace().next().and_then(|ns| ns.parse::<f64>().ok()).unwrap_or(0.0) / 1e6
}

/// Runs `f` `runs` times; prints the fastest and median CPU and wall time.
fn stage<T>(name: &str, runs: usize, mut f: impl FnMut() -> T) {
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..runs {
        let (c, w) = (cpu_ms(), Instant::now());
        let out = f();
        cpu.push(cpu_ms() - c);
        wall.push(w.elapsed().as_secs_f64() * 1e3);
        drop(out);
    }
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    println!(
        "{name:<28} cpu ms: min {:>7.1} median {:>7.1}   wall ms: min {:>7.1} median {:>7.1}   ({runs} runs)",
        cpu[0],
        cpu[runs / 2],
        wall[0],
        wall[runs / 2]
    );
}

fn main() {
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let run = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let text = consumers_yaml();
    println!("{} documents, {} MB", 2 * CREDENTIALS, text.len() / 1_000_000);
    if run("split") {
        stage("split", 5, || manifest::split(&text).len());
    }
    if run("parse_fast") {
        stage("parse_fast (to objects)", 5, || {
            let mut n = 0;
            let chunks = manifest::split(&text);
            manifest::parse_chunks(&text, &chunks, |_| true, |_, d| n += usize::from(d.result.is_ok()))
                .expect("parses");
            assert_eq!(n, 2 * CREDENTIALS);
        });
    }
    if run("shrink") {
        stage("parse_fast + shrink", 5, || {
            let mut n = 0;
            let chunks = manifest::split(&text);
            manifest::parse_chunks(
                &text,
                &chunks,
                |_| true,
                |_, d| n += usize::from(Shrunk::from_object(&d.result.expect("valid")).is_ok()),
            )
            .expect("parses");
            assert_eq!(n, 2 * CREDENTIALS);
        });
    }
    if run("reference") {
        stage("parse_reference (to objects)", 1, || {
            let mut n = 0;
            for chunk in manifest::split(&text) {
                manifest::parse_chunk(&chunk, |d| n += usize::from(d.result.is_ok())).expect("parses");
            }
            assert_eq!(n, 2 * CREDENTIALS);
        });
    }
    if run("folder") {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("consumers.yaml");
        std::fs::write(&path, &text).expect("write");
        let load = || {
            let mut folder = Folder::new(dir.path());
            let mut world = World::new();
            folder.rescan(&mut world).expect("rescan");
            assert_eq!(world.secrets.len(), CREDENTIALS);
            (folder, world)
        };
        stage("folder load (to World)", 3, load);
        let (mut folder, mut world) = load();
        println!("RSS after a folder load: {} MB", rss_mb());
        // SAFETY: takes no pointers; callable at any time.
        unsafe { libmimalloc_sys::mi_collect(true) };
        println!("RSS after mi_collect: {} MB", rss_mb());
        stage("folder reload, unchanged", 3, || folder.reload([path.clone()], &mut world));
        let edited = text.replacen("bench-key-0000000", "edited-key-0000000", 1);
        std::fs::write(&path, &edited).expect("write");
        stage("folder reload, one edit", 1, || folder.reload([path.clone()], &mut world));
        assert_eq!(folder.last_parsed(), 1);
        // An object gone: its name is found again in the World, in one pass.
        let cut = edited.rfind("---\napiVersion: configuration.konghq.com/v1").expect("a KongConsumer");
        std::fs::write(&path, &edited[..cut]).expect("write");
        stage("folder reload, one deletion", 1, || folder.reload([path.clone()], &mut world));
        assert_eq!(world.consumers.len(), CREDENTIALS - 1);
    }
}
