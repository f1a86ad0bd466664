use std::process::ExitCode;

/// mimalloc instead of glibc malloc: translation and loading allocate many
/// small objects, which glibc keeps fragmented (measured in docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use portcullis::cli::{CheckOutput, Cli, Command};
use portcullis::run::{self, Shutdown};

fn main() -> ExitCode {
    no_transparent_huge_pages();
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => {
            print!("{}", portcullis::api::crds_yaml());
            ExitCode::SUCCESS
        }
        Command::Check(args) => check(&args),
        Command::Run(args) => serve(args.serve.log_format, |s| run::run(args, s)),
        Command::Demo(args) => serve(args.serve.log_format, |s| run::demo(args, s)),
        Command::Echo(args) => serve(portcullis::cli::LogFormat::Text, |s| run::echo(args, s)),
    }
}

/// Transparent huge pages off for this process. mimalloc asks for them
/// (`madvise`), so every heap region the process touches is rounded up to
/// 2 MB: idle RSS 23.6 -> 12.1 MB, 100k credentials ~120 -> ~110 MB. And a
/// load right after the machine used its memory waited ~250 ms on the
/// kernel compacting huge pages (docs/benchmarks.md, "Huge pages off").
/// Best effort: where the kernel refuses, nothing else changes.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("note: could not turn transparent huge pages off ({e}); memory use may be higher");
    }
}

/// mimalloc (v3) keeps freed pages for a second, and arena pages for ten,
/// before it gives them back, and does so only from inside a later
/// allocation: after a load, a process that sits idle or serves requests
/// from pages it already holds keeps them resident for good. Immediate
/// purging, and committing arena memory as it is used instead of up front:
/// RSS at 100k credentials 86 -> 79 MB under load, the same throughput
/// (docs/benchmarks.md, "Allocator pages given back"). A `MIMALLOC_*`
/// variable in the environment still decides its option.
///
/// Run before `main` (an `.init_array` entry): mimalloc reads the arena
/// option when it creates its first arena, at the first allocation, and the
/// runtime allocates before `main`. Nothing here allocates: reading a
/// variable that is not set allocates nothing, and one that is set is left
/// to mimalloc, which read it itself.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static RETURN_FREED_PAGES_AT_ONCE: extern "C" fn() = return_freed_pages_at_once;

#[cfg(target_os = "linux")]
extern "C" fn return_freed_pages_at_once() {
    // Positions in mimalloc v3's `mi_option_e` (libmimalloc-sys names only
    // the options both versions share). The arena option first: it must be
    // set before anything allocates.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    for (option, variable) in
        [(ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT"), (PURGE_DELAY, "MIMALLOC_PURGE_DELAY")]
    {
        if std::env::var_os(variable).is_none() {
            // SAFETY: plain integer options, settable at any time.
            unsafe { libmimalloc_sys::mi_option_set(option, 0) };
        }
    }
}

fn check(args: &portcullis::cli::CheckArgs) -> ExitCode {
    match portcullis::check::check(&args.dir, &args.translate.config()) {
        Ok(report) => {
            let text = match args.output {
                CheckOutput::Text => portcullis::check::render_text(&report),
                CheckOutput::Yaml => portcullis::check::render_yaml(&report),
            };
            print!("{text}");
            if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(e) => {
            eprintln!("error: cannot read manifests folder {}: {e}", args.dir.display());
            ExitCode::from(2)
        }
    }
}

/// Runs a server command on a multi-threaded runtime; SIGINT/SIGTERM start a
/// graceful drain, a second signal exits at once.
fn serve<F, Fut>(format: portcullis::cli::LogFormat, f: F) -> ExitCode
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    run::init_logging(format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let (stop, shutdown) = Shutdown::new();
        tokio::spawn(async move {
            signal().await;
            tracing::info!("shutting down: draining in-flight requests (signal again to exit now)");
            let _ = stop.send(true);
            signal().await;
            tracing::warn!("second signal: exiting without draining");
            std::process::exit(130);
        });
        match f(shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
