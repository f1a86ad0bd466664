//! World bookkeeping: scoped resets (one watch per namespace) and change tracking.

use portcullis::source::manifest;
use portcullis::world::{Kind, Shrunk, World};

fn shrunk(yaml: &str) -> Vec<Shrunk> {
    manifest::parse(yaml).unwrap().into_iter().map(|d| Shrunk::from_object(&d.result.unwrap()).unwrap()).collect()
}

fn svc(ns: &str, name: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n---\n")
}

fn names(world: &World) -> Vec<String> {
    world.services.keys().map(|(ns, n)| format!("{ns}/{n}")).collect()
}

#[test]
fn a_namespace_reset_leaves_other_namespaces_alone() {
    let mut world = World::new();
    for s in shrunk(&(svc("a", "one") + &svc("a", "two") + &svc("b", "three"))) {
        world.apply_shrunk(s);
    }
    world.take_changes();
    world.reset_scope(Kind::Service, Some("a"), shrunk(&(svc("a", "new") + &svc("b", "intruder"))));
    assert_eq!(names(&world), ["a/new", "b/three"], "objects outside the scope are neither removed nor added");
    assert_eq!(world.take_changes().into_iter().collect::<Vec<_>>(), [Kind::Service]);

    world.reset_scope(Kind::Service, None, shrunk(&svc("c", "only")));
    assert_eq!(names(&world), ["c/only"]);
}

#[test]
fn reset_of_an_empty_list_clears_the_kind_and_counts_as_a_change() {
    let mut world = World::new();
    for s in shrunk(&svc("a", "one")) {
        world.apply_shrunk(s);
    }
    world.take_changes();
    world.reset(Kind::Service, Vec::new());
    assert!(world.services.is_empty());
    assert!(world.take_changes().contains(&Kind::Service));
    assert!(world.take_changes().is_empty(), "changes are taken once");
}

#[test]
fn an_unchanged_object_is_not_a_change() {
    let mut world = World::new();
    let consumer = "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata: {name: c, uid: u1, generation: 1}\nusername: c\n";
    for s in shrunk(consumer) {
        world.apply_shrunk(s);
    }
    world.take_changes();
    // The same object again, now with a status written back by us.
    let with_status = format!("{consumer}status:\n  conditions: []\n");
    for s in shrunk(&with_status) {
        world.apply_shrunk(s);
    }
    assert!(world.take_changes().is_empty(), "a status-only update must not trigger a rebuild");
    for s in shrunk(&consumer.replace("username: c", "username: d")) {
        world.apply_shrunk(s);
    }
    assert!(world.take_changes().contains(&Kind::KongConsumer));
}

#[test]
fn non_credential_secret_data_is_kept_but_never_printed() {
    let mut world = World::new();
    let yaml = "apiVersion: v1\nkind: Secret\nmetadata: {name: conf}\nstringData:\n  config: '{\"key_names\": [\"k\"]}'\n  token: very-secret-token\n";
    for s in shrunk(yaml) {
        world.apply_shrunk(s);
    }
    let secret = world.secrets.values().next().unwrap();
    assert_eq!(secret.data().get("token"), Some(&b"very-secret-token"[..]));
    let shown = format!("{world:?}");
    assert!(shown.contains("token"), "key names are shown");
    assert!(!shown.contains("very-secret-token"), "values are not: {shown}");
}

#[test]
fn referenced_secrets_are_config_from_and_ingress_tls() {
    let mut world = World::new();
    let yaml = "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata: {name: p, namespace: a}\nplugin: key-auth\nconfigFrom: {secretKeyRef: {name: plugin-conf, key: c}}\n---\napiVersion: configuration.konghq.com/v1\nkind: KongClusterPlugin\nmetadata: {name: cp}\nplugin: key-auth\nconfigFrom: {secretKeyRef: {namespace: b, name: cluster-conf, key: c}}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i, namespace: c}\nspec:\n  tls: [{hosts: [x.example], secretName: x-tls}, {hosts: [y.example]}]\n";
    for s in shrunk(yaml) {
        world.apply_shrunk(s);
    }
    let refs: Vec<_> = portcullis::translate::referenced_secrets(&world).into_iter().collect();
    let want = [("a", "plugin-conf"), ("b", "cluster-conf"), ("c", "x-tls")];
    assert_eq!(refs, want.map(|(n, s)| (n.to_string(), s.to_string())));
}

#[test]
fn only_non_credential_secret_changes_count_for_routes() {
    let mut world = World::new();
    let cred = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\n  labels: {konghq.com/credential: key-auth}\nstringData: {key: k1}\n";
    for s in shrunk(cred) {
        world.apply_shrunk(s);
    }
    assert!(!world.take_config_secret_change(), "a credential is not plugin configuration");
    let conf = "apiVersion: v1\nkind: Secret\nmetadata: {name: conf}\nstringData: {config: '{}'}\n";
    for s in shrunk(conf) {
        world.apply_shrunk(s);
    }
    assert!(world.take_config_secret_change());
    world.delete(&portcullis::world::ObjectRef::namespaced(Kind::Secret, "default", "c"));
    assert!(!world.take_config_secret_change());
    world.delete(&portcullis::world::ObjectRef::namespaced(Kind::Secret, "default", "conf"));
    assert!(world.take_config_secret_change());
}

#[test]
fn key_changes_are_skipped_until_taken_then_tracked_again() {
    let consumer = |user: &str| {
        format!(
            "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata: {{name: c, namespace: a}}\nusername: {user}\n"
        )
    };
    let mut world = World::new();
    world.skip_key_changes_until_taken();
    for s in shrunk(&consumer("one")) {
        world.apply_shrunk(s);
    }
    assert!(world.take_key_changes().is_empty(), "a skipped load notes no keys");
    assert!(world.take_changes().contains(&Kind::KongConsumer), "kind changes are still noted");
    for s in shrunk(&consumer("two")) {
        world.apply_shrunk(s);
    }
    let changes = world.take_key_changes();
    assert_eq!(changes.consumers.into_iter().collect::<Vec<_>>(), [("a".to_string(), "c".to_string())]);
}

/// A large batch is stored at once; the World reads exactly as if each
/// object had been applied in turn, and every object counts as changed.
#[test]
fn a_large_batch_stores_what_applying_each_would() {
    let mut yaml = String::new();
    for i in (0..1500).rev() {
        yaml += &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: key-{i}, namespace: ns-{}, labels: {{konghq.com/credential: key-auth}}}}\nstringData: {{key: k-{i}}}\n---\n",
            i % 3
        );
        yaml += &format!(
            "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata: {{name: c-{i}, namespace: ns-{}}}\nusername: u-{i}\ncredentials: [key-{i}]\n---\n",
            i % 3
        );
    }
    yaml += "apiVersion: v1\nkind: Secret\nmetadata: {name: plugin-conf, namespace: ns-0}\nstringData: {a: b}\n---\n";
    yaml += &svc("ns-0", "echo");
    let objs = shrunk(&yaml);

    let (mut batched, mut each) = (World::new(), World::new());
    batched.apply_all(objs.clone());
    for o in objs {
        each.apply_shrunk(o);
    }
    let secrets = |w: &World| w.secrets.values().map(|s| format!("{:?}", s)).collect::<Vec<_>>();
    let consumers = |w: &World| w.consumers.values().map(|c| format!("{:?}", c)).collect::<Vec<_>>();
    assert_eq!(batched.secrets.len(), 1501);
    assert_eq!(secrets(&batched), secrets(&each));
    assert_eq!(consumers(&batched), consumers(&each));
    assert_eq!(names(&batched), names(&each));
    assert_eq!(batched.take_changes(), each.take_changes());
    assert_eq!(batched.take_config_secret_change(), each.take_config_secret_change());
    let (b, e) = (batched.take_key_changes(), each.take_key_changes());
    assert_eq!((b.consumers.len(), b.secrets.len()), (1500, 1501));
    assert_eq!((b.consumers, b.secrets), (e.consumers, e.secrets));

    // A second large batch replaces what it names and keeps the rest.
    let again = shrunk(
        &(0..1200)
            .map(|i| format!("apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata: {{name: c-{i}, namespace: ns-{}}}\nusername: new-{i}\n---\n", i % 3))
            .collect::<String>(),
    );
    batched.apply_all(again.clone());
    for o in again {
        each.apply_shrunk(o);
    }
    assert_eq!(consumers(&batched), consumers(&each));
    assert_eq!(batched.consumers.len(), 1500);
}

/// A status update (the object otherwise equal) changes nothing and keeps
/// the stored object, which translation and the snapshot hold, taking the
/// new status in place: storing the new object would keep two of each.
#[test]
fn a_status_update_keeps_the_stored_object_and_takes_its_status() {
    let consumer = |status: &str| {
        format!(
            "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata: {{name: c, namespace: a, uid: 0f1c2a8e-93d4-4b7e-a1f0-5c2d8e4b7a90, generation: 3}}\nusername: u\n{status}"
        )
    };
    let programmed = "status:\n  conditions:\n  - {type: Programmed, status: 'True', reason: Programmed, message: ok, observedGeneration: 3, lastTransitionTime: '2026-12-05T00:00:00Z'}\n";
    let mut world = World::new();
    world.apply_all(shrunk(&consumer("")));
    world.take_changes();
    let held = world.consumers.get(&("a", "c")).unwrap().clone();
    assert!(held.meta.observed().programmed().is_none());

    world.apply_all(shrunk(&consumer(programmed)));
    assert!(world.take_changes().is_empty(), "a status is not an input");
    let stored = world.consumers.get(&("a", "c")).unwrap();
    assert!(std::sync::Arc::ptr_eq(stored, &held), "the held object stays stored");
    let seen = held.meta.observed().programmed().expect("the new status");
    assert!(seen.says("True", "Programmed", "ok") && !seen.says("True", "Programmed", "other"));
    assert_eq!(seen.observed_generation(), Some(3));
    assert_eq!(seen.last_transition_time().map(|t| t.to_string()).as_deref(), Some("2026-12-05T00:00:00Z"));
    assert_eq!(held.meta.generation(), Some(3));

    // A real change replaces the object.
    world.apply_all(shrunk(&consumer(programmed).replace("username: u", "username: v")));
    assert!(world.take_changes().contains(&Kind::KongConsumer));
    assert!(!std::sync::Arc::ptr_eq(world.consumers.get(&("a", "c")).unwrap(), &held));
    assert_eq!(held.username(), Some("u"), "what others hold never changes but for its status");
}
