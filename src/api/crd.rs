//! CustomResourceDefinitions generated from the Rust types, so the YAML in
//! `crds/` can never drift from what the controller reads.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;

use super::{GROUP, KongClusterPlugin, KongConsumer, KongPlugin, VERSION};

/// Implements `k8s_openapi::Resource` + `Metadata` (and through them
/// `kube::Resource`) for a CRD whose fields sit at the top level, which
/// kube's derive cannot express.
macro_rules! impl_resource {
    ($ty:ident, $kind:literal, $plural:literal, $scope:ident) => {
        impl k8s_openapi::Resource for $ty {
            const API_VERSION: &'static str = "configuration.konghq.com/v1";
            const GROUP: &'static str = super::GROUP;
            const KIND: &'static str = $kind;
            const VERSION: &'static str = super::VERSION;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = k8s_openapi::$scope;
        }
        impl k8s_openapi::Metadata for $ty {
            type Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
            fn metadata(&self) -> &Self::Ty {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut Self::Ty {
                &mut self.metadata
            }
        }
        impl k8s_openapi::ListableResource for $ty {
            const LIST_KIND: &'static str = concat!($kind, "List");
        }
    };
}
pub(crate) use impl_resource;

struct Names {
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    short: &'static str,
    scope: &'static str,
}

fn column(name: &str, type_: &str, path: &str, description: &str, priority: i32) -> CustomResourceColumnDefinition {
    CustomResourceColumnDefinition {
        name: name.into(),
        type_: type_.into(),
        json_path: path.into(),
        description: Some(description.into()),
        priority: (priority != 0).then_some(priority),
        format: None,
    }
}

fn age() -> CustomResourceColumnDefinition {
    column("Age", "date", ".metadata.creationTimestamp", "Age", 0)
}

fn programmed() -> CustomResourceColumnDefinition {
    column(
        "Programmed",
        "string",
        ".status.conditions[?(@.type==\"Programmed\")].status",
        "Whether Portcullis applied this object",
        0,
    )
}

fn plugin_columns() -> Vec<CustomResourceColumnDefinition> {
    vec![
        column("Plugin-Type", "string", ".plugin", "Name of the plugin", 0),
        age(),
        column("Disabled", "boolean", ".disabled", "Indicates if the plugin is disabled", 1),
        column("Config", "string", ".config", "Configuration of the plugin", 1),
        programmed(),
    ]
}

/// The structural OpenAPI v3 schema of `T`, the way kube's derive builds it.
fn schema<T: JsonSchema>() -> JSONSchemaProps {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .with_transform(kube::core::schema::OptionalIntOrString)
        .into_generator();
    let mut value =
        serde_json::to_value(generator.into_root_schema_for::<T>()).expect("a schemars schema is always JSON");
    if let Some(obj) = value.as_object_mut() {
        // The API server fills in apiVersion/kind/metadata; a CRD schema must
        // not describe metadata beyond `type: object`.
        obj.remove("title");
        if let Some(props) = obj.get_mut("properties").and_then(|p| p.as_object_mut()) {
            props.insert("metadata".into(), serde_json::json!({"type": "object"}));
            props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
            props.insert("kind".into(), serde_json::json!({"type": "string"}));
        }
    }
    serde_json::from_value(value).expect("schemars output fits JSONSchemaProps")
}

fn crd(
    names: Names,
    schema: JSONSchemaProps,
    columns: Vec<CustomResourceColumnDefinition>,
) -> CustomResourceDefinition {
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{}.{GROUP}", names.plural)),
            labels: Some([("app.kubernetes.io/part-of".to_string(), "portcullis".to_string())].into()),
            ..Default::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: GROUP.into(),
            names: CustomResourceDefinitionNames {
                kind: names.kind.into(),
                list_kind: Some(format!("{}List", names.kind)),
                plural: names.plural.into(),
                singular: Some(names.singular.into()),
                short_names: Some(vec![names.short.into()]),
                categories: Some(vec!["kong-ingress-controller".into()]),
            },
            scope: names.scope.into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: VERSION.into(),
                served: true,
                storage: true,
                additional_printer_columns: Some(columns),
                schema: Some(CustomResourceValidation { open_api_v3_schema: Some(schema) }),
                subresources: Some(CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(serde_json::json!({}))),
                    scale: None,
                }),
                ..Default::default()
            }],
            conversion: None,
            preserve_unknown_fields: None,
        },
        status: None,
    }
}

/// Every CRD Portcullis reads, in a stable order.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![
        crd(
            Names {
                kind: "KongClusterPlugin",
                plural: "kongclusterplugins",
                singular: "kongclusterplugin",
                short: "kcp",
                scope: "Cluster",
            },
            schema::<KongClusterPlugin>(),
            plugin_columns(),
        ),
        crd(
            Names {
                kind: "KongConsumer",
                plural: "kongconsumers",
                singular: "kongconsumer",
                short: "kc",
                scope: "Namespaced",
            },
            schema::<KongConsumer>(),
            vec![column("Username", "string", ".username", "Username of a Kong Consumer", 0), age(), programmed()],
        ),
        crd(
            Names {
                kind: "KongPlugin",
                plural: "kongplugins",
                singular: "kongplugin",
                short: "kp",
                scope: "Namespaced",
            },
            schema::<KongPlugin>(),
            plugin_columns(),
        ),
    ]
}

/// All CRDs as one multi-document YAML stream (what `portcullis crds` prints
/// and `crds/portcullis-crds.yaml` holds).
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in all_crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd).expect("CRDs serialize to YAML"));
    }
    out
}
