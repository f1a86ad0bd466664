//! The manifests folder as a source: what ends up in the World as files are
//! added, edited, broken and deleted.

use std::fs;
use std::path::Path;

use portcullis::source::files::Folder;
use portcullis::world::{CredentialKey, Kind, World};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

const SVC: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\nspec:\n  ports: [{port: 80}]\n";
const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: k\n  labels: {konghq.com/credential: key-auth}\nstringData:\n  key: sekrit-one\n";

#[test]
fn loads_yaml_yml_json_and_ignores_other_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.yaml", SVC);
    write(dir.path(), "b.yml", &SVC.replace("echo", "two"));
    write(dir.path(), "c.json", r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"three"}}"#);
    write(dir.path(), "notes.txt", &SVC.replace("echo", "ignored"));
    write(dir.path(), ".a.yaml.swp", &SVC.replace("echo", "swap"));
    let mut world = World::new();
    let mut folder = Folder::new(dir.path());
    folder.rescan(&mut world).unwrap();
    let names: Vec<_> = world.services.keys().map(|(_, n)| n).collect();
    assert_eq!(names, ["echo", "three", "two"]);
    assert!(folder.issues().is_empty(), "{:?}", folder.issues());
}

#[test]
fn secrets_are_kept_as_digests_only() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "s.yaml", SECRET);
    let mut world = World::new();
    Folder::new(dir.path()).rescan(&mut world).unwrap();
    let secret = world.secrets.values().next().unwrap();
    assert!(matches!(secret.key, CredentialKey::Digest(_)));
    assert!(!format!("{world:?}").contains("sekrit-one"), "plaintext key in the World");
}

#[test]
fn edit_add_and_delete_follow_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.yaml", SVC);
    let mut world = World::new();
    let mut folder = Folder::new(dir.path());
    folder.rescan(&mut world).unwrap();
    world.take_changes();

    // Unchanged content: nothing to rebuild.
    folder.reload([a.clone()], &mut world);
    assert!(world.take_changes().is_empty());

    write(dir.path(), "a.yaml", &SVC.replace("port: 80", "port: 81"));
    folder.reload([a.clone()], &mut world);
    assert_eq!(world.take_changes().into_iter().collect::<Vec<_>>(), [Kind::Service]);
    assert_eq!(world.services.values().next().unwrap().ports[0].port, 81);

    let b = write(dir.path(), "b.yaml", SECRET);
    folder.reload([b.clone()], &mut world);
    assert_eq!(world.secrets.len(), 1);

    fs::remove_file(&b).unwrap();
    folder.reload([b], &mut world);
    assert!(world.secrets.is_empty());

    // An object removed from a file that still exists.
    write(dir.path(), "a.yaml", "# emptied\n");
    folder.reload([a], &mut world);
    assert!(world.services.is_empty());
}

#[test]
fn a_broken_file_keeps_its_previous_objects_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.yaml", SVC);
    write(dir.path(), "s.yaml", SECRET);
    let mut world = World::new();
    let mut folder = Folder::new(dir.path());
    folder.rescan(&mut world).unwrap();

    write(dir.path(), "a.yaml", "apiVersion: v1\nkind: Service\nmetadata: [unclosed\n");
    folder.reload([a.clone()], &mut world);
    assert_eq!(world.services.len(), 1, "the last good Service must stay");
    let issues = folder.issues();
    assert_eq!(issues.len(), 1);
    assert!(issues[0].file.ends_with("a.yaml"));
    assert!(issues[0].message.contains("YAML syntax error"), "{}", issues[0].message);
    assert!(issues[0].message.contains("stay in effect"), "{}", issues[0].message);

    write(dir.path(), "a.yaml", SVC);
    folder.reload([a], &mut world);
    assert!(folder.issues().is_empty());
}

#[test]
fn a_bad_document_is_reported_and_the_rest_of_the_file_counts() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{SVC}---\napiVersion: v1\nkind: Service\nmetadata: {{name: bad}}\nspec:\n  ports: nope\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{}}\n"
    );
    write(dir.path(), "a.yaml", &text);
    let mut world = World::new();
    let mut folder = Folder::new(dir.path());
    folder.rescan(&mut world).unwrap();
    assert_eq!(world.services.len(), 1);
    let issues: Vec<String> = folder.issues().iter().map(|i| i.to_string()).collect();
    assert_eq!(issues.len(), 3, "{issues:#?}");
    assert!(issues.iter().any(|i| i.contains("document 2") && i.contains("spec.ports")), "{issues:#?}");
    assert!(issues.iter().any(|i| i.contains("document 3") && i.contains("example.com/v1/Widget")), "{issues:#?}");
    assert!(issues.iter().any(|i| i.contains("document 4") && i.contains("metadata.name")), "{issues:#?}");
}

#[test]
fn an_object_in_two_files_is_reported_and_the_first_wins_until_removed() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.yaml", SVC);
    write(dir.path(), "b.yaml", &SVC.replace("port: 80", "port: 82"));
    let mut world = World::new();
    let mut folder = Folder::new(dir.path());
    folder.rescan(&mut world).unwrap();
    assert_eq!(world.services.values().next().unwrap().ports[0].port, 80);
    let issues = folder.issues();
    assert_eq!(issues.len(), 1);
    assert!(issues[0].file.ends_with("b.yaml") && issues[0].message.contains("a.yaml"), "{}", issues[0]);

    fs::remove_file(&a).unwrap();
    folder.reload([a], &mut world);
    assert_eq!(world.services.values().next().unwrap().ports[0].port, 82, "b.yaml's definition takes over");
    assert!(folder.issues().is_empty());
}

#[test]
fn objects_without_uid_or_creation_time_get_stable_ones() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.yaml", SVC);
    let mut world = World::new();
    let mut folder = Folder::new(dir.path());
    folder.rescan(&mut world).unwrap();
    let first = world.services.values().next().unwrap().meta.clone();
    assert_ne!(first.created(), jiff::Timestamp::UNIX_EPOCH);
    std::thread::sleep(std::time::Duration::from_millis(5));
    write(dir.path(), "a.yaml", &SVC.replace("port: 80", "port: 81"));
    folder.reload([a], &mut world);
    let second = world.services.values().next().unwrap().meta.clone();
    assert_eq!(first.uid(), second.uid(), "uid is a UUIDv5 of kind/namespace/name");
    assert_eq!(first.created(), second.created(), "first-seen time survives edits");
    assert_eq!(first.uid(), portcullis::world::stable_uid(Kind::Service, "default", "echo"));

    let with_meta = "apiVersion: v1\nkind: Service\nmetadata:\n  name: m\n  uid: \"1234\"\n  creationTimestamp: \"2024-01-02T03:04:05Z\"\n";
    write(dir.path(), "m.yaml", with_meta);
    folder.rescan(&mut world).unwrap();
    let m = world.services.get(&("default".to_string(), "m".to_string())).unwrap();
    assert_eq!(m.meta.uid(), "1234");
    assert_eq!(m.meta.created().to_string(), "2024-01-02T03:04:05Z");
}
