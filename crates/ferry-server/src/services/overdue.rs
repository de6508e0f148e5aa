//! The lease rescuer and the timeout enforcer: both fail running attempts that are
//! overdue (lease expired, deadline passed), which retries them with backoff or marks
//! them `failed` when attempts are used up. Neither needs the worker to be alive.

use std::{sync::Arc, time::Duration};

use ferry_store::{Overdue, StoreError};

use super::Service;
use crate::Queue;

/// Expired lease → `LEASE_EXPIRED` (retryable).
#[derive(Debug, Clone)]
pub struct LeaseRescuer {
    queue: Arc<Queue>,
}

impl LeaseRescuer {
    pub fn new(queue: Arc<Queue>) -> Self {
        Self { queue }
    }
}

impl Service for LeaseRescuer {
    fn name(&self) -> &'static str {
        "lease_rescuer"
    }

    fn queue(&self) -> &Queue {
        &self.queue
    }

    fn interval(&self) -> Duration {
        self.queue.config().services.rescue_interval
    }

    async fn run_once(&self) -> Result<u64, StoreError> {
        let batch = self.queue.config().services.batch;
        let done = self.queue.fail_overdue(Overdue::Lease, batch).await?;
        for t in &done {
            ended(t, "LEASE_EXPIRED", "lease expired; job rescued");
        }
        Ok(done.len() as u64)
    }
}

/// Past `deadline_at` → `TIMEOUT` (retryable).
#[derive(Debug, Clone)]
pub struct TimeoutEnforcer {
    queue: Arc<Queue>,
}

impl TimeoutEnforcer {
    pub fn new(queue: Arc<Queue>) -> Self {
        Self { queue }
    }
}

impl Service for TimeoutEnforcer {
    fn name(&self) -> &'static str {
        "timeout_enforcer"
    }

    fn queue(&self) -> &Queue {
        &self.queue
    }

    fn interval(&self) -> Duration {
        self.queue.config().services.timeout_interval
    }

    async fn run_once(&self) -> Result<u64, StoreError> {
        let batch = self.queue.config().services.batch;
        let done = self.queue.fail_overdue(Overdue::Deadline, batch).await?;
        for t in &done {
            ended(t, "TIMEOUT", "attempt timed out");
        }
        Ok(done.len() as u64)
    }
}

/// Records an attempt the server ended: a mark in the job's trace and a log line naming
/// the job (its id, kind, attempt, tenant and trace).
fn ended(t: &ferry_store::Transition, code: &str, what: &str) {
    crate::traces::rescued(t, code);
    tracing::warn!(
        job_id = %t.id,
        kind = %t.kind,
        attempt = t.attempt,
        tenant = %t.tenant_id,
        trace_id = t.traceparent.as_ref().map(|p| p.trace_id()),
        to = %t.to,
        "{what}"
    );
}
