//! Shows due `scheduled` jobs (delays, retries in backoff) as `pending`, and wakes
//! long-polling claims when it does.

use std::{sync::Arc, time::Duration};

use ferry_store::StoreError;

use super::Service;
use crate::Queue;

#[derive(Debug, Clone)]
pub struct Scheduler {
    queue: Arc<Queue>,
}

impl Scheduler {
    pub fn new(queue: Arc<Queue>) -> Self {
        Self { queue }
    }
}

impl Service for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn queue(&self) -> &Queue {
        &self.queue
    }

    fn interval(&self) -> Duration {
        self.queue.config().services.schedule_interval
    }

    async fn run_once(&self) -> Result<u64, StoreError> {
        self.queue
            .promote_scheduled(self.queue.config().services.batch)
            .await
    }
}
