//! Retention: deletes finished jobs (with their items and labels) older than the
//! configured age, in bounded batches; expired login sessions; workers long silent.

use std::{sync::Arc, time::Duration};

use ferry_store::StoreError;

use super::Service;
use crate::Queue;

#[derive(Debug, Clone)]
pub struct CleanerConfig {
    /// How long a finished job is kept (default 7 days).
    pub retention: Duration,
    /// How often the cleaner runs (default 60 s).
    pub interval: Duration,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(7 * 24 * 3600),
            interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cleaner {
    queue: Arc<Queue>,
}

impl Cleaner {
    pub fn new(queue: Arc<Queue>) -> Self {
        Self { queue }
    }
}

impl Service for Cleaner {
    fn name(&self) -> &'static str {
        "cleaner"
    }

    fn queue(&self) -> &Queue {
        &self.queue
    }

    fn interval(&self) -> Duration {
        self.queue.config().services.cleaner.interval
    }

    async fn run_once(&self) -> Result<u64, StoreError> {
        let config = &self.queue.config().services;
        let retention =
            chrono::Duration::from_std(config.cleaner.retention).unwrap_or(chrono::Duration::MAX);
        let now = self.queue.now();
        let deleted = self
            .queue
            .delete_finished(now - retention, config.batch)
            .await?;
        // The event record is kept as long as finished jobs.
        self.queue
            .prune_events(now - retention, config.batch)
            .await?;
        // Rate-key starts older than the longest window count for nothing.
        self.queue.prune_rate_keys(config.batch).await?;
        // Artifacts go with their jobs.
        self.queue.prune_artifacts(config.batch).await?;
        // Expired login sessions.
        self.queue.store().user_sessions_prune(now).await?;
        // Workers long silent.
        if let Err(e) = self.queue.prune_workers(config.batch).await {
            tracing::warn!(error = %e, "cannot forget silent workers");
        }
        Ok(deleted)
    }
}
