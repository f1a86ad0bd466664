//! Command-line interface. Every flag has a long name and a `PORTCULLIS_*`
//! environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about = "Kubernetes ingress controller and key-auth API gateway in one binary")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve traffic: from a manifests folder (--manifests) or, without it,
    /// from the Kubernetes API.
    Run(RunArgs),
    /// Translate a manifests folder once, print routes and problems; exits
    /// non-zero when there are problems (for CI).
    Check(CheckArgs),
    /// Print the CustomResourceDefinitions Portcullis reads.
    Crds,
    /// Quick start: an echo upstream plus the proxy serving examples/quickstart.
    Demo(DemoArgs),
    /// Run only the echo upstream (answers with what it received, as JSON).
    Echo(EchoArgs),
}

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Ingress class this instance serves.
    #[arg(long, env = "PORTCULLIS_INGRESS_CLASS", default_value = crate::api::DEFAULT_INGRESS_CLASS)]
    pub ingress_class: String,
    /// IngressClass `spec.controller` value this instance answers to.
    #[arg(long, env = "PORTCULLIS_CONTROLLER_NAME", default_value = crate::api::DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,
}

impl TranslateArgs {
    pub fn config(&self) -> crate::translate::Config {
        crate::translate::Config {
            ingress_class: self.ingress_class.clone(),
            controller_name: self.controller_name.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address the proxy listens on.
    #[arg(long, env = "PORTCULLIS_PROXY_LISTEN", default_value = "0.0.0.0:8000")]
    pub proxy_listen: SocketAddr,
    /// Address the TLS proxy listens on (HTTPS with certificates from
    /// Ingress `spec.tls` Secrets, chosen by SNI).
    #[arg(long, env = "PORTCULLIS_PROXY_TLS_LISTEN", default_value = "0.0.0.0:8443")]
    pub proxy_tls_listen: SocketAddr,
    /// Proxy threads, each serving connections start to end on its own
    /// runtime (0: one per CPU this process may use).
    #[arg(long, env = "PORTCULLIS_PROXY_THREADS", default_value_t = 0)]
    pub proxy_threads: usize,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "PORTCULLIS_ADMIN_LISTEN", default_value = "0.0.0.0:8100")]
    pub admin_listen: SocketAddr,
    /// Largest request body read when a key-auth plugin looks for the key in
    /// the body (larger requests get 413).
    #[arg(long, env = "PORTCULLIS_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Log format.
    #[arg(long, env = "PORTCULLIS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub translate: TranslateArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Folder of manifests (YAML/JSON, as for `kubectl apply -f`), watched
    /// for changes. Without it, Portcullis reads the Kubernetes API.
    #[arg(long, env = "PORTCULLIS_MANIFESTS", conflicts_with = "kubeconfig")]
    pub manifests: Option<PathBuf>,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Cluster mode (no `--manifests`). Names follow KIC's flags where KIC has one.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file; default: in-cluster config, else $KUBECONFIG, else ~/.kube/config.
    #[arg(long, env = "PORTCULLIS_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespaces to watch (comma-separated); default: all.
    #[arg(long, env = "PORTCULLIS_WATCH_NAMESPACE", value_delimiter = ',')]
    pub watch_namespace: Vec<String>,
    /// Service (namespace/name) whose load balancer addresses (else
    /// ClusterIP) are written to Ingress status.
    #[arg(long, env = "PORTCULLIS_PUBLISH_SERVICE")]
    pub publish_service: Option<String>,
    /// Addresses (comma-separated IPs or hostnames) written to Ingress
    /// status instead of --publish-service's.
    #[arg(long, env = "PORTCULLIS_PUBLISH_STATUS_ADDRESS", value_delimiter = ',')]
    pub publish_status_address: Vec<String>,
    /// Name of the Lease used to elect the replica that writes status and Events.
    #[arg(long, env = "PORTCULLIS_ELECTION_ID", default_value = "portcullis-leader")]
    pub election_id: String,
    /// Namespace of that Lease; default: the pod's namespace ($POD_NAMESPACE), else `default`.
    #[arg(long, env = "PORTCULLIS_ELECTION_NAMESPACE")]
    pub election_namespace: Option<String>,
    /// Write Ingress status, Programmed conditions and Events.
    #[arg(long, env = "PORTCULLIS_UPDATE_STATUS", default_value_t = true, action = clap::ArgAction::Set)]
    pub update_status: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Folder of manifests to check.
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, env = "PORTCULLIS_CHECK_OUTPUT", value_enum, default_value_t = CheckOutput::Text)]
    pub output: CheckOutput,
    #[command(flatten)]
    pub translate: TranslateArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Manifests the demo serves.
    #[arg(long, env = "PORTCULLIS_MANIFESTS", default_value = "examples/quickstart")]
    pub manifests: PathBuf,
    /// Where the echo upstream listens (the quick start's EndpointSlice
    /// points at 127.0.0.1:1027).
    #[arg(long, env = "PORTCULLIS_ECHO_LISTEN", default_value = "127.0.0.1:1027")]
    pub echo_listen: SocketAddr,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Args)]
pub struct EchoArgs {
    #[arg(long, env = "PORTCULLIS_ECHO_LISTEN", default_value = "127.0.0.1:1027")]
    pub listen: SocketAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckOutput {
    /// Human-readable tables.
    Text,
    /// The full translated view as YAML (routes, consumers, problems).
    Yaml,
}
