//! Translation at scale (issue: 100k credentials + 10k Ingresses + 10k
//! Services): a full rebuild, one credential change, one Ingress change.
//! Run: `cargo bench --bench translate`. Results: docs/benchmarks.md.

use divan::Bencher;
use portcullis::publish::{Publisher, Shared};
use portcullis::source::manifest;
use portcullis::translate::{self, Config};
use portcullis::world::{Object, World};

// The binary's allocator, so the numbers are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
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
    for i in 0..CREDENTIALS {
        yaml.push_str(&consumer(i, &format!("key-{i:08}-{}", i * 7919)));
    }
    let mut world = World::new();
    for obj in objects(&yaml) {
        world.apply(obj).expect("object shrinks");
    }
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
