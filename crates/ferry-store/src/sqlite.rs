//! The SQLite backend: one writer connection (SQLite has one writer anyway, and a
//! single connection makes every transaction serial without `SQLITE_BUSY`), a pool of
//! readers, WAL, migrations at open.
//!
//! Every state change is a compare-and-set on `(id, lease_token, status)`; a row that
//! does not match is diagnosed afterwards to answer `LeaseLost`, `NotFound` or the
//! idempotent repeat of an already-applied report.

use std::{path::Path, time::Duration};

use chrono::{DateTime, Utc};
use ferry_core::{
    Backoff, FailureOutcome, Job, JobError, JobId, JobState, KindPattern, NewJob,
    retry::{FailedAttempt, jitter_unit},
};
use serde_json::Value;
use sqlx::{
    QueryBuilder, Row, Sqlite, SqliteConnection,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
    },
};

mod datasets;

use crate::rows::{from_ms, opt_from_ms, parse_id, state as parse_state};
use crate::{
    Entity, Inserted, StoreError, StoreResult, migrate,
    shared::{self, LeaseRow},
};

/// How hard SQLite works to make a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=NORMAL`: a commit survives a crash of the process (kill -9), not a
    /// power loss of the machine.
    #[default]
    Normal,
    /// `synchronous=FULL`: a commit also survives power loss, at an fsync per commit.
    Full,
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The database file (health probes write a small file beside it).
    path: std::path::PathBuf,
    write: SqlitePool,
    read: SqlitePool,
    /// Stops the checkpointer (see `open`) when the last clone of the store goes.
    _checkpointer: std::sync::Arc<tokio_util::sync::DropGuard>,
    keyed_hint: shared::KeyedHint,
}

/// The columns [`crate::rows::job`] reads, as a literal so queries stay `&'static str`.
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

fn json(text: &str) -> StoreResult<Value> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("bad json: {e}")))
}

fn opt_json<T: serde::de::DeserializeOwned>(text: Option<String>) -> StoreResult<Option<T>> {
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("bad json: {e}")))
    })
    .transpose()
}

fn to_text<T: serde::Serialize>(value: &T) -> String {
    // Serializing our own plain data types cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// Appends `AND <kind is not paused>`.
fn push_not_paused(q: &mut QueryBuilder<Sqlite>, tenant_id: &str) {
    q.push(" AND NOT EXISTS (SELECT 1 FROM ferry_paused_kinds pk WHERE pk.tenant_id = ")
        .push_bind(tenant_id.to_owned())
        .push(
            " AND (CASE WHEN pk.exact = 1 THEN kind = pk.prefix \
             ELSE substr(kind, 1, length(pk.prefix)) = pk.prefix END))",
        );
}

/// Appends `AND (<kind matches one of patterns>)`; nothing when a pattern is `*`.
fn push_kind_filter(q: &mut QueryBuilder<Sqlite>, kinds: &[KindPattern]) {
    if kinds.is_empty() || kinds.iter().any(|k| matches!(k, KindPattern::Any)) {
        return;
    }
    q.push(" AND (");
    for (i, pattern) in kinds.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        match pattern {
            KindPattern::Any => unreachable!("handled above"),
            KindPattern::Exact(kind) => {
                q.push("kind = ").push_bind(kind.as_str().to_owned());
            }
            KindPattern::Prefix(prefix) => {
                q.push("substr(kind, 1, ")
                    .push_bind(prefix.len() as i64)
                    .push(") = ")
                    .push_bind(prefix.clone());
            }
        }
    }
    q.push(")");
}

async fn lease_row(conn: &mut SqliteConnection, id: JobId) -> StoreResult<LeaseRow> {
    let row = sqlx::query("SELECT status, lease_token FROM ferry_jobs WHERE id = ?")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound(Entity::Job))?;
    Ok(LeaseRow {
        status: parse_state(row.try_get("status")?)?,
        lease_token: row.try_get("lease_token")?,
    })
}

/// [`lease_row`] of each of `ids` there is, in one query.
async fn lease_rows(
    conn: &mut SqliteConnection,
    ids: impl Iterator<Item = JobId>,
) -> StoreResult<std::collections::HashMap<JobId, LeaseRow>> {
    let ids: Vec<String> = ids.map(|id| id.to_string()).collect();
    let rows = sqlx::query(
        "SELECT id, status, lease_token FROM ferry_jobs WHERE id IN (SELECT value FROM json_each(?))",
    )
    .bind(to_text(&ids))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                parse_id(row.try_get("id")?)?,
                LeaseRow {
                    status: parse_state(row.try_get("status")?)?,
                    lease_token: row.try_get("lease_token")?,
                },
            ))
        })
        .collect()
}

async fn job_by_id(conn: &mut SqliteConnection, id: JobId) -> StoreResult<Job> {
    let row = sqlx::query(concat!(
        "SELECT ",
        job_columns!(),
        " FROM ferry_jobs WHERE id = ?"
    ))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound(Entity::Job))?;
    crate::rows::job(&row)
}

/// Ends the running attempt `(id, lease)` with `error`: retry, dead or cancelled.
/// Returns the new state, or `None` when the row no longer matched.
async fn fail_running(
    conn: &mut SqliteConnection,
    id: JobId,
    lease: &str,
    error: &JobError,
    retry_after_ms: Option<u64>,
    now: DateTime<Utc>,
) -> StoreResult<Option<JobState>> {
    let row = sqlx::query(
        "SELECT attempt, max_attempts, backoff_base_ms, backoff_max_ms, cancel_requested, \
         tenant_id, rate_key FROM ferry_jobs WHERE id = ? AND lease_token = ? AND status = 'running'",
    )
    .bind(id.to_string())
    .bind(lease)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let failed = FailedAttempt {
        attempt: row.try_get::<i64, _>("attempt")? as u32,
        max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
        retryable: error.retryable,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
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
        "UPDATE ferry_jobs SET status = ?, run_at = coalesce(?, run_at), finished_at = ?, \
         error = ?, lease_expires_at = NULL, updated_at = ? \
         WHERE id = ? AND lease_token = ? AND status = 'running'",
    )
    .bind(status.as_str())
    .bind(run_at)
    .bind(finished_at)
    .bind(to_text(error))
    .bind(ms(now))
    .bind(id.to_string())
    .bind(lease)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    // A worker pushing back (a 429 with Retry-After) holds back the whole rate key.
    let rate_key: Option<String> = row.try_get("rate_key")?;
    if let (Some(key), Some(after)) = (rate_key, retry_after_ms) {
        let tenant_id: String = row.try_get("tenant_id")?;
        sqlx::query(
            "INSERT INTO ferry_rate_keys (tenant_id, key, blocked_until) VALUES (?, ?, ?) \
             ON CONFLICT (tenant_id, key) DO UPDATE \
             SET blocked_until = max(blocked_until, excluded.blocked_until)",
        )
        .bind(tenant_id)
        .bind(key)
        .bind(ms(now).saturating_add(after.min(i64::MAX as u64) as i64))
        .execute(&mut *conn)
        .await?;
    }
    Ok(Some(status))
}

/// How often the WAL is checkpointed (see `SqliteStore::open`).
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);
/// A WAL this long (pages; ~200 MB) is checkpointed with RESTART.
const WAL_RESTART_PAGES: i64 = 50_000;

async fn checkpoint_periodically(pool: SqlitePool, stop: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(CHECKPOINT_INTERVAL) => {}
        }
        // PASSIVE copies what it can without waiting for (or blocking) the writer. When
        // readers kept it from catching up and the WAL has grown past WAL_RESTART_PAGES,
        // RESTART waits for them so the WAL starts over.
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
        {
            Ok((_, log, _)) if log > WAL_RESTART_PAGES => {
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(error = %e, "WAL checkpoint (restart) failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
    pool.close().await;
}

/// Whether the writer connection may go back to the pool. A statement or commit that fails
/// inside a transaction (`SQLITE_FULL`, `SQLITE_IOERR`) may make SQLite roll the transaction
/// back by itself; the driver's `ROLLBACK` then fails and it still counts one transaction
/// open, so every later `BEGIN` would become a savepoint of a transaction that never
/// commits (accepted writes lost at restart). Such a connection is closed and the pool opens
/// a fresh one.
async fn writer_is_clean(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    if !sqlx::Connection::is_in_transaction(conn) {
        return Ok(true);
    }
    // The rollback of a dropped transaction is queued on the connection; a ping is answered
    // after it, so the depth read next is the one it left.
    sqlx::Connection::ping(conn).await?;
    let clean = !sqlx::Connection::is_in_transaction(conn);
    if !clean {
        tracing::warn!("the writer connection is left inside a failed transaction; reopening it");
    }
    Ok(clean)
}

/// A small real write (the header's `user_version`, rewritten as it is): fails with
/// [`StoreError::Storage`] when the database cannot write.
async fn write_probe(write: &SqlitePool) -> StoreResult<()> {
    let mut conn = write.acquire().await?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PRAGMA user_version = {version}"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs pending migrations.
    pub async fn open(path: &Path, durability: Durability) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match durability {
                Durability::Normal => SqliteSynchronous::Normal,
                Durability::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory")
            // Read pages through a memory map: without it SQLite copies every page in with
            // read(2), a large share of the claim path. (A larger cache_size is slower here:
            // SQLite walks the whole page-cache hash at the end of every write transaction.)
            .pragma("mmap_size", "268435456");
        // Checkpoints (copying the WAL back into the database, with an fsync) run on their
        // own connection every CHECKPOINT_INTERVAL, not inside whichever write happens to
        // fill the WAL: that write would stall every claim and completion behind it.
        let write = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_release(|conn, _| Box::pin(writer_is_clean(conn)))
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        migrate_sqlite(&write).await?;
        // A read-only file or directory shows at start, not at the first submit.
        write_probe(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone().read_only(true))
            .await?;
        let checkpoints = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(checkpoint_periodically(checkpoints, stop.clone()));
        Ok(Self {
            path: path.to_owned(),
            write,
            read,
            _checkpointer: std::sync::Arc::new(stop.drop_guard()),
            keyed_hint: shared::KeyedHint::default(),
        })
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// The database answers reads and takes a write.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        // SQLite may still take a small write into WAL space it already has while the
        // disk is full; a new block next to the database may not be had.
        let probe = self.path.with_extension("db-probe");
        tokio::task::spawn_blocking(move || {
            std::fs::write(&probe, [0u8; 4096])
                .and_then(|()| std::fs::File::open(&probe)?.sync_all())
                .and_then(|()| std::fs::remove_file(&probe))
        })
        .await
        .map_err(|e| StoreError::Storage(sqlx::Error::Io(std::io::Error::other(e))))?
        .map_err(|e| StoreError::Storage(sqlx::Error::Io(e)))?;
        write_probe(&self.write).await
    }
}

/// Inserts jobs inside the caller's transaction; see `Store::job_insert`.
async fn insert_jobs(
    tx: &mut SqliteConnection,
    jobs: &[NewJob],
    now: DateTime<Utc>,
) -> StoreResult<Vec<Inserted>> {
    // With dedupe keys, learn which rows went in (a duplicate is skipped, not an error);
    // without, skip RETURNING: sqlx hands every returned row across a thread.
    let deduping = jobs.iter().any(|j| j.dedupe_key.is_some());
    let mut created = std::collections::HashSet::new();
    // A dedupe key with a TTL is also held by a job that finished less than TTL ago.
    let mut held = std::collections::HashMap::new();
    for job in jobs {
        let (Some(key), Some(ttl)) = (&job.dedupe_key, job.dedupe_ttl_ms) else {
            continue;
        };
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry_jobs WHERE tenant_id = ? AND dedupe_key = ? \
             AND (finished_at IS NULL OR finished_at >= ?) ORDER BY id DESC LIMIT 1"
        ))
        .bind(&job.tenant_id)
        .bind(key)
        .bind(ms(now).saturating_sub(ttl as i64))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = row {
            held.insert(job.id, crate::rows::job(&row)?);
        }
    }
    let to_insert: Vec<&NewJob> = jobs.iter().filter(|j| !held.contains_key(&j.id)).collect();
    // Multi-row statements: one round trip to SQLite per chunk, not per job
    // (28 parameters a row, well under SQLite's 32766).
    for chunk in to_insert.chunks(500) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO ferry_jobs (id, tenant_id, kind, status, payload, labels, priority, \
             run_at, max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms, created_at, \
             updated_at, dedupe_key, batch_id, batch_index, then_specs, parent_id, \
             concurrency_key, concurrency_limit, rate_key, rate_interval_ms, rate_max, rate_per_ms, \
             output, input, traceparent) ",
        );
        q.push_values(chunk, |mut b, job| {
            b.push_bind(job.id.to_string())
                .push_bind(job.tenant_id.clone())
                .push_bind(job.kind.as_str().to_owned())
                .push_bind(job.initial_state(now).as_str())
                .push_bind(to_text(&job.payload))
                .push_bind(to_text(&job.labels))
                .push_bind(job.priority)
                .push_bind(ms(job.run_at))
                .push_bind(job.max_attempts as i64)
                .push_bind(job.timeout_ms as i64)
                .push_bind(job.backoff.base_ms as i64)
                .push_bind(job.backoff.max_ms as i64)
                .push_bind(ms(now))
                .push_bind(ms(now))
                .push_bind(job.dedupe_key.clone())
                .push_bind(job.batch.map(|(id, _)| id.to_string()))
                .push_bind(job.batch.map(|(_, index)| index as i64))
                .push_bind((!job.then.is_empty()).then(|| to_text(&job.then)))
                .push_bind(job.parent_id.map(|id| id.to_string()));
            let flow = shared::FlowColumns::of(job);
            b.push_bind(flow.concurrency_key)
                .push_bind(flow.concurrency_limit)
                .push_bind(flow.rate_key)
                .push_bind(flow.rate_interval_ms)
                .push_bind(flow.rate_max)
                .push_bind(flow.rate_per_ms)
                .push_bind(job.output.as_ref().map(to_text))
                .push_bind(job.input.as_ref().map(to_text))
                .push_bind(job.traceparent.as_ref().map(|t| t.as_str().to_owned()));
        });
        if deduping {
            q.push(" ON CONFLICT DO NOTHING RETURNING id");
            for row in q.build().fetch_all(&mut *tx).await? {
                created.insert(row.try_get::<String, _>("id")?);
            }
        } else {
            q.build().execute(&mut *tx).await?;
        }
    }
    let is_new = |job: &NewJob| {
        !held.contains_key(&job.id) && (!deduping || created.contains(&job.id.to_string()))
    };
    let labels: Vec<(String, &String, &String)> = jobs
        .iter()
        .filter(|job| is_new(job))
        .flat_map(|job| {
            job.labels
                .iter()
                .map(move |(k, v)| (job.id.to_string(), k, v))
        })
        .collect();
    for chunk in labels.chunks(5_000) {
        let mut q =
            QueryBuilder::<Sqlite>::new("INSERT INTO ferry_job_labels (job_id, key, value) ");
        q.push_values(chunk, |mut b, (id, k, v)| {
            b.push_bind(id.clone())
                .push_bind((*k).clone())
                .push_bind((*v).clone());
        });
        q.build().execute(&mut *tx).await?;
    }
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Some(existing) = held.get(&job.id) {
            out.push(Inserted {
                job: existing.clone(),
                created: false,
            });
            continue;
        }
        if is_new(job) {
            out.push(Inserted {
                job: shared::new_job_row(job, now)?,
                created: true,
            });
            continue;
        }
        // A duplicate: answer the unfinished job that holds the key.
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry_jobs WHERE tenant_id = ? AND dedupe_key = ? \
             AND status IN ('scheduled', 'pending', 'running')"
        ))
        .bind(&job.tenant_id)
        .bind(&job.dedupe_key)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a dedupe conflict without its job".to_owned()))?;
        out.push(Inserted {
            job: crate::rows::job(&row)?,
            created: false,
        });
    }
    Ok(out)
}

async fn lease_lost(conn: &mut SqliteConnection, id: JobId) -> StoreError {
    match lease_row(conn, id).await {
        Ok(row) => StoreError::LeaseLost { status: row.status },
        Err(e) => e,
    }
}

async fn migrate_sqlite(pool: &SqlitePool) -> StoreResult<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS ferry_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    for m in migrate::SQLITE {
        let mut tx = pool.begin().await?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM ferry_migrations WHERE version = ?")
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            continue;
        }
        let wrap = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(wrap)?;
        sqlx::query("INSERT INTO ferry_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(m.version)
            .bind(m.name)
            .bind(Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await
            .map_err(wrap)?;
        tx.commit().await.map_err(wrap)?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query plan's steps for `sql` on a fresh database.
    async fn plan(sql: &'static str) -> Vec<String> {
        plan_of(sqlx::query(sql)).await
    }

    /// The steps of `explain` (an `EXPLAIN QUERY PLAN …` with its parameters bound) on a
    /// fresh database.
    async fn plan_of(
        explain: sqlx::query::Query<'_, Sqlite, <Sqlite as sqlx::Database>::Arguments>,
    ) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"), Durability::Normal)
            .await
            .expect("open");
        let rows = explain.fetch_all(&store.write).await.expect("explain");
        rows.iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap_or_default())
            .collect()
    }

    /// The rescuer reads running rows through the status index, never the whole table.
    #[tokio::test]
    async fn overdue_scans_only_running_rows() {
        let plan = plan(
            "EXPLAIN QUERY PLAN SELECT id, kind, lease_token FROM ferry_jobs \
             WHERE status = 'running' AND lease_expires_at < 0 LIMIT 10",
        )
        .await;
        assert!(
            plan.iter()
                .any(|d| d.contains("ferry_jobs_status (status=?)")),
            "{plan:?}"
        );
    }

    /// A keyed claim counts each key's running jobs from the index alone.
    #[tokio::test]
    async fn running_keys_are_counted_from_a_covering_index() {
        let plan = plan(
            "EXPLAIN QUERY PLAN SELECT concurrency_key AS k, count(*) AS n, \
             min(concurrency_limit) AS lim FROM ferry_jobs WHERE status = 'running' \
             AND concurrency_key IS NOT NULL AND tenant_id = 'default' GROUP BY concurrency_key",
        )
        .await;
        assert!(
            plan.iter()
                .any(|d| d.contains("COVERING INDEX ferry_jobs_running_keys")),
            "{plan:?}"
        );
    }

    /// The keyed claim reads each admitted job by id and each candidate's running count
    /// from the key index. (It walked every waiting job through the status index, and
    /// scanned every running key for each candidate: 4× the plain claim's time.)
    #[tokio::test]
    async fn the_keyed_claim_reads_only_its_candidates() {
        let kinds = ["ferry.noop".parse::<KindPattern>().expect("pattern")];
        let params = crate::ClaimParams {
            tenant_id: "default",
            worker_id: "w",
            kinds: &kinds,
            max_jobs: 25,
            lease_ms: 60_000,
            now: Utc::now(),
        };
        let mut q = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN ");
        lease::push_claim(&mut q, &params, true);
        let plan = plan_of(q.build()).await;
        assert!(
            !plan.iter().any(|d| d.contains("ferry_jobs_status")),
            "the claimed rows are read by id: {plan:?}"
        );
        assert!(
            plan.iter()
                .any(|d| d.contains("SEARCH rj USING COVERING INDEX ferry_jobs_running_keys")),
            "each candidate's key counted from the index: {plan:?}"
        );
    }

    /// A completion is one statement text whatever the number of reports (prepared once,
    /// not once per group size), and it finds each job by id.
    #[tokio::test]
    async fn completions_share_one_statement_that_reads_jobs_by_id() {
        let result = serde_json::json!({"ok": true});
        let ids: Vec<JobId> = (0..3).map(|_| JobId::new()).collect();
        let entries: Vec<crate::CompleteParams<'_>> = ids
            .iter()
            .map(|&id| crate::CompleteParams {
                id,
                lease: "l",
                result: &result,
            })
            .collect();
        let one = lease::complete_update(&entries[..1], Utc::now());
        let three = lease::complete_update(&entries, Utc::now());
        assert_eq!(one.sql().as_str(), three.sql().as_str());

        let explain = format!("EXPLAIN QUERY PLAN {}", three.sql().as_str());
        let query = sqlx::query(sqlx::AssertSqlSafe(explain))
            .bind(0_i64)
            .bind(0_i64)
            .bind("[]");
        let plan = plan_of(query).await;
        assert!(
            plan.iter().any(|d| d
                .contains("SEARCH ferry_jobs USING INDEX sqlite_autoindex_ferry_jobs_1 (id=?)")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|d| d.contains("ferry_jobs_status")),
            "{plan:?}"
        );
    }

    /// The claim must read only claimable rows (the partial index), so a long history of
    /// finished jobs does not slow it down.
    #[tokio::test]
    async fn claim_uses_the_ready_index() {
        let plan = plan(
            "EXPLAIN QUERY PLAN SELECT id FROM ferry_jobs INDEXED BY ferry_jobs_ready \
             WHERE tenant_id = 'default' AND status IN ('pending', 'scheduled') AND run_at <= 0 \
             AND (kind = 'a') ORDER BY priority DESC, run_at, id LIMIT 10",
        )
        .await;
        assert!(
            plan.iter().any(|d| d.contains("ferry_jobs_ready")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|d| d.contains("TEMP B-TREE")),
            "no sort step: {plan:?}"
        );
    }
}
