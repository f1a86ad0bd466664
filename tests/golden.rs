//! Golden translation tests: `tests/golden/<case>/in.yaml` holds manifests as
//! users write them; the translation (summary + problems) must equal
//! `out.yaml`. `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the
//! expected files; review the diff before committing.
//!
//! Optional per case:
//! - `config.yaml`: `ingress_class` / `controller_name` (translate::Config);
//! - `requests.yaml`: a list of `{method, host, path, headers}`; the route
//!   each one reaches is recorded under `matches`.
//!
//! Every case also checks that no credential key from `in.yaml` appears in
//! the output (so keys in cases must be distinctive strings), that no PEM
//! material (certificate or private key) does either, and that the result
//! does not depend on the order objects are applied in.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use portcullis::snapshot::{Snapshot, Summary};
use portcullis::source::manifest;
use portcullis::translate::{self, Config, Problem};
use portcullis::world::{Object, World};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Golden<'a> {
    #[serde(flatten)]
    summary: Summary,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    matches: Vec<String>,
    problems: &'a [Problem],
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CaseConfig {
    ingress_class: Option<String>,
    controller_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default = "get")]
    method: String,
    #[serde(default)]
    host: String,
    path: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
}

fn get() -> String {
    "GET".into()
}

#[test]
fn golden() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases under {}", root.display());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let failures: Vec<String> = cases.iter().filter_map(|dir| run_case(dir, update).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn run_case(dir: &Path, update: bool) -> Result<(), String> {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let fail = |msg: String| format!("=== {name}: {msg}");
    let read = |file: &str| std::fs::read_to_string(dir.join(file));
    let input = read("in.yaml").map_err(|e| fail(format!("in.yaml: {e}")))?;
    let cfg = match read("config.yaml") {
        Ok(text) => {
            let c: CaseConfig = serde_yaml_ng::from_str(&text).map_err(|e| fail(format!("config.yaml: {e}")))?;
            let d = Config::default();
            Config {
                ingress_class: c.ingress_class.unwrap_or(d.ingress_class),
                controller_name: c.controller_name.unwrap_or(d.controller_name),
            }
        }
        Err(_) => Config::default(),
    };
    let requests: Vec<Request> = match read("requests.yaml") {
        Ok(text) => serde_yaml_ng::from_str(&text).map_err(|e| fail(format!("requests.yaml: {e}")))?,
        Err(_) => Vec::new(),
    };

    let objects = objects(&input).map_err(fail)?;
    let keys = secret_keys(&objects);
    let actual = render(&world(objects.iter().cloned()), &cfg, &requests).map_err(fail)?;
    let reversed = render(&world(objects.iter().rev().cloned()), &cfg, &requests).map_err(fail)?;
    if actual != reversed {
        return Err(fail(format!("output depends on the order objects are applied in:\n{}", diff(&actual, &reversed))));
    }
    for key in &keys {
        if actual.contains(key.as_str()) {
            return Err(fail(format!("output contains the credential key '{key}'")));
        }
    }
    if actual.contains("-----BEGIN") || pem_lines(&objects).iter().any(|l| actual.contains(l.as_str())) {
        let line = pem_lines(&objects).into_iter().find(|l| actual.contains(l.as_str())).unwrap_or_default();
        return Err(fail(format!("output contains PEM material from a TLS Secret: {line:?}")));
    }

    let out = dir.join("out.yaml");
    if update {
        return std::fs::write(&out, &actual).map_err(|e| fail(format!("writing out.yaml: {e}")));
    }
    let expected = std::fs::read_to_string(&out)
        .map_err(|e| fail(format!("out.yaml: {e} (run with UPDATE_GOLDEN=1 to create it)")))?;
    if expected != actual {
        return Err(fail(format!(
            "output differs from out.yaml (- expected, + actual; UPDATE_GOLDEN=1 rewrites it):\n{}",
            diff(&expected, &actual)
        )));
    }
    Ok(())
}

fn objects(input: &str) -> Result<Vec<Object>, String> {
    let docs = manifest::parse(input).map_err(|e| format!("in.yaml: {e}"))?;
    docs.into_iter()
        .map(|d| {
            let position = d.position();
            d.result.map_err(|e| format!("in.yaml {position}: {e} (cases must hold readable manifests)"))
        })
        .collect()
}

fn world(objects: impl Iterator<Item = Object>) -> World {
    let mut world = World::new();
    for obj in objects {
        if let Err(e) = world.apply(obj) {
            panic!("apply: {e}");
        }
    }
    world
}

/// Every credential key written in the case (stringData or decoded data).
fn secret_keys(objects: &[Object]) -> Vec<String> {
    let mut keys = Vec::new();
    for obj in objects {
        if let Object::Secret(s) = obj {
            keys.extend(s.string_data.iter().flatten().filter(|(k, _)| *k == "key").map(|(_, v)| v.clone()));
            keys.extend(
                s.data.iter().flatten().filter(|(k, _)| *k == "key").map(|(_, v)| String::from_utf8_lossy(&v.0).into()),
            );
        }
    }
    keys.retain(|k| !k.is_empty());
    keys
}

/// The base64 lines of every `tls.crt` / `tls.key` written in the case.
fn pem_lines(objects: &[Object]) -> Vec<String> {
    let mut lines = Vec::new();
    for obj in objects {
        if let Object::Secret(s) = obj {
            let pem = |k: &String| k == "tls.crt" || k == "tls.key";
            let string_data = s.string_data.iter().flatten().filter(|(k, _)| pem(k)).map(|(_, v)| v.clone());
            let data =
                s.data.iter().flatten().filter(|(k, _)| pem(k)).map(|(_, v)| String::from_utf8_lossy(&v.0).into());
            for text in string_data.chain(data) {
                lines.extend(
                    text.lines().map(str::trim).filter(|l| l.len() >= 16 && !l.starts_with("-----")).map(String::from),
                );
            }
        }
    }
    lines
}

fn render(world: &World, cfg: &Config, requests: &[Request]) -> Result<String, String> {
    let t = translate::translate(world, cfg);
    let golden = Golden { summary: t.summary(), matches: matches(&t.snapshot, requests)?, problems: &t.problems };
    serde_yaml_ng::to_string(&golden).map_err(|e| format!("serializing: {e}"))
}

fn matches(snapshot: &Snapshot, requests: &[Request]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for r in requests {
        let method = Method::from_bytes(r.method.as_bytes()).map_err(|e| format!("requests.yaml: {e}"))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &r.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("requests.yaml: {e}"))?;
            let value = HeaderValue::from_str(v).map_err(|e| format!("requests.yaml: {e}"))?;
            headers.append(name, value);
        }
        let mut line = format!("{} {}{}", r.method, r.host, r.path);
        for (k, v) in &r.headers {
            let _ = write!(line, " [{k}: {v}]");
        }
        let route = snapshot.routes.find(&r.host, &r.path, &method, &headers);
        let _ = write!(line, " -> {}", route.map_or("404", |r| r.name.as_str()));
        out.push(line);
    }
    Ok(out)
}

/// A line diff (longest common subsequence): `-` expected, `+` actual.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "-{:>4} | {}", i + 1, a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+{:>4} | {}", j + 1, b[j]);
            j += 1;
        }
    }
    out
}
