//! Ferry's persistence. [`Store`] is a closed enum over the backends, matched once
//! here, so the server holds one concrete type and no SQL lives outside this crate.
//!
//! Store methods are noun-verb (`job_claim`, `job_complete`), take `now` from the
//! caller's clock, change a job's state only by compare-and-set against its current
//! state and lease, and return domain types from `ferry-core`, never database rows.

mod datasets;
mod error;
mod migrate;
mod params;
pub mod postgres;
mod rows;
mod shared;
pub mod sqlite;

use std::{path::Path, sync::Arc};

use chrono::{DateTime, Utc};
use ferry_core::{
    BatchId, DeliveryId, Job, JobId, JobItem, KindPattern, NewJob, ScheduleId, WebhookId,
    api::{ClaimedJob, LeaseStatus},
};

pub use error::{Entity, StoreError, StoreResult};
pub use params::{ApiKeyRow, AuditRow, SecretRow, TenantRow, UserRow, UserSessionRow};
pub use params::{
    ClaimParams, CompleteParams, Completed, DeliveryOutcome, DueDelivery, EventFilter, FailParams,
    Inserted, JobHead, LeasedJob, ListParams, NewBatch, ProgressParams, Transition, WebhookRow,
    WorkerSeen,
};
pub use postgres::PostgresStore;
pub use shared::Overdue;
pub use sqlite::{Durability, SqliteStore};

/// How many events one read of the record scans at most, matching or not: what one pass
/// of a stream or webhook costs, however rarely its filter matches.
pub const EVENTS_SCAN: u32 = 10_000;

/// Most jobs one retry of a group of failed jobs revives (a larger group takes several).
pub const RETRY_GROUP_MAX: u32 = 10_000;

/// The job store, over one of the supported databases.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// Calls the same method on whichever backend this store is.
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

// The identity and observation methods (after `dispatch!`, which they use).
mod identity;
mod observe;
mod vault;

/// This process's leader election session (PostgreSQL): it holds the leader lock while
/// this process leads.
#[derive(Debug, Default)]
pub struct LeaderState(postgres::LeaderSession);

/// Where the data lives, parsed from a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite:///abs/path.db`, `sqlite://rel/path.db` or `sqlite:path.db`.
    Sqlite(std::path::PathBuf),
    /// `postgres://user@host:5432/db` (or `postgresql://`).
    Postgres(String),
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() {
                return Err(format!("{url:?} names no database file"));
            }
            return Ok(DatabaseUrl::Sqlite(path.into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        Err(format!(
            "unsupported database URL {url:?}: expected sqlite://PATH or postgres://USER@HOST:PORT/DB"
        ))
    }
}

impl Store {
    /// Opens the database at `url`, running migrations.
    pub async fn open(url: &DatabaseUrl, durability: Durability) -> StoreResult<Self> {
        match url {
            DatabaseUrl::Sqlite(path) => {
                Ok(Store::Sqlite(SqliteStore::open(path, durability).await?))
            }
            DatabaseUrl::Postgres(url) => Ok(Store::Postgres(PostgresStore::open(url).await?)),
        }
    }

    /// Opens a SQLite file directly.
    pub async fn open_sqlite(path: &Path) -> StoreResult<Self> {
        Ok(Store::Sqlite(
            SqliteStore::open(path, Durability::Normal).await?,
        ))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Whether other processes may change the data (several server instances): then
    /// long-polls also re-check on a slow timer, in case a wake-up was missed.
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Wakes `work` whenever another instance (or an app's own transaction) makes work
    /// available, and bumps `events` whenever one writes events, until `stop`. On SQLite,
    /// where this process is the only writer, it only waits for `stop`.
    pub async fn forward_signals(
        &self,
        work: Arc<tokio::sync::Notify>,
        events: Arc<tokio::sync::watch::Sender<u64>>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        match self {
            Store::Sqlite(_) => stop.cancelled().await,
            Store::Postgres(s) => s.forward_signals(work, events, stop).await,
        }
    }

    /// Tells the other instances that events were written here (PostgreSQL `NOTIFY`, in its
    /// own transaction: writers never wait on it). A no-op on SQLite.
    pub async fn notify_events(&self) -> StoreResult<()> {
        match self {
            Store::Sqlite(_) => Ok(()),
            Store::Postgres(s) => s.notify_events().await,
        }
    }

    /// Takes or keeps the leadership of maintenance; answers whether this process leads.
    /// On SQLite this process is the only one and always leads; on PostgreSQL one
    /// instance holds an advisory lock on a session that `state` keeps open. A leader that
    /// cannot confirm its session for `timeout` steps down; a session holding the lock that
    /// has been silent for twice that is ended by the next instance that tries to lead.
    pub async fn lead(&self, state: &mut LeaderState, timeout: std::time::Duration) -> bool {
        match self {
            Store::Sqlite(_) => true,
            Store::Postgres(s) => s.lead(&mut state.0, timeout).await,
        }
    }

    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }

    pub async fn ping(&self) -> StoreResult<()> {
        dispatch!(self, s => s.ping().await)
    }

    /// Inserts jobs in one transaction; all or none. A job whose dedupe key is held by
    /// an unfinished job is not inserted: that job is answered instead (`created: false`).
    pub async fn job_insert(
        &self,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Inserted>> {
        dispatch!(self, s => s.job_insert(jobs, now).await)
    }

    /// Creates a batch and its item jobs in one transaction.
    pub async fn batch_insert(
        &self,
        batch: &NewBatch,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        dispatch!(self, s => s.batch_insert(batch, jobs, now).await)
    }

    /// A batch with its live progress.
    pub async fn batch_get(
        &self,
        tenant_id: &str,
        id: BatchId,
    ) -> StoreResult<ferry_core::api::Batch> {
        dispatch!(self, s => s.batch_get(tenant_id, id).await)
    }

    /// The tenant's batches with their live progress, newest first, older than `before`
    /// if given (keyset paging on the id, a UUIDv7).
    pub async fn batch_list(
        &self,
        tenant_id: &str,
        before: Option<BatchId>,
        limit: u32,
    ) -> StoreResult<Vec<ferry_core::api::Batch>> {
        dispatch!(self, s => s.batch_list(tenant_id, before, limit).await)
    }

    /// Finished items in the order their finishing commits became visible, each with its
    /// position; pass the last position as `after` for the next page. No item that finishes
    /// later (or commits late) ever sorts before a position already returned.
    pub async fn batch_results(
        &self,
        tenant_id: &str,
        id: BatchId,
        after: Option<(i64, JobId)>,
        limit: u32,
    ) -> StoreResult<Vec<(i64, ferry_core::api::BatchResult)>> {
        dispatch!(self, s => s.batch_results(tenant_id, id, after, limit).await)
    }

    /// Cancels the batch's unfinished items (running ones are asked to stop).
    pub async fn batch_cancel(
        &self,
        tenant_id: &str,
        id: BatchId,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<ferry_core::api::Batch> {
        dispatch!(self, s => s.batch_cancel(tenant_id, id, now, audit).await)
    }

    pub async fn job_get(&self, tenant_id: &str, id: JobId) -> StoreResult<Job> {
        dispatch!(self, s => s.job_get(tenant_id, id).await)
    }

    /// Newest first.
    pub async fn job_list(&self, params: &ListParams) -> StoreResult<Vec<Job>> {
        dispatch!(self, s => s.job_list(params).await)
    }

    /// Events after the one with id `after`, in the order they became visible: no event
    /// that commits later ever sorts before one already returned (so a reader that resumes
    /// from the last id it saw misses nothing and sees nothing twice). The events of one
    /// [`Store::events_read`]; readers that resume use that.
    pub async fn events_list(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<ferry_core::api::Event>> {
        Ok(self
            .events_read(tenant_id, filter, after, limit, EVENTS_SCAN)
            .await?
            .events)
    }

    /// One read of the event record after the one with id `after`: it scans the next
    /// `scan` visible events at most (at least `limit`), in the order they became visible,
    /// and answers those of `tenant_id` matching `filter`, up to `limit`. `next_after` is
    /// where to resume: the last event answered when the page is full, else the last event
    /// scanned, matching or not (never past what is visible, so resuming there is exact);
    /// `after` itself only when there was nothing to scan. Filters on type use an index.
    pub async fn events_read(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
        after: i64,
        limit: u32,
        scan: u32,
    ) -> StoreResult<ferry_core::api::EventPage> {
        dispatch!(self, s => s.events_read(tenant_id, filter, after, limit, scan).await)
    }

    /// The last `limit` state changes of one job of `tenant_id` (its events but progress
    /// reports), oldest first: its attempts' starts and ends, read by the job's own index
    /// (not a scan of the record).
    pub async fn job_events(
        &self,
        tenant_id: &str,
        job: JobId,
        limit: u32,
    ) -> StoreResult<Vec<ferry_core::api::Event>> {
        dispatch!(self, s => s.job_events(tenant_id, job, limit).await)
    }

    pub async fn event_get(&self, id: i64) -> StoreResult<Option<ferry_core::api::Event>> {
        dispatch!(self, s => s.event_get(id).await)
    }

    /// The id of the last event readers can see: where "from now" starts (`after=now`,
    /// a new webhook's cursor).
    pub async fn events_head(&self) -> StoreResult<i64> {
        dispatch!(self, s => s.events_head().await)
    }

    pub async fn webhook_insert(&self, w: &WebhookRow, audit: &AuditRow) -> StoreResult<()> {
        dispatch!(self, s => s.webhook_insert(w, audit).await)
    }

    /// Webhooks of `tenant` (all tenants' when `None`).
    pub async fn webhook_list(&self, tenant_id: Option<&str>) -> StoreResult<Vec<WebhookRow>> {
        dispatch!(self, s => s.webhook_list(tenant_id).await)
    }

    /// Deletes a webhook and its deliveries; answers whether there was one.
    pub async fn webhook_delete(
        &self,
        tenant_id: &str,
        id: WebhookId,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.webhook_delete(tenant_id, id, audit).await)
    }

    /// Turns events into deliveries and moves the webhook's cursor `from` → `to` in one
    /// transaction (at most one delivery per webhook and event); false if the cursor moved.
    pub async fn webhook_dispatch(
        &self,
        webhook: WebhookId,
        from: i64,
        to: i64,
        events: &[(i64, Option<JobId>)],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.webhook_dispatch(webhook, from, to, events, now).await)
    }

    /// Pending deliveries due by `now`, the first pending one per job and webhook.
    pub async fn deliveries_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>> {
        dispatch!(self, s => s.deliveries_due(now, limit).await)
    }

    /// Records an attempt of a pending delivery.
    pub async fn delivery_record(
        &self,
        id: DeliveryId,
        outcome: &DeliveryOutcome,
    ) -> StoreResult<()> {
        dispatch!(self, s => s.delivery_record(id, outcome).await)
    }

    /// A webhook's deliveries, newest first; `None` when there is no such webhook.
    pub async fn delivery_list(
        &self,
        tenant_id: &str,
        webhook: WebhookId,
        limit: u32,
    ) -> StoreResult<Option<Vec<ferry_core::api::DeliveryInfo>>> {
        dispatch!(self, s => s.delivery_list(tenant_id, webhook, limit).await)
    }

    /// A dead delivery goes back to pending; answers whether it was dead.
    pub async fn delivery_replay(
        &self,
        tenant_id: &str,
        webhook: WebhookId,
        delivery: DeliveryId,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.delivery_replay(tenant_id, webhook, delivery, now, audit).await)
    }

    /// Deletes up to `limit` events recorded before `before`.
    pub async fn events_prune(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        dispatch!(self, s => s.events_prune(before, limit).await)
    }

    /// Items with `seq > after`, in order.
    pub async fn job_items(
        &self,
        tenant_id: &str,
        id: JobId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<JobItem>> {
        dispatch!(self, s => s.job_items(tenant_id, id, after, limit).await)
    }

    /// Atomically hands up to `max_jobs` due jobs to a worker, highest priority first,
    /// FIFO within a priority, each with a fresh lease token.
    pub async fn job_claim(&self, params: &ClaimParams<'_>) -> StoreResult<Vec<ClaimedJob>> {
        dispatch!(self, s => s.job_claim(params).await)
    }

    /// How many jobs are in each state (states with none are left out).
    pub async fn job_counts(
        &self,
        tenant_id: &str,
    ) -> StoreResult<Vec<(ferry_core::JobState, u64)>> {
        dispatch!(self, s => s.job_counts(tenant_id).await)
    }

    /// The earliest `run_at` among waiting jobs of these kinds (to know how long a
    /// long-poll may sleep).
    /// Deletes up to `limit` rate-key starts older than the longest window
    /// (`ferry_core::flow::MAX_RATE_WINDOW_MS`) and push-backs that have ended.
    pub async fn rate_prune(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        dispatch!(self, s => s.rate_prune(now, limit).await)
    }

    /// The earliest time after `now` at which a job of `kinds` that cannot be claimed now
    /// may become claimable by itself: a delayed job falling due, or a rate key opening.
    /// (A freed concurrency slot, new work and resumed kinds wake claims directly.)
    pub async fn job_next_run_at(
        &self,
        tenant_id: &str,
        kinds: &[KindPattern],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        dispatch!(self, s => s.job_next_run_at(tenant_id, kinds, now).await)
    }

    /// The tenant, kind, state and attempt start of those of `ids` that exist (what the
    /// server checks before a worker's report — a lease is good only in its own tenant —
    /// and counts after it).
    pub async fn job_heads(&self, ids: &[JobId]) -> StoreResult<Vec<JobHead>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self, s => s.job_heads(ids).await)
    }

    pub async fn job_heartbeat(
        &self,
        id: JobId,
        lease: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<LeaseStatus> {
        dispatch!(self, s => s.job_heartbeat(id, lease, now).await)
    }

    /// Records progress and partial items; also renews the lease.
    pub async fn job_progress(&self, params: &ProgressParams<'_>) -> StoreResult<LeaseStatus> {
        dispatch!(self, s => s.job_progress(params).await)
    }

    /// Completes a batch in one transaction; one answer per entry, in order. A repeat
    /// with the same lease answers `Ok` without applying anything again. Jobs with `then`
    /// enqueue their children in the same transaction.
    pub async fn job_complete(
        &self,
        entries: &[CompleteParams<'_>],
        now: DateTime<Utc>,
    ) -> StoreResult<Completed> {
        dispatch!(self, s => s.job_complete(entries, now).await)
    }

    /// Ends the running attempt with an error: retry later, dead, or cancelled.
    pub async fn job_fail(&self, params: &FailParams<'_>) -> StoreResult<Job> {
        dispatch!(self, s => s.job_fail(params).await)
    }

    /// Cancels a waiting job, or asks a running one to stop.
    pub async fn job_cancel(
        &self,
        tenant_id: &str,
        id: JobId,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<Job> {
        dispatch!(self, s => s.job_cancel(tenant_id, id, now, audit).await)
    }

    /// Puts a failed or cancelled job back to `pending` with fresh attempts.
    pub async fn job_retry(
        &self,
        tenant_id: &str,
        id: JobId,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<Job> {
        dispatch!(self, s => s.job_retry(tenant_id, id, now, audit).await)
    }

    /// The tenant's jobs at a glance, finished ones counted since `since` (`None`: not
    /// counted, e.g. for the metrics' gauges, which need only the unfinished ones).
    pub async fn job_stats(
        &self,
        tenant_id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<ferry_core::api::JobStats> {
        dispatch!(self, s => s.job_stats(tenant_id, since).await)
    }

    /// The tenant's failed jobs by kind and error code, largest groups first.
    pub async fn job_failed_groups(
        &self,
        tenant_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<ferry_core::api::FailedGroup>> {
        dispatch!(self, s => s.job_failed_groups(tenant_id, limit).await)
    }

    /// Sends up to [`RETRY_GROUP_MAX`] failed jobs of `kind` with error `code` back to
    /// waiting; how many.
    pub async fn job_retry_group(
        &self,
        tenant_id: &str,
        kind: &str,
        code: &str,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<u64> {
        dispatch!(self, s => s.job_retry_group(tenant_id, kind, code, now, audit).await)
    }

    /// Fails running attempts whose lease (rescuer) or deadline (timeouts) passed.
    pub async fn job_fail_overdue(
        &self,
        which: Overdue,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Transition>> {
        dispatch!(self, s => s.job_fail_overdue(which, now, limit).await)
    }

    /// Inserts `n` jobs of `kind` that completed at `at`, in one statement: a long
    /// history for benchmarks (`ferry bench queue --history`).
    pub async fn job_insert_history(
        &self,
        tenant_id: &str,
        kind: &str,
        n: u64,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        dispatch!(self, s => s.job_insert_history(tenant_id, kind, n, at).await)
    }

    /// Stops claims of kinds matching `pattern` (running jobs finish).
    pub async fn kind_pause(
        &self,
        tenant_id: &str,
        pattern: &KindPattern,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<()> {
        dispatch!(self, s => s.kind_pause(tenant_id, pattern, now, audit).await)
    }

    pub async fn kind_resume(
        &self,
        tenant_id: &str,
        pattern: &KindPattern,
        audit: &AuditRow,
    ) -> StoreResult<()> {
        dispatch!(self, s => s.kind_resume(tenant_id, pattern, audit).await)
    }

    /// The paused patterns, sorted.
    /// The running job `id` if `lease` is its current lease (the worker's proof that it
    /// may read or write what the job names).
    pub async fn job_leased(&self, id: JobId, lease: &str) -> StoreResult<Option<LeasedJob>> {
        dispatch!(self, s => s.job_leased(id, lease).await)
    }

    /// Saves (or replaces) a sealed session.
    pub async fn session_put(
        &self,
        tenant_id: &str,
        name: &str,
        sealed: &[u8],
        job: Option<JobId>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        dispatch!(self, s => s.session_put(tenant_id, name, sealed, job, now).await)
    }

    pub async fn session_get(&self, tenant_id: &str, name: &str) -> StoreResult<Option<Vec<u8>>> {
        dispatch!(self, s => s.session_get(tenant_id, name).await)
    }

    pub async fn session_list(
        &self,
        tenant_id: &str,
    ) -> StoreResult<Vec<ferry_core::api::SessionInfo>> {
        dispatch!(self, s => s.session_list(tenant_id).await)
    }

    /// Answers whether there was one.
    pub async fn session_delete(
        &self,
        tenant_id: &str,
        name: &str,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.session_delete(tenant_id, name, audit).await)
    }

    /// Records an artifact stored for a job (replacing one of the same name).
    pub async fn artifact_put(
        &self,
        tenant_id: &str,
        job_id: JobId,
        artifact: &ferry_core::api::ArtifactInfo,
    ) -> StoreResult<()> {
        dispatch!(self, s => s.artifact_put(tenant_id, job_id, artifact).await)
    }

    pub async fn artifact_list(
        &self,
        tenant_id: &str,
        job_id: JobId,
    ) -> StoreResult<Vec<ferry_core::api::ArtifactInfo>> {
        dispatch!(self, s => s.artifact_list(tenant_id, job_id).await)
    }

    /// Artifacts whose job was deleted (by retention), to remove.
    pub async fn artifacts_orphaned(&self, limit: u32) -> StoreResult<Vec<(JobId, String)>> {
        dispatch!(self, s => s.artifacts_orphaned(limit).await)
    }

    pub async fn artifact_delete(&self, job_id: JobId, name: &str) -> StoreResult<()> {
        dispatch!(self, s => s.artifact_delete(job_id, name).await)
    }

    /// Adds a schedule; false when the tenant has one of that name.
    pub async fn schedule_insert(
        &self,
        tenant_id: &str,
        s: &ferry_core::schedule::Schedule,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, st => st.schedule_insert(tenant_id, s, audit).await)
    }

    /// Schedules of `tenant` (all tenants' when `None`) with their tenant, by name.
    pub async fn schedule_list(
        &self,
        tenant_id: Option<&str>,
    ) -> StoreResult<Vec<(String, ferry_core::schedule::Schedule)>> {
        dispatch!(self, s => s.schedule_list(tenant_id).await)
    }

    pub async fn schedule_delete(
        &self,
        tenant_id: &str,
        name: &str,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.schedule_delete(tenant_id, name, audit).await)
    }

    /// Pauses or resumes; a resumed schedule's next tick is `next_at`.
    pub async fn schedule_pause(
        &self,
        tenant_id: &str,
        name: &str,
        paused: bool,
        next_at: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.schedule_pause(tenant_id, name, paused, next_at, audit).await)
    }

    /// Moves a schedule's next tick from `expected` to `next` (compare-and-set).
    pub async fn schedule_advance(
        &self,
        id: ScheduleId,
        expected: DateTime<Utc>,
        next: DateTime<Utc>,
        fired: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.schedule_advance(id, expected, next, fired).await)
    }

    /// The tenant's datasets, by name, each with its last run.
    pub async fn dataset_list(
        &self,
        tenant_id: &str,
    ) -> StoreResult<Vec<ferry_core::dataset::DatasetInfo>> {
        dispatch!(self, s => s.dataset_list(tenant_id).await)
    }

    pub async fn dataset_get(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> StoreResult<Option<ferry_core::dataset::DatasetInfo>> {
        dispatch!(self, s => s.dataset_get(tenant_id, name).await)
    }

    /// Deletes a dataset with its items and runs; answers whether there was one.
    pub async fn dataset_delete(
        &self,
        tenant_id: &str,
        name: &str,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.dataset_delete(tenant_id, name, audit).await)
    }

    /// Items with `seq > after` in order of first appearance; gone ones only when asked.
    pub async fn dataset_items(
        &self,
        tenant_id: &str,
        name: &str,
        after: i64,
        limit: u32,
        include_gone: bool,
    ) -> StoreResult<Vec<ferry_core::dataset::DatasetItem>> {
        dispatch!(self, s => s.dataset_items(tenant_id, name, after, limit, include_gone).await)
    }

    /// The dataset's runs, newest first.
    pub async fn dataset_runs(
        &self,
        tenant_id: &str,
        name: &str,
        limit: u32,
    ) -> StoreResult<Vec<ferry_core::dataset::DatasetRun>> {
        dispatch!(self, s => s.dataset_runs(tenant_id, name, limit).await)
    }

    pub async fn kind_paused(&self, tenant_id: &str) -> StoreResult<Vec<String>> {
        dispatch!(self, s => s.kind_paused(tenant_id).await)
    }

    pub async fn job_promote_scheduled(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        dispatch!(self, s => s.job_promote_scheduled(now, limit).await)
    }

    pub async fn job_delete_finished(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        dispatch!(self, s => s.job_delete_finished(before, limit).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        let sqlite = |p: &str| Ok(DatabaseUrl::Sqlite(p.into()));
        assert_eq!(
            "sqlite:///var/lib/ferry.db".parse(),
            sqlite("/var/lib/ferry.db")
        );
        assert_eq!(
            "sqlite://data/ferry.db?mode=rwc".parse(),
            sqlite("data/ferry.db")
        );
        assert_eq!("sqlite:ferry.db".parse(), sqlite("ferry.db"));
        assert!("sqlite://".parse::<DatabaseUrl>().is_err());
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
        assert_eq!(
            "postgres://u@h/db".parse(),
            Ok(DatabaseUrl::Postgres("postgres://u@h/db".to_owned()))
        );
    }
}
