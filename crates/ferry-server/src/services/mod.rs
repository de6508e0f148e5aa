//! Background maintenance. Every service has one shape: a config with documented
//! defaults, `run_once()` that tests call directly, and `run(shutdown)` looping on a
//! ticker. A failed pass is logged and retried on the next tick.

mod cleaner;
mod cron;
mod leader;
mod overdue;
mod scheduler;
mod webhooks;

use std::{sync::Arc, time::Duration};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use cleaner::{Cleaner, CleanerConfig};
pub use cron::CronService;
pub use leader::Leader;
pub use overdue::{LeaseRescuer, TimeoutEnforcer};
pub use scheduler::Scheduler;
pub use webhooks::{WebhookConfig, WebhookSender, secret_context as webhooks_secret_context, sign};

use crate::Queue;

/// Settings of all maintenance services.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// How often expired leases are looked for (default 1 s): a job whose worker died
    /// runs again within about a second of its lease expiring.
    pub rescue_interval: Duration,
    /// How often attempts past their deadline are failed with `TIMEOUT` (default 1 s).
    pub timeout_interval: Duration,
    /// How often due `scheduled` jobs are shown as `pending` (default 1 s). Claims take
    /// due jobs either way; this keeps statuses honest.
    pub schedule_interval: Duration,
    pub cleaner: CleanerConfig,
    /// Rows changed per transaction by a pass (default 1,000).
    pub batch: u32,
    /// How often an instance tries to become (or checks it still is) the one that runs
    /// maintenance (default 1 s). On SQLite the only instance always leads.
    pub leader_interval: Duration,
    /// How long a leader may go without confirming its database session (default 10 s).
    /// A leader that cannot confirm it for this long steps down and drops the session;
    /// another instance ends a leader session that has been silent for twice this long
    /// (a leader cut off from the database, or frozen), which frees the lock for it.
    pub leader_timeout: Duration,
    pub webhooks: WebhookConfig,
    /// How often cron schedules are looked at (default 1 s).
    pub cron_interval: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            rescue_interval: Duration::from_secs(1),
            timeout_interval: Duration::from_secs(1),
            schedule_interval: Duration::from_secs(1),
            cleaner: CleanerConfig::default(),
            batch: 1_000,
            leader_interval: Duration::from_secs(1),
            leader_timeout: Duration::from_secs(10),
            webhooks: WebhookConfig::default(),
            cron_interval: Duration::from_secs(1),
        }
    }
}

/// One maintenance service.
pub trait Service: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// The queue the service works on.
    fn queue(&self) -> &Queue;
    fn interval(&self) -> Duration;
    /// One pass; answers how many jobs it changed.
    fn run_once(
        &self,
    ) -> impl std::future::Future<Output = Result<u64, ferry_store::StoreError>> + Send;

    /// Runs passes on a ticker until `shutdown`.
    fn run(self, shutdown: CancellationToken) -> impl std::future::Future<Output = ()> + Send
    where
        Self: Sized,
    {
        async move {
            let mut ticker = tokio::time::interval(self.interval());
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = shutdown.cancelled() => return,
                }
                // With several instances on one database only the leader does maintenance.
                if !self.queue().is_leader() {
                    continue;
                }
                match self.run_once().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(service = self.name(), changed = n, "maintenance pass");
                        self.queue().ring_events();
                    }
                    Err(e) => {
                        tracing::warn!(service = self.name(), error = %e, "maintenance pass failed")
                    }
                }
            }
        }
    }
}

/// Starts every service on `set`.
pub fn spawn_all(queue: &Arc<Queue>, set: &mut JoinSet<()>, shutdown: &CancellationToken) {
    set.spawn(Leader::new(queue.clone()).run(shutdown.clone()));
    set.spawn(LeaseRescuer::new(queue.clone()).run(shutdown.clone()));
    set.spawn(TimeoutEnforcer::new(queue.clone()).run(shutdown.clone()));
    set.spawn(Scheduler::new(queue.clone()).run(shutdown.clone()));
    set.spawn(Cleaner::new(queue.clone()).run(shutdown.clone()));
    set.spawn(WebhookSender::new(queue.clone()).run(shutdown.clone()));
    set.spawn(CronService::new(queue.clone()).run(shutdown.clone()));
}
