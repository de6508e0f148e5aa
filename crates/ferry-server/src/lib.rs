//! The Ferry server: the client and worker HTTP APIs over a [`Store`], and the
//! maintenance services that keep leases, deadlines, schedules and retention honest.
//!
//! It never launches a browser and never runs a job itself; workers do, over HTTP.

pub mod app;
mod auth_failures;
mod config;
mod dashboard;
mod event_tail;
mod group_commit;
pub mod http;
pub mod metrics;
mod queue;
pub mod sealing;
mod serve;
pub mod services;
mod stream_slots;
mod traces;

use std::{net::SocketAddr, sync::Arc};

use ferry_core::Clock;
use ferry_store::Store;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

pub use app::{Principal, Role};
pub use config::ServerConfig;
pub use queue::Queue;
pub use sealing::SealingKey;

/// An artifact store in a local directory (created if missing): what `ferry serve` uses,
/// under its data dir. (Any `object_store` backend, S3 say, fits `ServerConfig::artifacts`.)
pub fn local_artifacts(
    dir: &std::path::Path,
) -> Result<Arc<dyn object_store::ObjectStore>, std::io::Error> {
    std::fs::create_dir_all(dir)?;
    let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
        .map_err(std::io::Error::other)?;
    Ok(Arc::new(store))
}

/// A server started by [`start`].
#[derive(Debug)]
pub struct RunningServer {
    pub addr: SocketAddr,
    pub queue: Arc<Queue>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl RunningServer {
    /// Asks every part to stop and waits until they have.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.queue.store().close().await;
    }

    /// Waits until the server stops (after `shutdown` was cancelled elsewhere).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
        self.queue.store().close().await;
    }
}

/// What [`start`] needs.
#[derive(Debug)]
pub struct StartOptions {
    pub listener: TcpListener,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: ServerConfig,
    /// Run the maintenance services (tests step them with `run_once` instead).
    pub services: bool,
    pub shutdown: CancellationToken,
}

/// Starts serving on the listener, with the maintenance services unless disabled.
pub fn start(options: StartOptions) -> std::io::Result<RunningServer> {
    let StartOptions {
        listener,
        store,
        clock,
        config,
        services,
        shutdown,
    } = options;
    let addr = listener.local_addr()?;
    let header_read_timeout = config.header_read_timeout;
    let queue = Arc::new(Queue::new(store, clock, config, shutdown.clone()));
    let mut tasks = JoinSet::new();
    let app = http::app(queue.clone());
    let stop = shutdown.clone();
    tasks.spawn(async move {
        serve::run(listener, app, stop, header_read_timeout).await;
    });
    if services {
        services::spawn_all(&queue, &mut tasks, &shutdown);
    }
    // Wake-ups from other instances and from apps' own transactions (PostgreSQL).
    let (store, wake, events, stop) = (
        queue.store().clone(),
        queue.work_signal(),
        queue.events_sender(),
        shutdown.clone(),
    );
    tasks.spawn(async move { store.forward_signals(wake, events, stop).await });
    let (announcer, stop) = (queue.clone(), shutdown.clone());
    tasks.spawn(async move { announcer.announce_events(stop).await });
    tracing::info!(%addr, backend = queue.store().backend_name(), "ferry server listening");
    Ok(RunningServer {
        addr,
        queue,
        shutdown,
        tasks,
    })
}
