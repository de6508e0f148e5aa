//! `ferry serve`: open the database (migrating it), listen, run the maintenance
//! services and, with `--with-worker`, a worker in the same process. SIGINT/SIGTERM
//! drain the embedded worker first, then stop the server.

use std::{path::Path, process::ExitCode, sync::Arc};

use anyhow::{Context, Result, bail};
use ferry_core::SystemClock;
use ferry_server::StartOptions;
use ferry_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    cli::ServeArgs,
    config::{FileConfig, serve_settings},
    worker::{EmbeddedWorker, shutdown_signal},
};

pub async fn run(args: ServeArgs, config: Option<&Path>) -> Result<ExitCode> {
    let file = FileConfig::load(config)?;
    let settings = serve_settings(args.listen, args.data_dir, args.database_url, &file)?;
    if args.with_worker && !settings.server.configured_tokens {
        bail!(
            "--with-worker claims with the configured worker token, which configured_tokens = false refuses; run `ferry worker` with a worker token of its own instead"
        );
    }
    let store = Store::open(&settings.database, settings.durability)
        .await
        .with_context(|| format!("cannot open the database {:?}", settings.database))?;
    let listener = TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    for (name, path) in &settings.generated {
        eprintln!(
            "generated the {name} into {} (readable by you only)",
            path.display()
        );
    }
    let worker_token = settings.server.worker_token.clone();
    let server_stop = CancellationToken::new();
    let running = ferry_server::start(StartOptions {
        listener,
        store,
        clock: Arc::new(SystemClock),
        config: settings.server,
        services: true,
        shutdown: server_stop.clone(),
    })?;
    let url = format!("http://{}", running.addr);
    eprintln!(
        "ferry {} serving on {url} (data: {})",
        env!("CARGO_PKG_VERSION"),
        settings.data_dir.display()
    );
    let worker = if args.with_worker {
        Some(EmbeddedWorker::start(
            &url,
            worker_token,
            args.worker_concurrency.unwrap_or(4),
            crate::worker::handlers(true)?,
        )?)
    } else {
        None
    };
    shutdown_signal().await;
    eprintln!("shutting down");
    if let Some(worker) = worker {
        worker.stop().await?;
    }
    running.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
