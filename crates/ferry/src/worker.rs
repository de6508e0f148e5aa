//! `ferry worker`, and the worker that `serve --with-worker`, `demo` and `bench` run
//! inside their own process (it still speaks HTTP to the server, over loopback).

use std::{path::Path, process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use ferry_client::Client;
use ferry_core::Secret;
use ferry_worker::{Registry, Worker, WorkerConfig, WorkerError, builtin};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    cli::WorkerArgs,
    config::{FileConfig, client_settings},
};

pub async fn run(args: WorkerArgs, config: Option<&Path>) -> Result<ExitCode> {
    let file = FileConfig::load(config)?;
    let (url, token) = client_settings(args.server, args.data_dir, &file, true)?;
    let client = Client::new(&url, token)?;
    let mut config = WorkerConfig {
        kinds: args.kinds,
        lease_ms: args.lease_ms,
        ..Default::default()
    };
    if let Some(n) = args.concurrency {
        config.concurrency = n.max(1);
    }
    if let Some(id) = args.id {
        config.worker_id = id;
    }
    if let Some(secs) = args.shutdown_grace_secs {
        config.shutdown_grace = Duration::from_secs(secs);
    }
    eprintln!("ferry worker {} pulling from {url}", config.worker_id);
    let stop = CancellationToken::new();
    let signal_stop = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signal_stop.cancel();
    });
    let metrics = match args.metrics_listen {
        None => None,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?;
            let metrics = ferry_worker::WorkerMetrics::default();
            eprintln!(
                "metrics at http://{}/metrics",
                listener.local_addr().unwrap_or(addr)
            );
            let served = metrics.clone();
            let served_until = stop.clone();
            tokio::spawn(async move {
                if let Err(e) = served.serve(listener, served_until).await {
                    eprintln!("error: the metrics endpoint stopped: {e}");
                }
            });
            Some(metrics)
        }
    };
    let registry = handlers_with(!args.no_browser, Default::default(), metrics.as_ref())?;
    let mut worker = Worker::new(client, registry, config);
    if let Some(metrics) = metrics {
        worker = worker.with_metrics(metrics);
    }
    worker.run(stop).await?;
    Ok(ExitCode::SUCCESS)
}

/// The built-in handlers, with `browser.run` when `browser` and Chromium is installed
/// (Debian's `/usr/bin/chromium`, or `FERRY_CHROMIUM`).
pub fn handlers(browser: bool) -> Result<Registry> {
    handlers_with_secrets(browser, Default::default())
}

/// The built-in handlers; `browser.run` resolves `{{secret.NAME}}` from `secrets`, then from
/// this process's `FERRY_SECRET_NAME` (bound by `FERRY_SECRET_DOMAINS_NAME`).
pub fn handlers_with_secrets(
    browser: bool,
    secrets: std::collections::HashMap<String, ferry_core::BoundSecret>,
) -> Result<Registry> {
    handlers_with(browser, secrets, None)
}

/// [`handlers_with_secrets`], with the browser's pages, memory and steps counted in
/// `metrics` when given.
pub fn handlers_with(
    browser: bool,
    secrets: std::collections::HashMap<String, ferry_core::BoundSecret>,
    metrics: Option<&ferry_worker::WorkerMetrics>,
) -> Result<Registry> {
    let mut registry = builtin::registry()?;
    if browser {
        let mut run = ferry_browser::BrowserRun::lazy(ferry_browser::ChromiumConfig::default())
            .with_secrets(secrets);
        if let Some(metrics) = metrics {
            run = run.with_metrics(metrics);
        }
        ferry_browser::register(&mut registry, run);
    }
    Ok(registry)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// A worker running inside this process.
#[derive(Debug)]
pub struct EmbeddedWorker {
    stop: CancellationToken,
    task: JoinHandle<Result<(), WorkerError>>,
}

impl EmbeddedWorker {
    pub fn start(url: &str, token: Secret, concurrency: usize, registry: Registry) -> Result<Self> {
        Self::start_with(url, token, registry, |c| c.concurrency = concurrency.max(1))
    }

    pub fn start_with(
        url: &str,
        token: Secret,
        registry: Registry,
        tweak: impl FnOnce(&mut WorkerConfig),
    ) -> Result<Self> {
        let client = Client::new(url, token)?;
        let mut config = WorkerConfig::default();
        config.worker_id = format!("embedded-{}", config.worker_id);
        tweak(&mut config);
        let stop = CancellationToken::new();
        let task = tokio::spawn(Worker::new(client, registry, config).run(stop.clone()));
        Ok(Self { stop, task })
    }

    /// Stops claiming, drains running jobs and waits.
    pub async fn stop(self) -> Result<()> {
        self.stop.cancel();
        self.task.await.context("worker task panicked")??;
        Ok(())
    }
}
