//! Translation at scale (issue: 100k credentials + 10k Ingresses + 10k
//! Services): a full rebuild, one credential change, one Ingress change.
//! Run: `cargo bench --bench translate`. Results: docs/benchmarks.md.
//! `MEMORY=1 cargo bench --bench translate` first prints the live heap bytes
//! per credential of each structure (World, consumer translation state,
//! published consumer index, route table), counted by the allocator below.
//! `CPU=1` first prints the thread CPU time of each operation (from
//! /proc/thread-self/schedstat, in ns): unlike divan's wall-clock times it
//! barely moves when other processes load the machine.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};

use divan::Bencher;
use portcullis::publish::{Publisher, Shared};
use portcullis::source::manifest;
use portcullis::translate::{self, Config};
use portcullis::world::{Object, World};

// The binary's allocator, so the numbers are the binary's, wrapped to
// count live bytes (one relaxed atomic add per call: noise next to the
// allocation itself).
#[global_allocator]
static GLOBAL: Counting = Counting;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

/// Live heap bytes held by what `build` returns, per credential (requested
/// sizes: the allocator's rounding and page overhead come on top).
fn bytes_per_credential<T>(build: impl FnOnce() -> T) -> (T, f64) {
    let before = LIVE.load(Ordering::Relaxed);
    let value = build();
    let after = LIVE.load(Ordering::Relaxed);
    (value, (after - before) as f64 / CREDENTIALS as f64)
}

fn memory_report() {
    let cfg = Config::default();
    let (consumers_only, consumer_world) = bytes_per_credential(|| world_of(&credentials_yaml()));
    drop(consumers_only);
    let (world, whole_world) = bytes_per_credential(world);
    let (state, translation) = bytes_per_credential(|| translate::ConsumerTranslation::full(&world, &cfg));
    drop(state);
    let (consumers, index) = bytes_per_credential(|| translate::consumers(&world, &cfg));
    let (routes, route_table) = bytes_per_credential(|| translate::routes(&world, &cfg));
    println!("live heap bytes per credential ({CREDENTIALS} credentials):");
    println!("  World, credentials only (Secret + KongConsumer): {consumer_world:.0}");
    println!("  World, whole bench world (+ 10k Services/slices/Ingresses): {whole_world:.0}");
    println!("  ConsumerTranslation (state kept between publishes, incl. its index): {translation:.0}");
    println!("  ConsumerIndex + problems (what a Snapshot holds): {index:.0}");
    println!("  RouteTable + problems (10k routes, for scale): {route_table:.0}");
    drop((consumers, routes));
}

/// CPU time this thread has run, in ns.
fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    stat.split_whitespace().next().and_then(|ns| ns.parse().ok()).unwrap_or(0)
}

/// Median and fastest thread CPU time of `runs` calls of `op`, in ms (for
/// operations much longer than a scheduler tick).
fn cpu_ms<T>(runs: usize, mut op: impl FnMut() -> T) -> (f64, f64) {
    let mut times: Vec<u64> = (0..runs)
        .map(|_| {
            let start = thread_cpu_ns();
            let out = divan::black_box(op());
            let took = thread_cpu_ns() - start;
            drop(out); // freeing the result is not the operation
            took
        })
        .collect();
    times.sort_unstable();
    (times[times.len() / 2] as f64 / 1e6, times[0] as f64 / 1e6)
}

/// Median and fastest wall-clock time of `runs` calls of `op`, in ms.
fn wall_ms<T>(runs: usize, mut op: impl FnMut() -> T) -> (f64, f64) {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = std::time::Instant::now();
            let out = divan::black_box(op());
            let took = start.elapsed().as_secs_f64() * 1e3;
            drop(out);
            took
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

fn cpu_report() {
    let built = world();
    let cfg = Config::default();
    let print = |name: &str, (median, fastest): (f64, f64)| {
        println!("  {name:<24} median {median:>10.3} ms   fastest {fastest:>10.3} ms");
    };
    println!("thread CPU time ({CREDENTIALS} credentials, {SERVICES} Services/Ingresses):");
    print("full_rebuild", cpu_ms(5, || translate::translate(&built, &cfg)));
    // The routes and consumers parts run at once on two threads: thread
    // CPU time misses the second one, wall-clock time is what counts.
    print("full_rebuild (wall)", wall_ms(5, || translate::translate(&built, &cfg)));
    let mut worlds: Vec<World> = (0..5).map(|_| built.clone()).collect();
    print(
        "first publish (wall)",
        wall_ms(5, || {
            let mut world = worlds.pop().unwrap_or_default();
            let mut publisher = Publisher::new(cfg.clone(), Shared::new());
            let outcome = publisher.publish(&mut world, None);
            (world, publisher, outcome)
        }),
    );
    print("consumers_part", cpu_ms(5, || translate::consumers(&built, &cfg)));
    print("routes_part", cpu_ms(5, || translate::routes(&built, &cfg)));
    drop(built);
    // The scheduler updates a thread's CPU time at ticks (~4 ms): a change
    // of microseconds is timed as the mean over many, prepared beforehand.
    for (name, runs, change) in [
        (
            "one_credential_change",
            2000,
            &(|n: usize| consumer(42, &format!("rotated-{n}"))) as &dyn Fn(usize) -> String,
        ),
        ("one_ingress_change", 20, &|n: usize| service(42, &format!("/api-{n}"))),
    ] {
        let mut world = world();
        let mut publisher = Publisher::new(Config::default(), Shared::new());
        publisher.publish(&mut world, None);
        let changes: Vec<Vec<Object>> = (1..=runs).map(|n| objects(&change(n))).collect();
        let start = thread_cpu_ns();
        for objs in changes {
            for o in objs {
                let _ = world.apply(o);
            }
            divan::black_box(publisher.publish(&mut world, None));
        }
        let mean = (thread_cpu_ns() - start) as f64 / runs as f64 / 1e6;
        println!("  {name:<24} mean   {mean:>10.3} ms   over {runs} changes");
    }
}

/// `PROFILE=full|consumers|routes`: builds the world once, then runs that
/// operation 20 times and exits, so a profiler (`perf record`) sees
/// little else.
fn profile_loop(part: &str) {
    let built = world();
    let cfg = Config::default();
    for _ in 0..20 {
        match part {
            "consumers" => drop(divan::black_box(translate::consumers(&built, &cfg))),
            "routes" => drop(divan::black_box(translate::routes(&built, &cfg))),
            _ => drop(divan::black_box(translate::translate(&built, &cfg))),
        }
    }
}

fn main() {
    if std::env::var_os("MEMORY").is_some() {
        memory_report();
    }
    if std::env::var_os("CPU").is_some() {
        cpu_report();
    }
    if let Some(part) = std::env::var_os("PROFILE") {
        profile_loop(&part.to_string_lossy());
        return;
    }
    divan::main();
}

const CREDENTIALS: usize = 100_000;
const SERVICES: usize = 10_000;

fn objects(yaml: &str) -> Vec<Object> {
    manifest::parse(yaml).expect("generated YAML parses").into_iter().map(|d| d.result.expect("valid object")).collect()
}

fn consumer(i: usize, key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: key-{i}\n  namespace: ns-{ns}\n  labels: {{konghq.com/credential: key-auth}}\nstringData: {{key: {key}}}\n---\napiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: consumer-{i}\n  namespace: ns-{ns}\n  annotations: {{kubernetes.io/ingress.class: kong}}\nusername: consumer-{i}\ncredentials: [key-{i}]\n---\n",
        ns = i % 100
    )
}

fn service(i: usize, path: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: ns-{ns}\n  annotations: {{konghq.com/plugins: key-auth}}\nspec:\n  ports: [{{name: http, port: 80, targetPort: 8080}}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: svc-{i}-a\n  namespace: ns-{ns}\n  labels: {{kubernetes.io/service-name: svc-{i}}}\naddressType: IPv4\nports: [{{name: http, port: 8080}}]\nendpoints: [{{addresses: [10.0.{a}.{b}]}}, {{addresses: [10.1.{a}.{b}]}}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: ing-{i}\n  namespace: ns-{ns}\nspec:\n  ingressClassName: kong\n  rules:\n  - host: app-{i}.example.com\n    http:\n      paths:\n      - {{path: {path}, pathType: Prefix, backend: {{service: {{name: svc-{i}, port: {{number: 80}}}}}}}}\n---\n",
        ns = i % 100,
        a = i / 250,
        b = i % 250
    )
}

/// The scale of the issue, with a key-auth KongPlugin in every namespace.
fn world() -> World {
    let mut yaml = String::new();
    for ns in 0..100 {
        yaml.push_str(&format!(
            "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata: {{name: key-auth, namespace: ns-{ns}}}\nplugin: key-auth\n---\n"
        ));
    }
    for i in 0..SERVICES {
        yaml.push_str(&service(i, "/api"));
    }
    yaml.push_str(&credentials_yaml());
    world_of(&yaml)
}

fn credentials_yaml() -> String {
    (0..CREDENTIALS).map(|i| consumer(i, &format!("key-{i:08}-{}", i * 7919))).collect()
}

fn world_of(yaml: &str) -> World {
    let mut world = World::new();
    for obj in objects(yaml) {
        world.apply(obj).expect("object shrinks");
    }
    // What changed since the last publish: taken by the first one.
    world.take_key_changes();
    world.take_changes();
    world
}

#[divan::bench(sample_count = 10)]
fn full_rebuild(bencher: Bencher) {
    let world = world();
    let cfg = Config::default();
    bencher.bench(|| translate::translate(&world, &cfg));
}

#[divan::bench(sample_count = 10)]
fn routes_part(bencher: Bencher) {
    let world = world();
    let cfg = Config::default();
    bencher.bench(|| translate::routes(&world, &cfg));
}

#[divan::bench(sample_count = 10)]
fn consumers_part(bencher: Bencher) {
    let world = world();
    let cfg = Config::default();
    bencher.bench(|| translate::consumers(&world, &cfg));
}

/// Publishing after one change to the world at scale: `change(n)` gives the
/// manifests of the n-th change (distinct each time, so every one is real).
fn publish_after(bencher: Bencher, mut change: impl FnMut(usize) -> String) {
    let mut world = world();
    let mut publisher = Publisher::new(Config::default(), Shared::new());
    publisher.publish(&mut world, None);
    let mut n = 0usize;
    bencher
        .with_inputs(|| {
            n += 1;
            objects(&change(n))
        })
        .bench_local_values(|objs| {
            for o in objs {
                let _ = world.apply(o);
            }
            publisher.publish(&mut world, None)
        });
}

/// One credential Secret changed (rotated key).
#[divan::bench(sample_count = 20)]
fn one_credential_change(bencher: Bencher) {
    publish_after(bencher, |n| consumer(42, &format!("rotated-{n}")));
}

/// One Ingress changed (new path).
#[divan::bench(sample_count = 20)]
fn one_ingress_change(bencher: Bencher) {
    publish_after(bencher, |n| service(42, &format!("/api-{n}")));
}
