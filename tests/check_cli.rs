//! `portcullis check DIR`: what users run in CI.

use std::process::Command;

fn check(dir: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("check")
        .arg(dir)
        .args(extra)
        .env_remove("PORTCULLIS_INGRESS_CLASS")
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn quickstart() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart")
}

#[test]
fn the_quickstart_is_clean_and_lists_its_route() {
    let (code, out) = check(&quickstart(), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Routes (1):"), "{out}");
    let row = out.lines().find(|l| l.contains("/echo")).unwrap_or_else(|| panic!("no /echo row:\n{out}"));
    assert!(row.contains("default.echo.1027"), "{row}");
    assert!(row.contains("key-auth (default/key-auth)"), "{row}");
    assert!(out.contains("Consumers: 1 with 1 key-auth credential(s)"), "{out}");
    assert!(out.contains("No problems."), "{out}");
    assert!(!out.contains("hello_world"), "the key must never be printed:\n{out}");
}

#[test]
fn problems_are_listed_and_fail_the_check() {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(quickstart()).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    // A consumer whose credential does not exist, and a file that does not parse.
    std::fs::write(
        dir.path().join("bob.yaml"),
        "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: bob\n  annotations: {kubernetes.io/ingress.class: kong}\nusername: bob\ncredentials: [bob-key]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "kind: [\n").unwrap();
    let (code, out) = check(dir.path(), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Problems (2):"), "{out}");
    assert!(out.contains("broken.yaml") && out.contains("YAML syntax error"), "{out}");
    assert!(out.contains("KongConsumer default/bob") && out.contains("bob-key"), "{out}");
}

#[test]
fn yaml_output_is_machine_readable() {
    let (code, out) = check(&quickstart(), &["--output", "yaml"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_yaml_ng::from_str(&out).unwrap();
    assert_eq!(v["routes"][0]["path"], "/echo");
    assert_eq!(v["consumers"][0]["username"], "alex");
    assert_eq!(v["problems"], serde_json::json!([]));
}

#[test]
fn another_ingress_class_sees_nothing_and_says_why() {
    let (code, out) = check(&quickstart(), &["--ingress-class", "other"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Routes (0):"), "{out}");
    assert!(out.contains("Ingress default/echo"), "{out}");
}

#[test]
fn a_missing_folder_is_an_error() {
    let (code, _) = check(std::path::Path::new("/nonexistent/portcullis"), &[]);
    assert_eq!(code, 2);
}
