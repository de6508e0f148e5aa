//! The queue: what the HTTP handlers and the maintenance services call. It wraps the
//! store with the clock, wakes long-polling claims in-process when work appears, and
//! tells waiters when a job reaches a final state.
//!
//! It holds no state of its own that matters for correctness: the database is the
//! truth, and the wake-ups only save polling.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use ferry_core::{
    Clock, FieldError, Job, JobError, JobId, JobItem, JobState, KindPattern, NewJob, TenantId,
    api::{ClaimedJob, LeaseStatus, SubmitJob},
    validate::{self, Claim},
};
use ferry_store::{
    ClaimParams, CompleteParams, FailParams, Inserted, ListParams, Overdue, ProgressParams, Store,
    StoreResult, Transition,
};
use serde_json::Value;
use tokio::sync::{Notify, broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::{ServerConfig, app::Principal};

/// The least time between two announcements of new events to other instances.
const ANNOUNCE_SPACING: Duration = Duration::from_millis(10);

/// Shared by every handler and service of one server.
#[derive(Debug)]
pub struct Queue {
    store: Store,
    clock: Arc<dyn Clock>,
    config: ServerConfig,
    /// Woken whenever claimable (or soon-claimable) work may have appeared, here or (on
    /// PostgreSQL) on another instance.
    work_available: Arc<Notify>,
    /// Bumped whenever new events may be in the record (a write here, or news from another
    /// instance); event streams wait on it.
    events_bell: Arc<watch::Sender<u64>>,
    /// Holds a permit while other instances have not yet been told of a write here.
    events_unsent: Arc<Notify>,
    /// The record's newest stretch, shared by live streams (started by the first).
    event_tail: tokio::sync::OnceCell<Arc<crate::event_tail::EventTail>>,
    /// Whether this instance runs the maintenance services (see `services::Leader`).
    leader: std::sync::atomic::AtomicBool,
    /// Ids of jobs that just reached a final state.
    finished: broadcast::Sender<JobId>,
    /// Completions reported at the same time, written together.
    completions: Arc<crate::group_commit::GroupCommit>,
    /// Claims sleeping until work arrives (see [`Queue::waiting_claims`]).
    waiting_claims: std::sync::atomic::AtomicUsize,
    /// Places for open event streams.
    stream_slots: Arc<crate::stream_slots::StreamSlots>,
    /// Hashes API keys (derived from the sealing key).
    key_hasher: crate::app::KeyHasher,
    /// Keys looked up recently.
    key_cache: crate::app::KeyCache,
    quota_state: crate::app::QuotaState,
    /// Tenants' egress policies as last read.
    egress_book: crate::app::EgressBook,
    /// When this instance last recorded each worker.
    worker_book: crate::app::WorkerBook,
    /// What `GET /metrics` exposes.
    metrics: crate::metrics::Metrics,
    /// Wrong credentials per client address.
    auth_failures: crate::auth_failures::AuthFailures,
    shutdown: CancellationToken,
}

impl Queue {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
        shutdown: CancellationToken,
    ) -> Self {
        let (finished, _) = broadcast::channel(4096);
        let stream_slots = crate::stream_slots::StreamSlots::new(
            config.max_streams_per_client,
            config.max_streams,
        );
        let key_hasher = crate::app::KeyHasher::new(&config.sealing_key);
        let auth_failures = crate::auth_failures::AuthFailures::new(
            config.max_auth_failures_per_minute,
            Duration::from_secs(60),
        );
        Self {
            store,
            clock,
            config,
            key_hasher,
            key_cache: crate::app::KeyCache::default(),
            quota_state: crate::app::QuotaState::default(),
            egress_book: crate::app::EgressBook::default(),
            worker_book: crate::app::WorkerBook::default(),
            metrics: crate::metrics::Metrics::default(),
            auth_failures,
            work_available: Arc::new(Notify::new()),
            events_bell: Arc::new(watch::channel(0).0),
            events_unsent: Arc::new(Notify::new()),
            event_tail: tokio::sync::OnceCell::new(),
            leader: std::sync::atomic::AtomicBool::new(false),
            finished,
            completions: Default::default(),
            waiting_claims: std::sync::atomic::AtomicUsize::new(0),
            stream_slots,
            shutdown,
        }
    }

    /// Places for open event streams, bounded per client and in all.
    pub(crate) fn stream_slots(&self) -> &Arc<crate::stream_slots::StreamSlots> {
        &self.stream_slots
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    pub(crate) fn key_hasher(&self) -> &crate::app::KeyHasher {
        &self.key_hasher
    }

    pub(crate) fn key_cache(&self) -> &crate::app::KeyCache {
        &self.key_cache
    }

    /// Wakes long-polling claims here (new work is waiting).
    pub(crate) fn wake_claims(&self) {
        self.work_available.notify_waiters();
    }

    pub(crate) fn quota_state(&self) -> &crate::app::QuotaState {
        &self.quota_state
    }

    pub(crate) fn egress_book(&self) -> &crate::app::EgressBook {
        &self.egress_book
    }

    pub(crate) fn worker_book(&self) -> &crate::app::WorkerBook {
        &self.worker_book
    }

    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    pub(crate) fn auth_failures(&self) -> &crate::auth_failures::AuthFailures {
        &self.auth_failures
    }

    /// Whether the database answers (`GET /healthz`).
    pub async fn ping(&self) -> StoreResult<()> {
        self.store.ping().await
    }

    /// The newest event's id: where a reader that wants only what comes next starts.
    pub async fn events_head(&self) -> StoreResult<i64> {
        self.store.events_head().await
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The wake-up long-polls wait on (fed by other instances on PostgreSQL).
    pub fn work_signal(&self) -> Arc<Notify> {
        self.work_available.clone()
    }

    /// New events may have been written through this instance: wake its event streams,
    /// and (on PostgreSQL) tell the others.
    pub fn ring_events(&self) {
        self.events_bell.send_modify(|n| *n = n.wrapping_add(1));
        self.events_unsent.notify_one();
    }

    /// What event streams wait on.
    pub fn events_bell(&self) -> watch::Receiver<u64> {
        self.events_bell.subscribe()
    }

    /// Sends this instance's writes to the other instances' event streams, until `stop`
    /// (PostgreSQL; a no-op on SQLite, where there are no others): one NOTIFY for however
    /// many writes happened meanwhile, at most one per `ANNOUNCE_SPACING`, so a busy
    /// instance costs the database a hundred tiny transactions a second at most.
    pub async fn announce_events(&self, stop: CancellationToken) {
        if !self.store.is_shared() {
            return;
        }
        loop {
            tokio::select! {
                _ = self.events_unsent.notified() => {}
                _ = stop.cancelled() => return,
            }
            if let Err(e) = self.store.notify_events().await {
                tracing::debug!(error = %e, "could not tell other instances of new events");
            }
            tokio::select! {
                _ = tokio::time::sleep(ANNOUNCE_SPACING) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// The record's newest stretch, read once for every live stream of this instance.
    pub(crate) async fn event_tail(&self) -> StoreResult<Arc<crate::event_tail::EventTail>> {
        self.event_tail
            .get_or_try_init(|| {
                crate::event_tail::EventTail::start(
                    self.store.clone(),
                    self.config.tenant.clone(),
                    self.events_bell(),
                    self.config.event_poll_interval,
                    self.shutdown.clone(),
                )
            })
            .await
            .cloned()
    }

    pub(crate) fn events_sender(&self) -> Arc<watch::Sender<u64>> {
        self.events_bell.clone()
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_leader(&self, leads: bool) -> bool {
        self.leader
            .swap(leads, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Validates specs (naming each bad field of a batch by its path under `jobs[i]`).
    /// Recipes compile their regexes, which can take a while: specs with one are checked
    /// on a blocking thread, so a heavy submit never stalls the runtime (health checks,
    /// leases, streams).
    pub async fn validate(
        &self,
        tenant: &TenantId,
        specs: Vec<SubmitJob>,
        batch: bool,
    ) -> Result<Vec<NewJob>, Vec<FieldError>> {
        let now = self.now();
        let defaults = self.config.job_defaults.clone();
        let compiles = specs.iter().any(runs_recipe);
        let tenant = tenant.clone();
        let check = move || validate_all(&tenant, specs, &defaults, now, batch);
        if !compiles {
            return check();
        }
        match tokio::task::spawn_blocking(check).await {
            Ok(checked) => checked,
            Err(e) => Err(vec![FieldError::new(
                "",
                format!("the job spec could not be checked: {e}"),
            )]),
        }
    }

    /// Runs a store operation of the job path, its duration counted as `op`
    /// (`ferry_store_operation_duration_seconds`).
    async fn timed<T>(&self, op: &str, call: impl std::future::Future<Output = T>) -> T {
        let started = std::time::Instant::now();
        let out = call.await;
        self.metrics.store_op(op, started.elapsed());
        out
    }

    pub async fn submit(&self, jobs: &[NewJob]) -> StoreResult<Vec<Inserted>> {
        let created = self
            .timed("insert", self.store.job_insert(jobs, self.now()))
            .await?;
        self.work_available.notify_waiters();
        Ok(created)
    }

    pub async fn get(&self, tenant_id: &str, id: JobId) -> StoreResult<Job> {
        self.store.job_get(tenant_id, id).await
    }

    pub async fn list(&self, params: &ListParams) -> StoreResult<Vec<Job>> {
        self.store.job_list(params).await
    }

    pub async fn items(
        &self,
        tenant_id: &str,
        id: JobId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<JobItem>> {
        self.store.job_items(tenant_id, id, after, limit).await
    }

    pub async fn cancel(&self, who: &Principal, id: JobId) -> StoreResult<Job> {
        let now = self.now();
        let audit = who.audit(now, "job.cancel", format!("job:{id}"));
        let job = self.store.job_cancel(&who.tenant, id, now, &audit).await?;
        if job.status.is_final() {
            let _ = self.finished.send(id);
        }
        Ok(job)
    }

    /// Creates a batch: one job per item, all or none, admitted under the tenant's quotas,
    /// in one `submit` span continuing `trace` (the caller's `traceparent`).
    pub async fn create_batch(
        &self,
        who: &Principal,
        kind: &str,
        labels: std::collections::BTreeMap<String, String>,
        mut jobs: Vec<NewJob>,
        trace: Option<&ferry_core::TraceParent>,
    ) -> crate::app::AppResult<ferry_core::api::BatchCreated> {
        use tracing::Instrument;
        let (span, kept) = crate::traces::submit_span(who.tenant.as_str(), jobs.len(), trace);
        for job in &mut jobs {
            job.traceparent = kept.clone();
        }
        self.insert_batch(who, kind, labels, jobs)
            .instrument(span)
            .await
    }

    async fn insert_batch(
        &self,
        who: &Principal,
        kind: &str,
        labels: std::collections::BTreeMap<String, String>,
        mut jobs: Vec<NewJob>,
    ) -> crate::app::AppResult<ferry_core::api::BatchCreated> {
        self.admit(who, jobs.len()).await?;
        let batch_id = ferry_core::BatchId::new();
        for (i, job) in jobs.iter_mut().enumerate() {
            job.batch = Some((batch_id, i as u32));
        }
        let batch = ferry_store::NewBatch {
            id: batch_id,
            tenant_id: who.tenant.to_string(),
            kind: kind.to_owned(),
            labels,
        };
        self.store.batch_insert(&batch, &jobs, self.now()).await?;
        self.work_available.notify_waiters();
        Ok(ferry_core::api::BatchCreated {
            batch_id,
            total: jobs.len() as u64,
        })
    }

    pub async fn batch(
        &self,
        tenant_id: &str,
        id: ferry_core::BatchId,
    ) -> StoreResult<ferry_core::api::Batch> {
        self.store.batch_get(tenant_id, id).await
    }

    /// The tenant's batches with their live progress, newest first (older than `before`).
    pub async fn batches(
        &self,
        tenant_id: &str,
        before: Option<ferry_core::BatchId>,
        limit: u32,
    ) -> StoreResult<Vec<ferry_core::api::Batch>> {
        self.store.batch_list(tenant_id, before, limit).await
    }

    pub async fn batch_results(
        &self,
        tenant_id: &str,
        id: ferry_core::BatchId,
        after: Option<(i64, JobId)>,
        limit: u32,
    ) -> StoreResult<Vec<(i64, ferry_core::api::BatchResult)>> {
        self.store.batch_results(tenant_id, id, after, limit).await
    }

    pub async fn cancel_batch(
        &self,
        who: &Principal,
        id: ferry_core::BatchId,
    ) -> StoreResult<ferry_core::api::Batch> {
        let now = self.now();
        let audit = who.audit(now, "batch.cancel", format!("batch:{id}"));
        self.store.batch_cancel(&who.tenant, id, now, &audit).await
    }

    pub async fn pause(&self, who: &Principal, pattern: &KindPattern) -> StoreResult<Vec<String>> {
        let now = self.now();
        let audit = who.audit(now, "kind.pause", format!("kind:{pattern}"));
        self.store
            .kind_pause(&who.tenant, pattern, now, &audit)
            .await?;
        self.store.kind_paused(&who.tenant).await
    }

    pub async fn resume(&self, who: &Principal, pattern: &KindPattern) -> StoreResult<Vec<String>> {
        let audit = who.audit(self.now(), "kind.resume", format!("kind:{pattern}"));
        self.store.kind_resume(&who.tenant, pattern, &audit).await?;
        self.work_available.notify_waiters();
        self.store.kind_paused(&who.tenant).await
    }

    pub async fn paused(&self, tenant_id: &str) -> StoreResult<Vec<String>> {
        self.store.kind_paused(tenant_id).await
    }

    pub async fn retry(&self, who: &Principal, id: JobId) -> StoreResult<Job> {
        let now = self.now();
        let audit = who.audit(now, "job.retry", format!("job:{id}"));
        let job = self.store.job_retry(&who.tenant, id, now, &audit).await?;
        self.work_available.notify_waiters();
        Ok(job)
    }

    /// Ids of jobs as they reach a final state (a receiver that falls behind is told how
    /// many it missed).
    pub fn subscribe_finished(&self) -> broadcast::Receiver<JobId> {
        self.finished.subscribe()
    }

    /// Waits until `id` is final or `timeout` passes; answers the job as it is then.
    pub async fn wait_final(
        &self,
        tenant_id: &str,
        id: JobId,
        timeout: Duration,
    ) -> StoreResult<Job> {
        let mut finished = self.finished.subscribe();
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let job = self.get(tenant_id, id).await?;
            if job.status.is_final() || tokio::time::Instant::now() >= until {
                return Ok(job);
            }
            // Re-read on our job's news, on a missed message, or every second anyway.
            let recheck = tokio::time::sleep_until(
                until.min(tokio::time::Instant::now() + Duration::from_secs(1)),
            );
            tokio::pin!(recheck);
            loop {
                tokio::select! {
                    msg = finished.recv() => match msg {
                        Ok(done) if done != id => continue,
                        _ => break,
                    },
                    _ = &mut recheck => break,
                    _ = self.shutdown.cancelled() => return self.get(tenant_id, id).await,
                }
            }
        }
    }

    /// Claims jobs for a worker, long-polling up to `claim.wait_ms` when none is due.
    pub async fn claim(&self, tenant_id: &str, claim: &Claim) -> StoreResult<Vec<ClaimedJob>> {
        let until = tokio::time::Instant::now() + Duration::from_millis(claim.wait_ms);
        loop {
            // Register for wake-ups before looking, so work inserted between the look
            // and the wait still wakes us.
            let notified = self.work_available.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.now();
            let params = ClaimParams {
                tenant_id,
                worker_id: &claim.worker_id,
                kinds: &claim.kinds,
                max_jobs: claim.max_jobs,
                lease_ms: claim.lease_ms,
                now,
            };
            let jobs = self.timed("claim", self.store.job_claim(&params)).await?;
            if !jobs.is_empty()
                || tokio::time::Instant::now() >= until
                || self.shutdown.is_cancelled()
            {
                return Ok(jobs);
            }
            // Sleep until the earliest delayed job of these kinds is due, if that is sooner.
            // On a shared database also re-check now and then: a NOTIFY can be missed while
            // the listener reconnects.
            let mut wake = until;
            if self.store.is_shared() {
                wake = wake.min(tokio::time::Instant::now() + self.config.shared_poll_interval);
            }
            // (A due job that was not claimed cannot be claimed now: wait for news instead.)
            if let Some(next) = self
                .store
                .job_next_run_at(tenant_id, &claim.kinds, now)
                .await?
                && next > now
            {
                let in_ms = (next - now).num_milliseconds().max(0) as u64;
                wake = wake.min(tokio::time::Instant::now() + Duration::from_millis(in_ms));
            }
            let _waiting = Waiting::new(&self.waiting_claims);
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(wake) => {}
                _ = self.shutdown.cancelled() => return Ok(Vec::new()),
            }
        }
    }

    /// Claims waiting for work now (long-polls that found nothing and sleep).
    pub fn waiting_claims(&self) -> usize {
        self.waiting_claims
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub async fn heartbeat(&self, id: JobId, lease: &str) -> StoreResult<LeaseStatus> {
        self.timed("heartbeat", self.store.job_heartbeat(id, lease, self.now()))
            .await
    }

    pub async fn progress(&self, params: ProgressParams<'_>) -> StoreResult<LeaseStatus> {
        let params = ProgressParams {
            now: self.now(),
            ..params
        };
        self.timed("progress", self.store.job_progress(&params))
            .await
    }

    pub async fn complete(
        &self,
        entries: &[CompleteParams<'_>],
    ) -> StoreResult<Vec<StoreResult<()>>> {
        // PostgreSQL writes reports side by side, on connections of its own, and commits
        // them as a group itself: a report there is written at once. (Taking its
        // reports one group at a time halved its drain.)
        if self.store.is_shared() {
            let completed = self
                .timed("complete", self.store.job_complete(entries, self.now()))
                .await?;
            return Ok(self.completed(entries, completed.answers));
        }
        // SQLite writes one statement at a time anyway: a report is written with the
        // ones other requests sent meanwhile (the time recorded includes the wait).
        let owned = entries
            .iter()
            .map(|e| crate::group_commit::Entry {
                id: e.id,
                lease: e.lease.to_owned(),
                result: e.result.clone(),
            })
            .collect();
        let answers = self
            .timed(
                "complete",
                self.completions.complete(&self.store, &self.clock, owned),
            )
            .await?;
        Ok(self.completed(entries, answers))
    }

    /// After completions were written: the answers, and the news told.
    fn completed(
        &self,
        entries: &[CompleteParams<'_>],
        answers: Vec<StoreResult<()>>,
    ) -> Vec<StoreResult<()>> {
        // Chained jobs may have been enqueued, and finished jobs free their concurrency
        // keys' slots: waiting claims look again.
        self.work_available.notify_waiters();
        for (entry, answer) in entries.iter().zip(&answers) {
            if answer.is_ok() {
                let _ = self.finished.send(entry.id);
            }
        }
        answers
    }

    pub async fn complete_one(&self, id: JobId, lease: &str, result: &Value) -> StoreResult<()> {
        let mut answers = self
            .complete(&[CompleteParams { id, lease, result }])
            .await?;
        answers.pop().unwrap_or(Ok(()))
    }

    pub async fn fail(
        &self,
        id: JobId,
        lease: &str,
        error: JobError,
        retry_after_ms: Option<u64>,
    ) -> StoreResult<Job> {
        let params = FailParams {
            id,
            lease,
            error,
            retry_after_ms,
            now: self.now(),
        };
        let job = self.timed("fail", self.store.job_fail(&params)).await?;
        self.announce(id, job.status);
        Ok(job)
    }

    /// One maintenance pass over overdue attempts; bounded batches until none is left.
    pub async fn fail_overdue(&self, which: Overdue, batch: u32) -> StoreResult<Vec<Transition>> {
        let mut all = Vec::new();
        loop {
            let done = self
                .store
                .job_fail_overdue(which, self.now(), batch)
                .await?;
            let n = done.len();
            for t in &done {
                self.announce(t.id, t.to);
            }
            let reason = match which {
                Overdue::Lease => "lease",
                Overdue::Deadline => "deadline",
            };
            self.metrics.rescued(reason, n);
            all.extend(done);
            if n < batch as usize {
                return Ok(all);
            }
        }
    }

    pub async fn promote_scheduled(&self, batch: u32) -> StoreResult<u64> {
        let total = in_batches(batch, || {
            self.store.job_promote_scheduled(self.now(), batch)
        })
        .await?;
        if total > 0 {
            self.work_available.notify_waiters();
        }
        Ok(total)
    }

    pub async fn delete_finished(&self, before: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
        in_batches(batch, || self.store.job_delete_finished(before, batch)).await
    }

    /// A job's state changes, oldest first (its attempt history).
    pub async fn job_events(
        &self,
        tenant_id: &str,
        id: JobId,
        limit: u32,
    ) -> StoreResult<Vec<ferry_core::api::Event>> {
        self.store.job_events(tenant_id, id, limit).await
    }

    /// One read of the event record (at most `ferry_store::EVENTS_SCAN` events scanned):
    /// the matching events and where to resume, past every event scanned.
    pub async fn events(
        &self,
        tenant_id: &str,
        filter: &ferry_store::EventFilter,
        after: i64,
        limit: u32,
    ) -> StoreResult<ferry_core::api::EventPage> {
        self.store
            .events_read(tenant_id, filter, after, limit, ferry_store::EVENTS_SCAN)
            .await
    }

    /// Removes the artifacts of jobs retention deleted: the files first, then their index
    /// rows (a crash between leaves a row to retry, never a file nobody can find).
    pub async fn prune_artifacts(&self, batch: u32) -> StoreResult<u64> {
        let Some(objects) = self.config.artifacts.clone() else {
            return Ok(0);
        };
        let orphans = self.store.artifacts_orphaned(batch).await?;
        let mut removed = 0;
        for (job, name) in orphans {
            match object_store::ObjectStoreExt::delete(&*objects, &artifact_path(job, &name)).await
            {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(job_id = %job, artifact = %name, error = %e, "cannot remove an artifact");
                    continue;
                }
            }
            self.store.artifact_delete(job, &name).await?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Cancelled when the server begins to shut down (long-lived answers end then).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub async fn prune_events(&self, before: DateTime<Utc>, batch: u32) -> StoreResult<u64> {
        in_batches(batch, || self.store.events_prune(before, batch)).await
    }

    pub async fn prune_rate_keys(&self, batch: u32) -> StoreResult<u64> {
        in_batches(batch, || self.store.rate_prune(self.now(), batch)).await
    }

    fn announce(&self, id: JobId, status: JobState) {
        if status.is_final() {
            let _ = self.finished.send(id);
        }
        // A retry was scheduled (long-polls recompute how long to sleep), or a
        // concurrency slot was freed.
        self.work_available.notify_waiters();
    }
}

/// Counts one sleeping claim for as long as it lives.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Whether `spec` or a job it chains to is a browser recipe.
fn runs_recipe(spec: &SubmitJob) -> bool {
    spec.kind == ferry_core::recipe::BROWSER_RUN || spec.then.iter().flatten().any(runs_recipe)
}

fn validate_all(
    tenant: &TenantId,
    specs: Vec<SubmitJob>,
    defaults: &validate::JobDefaults,
    now: DateTime<Utc>,
    batch: bool,
) -> Result<Vec<NewJob>, Vec<FieldError>> {
    let mut jobs = Vec::with_capacity(specs.len());
    let mut errors = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let prefix = if batch {
            format!("jobs[{i}]")
        } else {
            String::new()
        };
        match validate::new_job(tenant, spec, defaults, now, &prefix) {
            Ok(job) => jobs.push(job),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(jobs)
    } else {
        Err(errors)
    }
}

/// Runs a bounded maintenance step until a pass does less than `batch` rows; answers the
/// total. Each pass is its own short transaction, so maintenance never holds long locks.
async fn in_batches<F, Fut>(batch: u32, mut pass: F) -> StoreResult<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<u64>>,
{
    let mut total = 0;
    loop {
        let n = pass().await?;
        total += n;
        if n < u64::from(batch) {
            return Ok(total);
        }
    }
}

/// Where an artifact's bytes live in the artifact store.
pub(crate) fn artifact_path(job: JobId, name: &str) -> object_store::path::Path {
    object_store::path::Path::from(format!("jobs/{job}/{name}"))
}
