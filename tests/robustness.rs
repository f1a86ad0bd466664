//! No input may panic translation: thousands of deterministic mutations of
//! every golden input go through parse -> World -> translate -> summary.

use std::panic::{AssertUnwindSafe, catch_unwind};

mod support;

use portcullis::source::manifest;
use portcullis::translate::{self, Config};
use portcullis::world::World;
use support::Rng;

/// Tokens that tend to reach interesting code when spliced into YAML.
const TOKENS: &[&str] = &[
    "",
    " ",
    "\n",
    "-",
    ":",
    "'",
    "\"",
    "[",
    "]",
    "{",
    "}",
    "~",
    "null",
    "true",
    "0",
    "-1",
    "99999999999999999999",
    "/~(",
    "/~.*",
    "*.",
    "..",
    "//",
    "%zz",
    "\u{0}",
    "é",
    "key-auth",
    "Exact",
    "Prefix",
    "global",
    "kong",
    "konghq.com/plugins",
    "ttl",
    "1e309",
    "\t",
    "&a",
    "*a",
    "!!binary",
    "---\n",
    "apiVersion: v1\n",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut s: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(s.len() + 1);
        match rng.below(4) {
            0 if !s.is_empty() => {
                let end = (at + 1 + rng.below(12)).min(s.len());
                s.drain(at.min(end)..end);
            }
            1 => {
                let tok = TOKENS[rng.below(TOKENS.len())];
                s.splice(at..at, tok.chars());
            }
            2 if !s.is_empty() => {
                // Duplicate a slice of lines elsewhere.
                let from = rng.below(s.len());
                let len = rng.below(80).min(s.len() - from);
                let chunk: Vec<char> = s[from..from + len].to_vec();
                s.splice(at..at, chunk);
            }
            _ => {
                if let Some(c) = s.get_mut(at) {
                    *c = char::from(b' ' + (rng.below(95) as u8));
                }
            }
        }
    }
    s.into_iter().collect()
}

fn translate_text(text: &str) {
    let Ok(docs) = manifest::parse(text) else { return };
    let mut world = World::new();
    for doc in docs {
        if let Ok(obj) = doc.result {
            let _ = world.apply(obj);
        }
    }
    let t = translate::translate(&world, &Config::default());
    let _ = serde_yaml_ng::to_string(&t.summary());
    for p in &t.problems {
        let _ = p.to_string();
    }
}

#[test]
fn mutated_manifests_never_panic_translation() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut inputs: Vec<(String, String)> = std::fs::read_dir(&golden)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path().join("in.yaml");
            Some((p.display().to_string(), std::fs::read_to_string(&p).ok()?))
        })
        .collect();
    inputs.sort();
    assert!(inputs.len() > 20, "golden inputs not found");
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut runs = 0;
    for (name, text) in &inputs {
        for i in 0..150 {
            let mutated = mutate(&mut rng, text);
            let outcome = catch_unwind(AssertUnwindSafe(|| translate_text(&mutated)));
            assert!(outcome.is_ok(), "translation panicked on mutation {i} of {name}:\n{mutated}");
            runs += 1;
        }
    }
    println!("{runs} mutated inputs translated without a panic");
}
