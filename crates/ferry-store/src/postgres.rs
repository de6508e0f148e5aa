//! The PostgreSQL backend: several `ferry serve` instances share one database. Claims
//! are one `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED LIMIT n)`; batches go through
//! `unnest` so one prepared statement serves every batch size; failures lock their row;
//! `LISTEN ferry_work` wakes long-polls on every instance; an advisory lock elects the
//! one instance that runs maintenance.
//!
//! Every state change is a compare-and-set on `(id, lease_token, status)`, as on SQLite.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ferry_core::{
    Backoff, FailureOutcome, Job, JobError, JobId, JobState, KindPattern, NewJob,
    retry::{FailedAttempt, jitter_unit},
};
use serde_json::Value;
use sqlx::{
    PgConnection, Postgres, QueryBuilder, Row,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

mod datasets;
mod leader;

pub use leader::LeaderSession;

use crate::rows::{from_ms, opt_from_ms, state as parse_state};
use crate::{
    Entity, Inserted, StoreError, StoreResult, migrate,
    shared::{self, LeaseRow},
};

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

/// The columns [`crate::rows::job`] reads.
macro_rules! job_columns {
    () => {
        "id, kind, status, payload, labels, priority, attempt, max_attempts, timeout_ms, \
         backoff_base_ms, backoff_max_ms, run_at, created_at, updated_at, started_at, finished_at, \
         worker_id, lease_expires_at, deadline_at, cancel_requested, progress, result, error, \
         dedupe_key, parent_id, concurrency_key, concurrency_limit, rate_key, rate_interval_ms, \
         rate_max, rate_per_ms, output, input, traceparent"
    };
}

// The store's methods, one module per resource (after `job_columns!`, which they use).
mod audit;
mod batches;
mod blobs;
mod dead;
mod events;
mod jobs;
mod keys;
mod lease;
mod maintenance;
mod schedules;
mod secrets;
mod stats;
mod users;
mod webhooks;
mod workers;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
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
    crate::rows::job(&row)
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
            held.insert(job.id, crate::rows::job(&row)?);
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
         rate_interval_ms, rate_max, rate_per_ms, output, input, traceparent, created_at, \
         updated_at) \
         SELECT *, $18, $18 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], \
         $5::jsonb[], $6::jsonb[], $7::int[], $8::bigint[], $9::int[], $10::bigint[], \
         $11::bigint[], $12::bigint[], $13::text[], $14::uuid[], $15::int[], $16::jsonb[], $17::uuid[], \
         $19::text[], $20::int[], $21::text[], $22::bigint[], $23::int[], $24::bigint[], $25::jsonb[], \
         $26::jsonb[], $27::text[]) \
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
    .bind(
        jobs.iter()
            .map(|j| j.traceparent.as_ref().map(|t| t.as_str().to_owned()))
            .collect::<Vec<_>>(),
    )
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
            job: crate::rows::job(&row)?,
            created: false,
        });
    }
    Ok(out)
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
