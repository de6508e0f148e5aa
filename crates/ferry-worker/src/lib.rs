//! The Ferry worker runtime: pulls jobs over HTTP with a worker token, runs them with
//! registered [`Handler`]s, heartbeats their leases, streams progress and partial
//! items, and reports results. It never touches the database.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use ferry_worker::{Worker, WorkerConfig, builtin};
//! let client = ferry_client::Client::new("http://127.0.0.1:7878", ferry_core::Secret::new("worker-token"))?;
//! let worker = Worker::new(client, builtin::registry()?, WorkerConfig::default());
//! worker.run(tokio_util::sync::CancellationToken::new()).await?;
//! # Ok(()) }
//! ```

pub mod builtin;
mod completer;
mod handler;
mod job;
pub mod metrics;
pub mod redact;
mod runtime;

pub use handler::{Handler, HandlerError, JobContext, Registry, StopReason};
pub use metrics::WorkerMetrics;
pub use redact::{Redactor, env_secret};
pub use runtime::{Worker, WorkerConfig, WorkerError, default_worker_id};
