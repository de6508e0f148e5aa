//! Workers as the server hears from them: each claim records the worker (its id, kind
//! patterns, user agent and address), at most every [`RECORD_SPACING`] per worker on this
//! instance unless something about it changed; jobs in hand and the last report are read
//! from its running jobs. `GET /v1/workers`, `GET /v1/stats` and the dashboard read them.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use ferry_core::{
    observe::{CONNECTED_WITHIN_SECS, Stats, WorkerInfo},
    validate::Claim,
};
use ferry_store::WorkerSeen;

use super::{AppResult, Principal, STATS_WINDOW};
use crate::Queue;

/// The least time between two records of the same unchanged worker by one instance.
pub const RECORD_SPACING: Duration = Duration::from_secs(10);

/// How long a worker that stopped claiming is still listed (it is forgotten after
/// [`FORGET_AFTER`]).
pub const LISTED_FOR: chrono::Duration = chrono::Duration::hours(24);

/// Workers silent this long and holding no jobs are deleted by the cleaner.
pub const FORGET_AFTER: chrono::Duration = chrono::Duration::days(7);

/// Workers remembered per instance to space their records (beyond, the book starts over).
const BOOK_MAX: usize = 10_000;

/// When this instance last recorded each worker, and what it recorded then.
#[derive(Debug, Default)]
pub struct WorkerBook(Mutex<HashMap<(String, String), (Instant, u64)>>);

impl WorkerBook {
    /// Whether the worker should be recorded now (and, if so, notes that it is).
    fn due(&self, tenant: &str, worker: &str, fingerprint: u64, now: Instant) -> bool {
        let mut book = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (tenant.to_owned(), worker.to_owned());
        if let Some((at, seen)) = book.get(&key)
            && *seen == fingerprint
            && now.duration_since(*at) < RECORD_SPACING
        {
            return false;
        }
        if book.len() >= BOOK_MAX {
            book.clear();
        }
        book.insert(key, (now, fingerprint));
        true
    }

    /// Forgets the worker, so its next claim is recorded (after a record failed).
    fn forget(&self, tenant: &str, worker: &str) {
        let mut book = self.0.lock().unwrap_or_else(|e| e.into_inner());
        book.remove(&(tenant.to_owned(), worker.to_owned()));
    }
}

impl Queue {
    /// Records the worker behind a claim. A failure is logged, never the claim's: a worker
    /// that cannot be listed still gets its jobs.
    pub async fn worker_claims(
        &self,
        who: &Principal,
        claim: &Claim,
        agent: Option<&str>,
        address: Option<IpAddr>,
    ) {
        let kinds: Vec<String> = claim.kinds.iter().map(ToString::to_string).collect();
        let address = address.map(|a| a.to_string());
        let mut hasher = DefaultHasher::new();
        (&kinds, agent, &address).hash(&mut hasher);
        let book = self.worker_book();
        if !book.due(
            &who.tenant,
            &claim.worker_id,
            hasher.finish(),
            Instant::now(),
        ) {
            return;
        }
        let seen = WorkerSeen {
            tenant_id: &who.tenant,
            worker_id: &claim.worker_id,
            kinds: &kinds,
            agent,
            address: address.as_deref(),
            now: self.now(),
        };
        if let Err(e) = self.store().worker_seen(&seen).await {
            book.forget(&who.tenant, &claim.worker_id);
            tracing::warn!(worker_id = %claim.worker_id, error = %e, "cannot record a worker");
        }
    }

    /// The tenant's workers heard from in the last day or holding jobs, by id.
    pub async fn workers(&self, who: &Principal) -> AppResult<Vec<WorkerInfo>> {
        let now = self.now();
        Ok(self
            .store()
            .worker_list(Some(&who.tenant), now - LISTED_FOR, connected_since(now))
            .await?)
    }

    /// Every tenant's connected workers (for `/metrics`).
    pub async fn connected_workers(&self) -> AppResult<Vec<WorkerInfo>> {
        let since = connected_since(self.now());
        let mut all = self.store().worker_list(None, since, since).await?;
        all.retain(|w| w.connected);
        Ok(all)
    }

    /// `GET /v1/stats`: the tenant's jobs at a glance over the last hour, its paused kinds
    /// and connected workers.
    pub async fn stats_summary(&self, who: &Principal) -> AppResult<Stats> {
        let since = self.now() - STATS_WINDOW;
        let (jobs, paused) = self.stats(who).await?;
        let connected = self
            .workers(who)
            .await?
            .iter()
            .filter(|w| w.connected)
            .count() as u64;
        Ok(Stats::new(jobs, since, paused, connected))
    }

    /// Forgets workers silent for [`FORGET_AFTER`] that hold no jobs.
    pub async fn prune_workers(&self, batch: u32) -> AppResult<u64> {
        Ok(self
            .store()
            .worker_prune(self.now() - FORGET_AFTER, batch)
            .await?)
    }
}

fn connected_since(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::seconds(CONNECTED_WITHIN_SECS)
}
