//! The PostgreSQL backend: several `ferry serve` instances share one database. Claims
//! are one `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED LIMIT n)`; batches go through
//! `unnest` so one prepared statement serves every batch size; failures lock their row;
//! `LISTEN ferry_work` wakes long-polls on every instance; an advisory lock elects the
//! one instance that runs maintenance.
//!
//! Every state change is a compare-and-set on `(id, lease_token, status)`, as on SQLite.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use ferry_core::{
    Backoff, BatchId, DeliveryId, FailureOutcome, Job, JobError, JobId, JobItem, JobState,
    KindPattern, NewJob, ScheduleId, WebhookId,
    api::{Batch, BatchProgress, BatchResult, ClaimedJob, LeaseStatus},
    retry::{FailedAttempt, jitter_unit},
};
use serde_json::Value;
use sqlx::{
    PgConnection, Postgres, QueryBuilder, Row,
    postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow},
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use ferry_core::api::{ArtifactInfo, DeliveryInfo, SessionInfo};
use ferry_core::schedule::Schedule;

mod datasets;
mod leader;

pub use leader::LeaderSession;

use crate::{
    ClaimParams, CompleteParams, Completed, DeliveryOutcome, DueDelivery, Entity, EventFilter,
    FailParams, Inserted, LeasedJob, ListParams, NewBatch, Overdue, ProgressParams, StoreError,
    StoreResult, Transition, WebhookRow, migrate,
    shared::{self, LeaseRow},
};

fn event_row(row: &PgRow) -> StoreResult<ferry_core::api::Event> {
    Ok(ferry_core::api::Event {
        id: row.try_get("id")?,
        event_type: row.try_get("type")?,
        job_id: row
            .try_get::<Option<Uuid>, _>("job_id")?
            .map(JobId::from_uuid),
        kind: row.try_get("kind")?,
        attempt: row.try_get::<Option<i32>, _>("attempt")?.map(|a| a as u32),
        data: row.try_get("data")?,
        at: from_ms(row.try_get("at")?)?,
    })
}

/// Advisory lock keys (arbitrary constants, "ferry" in ASCII plus a purpose).
const MIGRATION_LOCK: i64 = 0x6665_7272_7901;
const LEADER_LOCK: i64 = 0x6665_7272_7902;
/// Held (per transaction) by claims that admit keyed jobs: admissions run one after
/// another on every instance, each seeing the jobs the previous ones started.
/// A push-back takes it too, so it lands wholly before or after any admission.
/// (Spelled out in decimal in KEYED_CLAIM_BEGIN; a test keeps the two equal.)
const KEYED_CLAIM_LOCK: i64 = 0x6665_7272_7903;
/// Begins a keyed claim's transaction and takes KEYED_CLAIM_LOCK in one round trip.
///
/// The commit does not wait for its WAL flush (`synchronous_commit = off`): the lock is
/// released at commit, so a flush inside it would serialize every keyed claim behind a
/// disk write. A claim lost in a database crash leaves its job waiting, to be claimed
/// again — what an expired lease does anyway — and a later transaction that saw the claim
/// flushes it with its own WAL.
const KEYED_CLAIM_BEGIN: &str =
    "BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_advisory_xact_lock(112585897834755)";
/// The channel the `jobs_notify_work` trigger notifies.
const WORK_CHANNEL: &str = "ferry_work";
/// The channel instances notify after writing events (see `notify_events`).
const EVENTS_CHANNEL: &str = "ferry_events";

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    keyed_hint: shared::KeyedHint,
}

/// The columns [`job_from_row`] reads.
macro_rules! job_columns {
    () => {
        "id, kind, status, payload, labels, priority, attempt, max_attempts, timeout_ms, \
         backoff_base_ms, backoff_max_ms, run_at, created_at, updated_at, started_at, finished_at, \
         worker_id, lease_expires_at, deadline_at, cancel_requested, progress, result, error, \
         dedupe_key, parent_id, concurrency_key, concurrency_limit, rate_key, rate_interval_ms, \
         rate_max, rate_per_ms, output, input"
    };
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("bad time {ms}")))
}

fn opt_from_ms(ms: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    ms.map(from_ms).transpose()
}

fn from_json<T: serde::de::DeserializeOwned>(value: Option<Value>) -> StoreResult<Option<T>> {
    value
        .map(|v| {
            serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("bad json: {e}")))
        })
        .transpose()
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn parse_state(text: &str) -> StoreResult<JobState> {
    text.parse()
        .map_err(|e: ferry_core::state::ParseJobStateError| StoreError::Corrupt(e.to_string()))
}

fn job_from_row(row: &PgRow) -> StoreResult<Job> {
    let status: String = row.try_get("status")?;
    let (concurrency, rate_limit) = shared::FlowColumns {
        concurrency_key: row.try_get("concurrency_key")?,
        concurrency_limit: row
            .try_get::<Option<i32>, _>("concurrency_limit")?
            .map(i64::from),
        rate_key: row.try_get("rate_key")?,
        rate_interval_ms: row.try_get("rate_interval_ms")?,
        rate_max: row.try_get::<Option<i32>, _>("rate_max")?.map(i64::from),
        rate_per_ms: row.try_get("rate_per_ms")?,
    }
    .split();
    Ok(Job {
        id: row.try_get::<Uuid, _>("id")?.into(),
        kind: row.try_get("kind")?,
        status: parse_state(&status)?,
        payload: row.try_get("payload")?,
        labels: from_json(Some(row.try_get("labels")?))?.unwrap_or_default(),
        priority: row.try_get("priority")?,
        attempt: row.try_get::<i32, _>("attempt")? as u32,
        max_attempts: row.try_get::<i32, _>("max_attempts")? as u32,
        timeout_ms: row.try_get::<i64, _>("timeout_ms")? as u64,
        backoff: Backoff {
            base_ms: row.try_get::<i64, _>("backoff_base_ms")? as u64,
            max_ms: row.try_get::<i64, _>("backoff_max_ms")? as u64,
        },
        run_at: from_ms(row.try_get("run_at")?)?,
        created_at: from_ms(row.try_get("created_at")?)?,
        updated_at: from_ms(row.try_get("updated_at")?)?,
        started_at: opt_from_ms(row.try_get("started_at")?)?,
        finished_at: opt_from_ms(row.try_get("finished_at")?)?,
        worker_id: row.try_get("worker_id")?,
        lease_expires_at: opt_from_ms(row.try_get("lease_expires_at")?)?,
        deadline_at: opt_from_ms(row.try_get("deadline_at")?)?,
        cancel_requested: row.try_get("cancel_requested")?,
        progress: from_json(row.try_get("progress")?)?,
        result: row.try_get("result")?,
        error: from_json(row.try_get("error")?)?,
        dedupe_key: row.try_get("dedupe_key")?,
        parent_id: row
            .try_get::<Option<Uuid>, _>("parent_id")?
            .map(JobId::from_uuid),
        input: row.try_get("input")?,
        concurrency,
        rate_limit,
        output: from_json(row.try_get("output")?)?,
    })
}

/// Appends `AND <kind is not paused>`.
fn push_not_paused(q: &mut QueryBuilder<Postgres>, tenant_id: &str) {
    q.push(" AND NOT EXISTS (SELECT 1 FROM ferry.paused_kinds pk WHERE pk.tenant_id = ")
        .push_bind(tenant_id.to_owned())
        .push(
            " AND CASE WHEN pk.exact THEN kind = pk.prefix ELSE starts_with(kind, pk.prefix) END)",
        );
}

/// Appends `AND (<kind matches one of patterns>)`; nothing when a pattern is `*`.
fn push_kind_filter(q: &mut QueryBuilder<Postgres>, kinds: &[KindPattern]) {
    if kinds.is_empty() || kinds.iter().any(|k| matches!(k, KindPattern::Any)) {
        return;
    }
    let exact: Vec<String> = kinds
        .iter()
        .filter_map(|k| match k {
            KindPattern::Exact(kind) => Some(kind.as_str().to_owned()),
            _ => None,
        })
        .collect();
    let prefixes: Vec<String> = kinds
        .iter()
        .filter_map(|k| match k {
            KindPattern::Prefix(prefix) => Some(prefix.clone()),
            _ => None,
        })
        .collect();
    // Two array parameters whatever the number of patterns: one statement to cache.
    q.push(" AND (kind = ANY(")
        .push_bind(exact)
        .push("::text[]) OR EXISTS (SELECT 1 FROM unnest(")
        .push_bind(prefixes)
        .push("::text[]) AS pre(prefix) WHERE starts_with(kind, pre.prefix)))");
}

/// Events after the one with id `after`, in (tx, id) order (`after_tx` its transaction;
/// `None` when it was pruned or is 0: by id alone).
fn push_after(q: &mut QueryBuilder<Postgres>, after_tx: Option<i64>, after: i64) {
    match after_tx {
        Some(tx) => {
            q.push(" AND (tx, id) > (")
                .push_bind(tx)
                .push(", ")
                .push_bind(after)
                .push(")");
        }
        None => {
            q.push(" AND id > ").push_bind(after);
        }
    }
}

async fn lease_row(conn: &mut PgConnection, id: JobId) -> StoreResult<LeaseRow> {
    let row = sqlx::query("SELECT status, lease_token FROM ferry.jobs WHERE id = $1")
        .bind(id.as_uuid())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound(Entity::Job))?;
    Ok(LeaseRow {
        status: parse_state(row.try_get("status")?)?,
        lease_token: row.try_get("lease_token")?,
    })
}

async fn lease_lost(conn: &mut PgConnection, id: JobId) -> StoreError {
    match lease_row(conn, id).await {
        Ok(row) => StoreError::LeaseLost { status: row.status },
        Err(e) => e,
    }
}

async fn job_by_id(conn: &mut PgConnection, id: JobId) -> StoreResult<Job> {
    let row = sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        " FROM ferry.jobs WHERE id = $1"
    ))
    .bind(id.as_uuid())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound(Entity::Job))?;
    job_from_row(&row)
}

/// Inserts jobs inside the caller's transaction; see `Store::job_insert`.
async fn insert_jobs(
    conn: &mut PgConnection,
    all: &[NewJob],
    now: DateTime<Utc>,
) -> StoreResult<Vec<Inserted>> {
    // A dedupe key with a TTL is also held by a job that finished less than TTL ago.
    let mut held = std::collections::HashMap::new();
    for job in all {
        let (Some(key), Some(ttl)) = (&job.dedupe_key, job.dedupe_ttl_ms) else {
            continue;
        };
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry.jobs WHERE tenant_id = $1 AND dedupe_key = $2 \
             AND (finished_at IS NULL OR finished_at >= $3) ORDER BY id DESC LIMIT 1"
        ))
        .bind(&job.tenant_id)
        .bind(key)
        .bind(ms(now).saturating_sub(ttl as i64))
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            held.insert(job.id, job_from_row(&row)?);
        }
    }
    let jobs: Vec<&NewJob> = all.iter().filter(|j| !held.contains_key(&j.id)).collect();
    let mut ids = Vec::with_capacity(jobs.len());
    let mut tenants = Vec::with_capacity(jobs.len());
    let mut kinds = Vec::with_capacity(jobs.len());
    let mut statuses = Vec::with_capacity(jobs.len());
    let mut payloads = Vec::with_capacity(jobs.len());
    let mut labels = Vec::with_capacity(jobs.len());
    let mut priorities = Vec::with_capacity(jobs.len());
    let mut run_ats = Vec::with_capacity(jobs.len());
    let mut attempts = Vec::with_capacity(jobs.len());
    let mut timeouts = Vec::with_capacity(jobs.len());
    let mut bases = Vec::with_capacity(jobs.len());
    let mut maxes = Vec::with_capacity(jobs.len());
    for job in &jobs {
        ids.push(job.id.as_uuid());
        tenants.push(job.tenant_id.clone());
        kinds.push(job.kind.as_str().to_owned());
        statuses.push(job.initial_state(now).as_str().to_owned());
        payloads.push(job.payload.clone());
        labels.push(to_json(&job.labels));
        priorities.push(job.priority);
        run_ats.push(ms(job.run_at));
        attempts.push(job.max_attempts as i32);
        timeouts.push(job.timeout_ms as i64);
        bases.push(job.backoff.base_ms as i64);
        maxes.push(job.backoff.max_ms as i64);
    }
    let dedupe_keys: Vec<Option<String>> = jobs.iter().map(|j| j.dedupe_key.clone()).collect();
    let deduping = dedupe_keys.iter().any(Option::is_some);
    let flow: Vec<shared::FlowColumns> = jobs.iter().map(|j| shared::FlowColumns::of(j)).collect();
    // A duplicate dedupe key is skipped (ON CONFLICT), and answered with the job holding it.
    let rows = sqlx::query(
        "INSERT INTO ferry.jobs (id, tenant_id, kind, status, payload, labels, priority, run_at, \
         max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms, dedupe_key, batch_id, \
         batch_index, then_specs, parent_id, concurrency_key, concurrency_limit, rate_key, \
         rate_interval_ms, rate_max, rate_per_ms, output, input, created_at, updated_at) \
         SELECT *, $18, $18 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], \
         $5::jsonb[], $6::jsonb[], $7::int[], $8::bigint[], $9::int[], $10::bigint[], \
         $11::bigint[], $12::bigint[], $13::text[], $14::uuid[], $15::int[], $16::jsonb[], $17::uuid[], \
         $19::text[], $20::int[], $21::text[], $22::bigint[], $23::int[], $24::bigint[], $25::jsonb[], \
         $26::jsonb[]) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(ids)
    .bind(tenants)
    .bind(kinds)
    .bind(statuses)
    .bind(payloads)
    .bind(labels)
    .bind(priorities)
    .bind(run_ats)
    .bind(attempts)
    .bind(timeouts)
    .bind(bases)
    .bind(maxes)
    .bind(dedupe_keys)
    .bind(
        jobs.iter()
            .map(|j| j.batch.map(|(id, _)| id.as_uuid()))
            .collect::<Vec<_>>(),
    )
    .bind(
        jobs.iter()
            .map(|j| j.batch.map(|(_, index)| index as i32))
            .collect::<Vec<_>>(),
    )
    .bind(jobs.iter().map(|j| (!j.then.is_empty()).then(|| to_json(&j.then))).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.parent_id.map(|id| id.as_uuid())).collect::<Vec<_>>())
    .bind(ms(now))
    .bind(flow.iter().map(|f| f.concurrency_key.clone()).collect::<Vec<_>>())
    .bind(flow.iter().map(|f| f.concurrency_limit.map(|v| v as i32)).collect::<Vec<_>>())
    .bind(flow.iter().map(|f| f.rate_key.clone()).collect::<Vec<_>>())
    .bind(flow.iter().map(|f| f.rate_interval_ms).collect::<Vec<_>>())
    .bind(flow.iter().map(|f| f.rate_max.map(|v| v as i32)).collect::<Vec<_>>())
    .bind(flow.iter().map(|f| f.rate_per_ms).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.output.as_ref().map(to_json)).collect::<Vec<_>>())
    .bind(jobs.iter().map(|j| j.input.clone()).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    let created: std::collections::HashSet<Uuid> = rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(all.len());
    for job in all {
        if let Some(existing) = held.get(&job.id) {
            out.push(Inserted {
                job: existing.clone(),
                created: false,
            });
            continue;
        }
        if !deduping || created.contains(&job.id.as_uuid()) {
            out.push(Inserted {
                job: shared::new_job_row(job, now)?,
                created: true,
            });
            continue;
        }
        // The job that held the key: unfinished, or (another instance's job that finished
        // between our conflict and this read) the newest with the key, which answers as it
        // would have a moment earlier.
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry.jobs WHERE tenant_id = $1 AND dedupe_key = $2 \
             ORDER BY (status IN ('scheduled', 'pending', 'running')) DESC, id DESC LIMIT 1"
        ))
        .bind(&job.tenant_id)
        .bind(&job.dedupe_key)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a dedupe conflict without its job".to_owned()))?;
        out.push(Inserted {
            job: job_from_row(&row)?,
            created: false,
        });
    }
    Ok(out)
}

/// Applies the dataset runs of the jobs among `ids` that have `output` (still running under
/// the entry's lease, locked until commit), in `RunSource::order`: one dataset at a time, in
/// name order, so two completions lock datasets in the same order and never deadlock. A
/// refused run fails its job. Answers the changes to record once the jobs are completed, and
/// the jobs that failed.
async fn apply_runs(
    tx: &mut PgConnection,
    ids: &[Uuid],
    leases: &[String],
    now: DateTime<Utc>,
) -> StoreResult<(
    Vec<(
        crate::datasets::RunSource,
        ferry_core::dataset::DatasetChange,
    )>,
    std::collections::HashSet<JobId>,
)> {
    let rows = sqlx::query(
        "SELECT j.id, j.output, j.tenant_id, j.kind, j.attempt, j.lease_token \
         FROM ferry.jobs j JOIN unnest($1::uuid[], $2::text[]) AS v(id, lease) \
           ON j.id = v.id AND j.lease_token = v.lease \
         WHERE j.status = 'running' AND j.output IS NOT NULL ORDER BY j.id FOR UPDATE OF j",
    )
    .bind(ids)
    .bind(leases)
    .fetch_all(&mut *tx)
    .await?;
    let mut runs = Vec::new();
    for row in &rows {
        let Some(output) = from_json(row.try_get("output")?)? else {
            continue;
        };
        runs.push(crate::datasets::RunSource {
            tenant_id: row.try_get("tenant_id")?,
            job_id: row.try_get::<Uuid, _>("id")?.into(),
            kind: row.try_get("kind")?,
            attempt: i64::from(row.try_get::<i32, _>("attempt")?),
            lease: row.try_get("lease_token")?,
            output,
        });
    }
    runs.sort_by(crate::datasets::RunSource::order);
    let mut changes = Vec::new();
    let mut refused = std::collections::HashSet::new();
    for run in runs {
        match datasets::apply_run(tx, &run, now).await? {
            crate::datasets::Applied::Done(Some(change)) => changes.push((run, change)),
            crate::datasets::Applied::Done(None) => {}
            crate::datasets::Applied::Refused(error) => {
                fail_running(tx, run.job_id, &run.lease, &error, None, now).await?;
                refused.insert(run.job_id);
            }
        }
    }
    Ok((changes, refused))
}

/// Ends the running attempt `(id, lease)` with `error`; `None` when it no longer matched.
async fn fail_running(
    conn: &mut PgConnection,
    id: JobId,
    lease: &str,
    error: &JobError,
    retry_after_ms: Option<u64>,
    now: DateTime<Utc>,
) -> StoreResult<Option<JobState>> {
    let row = sqlx::query(
        "SELECT attempt, max_attempts, backoff_base_ms, backoff_max_ms, cancel_requested, \
         tenant_id, rate_key FROM ferry.jobs WHERE id = $1 AND lease_token = $2 AND status = 'running' FOR UPDATE",
    )
    .bind(id.as_uuid())
    .bind(lease)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let rate_key: Option<String> = row.try_get("rate_key")?;
    if rate_key.is_some() && retry_after_ms.is_some() {
        // A push-back is ordered with admissions: a claim either ran before it (and its
        // start precedes the push-back in the event record) or sees the key held.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEYED_CLAIM_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let failed = FailedAttempt {
        attempt: row.try_get::<i32, _>("attempt")? as u32,
        max_attempts: row.try_get::<i32, _>("max_attempts")? as u32,
        retryable: error.retryable,
        cancel_requested: row.try_get("cancel_requested")?,
        retry_after_ms,
        backoff: Backoff {
            base_ms: row.try_get::<i64, _>("backoff_base_ms")? as u64,
            max_ms: row.try_get::<i64, _>("backoff_max_ms")? as u64,
        },
    };
    let (status, run_at, finished_at) = match failed.outcome(now, jitter_unit()) {
        FailureOutcome::Retry { run_at } => (JobState::Scheduled, Some(ms(run_at)), None),
        FailureOutcome::Dead => (JobState::Failed, None, Some(ms(now))),
        FailureOutcome::Cancelled => (JobState::Cancelled, None, Some(ms(now))),
    };
    let done = sqlx::query(
        "UPDATE ferry.jobs SET status = $1, run_at = coalesce($2, run_at), finished_at = $3, \
         error = $4, lease_expires_at = NULL, updated_at = $5 \
         WHERE id = $6 AND lease_token = $7 AND status = 'running'",
    )
    .bind(status.as_str())
    .bind(run_at)
    .bind(finished_at)
    .bind(to_json(error))
    .bind(ms(now))
    .bind(id.as_uuid())
    .bind(lease)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    // A worker pushing back (a 429 with Retry-After) holds back the whole rate key.
    if let (Some(key), Some(after)) = (rate_key, retry_after_ms) {
        let tenant_id: String = row.try_get("tenant_id")?;
        sqlx::query(
            "INSERT INTO ferry.rate_keys (tenant_id, key, blocked_until) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, key) DO UPDATE \
             SET blocked_until = greatest(ferry.rate_keys.blocked_until, excluded.blocked_until)",
        )
        .bind(tenant_id)
        .bind(key)
        .bind(ms(now).saturating_add(after.min(i64::MAX as u64) as i64))
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(status))
}

impl PostgresStore {
    /// Connects and runs pending migrations (under an advisory lock, so instances that
    /// start together migrate once).
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        migrate_postgres(&pool).await?;
        Ok(Self {
            pool,
            keyed_hint: shared::KeyedHint::default(),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn job_insert(
        &self,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Inserted>> {
        let mut tx = self.pool.begin().await?;
        let out = insert_jobs(&mut tx, jobs, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Inserts a batch and its item jobs in one transaction.
    pub async fn batch_insert(
        &self,
        batch: &NewBatch,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO ferry.batches (id, tenant_id, kind, total, labels, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(batch.id.as_uuid())
        .bind(&batch.tenant_id)
        .bind(&batch.kind)
        .bind(jobs.len() as i32)
        .bind(to_json(&batch.labels))
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        insert_jobs(&mut tx, jobs, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn batch_get(&self, tenant_id: &str, id: BatchId) -> StoreResult<Batch> {
        let row = sqlx::query(
            "SELECT kind, labels, created_at, cancelled_at, total FROM ferry.batches WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id.as_uuid())
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound(Entity::Batch))?;
        let mut progress = BatchProgress {
            total: row.try_get::<i32, _>("total")? as u64,
            ..Default::default()
        };
        let counts = sqlx::query(
            "SELECT status, count(*) AS n FROM ferry.jobs WHERE batch_id = $1 GROUP BY status",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        for c in &counts {
            progress.add(
                parse_state(c.try_get("status")?)?,
                c.try_get::<i64, _>("n")? as u64,
            );
        }
        let cancelled_at = opt_from_ms(row.try_get("cancelled_at")?)?;
        Ok(Batch {
            id,
            kind: row.try_get("kind")?,
            status: Batch::state_of(&progress, cancelled_at.is_some()),
            progress,
            labels: from_json(Some(row.try_get("labels")?))?.unwrap_or_default(),
            created_at: from_ms(row.try_get("created_at")?)?,
            cancelled_at,
        })
    }

    /// Finished items of a batch in commit order, after the position `(finish_tx, id)`.
    /// Only items finished by transactions older than every running one are returned, so an
    /// item that commits late can never land behind a position already handed out.
    pub async fn batch_results(
        &self,
        tenant_id: &str,
        id: BatchId,
        after: Option<(i64, JobId)>,
        limit: u32,
    ) -> StoreResult<Vec<(i64, BatchResult)>> {
        self.batch_get(tenant_id, id).await?;
        let (after_pos, after_id) =
            after.map_or((i64::MIN, Uuid::nil()), |(t, id)| (t, id.as_uuid()));
        let rows = sqlx::query(
            "SELECT id, batch_index, status, result, error, finished_at, finish_tx FROM ferry.jobs \
             WHERE batch_id = $1 AND finished_at IS NOT NULL AND finish_tx IS NOT NULL \
               AND (finish_tx, id) > ($2, $3) \
               AND finish_tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY finish_tx, id LIMIT $4",
        )
        .bind(id.as_uuid())
        .bind(after_pos)
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("finish_tx")?,
                    BatchResult {
                        index: row.try_get::<i32, _>("batch_index")? as u32,
                        job_id: row.try_get::<Uuid, _>("id")?.into(),
                        status: parse_state(row.try_get("status")?)?,
                        result: row.try_get("result")?,
                        error: from_json(row.try_get("error")?)?,
                        finished_at: from_ms(row.try_get("finished_at")?)?,
                    },
                ))
            })
            .collect()
    }

    /// Cancels a batch's waiting items and asks its running ones to stop.
    pub async fn batch_cancel(
        &self,
        tenant_id: &str,
        id: BatchId,
        now: DateTime<Utc>,
    ) -> StoreResult<Batch> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE ferry.batches SET cancelled_at = coalesce(cancelled_at, $1) WHERE id = $2 AND tenant_id = $3",
        )
        .bind(ms(now))
        .bind(id.as_uuid())
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::Batch));
        }
        sqlx::query(
            "UPDATE ferry.jobs SET status = 'cancelled', finished_at = $1, updated_at = $1 \
             WHERE batch_id = $2 AND status IN ('pending', 'scheduled')",
        )
        .bind(ms(now))
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE ferry.jobs SET cancel_requested = true, updated_at = $1 WHERE batch_id = $2 AND status = 'running'",
        )
        .bind(ms(now))
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.batch_get(tenant_id, id).await
    }

    pub async fn job_get(&self, tenant_id: &str, id: JobId) -> StoreResult<Job> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry.jobs WHERE id = $1 AND tenant_id = $2"
        ))
        .bind(id.as_uuid())
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound(Entity::Job))?;
        job_from_row(&row)
    }

    pub async fn job_list(&self, params: &ListParams) -> StoreResult<Vec<Job>> {
        let mut q = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry.jobs WHERE tenant_id = "
        ));
        q.push_bind(params.tenant_id.clone());
        if let Some(status) = params.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(kind) = &params.kind {
            push_kind_filter(&mut q, std::slice::from_ref(kind));
        }
        // All pairs must match: one containment test per pair (the GIN index serves each).
        for (k, v) in &params.labels {
            q.push(" AND labels @> ")
                .push_bind(serde_json::json!({ k: v }));
        }
        if let Some(before) = params.before {
            q.push(" AND id < ").push_bind(before.as_uuid());
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(params.limit as i64);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(job_from_row).collect()
    }

    pub async fn job_items(
        &self,
        tenant_id: &str,
        id: JobId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<JobItem>> {
        self.job_get(tenant_id, id).await?;
        let rows = sqlx::query(
            "SELECT seq, attempt, data, created_at FROM ferry.job_items \
             WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(id.as_uuid())
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(JobItem {
                    seq: row.try_get("seq")?,
                    attempt: row.try_get::<i32, _>("attempt")? as u32,
                    data: row.try_get("data")?,
                    created_at: from_ms(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    pub async fn events_read(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
        after: i64,
        limit: u32,
        scan: u32,
    ) -> StoreResult<ferry_core::api::EventPage> {
        // Where `after` sits in (tx, id) order; an event pruned since: by id alone.
        let after_tx: Option<i64> = if after > 0 {
            sqlx::query_scalar("SELECT tx FROM ferry.events WHERE id = $1")
                .bind(after)
                .fetch_optional(&self.pool)
                .await?
        } else {
            None
        };
        // The last of the next `scan` visible events (index `events_tx`), matching or not.
        // Every transaction below the snapshot's xmin has ended, so no event can enter
        // the range up to it later: moving there is exact.
        let mut window = QueryBuilder::<Postgres>::new(
            "SELECT tx, id FROM (SELECT tx, id FROM ferry.events \
             WHERE tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        );
        push_after(&mut window, after_tx, after);
        window
            .push(" ORDER BY tx, id LIMIT ")
            .push_bind(i64::from(scan.max(limit)))
            .push(") w ORDER BY tx DESC, id DESC LIMIT 1");
        let Some((upper_tx, upper)): Option<(i64, i64)> =
            window.build_query_as().fetch_optional(&self.pool).await?
        else {
            return Ok(ferry_core::api::EventPage {
                events: Vec::new(),
                next_after: after,
            });
        };
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT id, type, job_id, kind, attempt, data, at FROM ferry.events WHERE tenant_id = ",
        );
        q.push_bind(tenant_id.to_owned());
        push_after(&mut q, after_tx, after);
        q.push(" AND (tx, id) <= (")
            .push_bind(upper_tx)
            .push(", ")
            .push_bind(upper)
            .push(")");
        if let Some(job) = filter.job {
            q.push(" AND job_id = ").push_bind(job.as_uuid());
        }
        push_kind_filter(&mut q, &filter.kinds);
        if !filter.types.is_empty() {
            q.push(" AND type = ANY(")
                .push_bind(filter.types.clone())
                .push("::text[])");
        }
        q.push(" ORDER BY tx, id LIMIT ")
            .push_bind(i64::from(limit));
        let rows = q.build().fetch_all(&self.pool).await?;
        let events = rows
            .iter()
            .map(event_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(shared::event_page(events, limit, upper))
    }

    pub async fn event_get(&self, id: i64) -> StoreResult<Option<ferry_core::api::Event>> {
        let row = sqlx::query(
            "SELECT id, type, job_id, kind, attempt, data, at FROM ferry.events WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(event_row).transpose()
    }

    /// The id of the last event readers can see, in (tx, id) order: an event of a
    /// transaction still running is not there yet, and one below it may still commit.
    pub async fn events_head(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT id FROM ferry.events \
             WHERE tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY tx DESC, id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(0))
    }

    pub async fn webhook_insert(&self, w: &WebhookRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ferry.webhooks (id, tenant_id, url, sealed_secret, events, kinds, cursor, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(w.id.as_uuid())
        .bind(&w.tenant_id)
        .bind(&w.url)
        .bind(&w.sealed_secret)
        .bind(serde_json::json!(w.events))
        .bind(serde_json::json!(w.kinds))
        .bind(w.cursor)
        .bind(ms(w.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Webhooks of `tenant` (all tenants' when `None`), oldest first.
    pub async fn webhook_list(&self, tenant_id: Option<&str>) -> StoreResult<Vec<WebhookRow>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, url, sealed_secret, events, kinds, cursor, created_at \
             FROM ferry.webhooks WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WebhookRow {
                    id: row.try_get::<Uuid, _>("id")?.into(),
                    tenant_id: row.try_get("tenant_id")?,
                    url: row.try_get("url")?,
                    sealed_secret: row.try_get("sealed_secret")?,
                    events: from_json(Some(row.try_get("events")?))?.unwrap_or_default(),
                    kinds: from_json(Some(row.try_get("kinds")?))?.unwrap_or_default(),
                    cursor: row.try_get("cursor")?,
                    created_at: from_ms(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    pub async fn webhook_delete(&self, tenant_id: &str, id: WebhookId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM ferry.webhooks WHERE id = $1 AND tenant_id = $2")
            .bind(id.as_uuid())
            .bind(tenant_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Turns events into deliveries and moves the cursor from `from` to `to`, in one
    /// transaction; answers false (and does nothing) if the cursor was moved meanwhile.
    pub async fn webhook_dispatch(
        &self,
        webhook: WebhookId,
        from: i64,
        to: i64,
        events: &[(i64, Option<JobId>)],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let moved =
            sqlx::query("UPDATE ferry.webhooks SET cursor = $1 WHERE id = $2 AND cursor = $3")
                .bind(to)
                .bind(webhook.as_uuid())
                .bind(from)
                .execute(&mut *tx)
                .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        let base: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(seq), 0)::bigint FROM ferry.webhook_deliveries WHERE webhook_id = $1",
        )
        .bind(webhook.as_uuid())
        .fetch_one(&mut *tx)
        .await?;
        let ids: Vec<Uuid> = events.iter().map(|_| JobId::new().as_uuid()).collect();
        let event_ids: Vec<i64> = events.iter().map(|e| e.0).collect();
        let jobs: Vec<Option<Uuid>> = events.iter().map(|e| e.1.map(|j| j.as_uuid())).collect();
        let seqs: Vec<i64> = (0..events.len() as i64).map(|i| base + i + 1).collect();
        sqlx::query(
            "INSERT INTO ferry.webhook_deliveries (id, webhook_id, event_id, job_id, seq, status, next_at, created_at) \
             SELECT d.id, $1, d.event_id, d.job_id, d.seq, 'pending', $6, $6 \
             FROM unnest($2::uuid[], $3::bigint[], $4::uuid[], $5::bigint[]) AS d(id, event_id, job_id, seq) \
             ON CONFLICT (webhook_id, event_id) DO NOTHING",
        )
        .bind(webhook.as_uuid())
        .bind(ids)
        .bind(event_ids)
        .bind(jobs)
        .bind(seqs)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Pending deliveries due by `now`, each the first pending one of its job for its
    /// webhook (so a job's events arrive in order).
    pub async fn deliveries_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>> {
        let rows = sqlx::query(
            "SELECT d.id, d.webhook_id, w.tenant_id, w.url, w.sealed_secret, d.event_id, d.attempts, d.created_at \
             FROM ferry.webhook_deliveries d JOIN ferry.webhooks w ON w.id = d.webhook_id \
             WHERE d.status = 'pending' AND d.next_at <= $1 \
               AND NOT EXISTS (SELECT 1 FROM ferry.webhook_deliveries e WHERE e.webhook_id = d.webhook_id \
                   AND e.job_id IS NOT DISTINCT FROM d.job_id AND e.status = 'pending' AND e.seq < d.seq) \
             ORDER BY d.next_at, d.seq LIMIT $2",
        )
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DueDelivery {
                    id: row.try_get::<Uuid, _>("id")?.into(),
                    webhook_id: row.try_get::<Uuid, _>("webhook_id")?.into(),
                    tenant_id: row.try_get("tenant_id")?,
                    url: row.try_get("url")?,
                    sealed_secret: row.try_get("sealed_secret")?,
                    event_id: row.try_get("event_id")?,
                    attempts: row.try_get::<i32, _>("attempts")? as u32,
                    created_at: from_ms(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    pub async fn delivery_record(&self, id: DeliveryId, o: &DeliveryOutcome) -> StoreResult<()> {
        sqlx::query(
            "UPDATE ferry.webhook_deliveries SET status = $1, attempts = $2, next_at = $3, last_status = $4, \
             last_error = $5, delivered_at = $6 WHERE id = $7 AND status = 'pending'",
        )
        .bind(o.status)
        .bind(o.attempts as i32)
        .bind(ms(o.next_at))
        .bind(o.last_status.map(i32::from))
        .bind(&o.last_error)
        .bind(o.delivered_at.map(ms))
        .bind(id.as_uuid())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A webhook's deliveries, newest first; `None` if there is no such webhook.
    pub async fn delivery_list(
        &self,
        tenant_id: &str,
        webhook: WebhookId,
        limit: u32,
    ) -> StoreResult<Option<Vec<DeliveryInfo>>> {
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM ferry.webhooks WHERE id = $1 AND tenant_id = $2")
                .bind(webhook.as_uuid())
                .bind(tenant_id)
                .fetch_optional(&self.pool)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT id, event_id, status, attempts, next_at, last_status, last_error, created_at, delivered_at \
             FROM ferry.webhook_deliveries WHERE webhook_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(webhook.as_uuid())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeliveryInfo {
                    id: row.try_get::<Uuid, _>("id")?.into(),
                    event_id: row.try_get("event_id")?,
                    status: row.try_get("status")?,
                    attempts: row.try_get::<i32, _>("attempts")? as u32,
                    next_at: from_ms(row.try_get("next_at")?)?,
                    last_status: row
                        .try_get::<Option<i32>, _>("last_status")?
                        .map(|s| s as u16),
                    last_error: row.try_get("last_error")?,
                    created_at: from_ms(row.try_get("created_at")?)?,
                    delivered_at: opt_from_ms(row.try_get("delivered_at")?)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()
            .map(Some)
    }

    /// A dead delivery goes back to pending with fresh attempts; answers whether it was dead.
    pub async fn delivery_replay(
        &self,
        tenant_id: &str,
        webhook: WebhookId,
        delivery: DeliveryId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE ferry.webhook_deliveries SET status = 'pending', attempts = 0, next_at = $1, \
             created_at = $1, last_error = NULL WHERE id = $2 AND webhook_id = $3 AND status = 'dead' \
             AND EXISTS (SELECT 1 FROM ferry.webhooks WHERE id = $3 AND tenant_id = $4)",
        )
        .bind(ms(now))
        .bind(delivery.as_uuid())
        .bind(webhook.as_uuid())
        .bind(tenant_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn events_prune(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM ferry.events WHERE id IN (SELECT id FROM ferry.events WHERE at < $1 \
             ORDER BY at LIMIT $2)",
        )
        .bind(ms(before))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Whether due claimable jobs of `kinds` carry a concurrency or rate key.
    async fn keyed_due(&self, p: &ClaimParams<'_>) -> StoreResult<bool> {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT EXISTS (SELECT 1 FROM ferry.jobs WHERE tenant_id = ",
        );
        q.push_bind(p.tenant_id.to_owned())
            .push(
                " AND status IN ('pending', 'scheduled') \
                 AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL) AND run_at <= ",
            )
            .push_bind(ms(p.now));
        push_kind_filter(&mut q, p.kinds);
        q.push(")");
        Ok(q.build_query_scalar::<bool>().fetch_one(&self.pool).await?)
    }

    pub async fn job_claim(&self, p: &ClaimParams<'_>) -> StoreResult<Vec<ClaimedJob>> {
        let now = ms(p.now);
        // Keyed jobs are admitted against their keys (`shared::push_admitted`) under
        // KEYED_CLAIM_LOCK. Without any due, the plain claim runs, which never takes one.
        let keyed = if self.keyed_hint.recent(now) {
            true
        } else {
            let keyed = self.keyed_due(p).await?;
            self.keyed_hint.record(now, keyed);
            keyed
        };
        let mut q = QueryBuilder::<Postgres>::new("");
        if keyed {
            shared::push_admitted(
                &mut q,
                &shared::POSTGRES,
                p.tenant_id,
                now,
                p.max_jobs,
                |q| {
                    push_kind_filter(q, p.kinds);
                    push_not_paused(q, p.tenant_id);
                },
            );
        }
        q.push("UPDATE ferry.jobs j SET status = 'running', attempt = j.attempt + 1, worker_id = ")
            .push_bind(p.worker_id.to_owned())
            // A job with `then` or `output` gets a lease token marked `c` (see
            // `shared::CHAINED_LEASE`).
            .push(
                ", lease_token = CASE WHEN j.then_specs IS NULL AND j.output IS NULL THEN '' ELSE 'c' END \
                 || replace(gen_random_uuid()::text, '-', ''), lease_ms = ",
            )
            .push_bind(p.lease_ms as i64)
            .push(", lease_expires_at = ")
            .push_bind(now + p.lease_ms as i64)
            .push(", started_at = ")
            .push_bind(now)
            .push(", deadline_at = j.timeout_ms + ")
            .push_bind(now)
            .push(", updated_at = ")
            .push_bind(now)
            .push(", progress = NULL FROM (");
        if keyed {
            q.push("SELECT id FROM admitted");
        } else {
            q.push("SELECT id FROM ferry.jobs WHERE tenant_id = ")
                .push_bind(p.tenant_id.to_owned())
                .push(
                    " AND status IN ('pending', 'scheduled') AND concurrency_key IS NULL \
                     AND rate_key IS NULL AND run_at <= ",
                )
                .push_bind(now);
            push_kind_filter(&mut q, p.kinds);
            push_not_paused(&mut q, p.tenant_id);
            q.push(" ORDER BY priority DESC, run_at, id LIMIT ")
                .push_bind(p.max_jobs as i64)
                .push(" FOR UPDATE SKIP LOCKED");
        }
        // The status re-check matters to the keyed path: its candidates are not locked, and
        // an UPDATE that waited for a concurrent claim of the row re-evaluates this.
        q.push(
            ") c WHERE j.id = c.id AND j.status IN ('pending', 'scheduled') \
             RETURNING j.id, j.kind, j.payload, \
             j.labels, j.attempt, j.max_attempts, j.lease_token, j.lease_expires_at, \
             j.deadline_at, j.priority, j.run_at, j.input",
        );
        let rows = if keyed {
            // The statement's snapshot is taken after the lock is granted, so it sees every
            // admission committed before.
            let mut tx = self.pool.begin_with(KEYED_CLAIM_BEGIN).await?;
            let rows = q.build().fetch_all(&mut *tx).await?;
            tx.commit().await?;
            rows
        } else {
            q.build().fetch_all(&self.pool).await?
        };
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let order = (
                -(row.try_get::<i32, _>("priority")? as i64),
                row.try_get::<i64, _>("run_at")?,
            );
            jobs.push((
                order,
                ClaimedJob {
                    id: row.try_get::<Uuid, _>("id")?.into(),
                    kind: row.try_get("kind")?,
                    payload: row.try_get("payload")?,
                    labels: from_json(Some(row.try_get("labels")?))?.unwrap_or_default(),
                    attempt: row.try_get::<i32, _>("attempt")? as u32,
                    max_attempts: row.try_get::<i32, _>("max_attempts")? as u32,
                    lease: row.try_get("lease_token")?,
                    lease_ms: p.lease_ms,
                    lease_expires_at: from_ms(row.try_get("lease_expires_at")?)?,
                    deadline: from_ms(row.try_get("deadline_at")?)?,
                    input: row.try_get("input")?,
                },
            ));
        }
        jobs.sort_by_key(|a| (a.0, a.1.id));
        Ok(jobs.into_iter().map(|(_, job)| job).collect())
    }

    pub async fn job_counts(&self, tenant_id: &str) -> StoreResult<Vec<(JobState, u64)>> {
        let rows = sqlx::query(
            "SELECT status, count(*) AS n FROM ferry.jobs WHERE tenant_id = $1 GROUP BY status",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_state(row.try_get("status")?)?,
                    row.try_get::<i64, _>("n")? as u64,
                ))
            })
            .collect()
    }

    pub async fn job_next_run_at(
        &self,
        tenant_id: &str,
        kinds: &[KindPattern],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT min(run_at) AS next FROM ferry.jobs WHERE tenant_id = ",
        );
        q.push_bind(tenant_id.to_owned())
            .push(" AND status IN ('pending', 'scheduled') AND run_at > ")
            .push_bind(ms(now));
        push_kind_filter(&mut q, kinds);
        push_not_paused(&mut q, tenant_id);
        let due: Option<i64> = q.build().fetch_one(&self.pool).await?.try_get("next")?;
        let mut q = QueryBuilder::<Postgres>::new("");
        shared::push_rate_opening(&mut q, &shared::POSTGRES, tenant_id, ms(now), |q| {
            push_kind_filter(q, kinds);
            push_not_paused(q, tenant_id);
        });
        let opening: Option<i64> = q.build().fetch_one(&self.pool).await?.try_get("next")?;
        opt_from_ms(due.into_iter().chain(opening).min())
    }

    pub async fn job_heartbeat(
        &self,
        id: JobId,
        lease: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<LeaseStatus> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(
            "UPDATE ferry.jobs SET lease_expires_at = $1 + lease_ms, updated_at = $1 \
             WHERE id = $2 AND lease_token = $3 AND status = 'running' \
             RETURNING lease_expires_at, cancel_requested",
        )
        .bind(ms(now))
        .bind(id.as_uuid())
        .bind(lease)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => Ok(LeaseStatus {
                lease_expires_at: from_ms(row.try_get("lease_expires_at")?)?,
                cancel: row.try_get("cancel_requested")?,
            }),
            None => Err(lease_lost(&mut conn, id).await),
        }
    }

    pub async fn job_progress(&self, p: &ProgressParams<'_>) -> StoreResult<LeaseStatus> {
        let mut tx = self.pool.begin().await?;
        let patch = p.progress.as_ref().map(to_json);
        let row = sqlx::query(
            "UPDATE ferry.jobs SET \
             progress = CASE WHEN $1::jsonb IS NULL THEN progress ELSE coalesce(progress, '{}') || $1::jsonb END, \
             lease_expires_at = $2 + lease_ms, updated_at = $2 \
             WHERE id = $3 AND lease_token = $4 AND status = 'running' \
             RETURNING lease_expires_at, cancel_requested, attempt, output",
        )
        .bind(patch)
        .bind(ms(p.now))
        .bind(p.id.as_uuid())
        .bind(p.lease)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(lease_lost(&mut tx, p.id).await);
        };
        if !p.items.is_empty() {
            let output: Option<ferry_core::dataset::Output> = from_json(row.try_get("output")?)?;
            crate::datasets::check_items(output.as_ref(), p.items)?;
            let attempt: i32 = row.try_get("attempt")?;
            let first = match p.items_offset {
                Some(offset) => offset as i64,
                None => sqlx::query_scalar::<_, i64>(
                    "SELECT coalesce(max(idx) + 1, 0) FROM ferry.job_items WHERE job_id = $1 AND lease_token = $2",
                )
                .bind(p.id.as_uuid())
                .bind(p.lease)
                .fetch_one(&mut *tx)
                .await?,
            };
            let idx: Vec<i64> = (0..p.items.len() as i64).map(|i| first + i).collect();
            sqlx::query(
                "INSERT INTO ferry.job_items (job_id, attempt, lease_token, idx, data, created_at) \
                 SELECT $1, $2, $3, i, d, $4 FROM unnest($5::bigint[], $6::jsonb[]) AS t(i, d) \
                 ON CONFLICT (job_id, lease_token, idx) DO NOTHING",
            )
            .bind(p.id.as_uuid())
            .bind(attempt)
            .bind(p.lease)
            .bind(ms(p.now))
            .bind(idx)
            .bind(p.items.to_vec())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(data) = shared::progress_event(p) {
            sqlx::query(
                "INSERT INTO ferry.events (tenant_id, type, job_id, kind, attempt, data, at) \
                 SELECT tenant_id, 'job.progress', id, kind, attempt, $1, $2 FROM ferry.jobs WHERE id = $3",
            )
            .bind(data)
            .bind(ms(p.now))
            .bind(p.id.as_uuid())
            .execute(&mut *tx)
            .await?;
        }
        let status = LeaseStatus {
            lease_expires_at: from_ms(row.try_get("lease_expires_at")?)?,
            cancel: row.try_get("cancel_requested")?,
        };
        tx.commit().await?;
        Ok(status)
    }

    pub async fn job_complete(
        &self,
        entries: &[CompleteParams<'_>],
        now: DateTime<Utc>,
    ) -> StoreResult<Completed> {
        if entries.is_empty() {
            return Ok(Completed::default());
        }
        let mut conn = self.pool.acquire().await?;
        let ids: Vec<Uuid> = entries.iter().map(|e| e.id.as_uuid()).collect();
        let leases: Vec<String> = entries.iter().map(|e| e.lease.to_owned()).collect();
        let results: Vec<Value> = entries.iter().map(|e| e.result.clone()).collect();
        // A job with `then` needs its result and its children in one transaction; others
        // complete in one auto-committed statement. The lease token, marked at claim, says
        // which is which.
        let chained = entries
            .iter()
            .any(|e| e.lease.starts_with(shared::CHAINED_LEASE));
        // The error of an earlier attempt stays in the event record, not on a completed job.
        const UPDATE: &str = "UPDATE ferry.jobs j SET status = 'completed', result = v.result, \
             error = NULL, finished_at = $4, updated_at = $4, lease_expires_at = NULL \
             FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) AS v(id, lease, result) \
             WHERE j.id = v.id AND j.lease_token = v.lease AND j.status = 'running'";
        if chained {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            // Datasets first: a run the dataset refuses fails its job instead.
            let (changes, refused) = apply_runs(&mut tx, &ids, &leases, now).await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{UPDATE} RETURNING j.id, j.tenant_id, j.then_specs, j.result"
            )))
            .bind(&ids)
            .bind(&leases)
            .bind(&results)
            .bind(ms(now))
            .fetch_all(&mut *tx)
            .await?;
            let mut applied = std::collections::HashSet::new();
            let mut children = Vec::new();
            for row in &rows {
                let id = row.try_get::<Uuid, _>("id")?.into();
                applied.insert(id);
                if let Some(then) =
                    from_json::<Vec<ferry_core::api::SubmitJob>>(row.try_get("then_specs")?)?
                {
                    let result: Option<Value> = row.try_get("result")?;
                    let tenant: String = row.try_get("tenant_id")?;
                    children.extend(shared::children(
                        id,
                        &tenant,
                        then,
                        &result.unwrap_or_default(),
                        now,
                    )?);
                }
            }
            insert_jobs(&mut tx, &children, now).await?;
            for (run, change) in &changes {
                datasets::record_change(&mut tx, run, change, now).await?;
            }
            let mut answers = Vec::with_capacity(entries.len());
            for e in entries {
                // A refused run's report was taken: its job failed instead of completing.
                answers.push(if applied.contains(&e.id) || refused.contains(&e.id) {
                    Ok(())
                } else {
                    lease_row(&mut tx, e.id)
                        .await
                        .and_then(|row| row.repeated_complete(e.lease))
                });
            }
            tx.commit().await?;
            return Ok(Completed {
                answers,
                spawned: children.len(),
            });
        }
        let changed = sqlx::query(UPDATE)
            .bind(&ids)
            .bind(&leases)
            .bind(&results)
            .bind(ms(now))
            .execute(&mut *conn)
            .await?
            .rows_affected();
        let mut answers = Vec::with_capacity(entries.len());
        for e in entries {
            answers.push(if changed == entries.len() as u64 {
                Ok(())
            } else {
                lease_row(&mut conn, e.id)
                    .await
                    .and_then(|row| row.repeated_complete(e.lease))
            });
        }
        Ok(Completed {
            answers,
            spawned: 0,
        })
    }

    pub async fn job_fail(&self, p: &FailParams<'_>) -> StoreResult<Job> {
        let mut tx = self.pool.begin().await?;
        let changed =
            fail_running(&mut tx, p.id, p.lease, &p.error, p.retry_after_ms, p.now).await?;
        if changed.is_none() {
            // A repeated `fail` of an attempt that already ended unsuccessfully is answered
            // with the job as it is; anything else lost the lease.
            lease_row(&mut tx, p.id).await?.repeated_fail(p.lease)?;
        }
        let job = job_by_id(&mut tx, p.id).await?;
        tx.commit().await?;
        Ok(job)
    }

    pub async fn job_cancel(
        &self,
        tenant_id: &str,
        id: JobId,
        now: DateTime<Utc>,
    ) -> StoreResult<Job> {
        let mut tx = self.pool.begin().await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM ferry.jobs WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
        )
        .bind(id.as_uuid())
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
        let status = parse_state(&status.ok_or(StoreError::NotFound(Entity::Job))?)?;
        match status {
            JobState::Scheduled | JobState::Pending => {
                sqlx::query("UPDATE ferry.jobs SET status = 'cancelled', finished_at = $1, updated_at = $1 WHERE id = $2")
                    .bind(ms(now))
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
            }
            JobState::Running => {
                sqlx::query(
                    "UPDATE ferry.jobs SET cancel_requested = true, updated_at = $1 WHERE id = $2",
                )
                .bind(ms(now))
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
            }
            JobState::Cancelled => {}
            status @ (JobState::Completed | JobState::Failed) => {
                return Err(StoreError::InvalidState {
                    op: "cancel",
                    status,
                });
            }
        }
        let job = job_by_id(&mut tx, id).await?;
        tx.commit().await?;
        Ok(job)
    }

    pub async fn job_retry(
        &self,
        tenant_id: &str,
        id: JobId,
        now: DateTime<Utc>,
    ) -> StoreResult<Job> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE ferry.jobs SET status = 'pending', attempt = 0, run_at = $1, finished_at = NULL, \
             cancel_requested = false, progress = NULL, lease_expires_at = NULL, updated_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND status IN ('failed', 'cancelled')",
        )
        .bind(ms(now))
        .bind(id.as_uuid())
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        let job = job_by_id(&mut tx, id).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::InvalidState {
                op: "retry",
                status: job.status,
            });
        }
        tx.commit().await?;
        Ok(job)
    }

    pub async fn job_fail_overdue(
        &self,
        which: Overdue,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Transition>> {
        let (sql, error) = match which {
            Overdue::Lease => (
                "SELECT id, kind, lease_token FROM ferry.jobs WHERE status = 'running' \
                 AND lease_expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                shared::overdue_error(which),
            ),
            Overdue::Deadline => (
                "SELECT id, kind, lease_token FROM ferry.jobs WHERE status = 'running' \
                 AND deadline_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                shared::overdue_error(which),
            ),
        };
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(sql)
            .bind(ms(now))
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.try_get::<Uuid, _>("id")?.into();
            let lease: String = row.try_get("lease_token")?;
            if let Some(to) = fail_running(&mut tx, id, &lease, &error, None, now).await? {
                out.push(Transition {
                    id,
                    kind: row.try_get("kind")?,
                    to,
                });
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    pub async fn job_insert_history(
        &self,
        tenant_id: &str,
        kind: &str,
        n: u64,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "INSERT INTO ferry.jobs (id, tenant_id, kind, status, payload, labels, run_at, attempt, \
             max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms, lease_token, created_at, \
             updated_at, started_at, finished_at, result) \
             SELECT ('00000000-0000-7000-8000-' || lpad(g::text, 12, '0'))::uuid, $2, $3, 'completed', \
             '{}', '{}', $4, 1, 3, 1800000, 1000, 600000, md5(g::text), $4, $4, $4, $4, '{}' \
             FROM generate_series(1, $1) AS g",
        )
        .bind(n as i64)
        .bind(tenant_id)
        .bind(kind)
        .bind(ms(at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn kind_pause(
        &self,
        tenant_id: &str,
        pattern: &KindPattern,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (exact, prefix) = shared::pattern_match_form(pattern);
        sqlx::query(
            "INSERT INTO ferry.paused_kinds (tenant_id, pattern, exact, prefix, paused_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, pattern) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(pattern.to_string())
        .bind(exact)
        .bind(prefix)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Resumes a pattern and wakes long-polls on every instance.
    pub async fn kind_resume(&self, tenant_id: &str, pattern: &KindPattern) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM ferry.paused_kinds WHERE tenant_id = $1 AND pattern = $2")
            .bind(tenant_id)
            .bind(pattern.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WORK_CHANNEL)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The running job `id` if `lease` is its current lease.
    pub async fn job_leased(&self, id: JobId, lease: &str) -> StoreResult<Option<LeasedJob>> {
        let row = sqlx::query(
            "SELECT tenant_id, payload, attempt FROM ferry.jobs \
             WHERE id = $1 AND lease_token = $2 AND status = 'running'",
        )
        .bind(id.as_uuid())
        .bind(lease)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(LeasedJob {
                tenant_id: row.try_get("tenant_id")?,
                payload: row.try_get("payload")?,
                attempt: row.try_get::<i32, _>("attempt")? as u32,
            })
        })
        .transpose()
    }

    pub async fn session_put(
        &self,
        tenant_id: &str,
        name: &str,
        sealed: &[u8],
        job: Option<JobId>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ferry.sessions (tenant_id, name, sealed, updated_at, saved_by_job) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, name) DO UPDATE SET \
             sealed = excluded.sealed, updated_at = excluded.updated_at, saved_by_job = excluded.saved_by_job",
        )
        .bind(tenant_id)
        .bind(name)
        .bind(sealed)
        .bind(ms(now))
        .bind(job.map(|j| j.as_uuid()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session_get(&self, tenant_id: &str, name: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            "SELECT sealed FROM ferry.sessions WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn session_list(&self, tenant_id: &str) -> StoreResult<Vec<SessionInfo>> {
        let rows = sqlx::query(
            "SELECT name, octet_length(sealed)::bigint AS size, updated_at, saved_by_job FROM ferry.sessions \
             WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SessionInfo {
                    name: row.try_get("name")?,
                    size_bytes: row.try_get::<i64, _>("size")? as u64,
                    updated_at: from_ms(row.try_get("updated_at")?)?,
                    saved_by_job: row
                        .try_get::<Option<Uuid>, _>("saved_by_job")?
                        .map(JobId::from_uuid),
                })
            })
            .collect()
    }

    pub async fn session_delete(&self, tenant_id: &str, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM ferry.sessions WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn artifact_put(
        &self,
        tenant_id: &str,
        job_id: JobId,
        artifact: &ArtifactInfo,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ferry.artifacts (job_id, name, tenant_id, content_type, size_bytes, attempt, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (job_id, name) DO UPDATE SET \
             content_type = excluded.content_type, size_bytes = excluded.size_bytes, \
             attempt = excluded.attempt, created_at = excluded.created_at",
        )
        .bind(job_id.as_uuid())
        .bind(&artifact.name)
        .bind(tenant_id)
        .bind(&artifact.content_type)
        .bind(artifact.size_bytes as i64)
        .bind(artifact.attempt as i32)
        .bind(ms(artifact.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn artifact_list(
        &self,
        tenant_id: &str,
        job_id: JobId,
    ) -> StoreResult<Vec<ArtifactInfo>> {
        let rows = sqlx::query(
            "SELECT name, content_type, size_bytes, attempt, created_at FROM ferry.artifacts \
             WHERE job_id = $1 AND tenant_id = $2 ORDER BY created_at, name",
        )
        .bind(job_id.as_uuid())
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ArtifactInfo {
                    name: row.try_get("name")?,
                    content_type: row.try_get("content_type")?,
                    size_bytes: row.try_get::<i64, _>("size_bytes")? as u64,
                    attempt: row.try_get::<i32, _>("attempt")? as u32,
                    created_at: from_ms(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    /// Artifacts whose job was deleted (by retention), to remove.
    pub async fn artifacts_orphaned(&self, limit: u32) -> StoreResult<Vec<(JobId, String)>> {
        let rows = sqlx::query(
            "SELECT a.job_id, a.name FROM ferry.artifacts a \
             WHERE NOT EXISTS (SELECT 1 FROM ferry.jobs j WHERE j.id = a.job_id) LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    JobId::from_uuid(row.try_get("job_id")?),
                    row.try_get("name")?,
                ))
            })
            .collect()
    }

    pub async fn artifact_delete(&self, job_id: JobId, name: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM ferry.artifacts WHERE job_id = $1 AND name = $2")
            .bind(job_id.as_uuid())
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Adds a schedule; false when the tenant has one of that name.
    pub async fn schedule_insert(&self, tenant_id: &str, s: &Schedule) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO ferry.schedules (id, tenant_id, name, cron, timezone, job, catch_up, paused, next_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant_id, name) DO NOTHING",
        )
        .bind(s.id.as_uuid())
        .bind(tenant_id)
        .bind(&s.name)
        .bind(&s.cron)
        .bind(&s.timezone)
        .bind(serde_json::to_value(&s.job).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(s.catch_up)
        .bind(s.paused)
        .bind(ms(s.next_at))
        .bind(ms(s.created_at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Schedules of `tenant` (all tenants' when `None`), by name.
    pub async fn schedule_list(
        &self,
        tenant_id: Option<&str>,
    ) -> StoreResult<Vec<(String, Schedule)>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, name, cron, timezone, job, catch_up, paused, next_at, last_at, created_at \
             FROM ferry.schedules WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("tenant_id")?,
                    Schedule {
                        id: row.try_get::<Uuid, _>("id")?.into(),
                        name: row.try_get("name")?,
                        cron: row.try_get("cron")?,
                        timezone: row.try_get("timezone")?,
                        job: from_json(Some(row.try_get("job")?))?.unwrap_or_default(),
                        catch_up: row.try_get("catch_up")?,
                        paused: row.try_get("paused")?,
                        next_at: from_ms(row.try_get("next_at")?)?,
                        last_at: opt_from_ms(row.try_get("last_at")?)?,
                        created_at: from_ms(row.try_get("created_at")?)?,
                    },
                ))
            })
            .collect()
    }

    pub async fn schedule_delete(&self, tenant_id: &str, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM ferry.schedules WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Pauses or resumes; a resumed schedule's next tick is `next_at`.
    pub async fn schedule_pause(
        &self,
        tenant_id: &str,
        name: &str,
        paused: bool,
        next_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE ferry.schedules SET paused = $1, next_at = CASE WHEN $1 THEN next_at ELSE $2 END \
             WHERE tenant_id = $3 AND name = $4",
        )
        .bind(paused)
        .bind(ms(next_at))
        .bind(tenant_id)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Moves a schedule's next tick from `expected` to `next` (compare-and-set); `fired`
    /// records the tick that enqueued a job.
    pub async fn schedule_advance(
        &self,
        id: ScheduleId,
        expected: DateTime<Utc>,
        next: DateTime<Utc>,
        fired: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE ferry.schedules SET next_at = $1, last_at = coalesce($2, last_at) WHERE id = $3 AND next_at = $4",
        )
        .bind(ms(next))
        .bind(fired.map(ms))
        .bind(id.as_uuid())
        .bind(ms(expected))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn kind_paused(&self, tenant_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT pattern FROM ferry.paused_kinds WHERE tenant_id = $1 ORDER BY pattern",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn job_promote_scheduled(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE ferry.jobs SET status = 'pending', updated_at = $1 WHERE id IN \
             (SELECT id FROM ferry.jobs WHERE status = 'scheduled' AND run_at <= $1 LIMIT $2 \
              FOR UPDATE SKIP LOCKED)",
        )
        .bind(ms(now))
        .bind(limit as i64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn rate_prune(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let horizon = ms(now) - ferry_core::flow::MAX_RATE_WINDOW_MS as i64;
        let done = sqlx::query(
            "DELETE FROM ferry.rate_starts WHERE seq IN (SELECT seq FROM ferry.rate_starts \
             WHERE at < $1 ORDER BY at LIMIT $2)",
        )
        .bind(horizon)
        .bind(limit as i64)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM ferry.rate_keys WHERE blocked_until < $1")
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn job_delete_finished(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM ferry.jobs WHERE id IN (SELECT id FROM ferry.jobs \
             WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < $1 LIMIT $2 \
             FOR UPDATE SKIP LOCKED)",
        )
        .bind(ms(before))
        .bind(limit as i64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Forwards `NOTIFY ferry_work` to `wake` until `stop`; after a lost connection it
    /// reconnects and wakes everyone once (a notification may have been missed).
    pub async fn notify_events(&self) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(EVENTS_CHANNEL)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn forward_signals(
        &self,
        wake: Arc<Notify>,
        events: Arc<tokio::sync::watch::Sender<u64>>,
        stop: CancellationToken,
    ) {
        let ring = || events.send_modify(|n| *n = n.wrapping_add(1));
        loop {
            let mut listener = match PgListener::connect_with(&self.pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN for work; retrying");
                    if sleep_or_stop(&stop, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            if let Err(e) = listener.listen_all([WORK_CHANNEL, EVENTS_CHANNEL]).await {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                if sleep_or_stop(&stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
            wake.notify_waiters();
            ring();
            loop {
                tokio::select! {
                    n = listener.try_recv() => match n {
                        // New work is news too (an app's own `ferry.enqueue` writes
                        // `job.created`).
                        Ok(Some(n)) if n.channel() == EVENTS_CHANNEL => ring(),
                        Ok(Some(_)) => {
                            wake.notify_waiters();
                            ring();
                        }
                        // The connection dropped; try_recv reconnects on the next call.
                        Ok(None) => {
                            wake.notify_waiters();
                            ring();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "work notifications lost; reconnecting");
                            wake.notify_waiters();
                            ring();
                            break;
                        }
                    },
                    _ = stop.cancelled() => return,
                }
            }
        }
    }
}

/// Sleeps; answers `true` when told to stop first.
async fn sleep_or_stop(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.cancelled() => true,
    }
}

async fn migrate_postgres(pool: &PgPool) -> StoreResult<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let result = async {
        sqlx::raw_sql(
            "CREATE SCHEMA IF NOT EXISTS ferry; CREATE TABLE IF NOT EXISTS ferry.migrations \
             (version bigint PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        for m in migrate::POSTGRES {
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM ferry.migrations WHERE version = $1")
                    .bind(m.version)
                    .fetch_optional(&mut *conn)
                    .await?;
            if done.is_some() {
                continue;
            }
            let wrap = |source| StoreError::Migration {
                version: m.version,
                name: m.name,
                source,
            };
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(wrap)?;
            sqlx::query(
                "INSERT INTO ferry.migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await
            .map_err(wrap)?;
            tx.commit().await.map_err(wrap)?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
        }
        Ok::<(), StoreError>(())
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_keyed_claim_begin_takes_the_keyed_claim_lock() {
        assert!(super::KEYED_CLAIM_BEGIN.ends_with(&format!("({})", super::KEYED_CLAIM_LOCK)));
    }
}
