//! Differential test of the fast manifest reader (`plain_yaml` + typed
//! decoding straight from its tree) against the reference path (libyaml via
//! serde_yaml_ng -> `serde_json::Value` -> object): on many generated and
//! mutated documents, whenever the fast reader accepts a document it must
//! build the very `Value` the full parser builds, and `manifest::parse` must
//! return what `manifest::parse_reference` returns — the same objects, the
//! same per-object errors, the same syntax errors. Deterministic seeds:
//! a failure names the seed's case and prints the input.

use std::borrow::Cow;

use portcullis::source::manifest::{self, Document};
use portcullis::source::plain_yaml::{self, Node};
use serde::Deserialize;

/// Small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

fn to_value(node: &Node<'_>) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::Uint(u) => Value::from(*u),
        Node::Int(i) => Value::from(*i),
        Node::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Node::Str(s) => Value::String(s.to_string()),
        Node::Seq(items) => Value::Array(items.iter().map(to_value).collect()),
        Node::Map(entries) => {
            let mut keys: Vec<&Cow<'_, str>> = entries.iter().map(|(k, _)| k).collect();
            let sorted = keys.windows(2).all(|w| w[0] < w[1]);
            keys.dedup();
            assert!(sorted, "fast reader's map keys are sorted and unique: {keys:?}");
            Value::Object(entries.iter().map(|(k, v)| (k.to_string(), to_value(v))).collect())
        }
    }
}

/// What the full parser reads from one document's text: its values, or the
/// syntax error.
fn reference_values(text: &str) -> Result<Vec<serde_json::Value>, String> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| serde_json::Value::deserialize(d).map_err(|e| e.to_string()))
        .collect()
}

fn describe(docs: &Result<Vec<Document>, manifest::ParseError>) -> String {
    match docs {
        Ok(docs) => docs.iter().map(|d| format!("{} {:?} {:?}\n", d.index, d.item, d.result)).collect(),
        Err(e) => format!("syntax error: {e}"),
    }
}

#[derive(Default)]
struct Counts {
    cases: usize,
    fast: usize,
}

/// Checks one file's text; returns whether the fast reader read it as one
/// document.
fn check(text: &str, case: &str, counts: &mut Counts) {
    counts.cases += 1;
    if let Ok(node) = plain_yaml::parse(text) {
        counts.fast += 1;
        let reference = reference_values(text);
        let fast = to_value(&node);
        match reference {
            Ok(values) => {
                let expected = values.into_iter().next().unwrap_or(serde_json::Value::Null);
                assert_eq!(fast, expected, "{case}: fast reader differs from libyaml on:\n{text}\n---- end");
            }
            Err(e) => panic!("{case}: fast reader accepted what libyaml rejects ({e}):\n{text}\n---- end"),
        }
    }
    let fast = describe(&manifest::parse(text));
    let reference = describe(&manifest::parse_reference(text));
    assert_eq!(fast, reference, "{case}: manifest::parse differs from the reference on:\n{text}\n---- end");
}

const WORDS: &[&str] = &[
    "a",
    "key-auth",
    "kong",
    "default",
    "consumer-1",
    "Secret",
    "v1",
    "alice",
    "x_y",
    "/path",
    "http://svc:80/x",
    "a b",
    "a#b",
    "a [b]",
    "a,b",
    "a{b}",
    "é",
    "日本",
    "inf",
    "nan",
    "Infinity",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
];
/// Scalars whose type or syntax is interesting.
const ODD: &[&str] = &[
    "0",
    "1",
    "80",
    "-1",
    "+1",
    "007",
    "08",
    "0x1F",
    "0o17",
    "0b101",
    "-0x1F",
    "1_000",
    "1e3",
    "1.5",
    ".5",
    "5.",
    "-.5",
    ".inf",
    "-.inf",
    "+.inf",
    ".NaN",
    ".nan",
    "1e999",
    "99999999999999999999",
    "-99999999999999999999",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "~",
    "null",
    "Null",
    "NULL",
    "nULL",
    "true",
    "True",
    "TRUE",
    "tRUE",
    "false",
    "False",
    "",
    "12:30",
    "2024-01-01",
    "1.2.3",
    "+",
    "-",
    ".",
    "..",
    "...",
    "---",
    "- a",
    "? a",
    ": a",
    "a: b",
    "a:",
    "a :b",
    "#c",
    "a #c",
    "&x a",
    "*x",
    "!!str 1",
    "!x",
    "|",
    ">",
    "%x",
    "@x",
    "`x",
    "'q'",
    "\"q\"",
    "[a]",
    "{a: b}",
    "[a, b",
    "{a",
    "a]",
    "a}",
    "\\",
    "a\\nb",
    "\u{2028}",
    "\u{feff}",
];
const ESCAPES: &[&str] = &[
    "\\n",
    "\\t",
    "\\\\",
    "\\\"",
    "\\/",
    "\\0",
    "\\ ",
    "\\x41",
    "\\u00e9",
    "\\U0001F600",
    "\\ud800",
    "\\e",
    "\\a",
    "\\N",
    "\\_",
    "\\L",
    "\\q",
    "\\x4",
];

fn scalar(rng: &mut Rng) -> String {
    match rng.below(20) {
        0..=12 => rng.pick(WORDS).to_string(),
        13..=15 => rng.pick(ODD).to_string(),
        16..=18 => format!("{}-{}", rng.pick(WORDS), rng.below(1000)),
        _ => format!("{} {}", rng.pick(WORDS), rng.pick(ODD)),
    }
}

/// A scalar written in a random style (plain, quoted, escaped, literal).
fn render_scalar(rng: &mut Rng, s: &str, indent: usize) -> String {
    match rng.below(12) {
        0..=6 => s.to_string(),
        7 | 8 => format!("'{}'", s.replace('\'', if rng.chance(90) { "''" } else { "'" })),
        9 => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' | '\\' if rng.chance(90) => {
                        out.push('\\');
                        out.push(c);
                    }
                    _ => out.push(c),
                }
                if rng.chance(2) {
                    out.push_str(rng.pick(ESCAPES));
                }
            }
            if rng.chance(10) {
                out.push_str(rng.pick(ESCAPES));
            }
            out.push('"');
            out
        }
        _ => {
            // A literal block (the caller starts it after `key: `).
            let header = rng.pick(&["|", "|", "|-", "|-", "|+", ">", "|2", "| # c"]);
            let pad = " ".repeat(indent + 2);
            let mut out = format!("{header}\n");
            for _ in 0..1 + rng.below(3) {
                if rng.chance(15) {
                    out.push('\n');
                }
                if rng.chance(10) {
                    out.push_str(&" ".repeat(indent + 1 + rng.below(4)));
                    out.push('\n');
                }
                let extra = if rng.chance(15) { " ".repeat(rng.below(3)) } else { String::new() };
                out.push_str(&format!("{pad}{extra}{}\n", scalar(rng)));
            }
            out.pop(); // the caller ends the line
            out
        }
    }
}

/// A random tree of manifest-like shape.
#[derive(Clone)]
enum Tree {
    Scalar(String),
    Seq(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

fn key(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => rng.pick(ODD).to_string(),
        1 => format!("\"{}\"", rng.pick(WORDS)),
        2 => format!("'{}'", rng.pick(WORDS)),
        _ => rng
            .pick(&[
                "name",
                "namespace",
                "labels",
                "annotations",
                "key",
                "data",
                "stringData",
                "spec",
                "ports",
                "port",
                "konghq.com/plugins",
                "konghq.com/credential",
                "username",
                "custom_id",
                "credentials",
                "config",
                "plugin",
                "items",
                "kind",
                "apiVersion",
                "metadata",
                "x",
                "a b",
                "type",
                "rules",
                "paths",
            ])
            .to_string(),
    }
}

fn tree(rng: &mut Rng, depth: usize) -> Tree {
    match if depth > 3 { 0 } else { rng.below(6) } {
        0..=2 => Tree::Scalar(scalar(rng)),
        3 => Tree::Seq((0..rng.below(4)).map(|_| tree(rng, depth + 1)).collect()),
        _ => Tree::Map((0..rng.below(4)).map(|_| (key(rng), tree(rng, depth + 1))).collect()),
    }
}

/// A manifest-shaped document: a known kind with random (often wrong) fields.
fn object_tree(rng: &mut Rng) -> Tree {
    let s = |v: &str| Tree::Scalar(v.to_string());
    let (api, kind) = *[
        ("v1", "Secret"),
        ("configuration.konghq.com/v1", "KongConsumer"),
        ("v1", "Service"),
        ("networking.k8s.io/v1", "Ingress"),
        ("configuration.konghq.com/v1", "KongPlugin"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
        ("v1", "List"),
        ("v9", "Nope"),
    ]
    .get(rng.below(8))
    .unwrap();
    let mut meta =
        vec![("name".to_string(), if rng.chance(85) { s(&format!("obj-{}", rng.below(50))) } else { tree(rng, 2) })];
    if rng.chance(30) {
        meta.push(("namespace".into(), s(rng.pick(&["default", "team-a", "7", ""]))));
    }
    if rng.chance(40) {
        meta.push((
            "labels".into(),
            Tree::Map(vec![(
                "konghq.com/credential".into(),
                if rng.chance(85) { s("key-auth") } else { tree(rng, 3) },
            )]),
        ));
    }
    if rng.chance(40) {
        meta.push((
            "annotations".into(),
            Tree::Map(vec![(
                rng.pick(&["kubernetes.io/ingress.class", "konghq.com/plugins"]).into(),
                if rng.chance(85) { s(rng.pick(&["kong", "key-auth", "a,b"])) } else { tree(rng, 3) },
            )]),
        ));
    }
    let mut fields = vec![
        ("apiVersion".to_string(), s(api)),
        ("kind".to_string(), s(kind)),
        ("metadata".to_string(), Tree::Map(meta)),
    ];
    match kind {
        "Secret" => {
            {
                let good = Tree::Map(vec![("key".into(), Tree::Scalar(scalar(rng)))]);
                field(rng, &mut fields, "stringData", good)
            };
            if rng.chance(30) {
                {
                    let good = Tree::Map(vec![("key".into(), s(rng.pick(&["YWJj", "Zm9v", "not base64!", "MTIz"])))]);
                    field(rng, &mut fields, "data", good)
                };
            }
        }
        "KongConsumer" => {
            {
                let good = Tree::Scalar(scalar(rng));
                field(rng, &mut fields, "username", good)
            };
            {
                let good = Tree::Seq(vec![Tree::Scalar(scalar(rng))]);
                field(rng, &mut fields, "credentials", good)
            };
        }
        "Service" => {
            let port = Tree::Map(vec![("name".into(), s("http")), ("port".into(), Tree::Scalar(scalar(rng)))]);
            let good = Tree::Map(vec![("ports".into(), Tree::Seq(vec![port]))]);
            field(rng, &mut fields, "spec", good)
        }
        "KongPlugin" => {
            {
                let good = s("key-auth");
                field(rng, &mut fields, "plugin", good)
            };
            {
                let good = tree(rng, 1);
                field(rng, &mut fields, "config", good)
            };
        }
        "List" => {
            let items = (0..rng.below(3)).map(|_| object_tree(rng)).collect();
            {
                let good = Tree::Seq(items);
                field(rng, &mut fields, "items", good)
            };
        }
        _ => {
            let good = tree(rng, 1);
            field(rng, &mut fields, "spec", good)
        }
    }
    // Shuffle the fields a little (key order must not matter).
    if rng.chance(30) {
        let i = rng.below(fields.len());
        let j = rng.below(fields.len());
        fields.swap(i, j);
    }
    if rng.chance(5) {
        let dup = fields[rng.below(fields.len())].clone();
        fields.push(dup);
    }
    Tree::Map(fields)
}

fn field(rng: &mut Rng, fields: &mut Vec<(String, Tree)>, name: &str, good: Tree) {
    let value = if rng.chance(85) { good } else { tree(rng, 2) };
    fields.push((name.to_string(), value));
}

/// Writes a tree as YAML in random block and flow styles.
fn emit(rng: &mut Rng, t: &Tree, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match t {
        Tree::Scalar(s) => out.push_str(&render_scalar(rng, s, indent)),
        Tree::Seq(items) if items.is_empty() || rng.chance(25) => emit_flow(rng, t, out),
        Tree::Map(entries) if entries.is_empty() || rng.chance(25) => emit_flow(rng, t, out),
        Tree::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&pad);
                }
                out.push_str(if rng.chance(3) { "-   " } else { "- " });
                match item {
                    Tree::Map(e) if !e.is_empty() && rng.chance(80) => emit(rng, item, indent + 2, out),
                    Tree::Scalar(_) => emit(rng, item, indent + 2, out),
                    _ if rng.chance(50) => emit_flow(rng, item, out),
                    _ => {
                        out.push('\n');
                        out.push_str(&" ".repeat(indent + 2));
                        emit(rng, item, indent + 2, out);
                    }
                }
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        Tree::Map(entries) => {
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(&pad);
                }
                if rng.chance(3) {
                    out.push_str("# a comment\n");
                    out.push_str(&pad);
                }
                out.push_str(k);
                out.push(':');
                match v {
                    Tree::Scalar(_) => {
                        out.push(' ');
                        emit(rng, v, indent, out);
                        if rng.chance(5) {
                            out.push_str(rng.pick(&["  # c", " ", "#c"]));
                        }
                    }
                    Tree::Seq(items) if !items.is_empty() && rng.chance(40) => {
                        // A sequence at the key's own column.
                        out.push('\n');
                        out.push_str(&pad);
                        emit(rng, v, indent, out);
                    }
                    _ if rng.chance(30) => {
                        out.push(' ');
                        emit_flow(rng, v, out);
                    }
                    _ => {
                        out.push('\n');
                        let step = if rng.chance(10) { 4 } else { 2 };
                        out.push_str(&" ".repeat(indent + step));
                        emit(rng, v, indent + step, out);
                    }
                }
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                if rng.chance(3) {
                    out.push('\n');
                }
            }
        }
    }
}

fn emit_flow(rng: &mut Rng, t: &Tree, out: &mut String) {
    let sep = |rng: &mut Rng| rng.pick(&[", ", ",", " , ", ",\n    ", ", "]);
    match t {
        Tree::Scalar(s) => {
            let r = render_scalar(rng, s, 0);
            out.push_str(if r.contains('\n') { "x" } else { &r });
        }
        Tree::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep(rng));
                }
                emit_flow(rng, item, out);
            }
            if rng.chance(3) {
                out.push(',');
            }
            out.push(']');
        }
        Tree::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep(rng));
                }
                out.push_str(k);
                out.push_str(rng.pick(&[": ", ": ", ": ", ": ", ": ", ": ", ":", " : "]));
                emit_flow(rng, v, out);
            }
            out.push('}');
        }
    }
}

/// A generated document, sometimes with a `---` line, comments, JSON style.
fn document(rng: &mut Rng) -> String {
    let t = if rng.chance(80) { object_tree(rng) } else { tree(rng, 0) };
    let mut out = String::new();
    if rng.chance(40) {
        out.push_str(rng.pick(&["---\n", "--- # c\n", "# head\n---\n", "---   \n"]));
    }
    if rng.chance(10) {
        out.push_str(&serde_json::to_string_pretty(&tree_json(&t)).unwrap());
        out.push('\n');
    } else {
        emit(rng, &t, 0, &mut out);
    }
    if rng.chance(10) {
        out.push_str("# tail\n");
    }
    if rng.chance(5) {
        out.pop();
    }
    out
}

fn tree_json(t: &Tree) -> serde_json::Value {
    match t {
        Tree::Scalar(s) => serde_json::Value::String(s.clone()),
        Tree::Seq(items) => serde_json::Value::Array(items.iter().map(tree_json).collect()),
        Tree::Map(e) => serde_json::Value::Object(e.iter().map(|(k, v)| (k.clone(), tree_json(v))).collect()),
    }
}

const TOKENS: &[&str] = &[
    "",
    " ",
    "  ",
    "\n",
    "\n  ",
    "-",
    "- ",
    ":",
    ": ",
    "'",
    "\"",
    "[",
    "]",
    "{",
    "}",
    ",",
    "#",
    " #",
    "~",
    "|",
    ">",
    "&a ",
    "*a",
    "!t ",
    "? ",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\t",
    "\r\n",
    "\u{85}",
    "\u{feff}",
    "0",
    "1e3",
    "null",
    "é",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut s: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(s.len() + 1);
        match rng.below(5) {
            0 if !s.is_empty() => {
                let end = (at + 1 + rng.below(4)).min(s.len());
                s.drain(at.min(end)..end);
            }
            1 | 2 => {
                let tok = rng.pick(TOKENS);
                s.splice(at..at, tok.chars());
            }
            3 => {
                // Indent or dedent a line.
                let line_start = s[..at.min(s.len())].iter().rposition(|&c| c == '\n').map_or(0, |i| i + 1);
                if rng.chance(50) {
                    s.insert(line_start, ' ');
                } else if s.get(line_start) == Some(&' ') {
                    s.remove(line_start);
                }
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

#[test]
fn generated_documents_read_the_same_both_ways() {
    let mut rng = Rng(0x00DD_BA11_5EED_0001);
    let mut counts = Counts::default();
    for i in 0..6000 {
        let doc = document(&mut rng);
        check(&doc, &format!("generated {i}"), &mut counts);
        let mutated = mutate(&mut rng, &doc);
        check(&mutated, &format!("mutation of generated {i}"), &mut counts);
    }
    println!("{} cases, {} read by the fast reader", counts.cases, counts.fast);
    // The generator must keep the fast path busy (and the fallback too).
    assert!(counts.fast * 4 > counts.cases, "fast reader took only {} of {}", counts.fast, counts.cases);
    assert!(counts.fast * 10 < counts.cases * 9, "fallback barely exercised: {} of {}", counts.fast, counts.cases);
}

/// Real manifests (golden inputs, examples, deploy), whole and mutated.
#[test]
fn real_manifests_read_the_same_both_ways() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["tests/golden", "examples", "deploy"] {
        collect_yaml(&root.join(dir), &mut files);
    }
    files.sort();
    assert!(files.len() > 20, "manifests not found");
    let mut rng = Rng(0x00DD_BA11_5EED_0002);
    let mut counts = Counts::default();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.display().to_string();
        check(&text, &name, &mut counts);
        for chunk in manifest::split(&text) {
            check(chunk.text, &name, &mut counts);
            for i in 0..20 {
                let mutated = mutate(&mut rng, chunk.text);
                check(&mutated, &format!("mutation {i} of a document of {name}"), &mut counts);
            }
        }
    }
    println!("{} cases, {} read by the fast reader", counts.cases, counts.fast);
    assert!(counts.fast * 3 > counts.cases, "fast reader took only {} of {}", counts.fast, counts.cases);
}

fn collect_yaml(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_yaml(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json") {
            out.push(p);
        }
    }
}

/// Multi-document files mixing fast and fallback documents keep document
/// numbers, `List` items and syntax-error lines exactly.
#[test]
fn mixed_files_read_the_same_both_ways() {
    let mut rng = Rng(0x00DD_BA11_5EED_0003);
    for i in 0..400 {
        let mut text = String::new();
        for _ in 0..1 + rng.below(6) {
            let doc = document(&mut rng);
            let doc = if rng.chance(30) { mutate(&mut rng, &doc) } else { doc };
            if !text.is_empty() || rng.chance(50) {
                text.push_str("---\n");
            }
            text.push_str(&doc);
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
        let fast = describe(&manifest::parse(&text));
        let reference = describe(&manifest::parse_reference(&text));
        assert_eq!(fast, reference, "file {i} differs:\n{text}\n---- end");
    }
}
