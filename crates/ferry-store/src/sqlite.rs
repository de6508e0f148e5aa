//! The SQLite backend: one writer connection (SQLite has one writer anyway, and a
//! single connection makes every transaction serial without `SQLITE_BUSY`), a pool of
//! readers, WAL, migrations at open.
//!
//! Every state change is a compare-and-set on `(id, lease_token, status)`; a row that
//! does not match is diagnosed afterwards to answer `LeaseLost`, `NotFound` or the
//! idempotent repeat of an already-applied report.

use std::{path::Path, str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use ferry_core::{
    Backoff, BatchId, DeliveryId, FailureOutcome, Job, JobError, JobId, JobItem, JobState,
    KindPattern, NewJob, ScheduleId, WebhookId,
    api::{Batch, BatchProgress, BatchResult, ClaimedJob, LeaseStatus},
    retry::{FailedAttempt, jitter_unit},
};
use serde_json::Value;
use sqlx::{
    QueryBuilder, Row, Sqlite, SqliteConnection,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
        SqliteSynchronous,
    },
};

use ferry_core::api::{ArtifactInfo, DeliveryInfo, SessionInfo};
use ferry_core::schedule::Schedule;

mod datasets;

use crate::{
    ClaimParams, CompleteParams, Completed, DeliveryOutcome, DueDelivery, Entity, EventFilter,
    FailParams, Inserted, LeasedJob, ListParams, NewBatch, Overdue, ProgressParams, StoreError,
    StoreResult, Transition, WebhookRow, migrate,
    shared::{self, LeaseRow},
};

fn event_row(row: &SqliteRow) -> StoreResult<ferry_core::api::Event> {
    Ok(ferry_core::api::Event {
        id: row.try_get("id")?,
        event_type: row.try_get("type")?,
        job_id: row
            .try_get::<Option<String>, _>("job_id")?
            .as_deref()
            .map(parse_id)
            .transpose()?,
        kind: row.try_get("kind")?,
        attempt: row.try_get::<Option<i64>, _>("attempt")?.map(|a| a as u32),
        data: row
            .try_get::<Option<String>, _>("data")?
            .as_deref()
            .map(json)
            .transpose()?,
        at: from_ms(row.try_get("at")?)?,
    })
}

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

/// The columns [`job_from_row`] reads, as a literal so queries stay `&'static str`.
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

fn parse_id<T: FromStr<Err = ferry_core::id::ParseIdError>>(text: &str) -> StoreResult<T> {
    text.parse()
        .map_err(|e: ferry_core::id::ParseIdError| StoreError::Corrupt(format!("{text:?}: {e}")))
}

fn parse_state(text: &str) -> StoreResult<JobState> {
    JobState::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn job_from_row(row: &SqliteRow) -> StoreResult<Job> {
    let (concurrency, rate_limit) = shared::FlowColumns {
        concurrency_key: row.try_get("concurrency_key")?,
        concurrency_limit: row.try_get("concurrency_limit")?,
        rate_key: row.try_get("rate_key")?,
        rate_interval_ms: row.try_get("rate_interval_ms")?,
        rate_max: row.try_get("rate_max")?,
        rate_per_ms: row.try_get("rate_per_ms")?,
    }
    .split();
    let id: String = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    let payload: String = row.try_get("payload")?;
    let labels: String = row.try_get("labels")?;
    Ok(Job {
        id: parse_id(&id)?,
        kind: row.try_get("kind")?,
        status: parse_state(&status)?,
        payload: json(&payload)?,
        labels: serde_json::from_str(&labels).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        priority: row.try_get("priority")?,
        attempt: row.try_get::<i64, _>("attempt")? as u32,
        max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
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
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
        progress: opt_json(row.try_get("progress")?)?,
        result: opt_json(row.try_get("result")?)?,
        error: opt_json(row.try_get("error")?)?,
        dedupe_key: row.try_get("dedupe_key")?,
        parent_id: row
            .try_get::<Option<String>, _>("parent_id")?
            .as_deref()
            .map(parse_id)
            .transpose()?,
        input: opt_json(row.try_get("input")?)?,
        concurrency,
        rate_limit,
        output: opt_json(row.try_get("output")?)?,
    })
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
    job_from_row(&row)
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

    pub async fn job_insert(
        &self,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Inserted>> {
        let mut tx = self.write.begin().await?;
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
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO ferry_batches (id, tenant_id, kind, total, labels, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(batch.id.to_string())
        .bind(&batch.tenant_id)
        .bind(&batch.kind)
        .bind(jobs.len() as i64)
        .bind(to_text(&batch.labels))
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        insert_jobs(&mut tx, jobs, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn batch_get(&self, tenant_id: &str, id: BatchId) -> StoreResult<Batch> {
        let row = sqlx::query(
            "SELECT kind, labels, created_at, cancelled_at, total FROM ferry_batches WHERE id = ? AND tenant_id = ?",
        )
        .bind(id.to_string())
        .bind(tenant_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(StoreError::NotFound(Entity::Batch))?;
        let mut progress = BatchProgress {
            total: row.try_get::<i64, _>("total")? as u64,
            ..Default::default()
        };
        let counts = sqlx::query(
            "SELECT status, count(*) AS n FROM ferry_jobs WHERE batch_id = ? GROUP BY status",
        )
        .bind(id.to_string())
        .fetch_all(&self.read)
        .await?;
        for c in &counts {
            progress.add(
                parse_state(c.try_get("status")?)?,
                c.try_get::<i64, _>("n")? as u64,
            );
        }
        let labels: String = row.try_get("labels")?;
        let cancelled_at = opt_from_ms(row.try_get("cancelled_at")?)?;
        Ok(Batch {
            id,
            kind: row.try_get("kind")?,
            status: Batch::state_of(&progress, cancelled_at.is_some()),
            progress,
            labels: serde_json::from_str(&labels)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            created_at: from_ms(row.try_get("created_at")?)?,
            cancelled_at,
        })
    }

    /// Finished items of a batch in commit order, after the position `(finish_seq, id)`
    /// (a per-batch counter bumped by the statement that finishes an item).
    pub async fn batch_results(
        &self,
        tenant_id: &str,
        id: BatchId,
        after: Option<(i64, JobId)>,
        limit: u32,
    ) -> StoreResult<Vec<(i64, BatchResult)>> {
        self.batch_get(tenant_id, id).await?;
        let (after_pos, after_id) =
            after.map_or((i64::MIN, String::new()), |(t, id)| (t, id.to_string()));
        let rows = sqlx::query(
            "SELECT id, batch_index, status, result, error, finished_at, finish_seq FROM ferry_jobs \
             WHERE batch_id = ? AND finished_at IS NOT NULL AND finish_seq IS NOT NULL \
               AND (finish_seq, id) > (?, ?) \
             ORDER BY finish_seq, id LIMIT ?",
        )
        .bind(id.to_string())
        .bind(after_pos)
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("finish_seq")?,
                    BatchResult {
                        index: row.try_get::<i64, _>("batch_index")? as u32,
                        job_id: parse_id(row.try_get("id")?)?,
                        status: parse_state(row.try_get("status")?)?,
                        result: opt_json(row.try_get("result")?)?,
                        error: opt_json(row.try_get("error")?)?,
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
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE ferry_batches SET cancelled_at = coalesce(cancelled_at, ?) WHERE id = ? AND tenant_id = ?",
        )
        .bind(ms(now))
        .bind(id.to_string())
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::Batch));
        }
        sqlx::query(
            "UPDATE ferry_jobs SET status = 'cancelled', finished_at = ?1, updated_at = ?1 \
             WHERE batch_id = ?2 AND status IN ('pending', 'scheduled')",
        )
        .bind(ms(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE ferry_jobs SET cancel_requested = 1, updated_at = ?1 WHERE batch_id = ?2 AND status = 'running'",
        )
        .bind(ms(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.batch_get(tenant_id, id).await
    }

    pub async fn job_get(&self, tenant_id: &str, id: JobId) -> StoreResult<Job> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry_jobs WHERE id = ? AND tenant_id = ?"
        ))
        .bind(id.to_string())
        .bind(tenant_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(StoreError::NotFound(Entity::Job))?;
        job_from_row(&row)
    }

    pub async fn job_list(&self, params: &ListParams) -> StoreResult<Vec<Job>> {
        let mut q = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry_jobs WHERE tenant_id = "
        ));
        q.push_bind(params.tenant_id.clone());
        if let Some(status) = params.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(kind) = &params.kind {
            push_kind_filter(&mut q, std::slice::from_ref(kind));
        }
        for (key, value) in &params.labels {
            q.push(" AND id IN (SELECT job_id FROM ferry_job_labels WHERE key = ")
                .push_bind(key.clone())
                .push(" AND value = ")
                .push_bind(value.clone())
                .push(")");
        }
        if let Some(before) = params.before {
            q.push(" AND id < ").push_bind(before.to_string());
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(params.limit as i64);
        let rows = q.build().fetch_all(&self.read).await?;
        rows.iter().map(job_from_row).collect()
    }

    pub async fn job_items(
        &self,
        tenant_id: &str,
        id: JobId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<JobItem>> {
        // The job must exist for this tenant; an empty list then means "no items yet".
        self.job_get(tenant_id, id).await?;
        let rows = sqlx::query(
            "SELECT seq, attempt, data, created_at FROM ferry_job_items \
             WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(id.to_string())
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(JobItem {
                    seq: row.try_get("seq")?,
                    attempt: row.try_get::<i64, _>("attempt")? as u32,
                    data: json(row.try_get("data")?)?,
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
        // One writer commits at a time, so ids are in commit order. The read covers the
        // next `scan` events at most (the primary key's range), matching or not.
        let upper: Option<i64> = sqlx::query_scalar(
            "SELECT max(id) FROM (SELECT id FROM ferry_events WHERE id > ? ORDER BY id LIMIT ?)",
        )
        .bind(after)
        .bind(i64::from(scan.max(limit)))
        .fetch_one(&self.read)
        .await?;
        let Some(upper) = upper else {
            return Ok(ferry_core::api::EventPage {
                events: Vec::new(),
                next_after: after,
            });
        };
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, type, job_id, kind, attempt, data, at FROM ferry_events WHERE tenant_id = ",
        );
        q.push_bind(tenant_id.to_owned())
            .push(" AND id > ")
            .push_bind(after)
            .push(" AND id <= ")
            .push_bind(upper);
        if let Some(job) = filter.job {
            q.push(" AND job_id = ").push_bind(job.to_string());
        }
        push_kind_filter(&mut q, &filter.kinds);
        if !filter.types.is_empty() {
            q.push(" AND type IN (");
            let mut types = q.separated(", ");
            for t in &filter.types {
                types.push_bind(t.clone());
            }
            q.push(")");
        }
        q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = q.build().fetch_all(&self.read).await?;
        let events = rows
            .iter()
            .map(event_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(shared::event_page(events, limit, upper))
    }

    pub async fn event_get(&self, id: i64) -> StoreResult<Option<ferry_core::api::Event>> {
        let row = sqlx::query(
            "SELECT id, type, job_id, kind, attempt, data, at FROM ferry_events WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(event_row).transpose()
    }

    /// The newest event id (a new webhook delivers what comes after it).
    pub async fn events_head(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar::<_, Option<i64>>("SELECT max(id) FROM ferry_events")
                .fetch_one(&self.read)
                .await?
                .unwrap_or(0),
        )
    }

    pub async fn webhook_insert(&self, w: &WebhookRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ferry_webhooks (id, tenant_id, url, sealed_secret, events, kinds, cursor, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(w.id.to_string())
        .bind(&w.tenant_id)
        .bind(&w.url)
        .bind(&w.sealed_secret)
        .bind(serde_json::to_string(&w.events).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(serde_json::to_string(&w.kinds).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(w.cursor)
        .bind(ms(w.created_at))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Webhooks of `tenant` (all tenants' when `None`), oldest first.
    pub async fn webhook_list(&self, tenant_id: Option<&str>) -> StoreResult<Vec<WebhookRow>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, url, sealed_secret, events, kinds, cursor, created_at \
             FROM ferry_webhooks WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WebhookRow {
                    id: parse_id(&row.try_get::<String, _>("id")?)?,
                    tenant_id: row.try_get("tenant_id")?,
                    url: row.try_get("url")?,
                    sealed_secret: row.try_get("sealed_secret")?,
                    events: opt_json(row.try_get("events")?)?.unwrap_or_default(),
                    kinds: opt_json(row.try_get("kinds")?)?.unwrap_or_default(),
                    cursor: row.try_get("cursor")?,
                    created_at: from_ms(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    pub async fn webhook_delete(&self, tenant_id: &str, id: WebhookId) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "DELETE FROM ferry_webhook_deliveries WHERE webhook_id = ? AND EXISTS \
             (SELECT 1 FROM ferry_webhooks WHERE id = ? AND tenant_id = ?)",
        )
        .bind(id.to_string())
        .bind(id.to_string())
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM ferry_webhooks WHERE id = ? AND tenant_id = ?")
            .bind(id.to_string())
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
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
        let mut tx = self.write.begin().await?;
        let moved = sqlx::query("UPDATE ferry_webhooks SET cursor = ? WHERE id = ? AND cursor = ?")
            .bind(to)
            .bind(webhook.to_string())
            .bind(from)
            .execute(&mut *tx)
            .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        let base: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(seq), 0) FROM ferry_webhook_deliveries WHERE webhook_id = ?",
        )
        .bind(webhook.to_string())
        .fetch_one(&mut *tx)
        .await?;
        for (i, (event, job)) in events.iter().enumerate() {
            sqlx::query(
                "INSERT INTO ferry_webhook_deliveries (id, webhook_id, event_id, job_id, seq, status, next_at, created_at) \
                 VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (webhook_id, event_id) DO NOTHING",
            )
            .bind(JobId::new().to_string())
            .bind(webhook.to_string())
            .bind(event)
            .bind(job.map(|j| j.to_string()))
            .bind(base + i as i64 + 1)
            .bind(ms(now))
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
        }
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
             FROM ferry_webhook_deliveries d JOIN ferry_webhooks w ON w.id = d.webhook_id \
             WHERE d.status = 'pending' AND d.next_at <= ? \
               AND NOT EXISTS (SELECT 1 FROM ferry_webhook_deliveries e WHERE e.webhook_id = d.webhook_id \
                   AND e.job_id IS d.job_id AND e.status = 'pending' AND e.seq < d.seq) \
             ORDER BY d.next_at, d.seq LIMIT ?",
        )
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DueDelivery {
                    id: parse_id(&row.try_get::<String, _>("id")?)?,
                    webhook_id: parse_id(&row.try_get::<String, _>("webhook_id")?)?,
                    tenant_id: row.try_get("tenant_id")?,
                    url: row.try_get("url")?,
                    sealed_secret: row.try_get("sealed_secret")?,
                    event_id: row.try_get("event_id")?,
                    attempts: row.try_get::<i64, _>("attempts")? as u32,
                    created_at: from_ms(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    pub async fn delivery_record(&self, id: DeliveryId, o: &DeliveryOutcome) -> StoreResult<()> {
        sqlx::query(
            "UPDATE ferry_webhook_deliveries SET status = ?, attempts = ?, next_at = ?, last_status = ?, \
             last_error = ?, delivered_at = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(o.status)
        .bind(i64::from(o.attempts))
        .bind(ms(o.next_at))
        .bind(o.last_status.map(i64::from))
        .bind(&o.last_error)
        .bind(o.delivered_at.map(ms))
        .bind(id.to_string())
        .execute(&self.write)
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
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM ferry_webhooks WHERE id = ? AND tenant_id = ?")
                .bind(webhook.to_string())
                .bind(tenant_id)
                .fetch_optional(&self.read)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT id, event_id, status, attempts, next_at, last_status, last_error, created_at, delivered_at \
             FROM ferry_webhook_deliveries WHERE webhook_id = ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(webhook.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeliveryInfo {
                    id: parse_id(&row.try_get::<String, _>("id")?)?,
                    event_id: row.try_get("event_id")?,
                    status: row.try_get("status")?,
                    attempts: row.try_get::<i64, _>("attempts")? as u32,
                    next_at: from_ms(row.try_get("next_at")?)?,
                    last_status: row
                        .try_get::<Option<i64>, _>("last_status")?
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
            "UPDATE ferry_webhook_deliveries SET status = 'pending', attempts = 0, next_at = ?, \
             created_at = ?, last_error = NULL WHERE id = ? AND webhook_id = ? AND status = 'dead' \
             AND EXISTS (SELECT 1 FROM ferry_webhooks WHERE id = ? AND tenant_id = ?)",
        )
        .bind(ms(now))
        .bind(ms(now))
        .bind(delivery.to_string())
        .bind(webhook.to_string())
        .bind(webhook.to_string())
        .bind(tenant_id)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn events_prune(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        // Events are appended in time order: the oldest are the first by id, and the scan
        // stops at the first one young enough to keep (no index on `at` to maintain).
        let done = sqlx::query(
            "DELETE FROM ferry_events WHERE id IN (SELECT id FROM ferry_events WHERE id < \
             coalesce((SELECT min(id) FROM (SELECT id FROM ferry_events WHERE at >= ?1 \
             ORDER BY id LIMIT 1)), 9223372036854775807) ORDER BY id LIMIT ?2)",
        )
        .bind(ms(before))
        .bind(i64::from(limit))
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    /// Whether due claimable jobs of `kinds` carry a concurrency or rate key.
    async fn keyed_due(&self, p: &ClaimParams<'_>) -> StoreResult<bool> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT EXISTS (SELECT 1 FROM ferry_jobs INDEXED BY ferry_jobs_keyed_ready \
             WHERE tenant_id = ",
        );
        q.push_bind(p.tenant_id.to_owned())
            .push(
                " AND status IN ('pending', 'scheduled') \
                 AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL) AND run_at <= ",
            )
            .push_bind(ms(p.now));
        push_kind_filter(&mut q, p.kinds);
        q.push(")");
        Ok(q.build_query_scalar::<bool>().fetch_one(&self.read).await?)
    }

    pub async fn job_claim(&self, p: &ClaimParams<'_>) -> StoreResult<Vec<ClaimedJob>> {
        let now = ms(p.now);
        // Keyed jobs are admitted against their keys (`shared::push_admitted`); the one
        // writer makes that statement atomic. Without any, the plain claim runs, and it
        // never takes a keyed job.
        let keyed = if self.keyed_hint.recent(now) {
            true
        } else {
            let keyed = self.keyed_due(p).await?;
            self.keyed_hint.record(now, keyed);
            keyed
        };
        let mut q = QueryBuilder::<Sqlite>::new("");
        if keyed {
            shared::push_admitted(&mut q, &shared::SQLITE, p.tenant_id, now, p.max_jobs, |q| {
                push_kind_filter(q, p.kinds);
                push_not_paused(q, p.tenant_id);
            });
        }
        q.push("UPDATE ferry_jobs SET status = 'running', attempt = attempt + 1, worker_id = ")
            .push_bind(p.worker_id.to_owned())
            // A job with `then` or `output` gets a lease token marked `c` (see
            // `shared::CHAINED_LEASE`).
            .push(
                ", lease_token = CASE WHEN then_specs IS NULL AND output IS NULL THEN '' ELSE 'c' END \
                 || lower(hex(randomblob(16))), lease_ms = ",
            )
            .push_bind(p.lease_ms as i64)
            .push(", lease_expires_at = ")
            .push_bind(now + p.lease_ms as i64)
            .push(", started_at = ")
            .push_bind(now)
            .push(", deadline_at = timeout_ms + ")
            .push_bind(now)
            .push(", updated_at = ")
            .push_bind(now)
            .push(", progress = NULL WHERE id IN (");
        if keyed {
            q.push("SELECT id FROM admitted) AND status IN ('pending', 'scheduled'");
        } else {
            // INDEXED BY: only claimable rows are read, however long the history of
            // finished jobs of the same kind (the kind index would read all of them).
            q.push("SELECT id FROM ferry_jobs INDEXED BY ferry_jobs_ready WHERE tenant_id = ")
                .push_bind(p.tenant_id.to_owned())
                .push(
                    " AND status IN ('pending', 'scheduled') AND concurrency_key IS NULL \
                     AND rate_key IS NULL AND run_at <= ",
                )
                .push_bind(now);
            push_kind_filter(&mut q, p.kinds);
            push_not_paused(&mut q, p.tenant_id);
            // The limit is written into the statement, not bound: SQLite plans with a bound
            // LIMIT's value and then re-prepares the statement every time it is bound again.
            // It is a number, so this is safe; each batch size gets its own cached statement.
            q.push(" ORDER BY priority DESC, run_at, id LIMIT ")
                .push(p.max_jobs);
        }
        q.push(
            ") RETURNING id, kind, payload, labels, attempt, max_attempts, lease_token, \
                 lease_expires_at, deadline_at, priority, run_at, input",
        );
        let rows = q.build().fetch_all(&self.write).await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let labels: String = row.try_get("labels")?;
            let order = (
                -row.try_get::<i64, _>("priority")?,
                row.try_get::<i64, _>("run_at")?,
            );
            jobs.push((
                order,
                ClaimedJob {
                    id: parse_id(row.try_get("id")?)?,
                    kind: row.try_get("kind")?,
                    payload: json(row.try_get("payload")?)?,
                    labels: serde_json::from_str(&labels)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    attempt: row.try_get::<i64, _>("attempt")? as u32,
                    max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
                    lease: row.try_get("lease_token")?,
                    lease_ms: p.lease_ms,
                    lease_expires_at: from_ms(row.try_get("lease_expires_at")?)?,
                    deadline: from_ms(row.try_get("deadline_at")?)?,
                    input: opt_json(row.try_get("input")?)?,
                },
            ));
        }
        // RETURNING has no order; hand jobs out in claim order.
        jobs.sort_by_key(|a| (a.0, a.1.id));
        Ok(jobs.into_iter().map(|(_, job)| job).collect())
    }

    pub async fn job_counts(&self, tenant_id: &str) -> StoreResult<Vec<(JobState, u64)>> {
        let rows = sqlx::query(
            "SELECT status, count(*) AS n FROM ferry_jobs WHERE tenant_id = ? GROUP BY status",
        )
        .bind(tenant_id)
        .fetch_all(&self.read)
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
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT min(run_at) AS next FROM ferry_jobs INDEXED BY ferry_jobs_ready WHERE tenant_id = ",
        );
        q.push_bind(tenant_id.to_owned())
            .push(" AND status IN ('pending', 'scheduled') AND run_at > ")
            .push_bind(ms(now));
        push_kind_filter(&mut q, kinds);
        push_not_paused(&mut q, tenant_id);
        let due: Option<i64> = q.build().fetch_one(&self.read).await?.try_get("next")?;
        let mut q = QueryBuilder::<Sqlite>::new("");
        shared::push_rate_opening(&mut q, &shared::SQLITE, tenant_id, ms(now), |q| {
            push_kind_filter(q, kinds);
            push_not_paused(q, tenant_id);
        });
        let opening: Option<i64> = q.build().fetch_one(&self.read).await?.try_get("next")?;
        opt_from_ms(due.into_iter().chain(opening).min())
    }

    pub async fn job_heartbeat(
        &self,
        id: JobId,
        lease: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<LeaseStatus> {
        let mut conn = self.write.acquire().await?;
        let row = sqlx::query(
            "UPDATE ferry_jobs SET lease_expires_at = ? + lease_ms, updated_at = ? \
             WHERE id = ? AND lease_token = ? AND status = 'running' \
             RETURNING lease_expires_at, cancel_requested",
        )
        .bind(ms(now))
        .bind(ms(now))
        .bind(id.to_string())
        .bind(lease)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => Ok(LeaseStatus {
                lease_expires_at: from_ms(row.try_get("lease_expires_at")?)?,
                cancel: row.try_get::<i64, _>("cancel_requested")? != 0,
            }),
            None => Err(lease_lost(&mut conn, id).await),
        }
    }

    pub async fn job_progress(&self, p: &ProgressParams<'_>) -> StoreResult<LeaseStatus> {
        let mut tx = self.write.begin().await?;
        let patch = p.progress.as_ref().map(to_text);
        let row = sqlx::query(
            "UPDATE ferry_jobs SET \
             progress = CASE WHEN ?1 IS NULL THEN progress ELSE json_patch(coalesce(progress, '{}'), ?1) END, \
             lease_expires_at = ?2 + lease_ms, updated_at = ?2 \
             WHERE id = ?3 AND lease_token = ?4 AND status = 'running' \
             RETURNING lease_expires_at, cancel_requested, attempt, output",
        )
        .bind(patch)
        .bind(ms(p.now))
        .bind(p.id.to_string())
        .bind(p.lease)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(lease_lost(&mut tx, p.id).await);
        };
        if !p.items.is_empty() {
            let output: Option<ferry_core::dataset::Output> = opt_json(row.try_get("output")?)?;
            crate::datasets::check_items(output.as_ref(), p.items)?;
            let attempt: i64 = row.try_get("attempt")?;
            let first = match p.items_offset {
                Some(offset) => offset as i64,
                None => sqlx::query_scalar::<_, i64>(
                    "SELECT coalesce(max(idx) + 1, 0) FROM ferry_job_items WHERE job_id = ? AND lease_token = ?",
                )
                .bind(p.id.to_string())
                .bind(p.lease)
                .fetch_one(&mut *tx)
                .await?,
            };
            for (i, item) in p.items.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO ferry_job_items (job_id, attempt, lease_token, idx, data, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, lease_token, idx) DO NOTHING",
                )
                .bind(p.id.to_string())
                .bind(attempt)
                .bind(p.lease)
                .bind(first + i as i64)
                .bind(to_text(item))
                .bind(ms(p.now))
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(data) = shared::progress_event(p) {
            sqlx::query(
                "INSERT INTO ferry_events (tenant_id, type, job_id, kind, attempt, data, at) \
                 SELECT tenant_id, 'job.progress', id, kind, attempt, ?, ? FROM ferry_jobs WHERE id = ?",
            )
            .bind(to_text(&data))
            .bind(ms(p.now))
            .bind(p.id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        let status = LeaseStatus {
            lease_expires_at: from_ms(row.try_get("lease_expires_at")?)?,
            cancel: row.try_get::<i64, _>("cancel_requested")? != 0,
        };
        tx.commit().await?;
        Ok(status)
    }

    /// Completes a batch in one transaction; one answer per entry, in order.
    pub async fn job_complete(
        &self,
        entries: &[CompleteParams<'_>],
        now: DateTime<Utc>,
    ) -> StoreResult<Completed> {
        if entries.is_empty() {
            return Ok(Completed::default());
        }
        let mut conn = self.write.acquire().await?;
        // A job with `then` needs its result and its children in one transaction. Others
        // skip BEGIN/COMMIT (which cost as much again as the update on this path) and
        // RETURNING (sqlx hands every returned row across a thread). Which is which shows in
        // the lease token, marked at claim, so finding out costs no query.
        let chained = entries
            .iter()
            .any(|e| e.lease.starts_with(shared::CHAINED_LEASE));
        if chained || entries.len() > 5_000 {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            // Datasets first: a run the dataset refuses fails its job instead.
            let (changes, refused) = apply_runs(&mut tx, entries, now).await?;
            let mut applied = std::collections::HashSet::new();
            let mut children = Vec::new();
            for chunk in entries.chunks(5_000) {
                let mut q = complete_update(chunk, now);
                q.push(
                    " RETURNING ferry_jobs.id, ferry_jobs.tenant_id, ferry_jobs.then_specs, \
                     ferry_jobs.result",
                );
                for row in q.build().fetch_all(&mut *tx).await? {
                    let id = parse_id(row.try_get("id")?)?;
                    applied.insert(id);
                    if let Some(then) =
                        opt_json::<Vec<ferry_core::api::SubmitJob>>(row.try_get("then_specs")?)?
                    {
                        let result = opt_json::<Value>(row.try_get("result")?)?.unwrap_or_default();
                        let tenant: String = row.try_get("tenant_id")?;
                        children.extend(shared::children(id, &tenant, then, &result, now)?);
                    }
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
        let changed = complete_update(entries, now)
            .build()
            .execute(&mut *conn)
            .await?
            .rows_affected();
        // The common case: every entry applied now. Otherwise look at each entry: an
        // idempotent repeat (completed with this very lease) or a report that lost its lease.
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
        let mut tx = self.write.begin().await?;
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
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry_jobs WHERE id = ? AND tenant_id = ?"
        ))
        .bind(id.to_string())
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound(Entity::Job))?;
        let job = job_from_row(&row)?;
        match job.status {
            JobState::Scheduled | JobState::Pending => {
                sqlx::query(
                    "UPDATE ferry_jobs SET status = 'cancelled', finished_at = ?, updated_at = ? \
                     WHERE id = ? AND status = ?",
                )
                .bind(ms(now))
                .bind(ms(now))
                .bind(id.to_string())
                .bind(job.status.as_str())
                .execute(&mut *tx)
                .await?;
            }
            JobState::Running => {
                sqlx::query(
                    "UPDATE ferry_jobs SET cancel_requested = 1, updated_at = ? WHERE id = ? AND status = 'running'",
                )
                .bind(ms(now))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            JobState::Cancelled => return Ok(job),
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
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE ferry_jobs SET status = 'pending', attempt = 0, run_at = ?1, finished_at = NULL, \
             cancel_requested = 0, progress = NULL, lease_expires_at = NULL, updated_at = ?1 \
             WHERE id = ?2 AND tenant_id = ?3 AND status IN ('failed', 'cancelled')",
        )
        .bind(ms(now))
        .bind(id.to_string())
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

    /// Fails (retry, dead or cancelled) up to `limit` running attempts whose lease or
    /// deadline passed before `now`.
    pub async fn job_fail_overdue(
        &self,
        which: Overdue,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Transition>> {
        let column = match which {
            Overdue::Lease => "lease_expires_at",
            Overdue::Deadline => "deadline_at",
        };
        let error = shared::overdue_error(which);
        let mut tx = self.write.begin().await?;
        // `column` is one of two fixed names above, never input.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, kind, lease_token FROM ferry_jobs WHERE status = 'running' AND {column} < ? \
             LIMIT ?"
        )))
        .bind(ms(now))
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id = parse_id(row.try_get("id")?)?;
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
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?1) \
             INSERT INTO ferry_jobs (id, tenant_id, kind, status, payload, labels, run_at, attempt, \
             max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms, lease_token, created_at, \
             updated_at, started_at, finished_at, result) \
             SELECT printf('00000000-0000-7000-8000-%012d', n), ?2, ?3, 'completed', '{}', '{}', ?4, 1, \
             3, 1800000, 1000, 600000, lower(hex(randomblob(16))), ?4, ?4, ?4, ?4, '{}' FROM g",
        )
        .bind(n as i64)
        .bind(tenant_id)
        .bind(kind)
        .bind(ms(at))
        .execute(&self.write)
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
            "INSERT INTO ferry_paused_kinds (tenant_id, pattern, exact, prefix, paused_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, pattern) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(pattern.to_string())
        .bind(exact)
        .bind(prefix)
        .bind(ms(now))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn kind_resume(&self, tenant_id: &str, pattern: &KindPattern) -> StoreResult<()> {
        sqlx::query("DELETE FROM ferry_paused_kinds WHERE tenant_id = ? AND pattern = ?")
            .bind(tenant_id)
            .bind(pattern.to_string())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The running job `id` if `lease` is its current lease.
    pub async fn job_leased(&self, id: JobId, lease: &str) -> StoreResult<Option<LeasedJob>> {
        let row = sqlx::query(
            "SELECT tenant_id, payload, attempt FROM ferry_jobs \
             WHERE id = ? AND lease_token = ? AND status = 'running'",
        )
        .bind(id.to_string())
        .bind(lease)
        .fetch_optional(&self.read)
        .await?;
        row.map(|row| {
            Ok(LeasedJob {
                tenant_id: row.try_get("tenant_id")?,
                payload: opt_json(row.try_get("payload")?)?.unwrap_or(Value::Null),
                attempt: row.try_get::<i64, _>("attempt")? as u32,
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
            "INSERT INTO ferry_sessions (tenant_id, name, sealed, updated_at, saved_by_job) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, name) DO UPDATE SET \
             sealed = excluded.sealed, updated_at = excluded.updated_at, saved_by_job = excluded.saved_by_job",
        )
        .bind(tenant_id)
        .bind(name)
        .bind(sealed)
        .bind(ms(now))
        .bind(job.map(|j| j.to_string()))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn session_get(&self, tenant_id: &str, name: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar(
                "SELECT sealed FROM ferry_sessions WHERE tenant_id = ? AND name = ?",
            )
            .bind(tenant_id)
            .bind(name)
            .fetch_optional(&self.read)
            .await?,
        )
    }

    pub async fn session_list(&self, tenant_id: &str) -> StoreResult<Vec<SessionInfo>> {
        let rows = sqlx::query(
            "SELECT name, length(sealed) AS size, updated_at, saved_by_job FROM ferry_sessions \
             WHERE tenant_id = ? ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SessionInfo {
                    name: row.try_get("name")?,
                    size_bytes: row.try_get::<i64, _>("size")? as u64,
                    updated_at: from_ms(row.try_get("updated_at")?)?,
                    saved_by_job: row
                        .try_get::<Option<String>, _>("saved_by_job")?
                        .as_deref()
                        .map(parse_id)
                        .transpose()?,
                })
            })
            .collect()
    }

    pub async fn session_delete(&self, tenant_id: &str, name: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM ferry_sessions WHERE tenant_id = ? AND name = ?")
            .bind(tenant_id)
            .bind(name)
            .execute(&self.write)
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
            "INSERT INTO ferry_artifacts (job_id, name, tenant_id, content_type, size_bytes, attempt, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, name) DO UPDATE SET \
             content_type = excluded.content_type, size_bytes = excluded.size_bytes, \
             attempt = excluded.attempt, created_at = excluded.created_at",
        )
        .bind(job_id.to_string())
        .bind(&artifact.name)
        .bind(tenant_id)
        .bind(&artifact.content_type)
        .bind(artifact.size_bytes as i64)
        .bind(i64::from(artifact.attempt))
        .bind(ms(artifact.created_at))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn artifact_list(
        &self,
        tenant_id: &str,
        job_id: JobId,
    ) -> StoreResult<Vec<ArtifactInfo>> {
        let rows = sqlx::query(
            "SELECT name, content_type, size_bytes, attempt, created_at FROM ferry_artifacts \
             WHERE job_id = ? AND tenant_id = ? ORDER BY created_at, name",
        )
        .bind(job_id.to_string())
        .bind(tenant_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ArtifactInfo {
                    name: row.try_get("name")?,
                    content_type: row.try_get("content_type")?,
                    size_bytes: row.try_get::<i64, _>("size_bytes")? as u64,
                    attempt: row.try_get::<i64, _>("attempt")? as u32,
                    created_at: from_ms(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    /// Artifacts whose job was deleted (by retention), to remove.
    pub async fn artifacts_orphaned(&self, limit: u32) -> StoreResult<Vec<(JobId, String)>> {
        let rows = sqlx::query(
            "SELECT a.job_id, a.name FROM ferry_artifacts a \
             WHERE NOT EXISTS (SELECT 1 FROM ferry_jobs j WHERE j.id = a.job_id) LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_id(&row.try_get::<String, _>("job_id")?)?,
                    row.try_get("name")?,
                ))
            })
            .collect()
    }

    pub async fn artifact_delete(&self, job_id: JobId, name: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM ferry_artifacts WHERE job_id = ? AND name = ?")
            .bind(job_id.to_string())
            .bind(name)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Adds a schedule; false when the tenant has one of that name.
    pub async fn schedule_insert(&self, tenant_id: &str, s: &Schedule) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO ferry_schedules (id, tenant_id, name, cron, timezone, job, catch_up, paused, next_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, name) DO NOTHING",
        )
        .bind(s.id.to_string())
        .bind(tenant_id)
        .bind(&s.name)
        .bind(&s.cron)
        .bind(&s.timezone)
        .bind(serde_json::to_string(&s.job).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(s.catch_up)
        .bind(s.paused)
        .bind(ms(s.next_at))
        .bind(ms(s.created_at))
        .execute(&self.write)
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
             FROM ferry_schedules WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("tenant_id")?,
                    Schedule {
                        id: parse_id(&row.try_get::<String, _>("id")?)?,
                        name: row.try_get("name")?,
                        cron: row.try_get("cron")?,
                        timezone: row.try_get("timezone")?,
                        job: opt_json(row.try_get("job")?)?.unwrap_or_default(),
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
        let done = sqlx::query("DELETE FROM ferry_schedules WHERE tenant_id = ? AND name = ?")
            .bind(tenant_id)
            .bind(name)
            .execute(&self.write)
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
            "UPDATE ferry_schedules SET paused = ?, next_at = CASE WHEN ? THEN next_at ELSE ? END \
             WHERE tenant_id = ? AND name = ?",
        )
        .bind(paused)
        .bind(paused)
        .bind(ms(next_at))
        .bind(tenant_id)
        .bind(name)
        .execute(&self.write)
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
            "UPDATE ferry_schedules SET next_at = ?, last_at = coalesce(?, last_at) WHERE id = ? AND next_at = ?",
        )
        .bind(ms(next))
        .bind(fired.map(ms))
        .bind(id.to_string())
        .bind(ms(expected))
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn kind_paused(&self, tenant_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT pattern FROM ferry_paused_kinds WHERE tenant_id = ? ORDER BY pattern",
        )
        .bind(tenant_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Moves due `scheduled` jobs to `pending`.
    pub async fn job_promote_scheduled(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE ferry_jobs SET status = 'pending', updated_at = ?1 WHERE id IN \
             (SELECT id FROM ferry_jobs WHERE status = 'scheduled' AND run_at <= ?1 LIMIT ?2) \
             AND status = 'scheduled'",
        )
        .bind(ms(now))
        .bind(limit as i64)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes up to `limit` jobs that finished before `before` (their items and labels go with them).
    pub async fn rate_prune(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let horizon = ms(now) - ferry_core::flow::MAX_RATE_WINDOW_MS as i64;
        let done = sqlx::query(
            "DELETE FROM ferry_rate_starts WHERE seq IN (SELECT seq FROM ferry_rate_starts \
             WHERE at < ? ORDER BY at LIMIT ?)",
        )
        .bind(horizon)
        .bind(limit as i64)
        .execute(&self.write)
        .await?;
        sqlx::query("DELETE FROM ferry_rate_keys WHERE blocked_until < ?")
            .bind(ms(now))
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn job_delete_finished(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM ferry_jobs WHERE id IN (SELECT id FROM ferry_jobs \
             WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < ? LIMIT ?)",
        )
        .bind(ms(before))
        .bind(limit as i64)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Applies the dataset runs of the jobs among `entries` that have `output` (still running
/// under the entry's lease), in `RunSource::order`; a refused run fails its job. Answers the
/// changes to record once the jobs are completed, and the jobs that failed.
async fn apply_runs(
    tx: &mut SqliteConnection,
    entries: &[CompleteParams<'_>],
    now: DateTime<Utc>,
) -> StoreResult<(
    Vec<(
        crate::datasets::RunSource,
        ferry_core::dataset::DatasetChange,
    )>,
    std::collections::HashSet<JobId>,
)> {
    let leases: std::collections::HashMap<String, &str> = entries
        .iter()
        .map(|e| (e.id.to_string(), e.lease))
        .collect();
    let ids: Vec<&String> = leases.keys().collect();
    let rows = sqlx::query(
        "SELECT id, output, tenant_id, kind, attempt, lease_token FROM ferry_jobs \
         WHERE id IN (SELECT value FROM json_each(?)) AND status = 'running' \
         AND output IS NOT NULL",
    )
    .bind(to_text(&ids))
    .fetch_all(&mut *tx)
    .await?;
    let mut runs = Vec::new();
    for row in rows {
        let id: String = row.try_get("id")?;
        let lease: String = row.try_get("lease_token")?;
        let (Some(&expected), Some(output)) = (leases.get(&id), opt_json(row.try_get("output")?)?)
        else {
            continue;
        };
        if lease != expected {
            continue;
        }
        runs.push(crate::datasets::RunSource {
            tenant_id: row.try_get("tenant_id")?,
            job_id: parse_id(&id)?,
            kind: row.try_get("kind")?,
            attempt: row.try_get("attempt")?,
            lease,
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

/// `UPDATE … FROM (VALUES …)` completing `entries` (at most 5,000: 3 parameters each).
fn complete_update(entries: &[CompleteParams<'_>], now: DateTime<Utc>) -> QueryBuilder<Sqlite> {
    let mut q = QueryBuilder::<Sqlite>::new(
        // The error of an earlier attempt stays in the event record, not on a completed job.
        "UPDATE ferry_jobs SET status = 'completed', result = v.column3, error = NULL, finished_at = ",
    );
    q.push_bind(ms(now))
        .push(", updated_at = ")
        .push_bind(ms(now))
        .push(", lease_expires_at = NULL FROM (");
    q.push_values(entries, |mut b, e| {
        b.push_bind(e.id.to_string())
            .push_bind(e.lease.to_owned())
            .push_bind(to_text(e.result));
    });
    q.push(
        ") AS v WHERE ferry_jobs.id = v.column1 AND ferry_jobs.lease_token = v.column2 \
         AND ferry_jobs.status = 'running'",
    );
    q
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
            held.insert(job.id, job_from_row(&row)?);
        }
    }
    let to_insert: Vec<&NewJob> = jobs.iter().filter(|j| !held.contains_key(&j.id)).collect();
    // Multi-row statements: one round trip to SQLite per chunk, not per job
    // (26 parameters a row, well under SQLite's 32766).
    for chunk in to_insert.chunks(500) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO ferry_jobs (id, tenant_id, kind, status, payload, labels, priority, \
             run_at, max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms, created_at, \
             updated_at, dedupe_key, batch_id, batch_index, then_specs, parent_id, \
             concurrency_key, concurrency_limit, rate_key, rate_interval_ms, rate_max, rate_per_ms, \
             output, input) ",
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
                .push_bind(job.input.as_ref().map(to_text));
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
            job: job_from_row(&row)?,
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
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("t.db"), Durability::Normal)
            .await
            .expect("open");
        let rows = sqlx::query(sql)
            .fetch_all(&store.read)
            .await
            .expect("explain");
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
