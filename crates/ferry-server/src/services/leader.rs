//! Leader election: with several instances on one PostgreSQL database, the maintenance
//! services run on exactly one of them, the one holding an advisory lock. When it dies its
//! session ends, the lock is released, and another instance takes over within
//! `leader_interval`. On SQLite the single instance always leads.

use std::sync::Arc;

use ferry_store::LeaderState;
use tokio_util::sync::CancellationToken;

use crate::Queue;

#[derive(Debug)]
pub struct Leader {
    queue: Arc<Queue>,
    state: LeaderState,
}

impl Leader {
    pub fn new(queue: Arc<Queue>) -> Self {
        Self {
            queue,
            state: LeaderState::default(),
        }
    }

    /// Takes or checks leadership once; answers whether this instance leads.
    pub async fn run_once(&mut self) -> bool {
        let leads = self.queue.store().lead(&mut self.state).await;
        let led = self.queue.set_leader(leads);
        if leads != led {
            tracing::info!(leads, "maintenance leadership changed");
        }
        leads
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.queue.config().services.leader_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            self.run_once().await;
        }
    }
}
