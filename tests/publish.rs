//! The publisher rebuilds only the snapshot part a change touches: a
//! credential change must not rebuild routes or certificates, and a route
//! change must not rebuild the credential index.

use std::sync::Arc;

use portcullis::publish::{Publisher, Shared};
use portcullis::source::manifest;
use portcullis::world::World;

fn apply(world: &mut World, yaml: &str) {
    for doc in manifest::parse(yaml).unwrap() {
        world.apply(doc.result.unwrap()).unwrap();
    }
}

const BASE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: echo}\nspec:\n  ports: [{port: 80}]\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: echo}\nspec:\n  ingressClassName: kong\n  rules:\n  - http:\n      paths:\n      - {path: /echo, pathType: Prefix, backend: {service: {name: echo, port: {number: 80}}}}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: alex-key\n  labels: {konghq.com/credential: key-auth}\nstringData: {key: k1}\n---\napiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: alex\n  annotations: {kubernetes.io/ingress.class: kong}\nusername: alex\ncredentials: [alex-key]\n";

#[test]
fn each_change_rebuilds_only_its_part() {
    let shared = Shared::new();
    let mut publisher = Publisher::new(Default::default(), shared.clone());
    let mut world = World::new();
    apply(&mut world, BASE);
    assert!(publisher.publish(&mut world, None).published);
    let before = shared.snapshot.load_full();

    // A rotated credential: a new consumer index, the same routes and certificates.
    apply(&mut world, &BASE.replace("key: k1", "key: k2"));
    assert!(publisher.publish(&mut world, None).published);
    let after = shared.snapshot.load_full();
    assert!(Arc::ptr_eq(&before.routes, &after.routes), "a credential change rebuilt the routes");
    assert!(Arc::ptr_eq(&before.tls, &after.tls), "a credential change rebuilt the certificates");
    assert!(!Arc::ptr_eq(&before.consumers, &after.consumers));

    // A route change: new routes, the same consumer index.
    apply(&mut world, &BASE.replace("key: k1", "key: k2").replace("path: /echo", "path: /other"));
    assert!(publisher.publish(&mut world, None).published);
    let later = shared.snapshot.load_full();
    assert!(!Arc::ptr_eq(&after.routes, &later.routes));
    assert!(Arc::ptr_eq(&after.consumers, &later.consumers), "a route change rebuilt the credential index");

    // Nothing changed: nothing is published.
    assert!(!publisher.publish(&mut world, None).published);
}

/// key-auth's `anonymous` names a consumer; the snapshot holds the consumer
/// each name the routes use stands for, and follows changes on both sides.
#[test]
fn anonymous_names_follow_the_routes_and_the_consumers() {
    let plugin = |anonymous: &str| {
        format!(
            "apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata: {{name: auth}}\nplugin: key-auth\nconfig: {{anonymous: {anonymous}}}\n"
        )
    };
    let guest = "apiVersion: configuration.konghq.com/v1\nkind: KongConsumer\nmetadata:\n  name: guest\n  uid: 0b0c6f7e-7a8e-4b57-9a3c-1f2e3d4c5b6a\n  annotations: {kubernetes.io/ingress.class: kong}\nusername: guest\n";
    let routes = BASE.replace(
        "metadata: {name: echo}\nspec:\n  ports",
        "metadata: {name: echo, annotations: {konghq.com/plugins: auth}}\nspec:\n  ports",
    );
    let shared = Shared::new();
    let mut publisher = Publisher::new(Default::default(), shared.clone());
    let mut world = World::new();
    apply(&mut world, &format!("{routes}---\n{}---\n{guest}", plugin("guest")));
    assert!(publisher.publish(&mut world, None).published);
    let source = |name: &str| shared.snapshot.load().consumers.anonymous(name).map(|c| c.source());
    assert_eq!(source("guest").as_deref(), Some("default/guest"));

    // The plugin now names the guest by id, then names the key's consumer.
    apply(&mut world, &plugin("0b0c6f7e-7a8e-4b57-9a3c-1f2e3d4c5b6a"));
    assert!(publisher.publish(&mut world, None).published);
    assert_eq!(source("0b0c6f7e-7a8e-4b57-9a3c-1f2e3d4c5b6a").as_deref(), Some("default/guest"));
    assert_eq!(source("guest"), None, "a name no route uses is not kept");
    apply(&mut world, &plugin("alex"));
    assert!(publisher.publish(&mut world, None).published);
    assert_eq!(source("alex").as_deref(), Some("default/alex"));

    // The consumer goes (a consumer change alone): the name stands for no one.
    world.delete(&portcullis::world::ObjectRef::new(
        portcullis::world::Kind::KongConsumer,
        Some("default".into()),
        "alex",
    ));
    assert!(publisher.publish(&mut world, None).published);
    assert_eq!(source("alex"), None);
    // And comes back.
    let consumer = BASE.rsplit("---\n").next().unwrap();
    assert!(consumer.contains("kind: KongConsumer"));
    apply(&mut world, consumer);
    assert!(publisher.publish(&mut world, None).published);
    assert_eq!(source("alex").as_deref(), Some("default/alex"));
}
