//! Leader election: with several instances on one PostgreSQL database, the maintenance
//! services run on exactly one of them, the one holding an advisory lock. When it dies its
//! session ends, the lock is released, and another instance takes over within
//! `leader_interval`. When it is cut off from the database (or frozen) instead, it steps
//! down after `leader_timeout` without confirming its session, and another instance ends
//! that session once it has been silent for twice as long, then takes over. On SQLite the
//! single instance always leads.

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
        let services = &self.queue.config().services;
        // A healthy leader confirms its session every tick, well within the timeout.
        let timeout = services.leader_timeout.max(services.leader_interval * 3);
        let leads = self.queue.store().lead(&mut self.state, timeout).await;
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
