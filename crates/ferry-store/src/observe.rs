//! The store's methods for what operators watch, dispatched like the rest (see `lib.rs`):
//! the workers heard from, the connection pools. (A tenant's job counts are `job_stats`.)

use chrono::{DateTime, Utc};
use ferry_core::observe::WorkerInfo;

use crate::{Store, StoreResult, WorkerSeen};

impl Store {
    /// Records a worker as one of its claims shows it: its kinds, agent and address now,
    /// first seen kept.
    pub async fn worker_seen(&self, w: &WorkerSeen<'_>) -> StoreResult<()> {
        dispatch!(self, s => s.worker_seen(w).await)
    }

    /// The workers of a tenant (of every tenant when `None`) that claimed since `since` or
    /// hold running jobs, by tenant and id, with their jobs in hand; connected when heard
    /// from since `connected_since`.
    pub async fn worker_list(
        &self,
        tenant_id: Option<&str>,
        since: DateTime<Utc>,
        connected_since: DateTime<Utc>,
    ) -> StoreResult<Vec<WorkerInfo>> {
        dispatch!(self, s => s.worker_list(tenant_id, since, connected_since).await)
    }

    /// This instance's connection pools: `(pool, size, idle)` each.
    pub fn connections(&self) -> Vec<(&'static str, u32, usize)> {
        dispatch!(self, s => s.connections())
    }

    /// Forgets up to `limit` workers that have not claimed since `before` and hold no jobs.
    pub async fn worker_prune(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        dispatch!(self, s => s.worker_prune(before, limit).await)
    }
}
