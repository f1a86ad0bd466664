//! Wiring for `run`, `demo` and `echo`: listeners, sources, signals.
//! anyhow lives here and in main only.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::{ClusterArgs, DemoArgs, EchoArgs, LogFormat, RunArgs, ServeArgs};
use crate::controller::{Controller, ControllerConfig, StatusSettings};
use crate::proxy::{self, ProxyConfig};
use crate::publish::{Publisher, Shared};
use crate::source::watch::LocalSource;
use crate::status::{LeaderConfig, StatusConfig};

/// Installs the tracing subscriber (`RUST_LOG` filters, default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// A shutdown signal shared by every server of the process.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal that fires when the returned sender sends `true` (or is dropped).
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

/// `portcullis run`.
pub async fn run(args: RunArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    match &args.manifests {
        Some(dir) => serve_local(dir, &args.serve, shutdown).await,
        None => serve_cluster(&args.cluster, &args.serve, shutdown).await,
    }
}

/// Cluster mode: watch the Kubernetes API, serve, report (when leading).
pub async fn serve_cluster(cluster: &ClusterArgs, args: &ServeArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let client = kube_client(cluster.kubeconfig.as_deref()).await?;
    let shared = Shared::new();
    let cfg = controller_config(cluster, args)?;
    tracing::info!(
        namespaces = ?cfg.namespaces,
        ingress_class = %cfg.translate.ingress_class,
        update_status = cfg.status.is_some(),
        "watching the Kubernetes API"
    );
    let controller =
        Controller::start(client, cfg, shared.clone(), shutdown.wait()).context("cannot start the controller")?;
    let result = serve(args, shared, shutdown).await;
    drop(controller);
    result
}

/// In-cluster config, else `--kubeconfig`, else $KUBECONFIG / ~/.kube/config.
async fn kube_client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer().await.context(
            "cannot find Kubernetes credentials (not in a cluster, no $KUBECONFIG or ~/.kube/config); \
             pass --kubeconfig, or --manifests DIR for local mode",
        )?,
    };
    kube::Client::try_from(config).context("cannot create the Kubernetes client")
}

fn controller_config(cluster: &ClusterArgs, args: &ServeArgs) -> anyhow::Result<ControllerConfig> {
    let namespaces: Vec<String> =
        cluster.watch_namespace.iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect();
    let status = if cluster.update_status {
        let identity = std::env::var("POD_NAME")
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("portcullis-{}", uuid::Uuid::new_v4().simple()));
        let namespace = cluster
            .election_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|n| !n.is_empty()))
            .unwrap_or_else(|| "default".into());
        let publish_service = match cluster.publish_service.as_deref() {
            None | Some("") => None,
            Some(s) => match s.split_once('/') {
                Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Some((ns.to_string(), name.to_string())),
                _ => bail!("--publish-service must be namespace/name, got {s:?}"),
            },
        };
        Some(StatusSettings {
            election: LeaderConfig::new(namespace, cluster.election_id.clone(), identity.clone()),
            writer: StatusConfig {
                publish_service,
                publish_addresses: cluster
                    .publish_status_address
                    .iter()
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect(),
                instance: identity,
            },
        })
    } else {
        None
    };
    Ok(ControllerConfig { translate: args.translate.config(), namespaces, status })
}

/// `portcullis demo`: the echo upstream plus the proxy on the quick start.
pub async fn demo(args: DemoArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let echo = TcpListener::bind(args.echo_listen)
        .await
        .with_context(|| format!("cannot listen on {} for the echo upstream", args.echo_listen))?;
    tracing::info!(listen = %args.echo_listen, "echo upstream listening");
    let echo_task = tokio::spawn(crate::echo::serve(echo, shutdown.wait()));
    let result = serve_local(&args.manifests, &args.serve, shutdown).await;
    echo_task.abort();
    result
}

/// `portcullis echo`.
pub async fn echo(args: EchoArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %args.listen, "echo upstream listening");
    crate::echo::serve(listener, shutdown.wait()).await.context("echo server failed")
}

/// Serves a manifests folder until `shutdown`.
pub async fn serve_local(dir: &Path, args: &ServeArgs, shutdown: Shutdown) -> anyhow::Result<()> {
    let shared = Shared::new();
    let publisher = Publisher::new(args.translate.config(), shared.clone());
    let dir_owned = dir.to_path_buf();
    // Reading the folder is blocking file I/O.
    let source = tokio::task::spawn_blocking(move || LocalSource::start(&dir_owned, publisher))
        .await
        .context("local source task failed")??;
    tracing::info!(dir = %dir.display(), "serving manifests folder");
    let result = serve(args, shared, shutdown).await;
    tokio::task::spawn_blocking(move || drop(source)).await.ok();
    result
}

/// Runs the proxy (plain and TLS, on its own threads) and the admin
/// listener (on this runtime) until `shutdown`; the proxy drains in-flight
/// requests first.
pub async fn serve(args: &ServeArgs, shared: Arc<Shared>, shutdown: Shutdown) -> anyhow::Result<()> {
    let proxy_listener = TcpListener::bind(args.proxy_listen)
        .await
        .with_context(|| format!("cannot listen on {} (--proxy-listen)", args.proxy_listen))?;
    let tls_listener = TcpListener::bind(args.proxy_tls_listen)
        .await
        .with_context(|| format!("cannot listen on {} (--proxy-tls-listen)", args.proxy_tls_listen))?;
    let admin_listener = TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} (--admin-listen)", args.admin_listen))?;
    let threads = match args.proxy_threads {
        0 => proxy::default_threads(),
        n => n,
    };
    tracing::info!(
        proxy = %args.proxy_listen,
        proxy_tls = %args.proxy_tls_listen,
        admin = %args.admin_listen,
        proxy_threads = threads,
        "listening"
    );
    // The proxy threads register the sockets with their own runtimes.
    let listeners = proxy::Listeners {
        plain: proxy_listener.into_std().context("cannot hand the proxy socket to the proxy threads")?,
        tls: tls_listener.into_std().context("cannot hand the TLS proxy socket to the proxy threads")?,
    };
    let config = ProxyConfig { max_body_bytes: args.max_body_bytes, ..ProxyConfig::default() };
    let admin = tokio::spawn(crate::admin::serve(admin_listener, shared.clone(), shutdown.wait()));
    let give_back = tokio::spawn(give_back_startup_code(shared.clone()));
    let workers = proxy::spawn_workers(&listeners, &shared.snapshot, &config, threads, || shutdown.wait())
        .context("cannot start the proxy threads")?;
    drop(listeners);
    let served = workers.wait().await;
    admin.abort();
    give_back.abort();
    served.context("proxy server failed")
}

/// Once the first snapshot is live, the code pages only startup ran leave
/// the resident set (see `code_pages`); ~1 MB at 100k credentials in
/// local mode.
async fn give_back_startup_code(shared: Arc<Shared>) {
    shared.ready().await;
    // Reads /proc/self/smaps, which the kernel writes out of memory, never
    // from a disk: a millisecond or two once, here rather than on a
    // blocking-pool thread that would be started (and hold its own stack
    // and heap) for this alone.
    match crate::code_pages::drop_resident_code() {
        Ok(kb) => tracing::info!(kb, "startup code pages given back"),
        Err(e) => tracing::debug!(error = %e, "code pages not given back: cannot read /proc/self/smaps"),
    }
}
