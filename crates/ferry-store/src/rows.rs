//! Row decoding, written once for both backends. The two store some columns differently
//! (ids as TEXT or UUID, JSON as TEXT or JSONB, flags as INTEGER or BOOLEAN, counters as
//! INTEGER or INT4); [`Columns`] reads a column as Ferry's type whatever the backend
//! stored, and the decoders below build the domain types from any row that has it.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use ferry_core::{Backoff, Job, JobId, id::ParseIdError};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::{Column, Row, TypeInfo, postgres::PgRow, sqlite::SqliteRow};
use uuid::Uuid;

use crate::{StoreError, StoreResult, shared};

/// One row's columns as Ferry's types.
pub(crate) trait Columns {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn bytes(&self, col: &str) -> StoreResult<Vec<u8>>;
    /// Any integer column, whatever its width.
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, col: &str) -> StoreResult<bool>;
    fn opt_id<T: From<Uuid> + FromStr<Err = ParseIdError>>(
        &self,
        col: &str,
    ) -> StoreResult<Option<T>>;
    /// A JSON column (`NULL` is `None`).
    fn opt_value(&self, col: &str) -> StoreResult<Option<Value>>;

    fn int(&self, col: &str) -> StoreResult<i64> {
        self.opt_int(col)?
            .ok_or_else(|| StoreError::Corrupt(format!("{col} is NULL")))
    }

    fn id<T: From<Uuid> + FromStr<Err = ParseIdError>>(&self, col: &str) -> StoreResult<T> {
        self.opt_id(col)?
            .ok_or_else(|| StoreError::Corrupt(format!("{col} is NULL")))
    }

    /// A time stored as milliseconds since the epoch.
    fn time(&self, col: &str) -> StoreResult<DateTime<Utc>> {
        from_ms(self.int(col)?)
    }

    fn opt_time(&self, col: &str) -> StoreResult<Option<DateTime<Utc>>> {
        opt_from_ms(self.opt_int(col)?)
    }

    fn value(&self, col: &str) -> StoreResult<Value> {
        self.opt_value(col)?
            .ok_or_else(|| StoreError::Corrupt(format!("{col} is NULL")))
    }

    /// A JSON column as `T` (each backend decodes it in one step, without an
    /// intermediate `Value`).
    fn opt_json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<Option<T>>;
}

fn corrupt(col: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{col}: {e}"))
}

/// An id stored as text (SQLite).
pub(crate) fn parse_id<T: FromStr<Err = ParseIdError>>(text: &str) -> StoreResult<T> {
    text.parse()
        .map_err(|e: ParseIdError| StoreError::Corrupt(format!("{text:?}: {e}")))
}

pub(crate) fn opt_from_ms(ms: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    ms.map(from_ms).transpose()
}

pub(crate) fn from_ms(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("bad time {ms}")))
}

impl Columns for SqliteRow {
    fn text(&self, col: &str) -> StoreResult<String> {
        Ok(self.try_get(col)?)
    }

    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(col)?)
    }

    fn bytes(&self, col: &str) -> StoreResult<Vec<u8>> {
        Ok(self.try_get(col)?)
    }

    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
        Ok(self.try_get(col)?)
    }

    fn flag(&self, col: &str) -> StoreResult<bool> {
        Ok(self.try_get::<i64, _>(col)? != 0)
    }

    fn opt_id<T: From<Uuid> + FromStr<Err = ParseIdError>>(
        &self,
        col: &str,
    ) -> StoreResult<Option<T>> {
        self.try_get::<Option<&str>, _>(col)?
            .map(parse_id)
            .transpose()
    }

    fn opt_value(&self, col: &str) -> StoreResult<Option<Value>> {
        self.opt_json(col)
    }

    fn opt_json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<Option<T>> {
        self.try_get::<Option<&str>, _>(col)?
            .map(|text| serde_json::from_str(text).map_err(|e| corrupt(col, e)))
            .transpose()
    }
}

impl Columns for PgRow {
    fn text(&self, col: &str) -> StoreResult<String> {
        Ok(self.try_get(col)?)
    }

    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        Ok(self.try_get(col)?)
    }

    fn bytes(&self, col: &str) -> StoreResult<Vec<u8>> {
        Ok(self.try_get(col)?)
    }

    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
        let column = self.try_column(col)?;
        Ok(match column.type_info().name() {
            "INT2" => self.try_get::<Option<i16>, _>(col)?.map(i64::from),
            "INT4" => self.try_get::<Option<i32>, _>(col)?.map(i64::from),
            _ => self.try_get(col)?,
        })
    }

    fn flag(&self, col: &str) -> StoreResult<bool> {
        Ok(self.try_get(col)?)
    }

    fn opt_id<T: From<Uuid> + FromStr<Err = ParseIdError>>(
        &self,
        col: &str,
    ) -> StoreResult<Option<T>> {
        Ok(self.try_get::<Option<Uuid>, _>(col)?.map(T::from))
    }

    fn opt_value(&self, col: &str) -> StoreResult<Option<Value>> {
        Ok(self.try_get(col)?)
    }

    fn opt_json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<Option<T>> {
        self.try_get::<Option<sqlx::types::Json<T>>, _>(col)
            .map(|v| v.map(|sqlx::types::Json(t)| t))
            .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
    }
}

/// A job from a row with every job column (`job_columns!`).
pub(crate) fn job(row: &impl Columns) -> StoreResult<Job> {
    let (concurrency, rate_limit) = shared::FlowColumns {
        concurrency_key: row.opt_text("concurrency_key")?,
        concurrency_limit: row.opt_int("concurrency_limit")?,
        rate_key: row.opt_text("rate_key")?,
        rate_interval_ms: row.opt_int("rate_interval_ms")?,
        rate_max: row.opt_int("rate_max")?,
        rate_per_ms: row.opt_int("rate_per_ms")?,
    }
    .split();
    Ok(Job {
        id: row.id("id")?,
        kind: row.text("kind")?,
        status: state(&row.text("status")?)?,
        payload: row.value("payload")?,
        labels: row.opt_json("labels")?.unwrap_or_default(),
        priority: row.int("priority")? as i32,
        attempt: row.int("attempt")? as u32,
        max_attempts: row.int("max_attempts")? as u32,
        timeout_ms: row.int("timeout_ms")? as u64,
        backoff: Backoff {
            base_ms: row.int("backoff_base_ms")? as u64,
            max_ms: row.int("backoff_max_ms")? as u64,
        },
        run_at: row.time("run_at")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        started_at: row.opt_time("started_at")?,
        finished_at: row.opt_time("finished_at")?,
        worker_id: row.opt_text("worker_id")?,
        lease_expires_at: row.opt_time("lease_expires_at")?,
        deadline_at: row.opt_time("deadline_at")?,
        cancel_requested: row.flag("cancel_requested")?,
        progress: row.opt_json("progress")?,
        result: row.opt_value("result")?,
        error: row.opt_json("error")?,
        dedupe_key: row.opt_text("dedupe_key")?,
        parent_id: row.opt_id::<JobId>("parent_id")?,
        input: row.opt_value("input")?,
        concurrency,
        rate_limit,
        output: row.opt_json("output")?,
        trace_id: row
            .opt_text("traceparent")?
            .and_then(|t| ferry_core::TraceParent::parse(&t))
            .map(|t| t.trace_id().to_owned()),
    })
}

/// An event of the record.
pub(crate) fn event(row: &impl Columns) -> StoreResult<ferry_core::api::Event> {
    Ok(ferry_core::api::Event {
        id: row.int("id")?,
        event_type: row.text("type")?,
        job_id: row.opt_id("job_id")?,
        kind: row.opt_text("kind")?,
        attempt: row.opt_int("attempt")?.map(|a| a as u32),
        data: row.opt_value("data")?,
        at: row.time("at")?,
    })
}

/// A registered webhook (its secret still sealed).
pub(crate) fn webhook(row: &impl Columns) -> StoreResult<crate::WebhookRow> {
    Ok(crate::WebhookRow {
        id: row.id("id")?,
        tenant_id: row.text("tenant_id")?,
        url: row.text("url")?,
        sealed_secret: row.bytes("sealed_secret")?,
        events: row.opt_json("events")?.unwrap_or_default(),
        kinds: row.opt_json("kinds")?.unwrap_or_default(),
        cursor: row.int("cursor")?,
        created_at: row.time("created_at")?,
    })
}

/// A delivery due to be sent, joined with its webhook.
pub(crate) fn due_delivery(row: &impl Columns) -> StoreResult<crate::DueDelivery> {
    Ok(crate::DueDelivery {
        id: row.id("id")?,
        webhook_id: row.id("webhook_id")?,
        tenant_id: row.text("tenant_id")?,
        url: row.text("url")?,
        sealed_secret: row.bytes("sealed_secret")?,
        event_id: row.int("event_id")?,
        attempts: row.int("attempts")? as u32,
        created_at: row.time("created_at")?,
    })
}

/// One delivery of the log.
pub(crate) fn delivery(row: &impl Columns) -> StoreResult<ferry_core::api::DeliveryInfo> {
    Ok(ferry_core::api::DeliveryInfo {
        id: row.id("id")?,
        event_id: row.int("event_id")?,
        status: row.text("status")?,
        attempts: row.int("attempts")? as u32,
        next_at: row.time("next_at")?,
        last_status: row.opt_int("last_status")?.map(|s| s as u16),
        last_error: row.opt_text("last_error")?,
        created_at: row.time("created_at")?,
        delivered_at: row.opt_time("delivered_at")?,
    })
}

/// A saved session's description (never its contents).
pub(crate) fn session(row: &impl Columns) -> StoreResult<ferry_core::api::SessionInfo> {
    Ok(ferry_core::api::SessionInfo {
        name: row.text("name")?,
        size_bytes: row.int("size")? as u64,
        updated_at: row.time("updated_at")?,
        saved_by_job: row.opt_id("saved_by_job")?,
    })
}

/// An artifact's index entry.
pub(crate) fn artifact(row: &impl Columns) -> StoreResult<ferry_core::api::ArtifactInfo> {
    Ok(ferry_core::api::ArtifactInfo {
        name: row.text("name")?,
        content_type: row.text("content_type")?,
        size_bytes: row.int("size_bytes")? as u64,
        attempt: row.int("attempt")? as u32,
        created_at: row.time("created_at")?,
    })
}

/// A schedule and its tenant.
pub(crate) fn schedule(
    row: &impl Columns,
) -> StoreResult<(String, ferry_core::schedule::Schedule)> {
    Ok((
        row.text("tenant_id")?,
        ferry_core::schedule::Schedule {
            id: row.id("id")?,
            name: row.text("name")?,
            cron: row.text("cron")?,
            timezone: row.text("timezone")?,
            job: row.opt_json("job")?.unwrap_or_default(),
            catch_up: row.flag("catch_up")?,
            paused: row.flag("paused")?,
            next_at: row.time("next_at")?,
            last_at: row.opt_time("last_at")?,
            created_at: row.time("created_at")?,
        },
    ))
}

/// One item a job reported.
pub(crate) fn job_item(row: &impl Columns) -> StoreResult<ferry_core::JobItem> {
    Ok(ferry_core::JobItem {
        seq: row.int("seq")?,
        attempt: row.int("attempt")? as u32,
        data: row.value("data")?,
        created_at: row.time("created_at")?,
    })
}

/// A finished item of a batch and its position (in `position`, the column its backend
/// orders finishes by).
pub(crate) fn batch_result(
    row: &impl Columns,
    position: &str,
) -> StoreResult<(i64, ferry_core::api::BatchResult)> {
    Ok((
        row.int(position)?,
        ferry_core::api::BatchResult {
            index: row.int("batch_index")? as u32,
            job_id: row.id("id")?,
            status: state(&row.text("status")?)?,
            result: row.opt_value("result")?,
            error: row.opt_json("error")?,
            finished_at: row.time("finished_at")?,
        },
    ))
}

/// A job state column.
pub(crate) fn state(text: &str) -> StoreResult<ferry_core::JobState> {
    text.parse()
        .map_err(|e: ferry_core::state::ParseJobStateError| StoreError::Corrupt(e.to_string()))
}

/// A run that fed a dataset (its id and gone count read from the columns named, which
/// differ when the run is joined to its dataset).
pub(crate) fn dataset_run(
    row: &impl Columns,
    id_column: &str,
    gone_column: &str,
) -> StoreResult<ferry_core::dataset::DatasetRun> {
    Ok(ferry_core::dataset::DatasetRun {
        id: row.int(id_column)?,
        job_id: row.id("job_id")?,
        mode: row.text("mode")?.parse().map_err(StoreError::Corrupt)?,
        new: row.int("new")? as u64,
        changed: row.int("changed")? as u64,
        unchanged: row.int("unchanged")? as u64,
        gone: row.int(gone_column)? as u64,
        at: row.time("at")?,
    })
}

/// A dataset with its last run (`INFO_SELECT` of either backend).
pub(crate) fn dataset_info(row: &impl Columns) -> StoreResult<ferry_core::dataset::DatasetInfo> {
    let has_run = row.opt_int("run_id")?.is_some();
    Ok(ferry_core::dataset::DatasetInfo {
        name: row.text("name")?,
        key: row.text("key_field")?,
        items: row.int("live")? as u64,
        gone: row.int("gone")? as u64,
        fields: row.opt_json("fields")?.unwrap_or_default(),
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        last_run: has_run
            .then(|| dataset_run(row, "run_id", "run_gone"))
            .transpose()?,
    })
}

/// One row of a dataset.
pub(crate) fn dataset_item(row: &impl Columns) -> StoreResult<ferry_core::dataset::DatasetItem> {
    Ok(ferry_core::dataset::DatasetItem {
        seq: row.int("seq")?,
        key: row.text("key")?,
        data: row.value("data")?,
        first_seen_at: row.time("first_seen_at")?,
        changed_at: row.time("changed_at")?,
        gone_at: row.opt_time("gone_at")?,
    })
}

/// A tenant.
pub(crate) fn tenant(row: &impl Columns) -> StoreResult<crate::TenantRow> {
    Ok(crate::TenantRow {
        id: row.text("id")?,
        name: row.text("name")?,
        created_at: row.time("created_at")?,
        quotas: ferry_core::identity::TenantQuotas {
            max_submissions_per_second: row
                .opt_int("max_submissions_per_second")?
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            max_unfinished_jobs: row
                .opt_int("max_unfinished_jobs")?
                .map(|n| u64::try_from(n).unwrap_or(0)),
        },
        egress: row.opt_json("egress")?.unwrap_or_default(),
    })
}

/// A group of failed jobs from its `(kind, code, count, last finished ms)` row.
pub(crate) fn failed_group(
    (kind, code, n, last_at): (String, String, i64, i64),
) -> StoreResult<ferry_core::api::FailedGroup> {
    Ok(ferry_core::api::FailedGroup {
        kind,
        code,
        count: u64::try_from(n).unwrap_or(0),
        last_failed_at: from_ms(last_at)?,
    })
}

/// A tenant's jobs at a glance from its three reads: `(kind, status, count)` rows,
/// `(bucket start ms, status, count)` rows in bucket order, the oldest pending job's
/// `created_at`.
pub(crate) fn job_stats(
    kinds: Vec<(String, String, i64)>,
    finished: Vec<(i64, String, i64)>,
    oldest: Option<i64>,
) -> StoreResult<ferry_core::api::JobStats> {
    use ferry_core::api::{FinishedBucket, KindCount};
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let mut buckets: Vec<FinishedBucket> = Vec::new();
    for (at, status, n) in finished {
        let at = from_ms(at)?;
        if buckets.last().is_none_or(|b| b.at != at) {
            buckets.push(FinishedBucket {
                at,
                completed: 0,
                failed: 0,
            });
        }
        if let Some(b) = buckets.last_mut() {
            if status == "failed" {
                b.failed += count(n);
            } else {
                b.completed += count(n);
            }
        }
    }
    Ok(ferry_core::api::JobStats {
        kinds: kinds
            .into_iter()
            .map(|(kind, status, n)| {
                Ok(KindCount {
                    kind,
                    state: state(&status)?,
                    count: count(n),
                })
            })
            .collect::<StoreResult<_>>()?,
        finished: buckets,
        oldest_pending_at: opt_from_ms(oldest)?,
    })
}

/// A user (the password only as its hash).
pub(crate) fn user(row: &impl Columns) -> StoreResult<crate::UserRow> {
    Ok(crate::UserRow {
        name: row.text("name")?,
        password_hash: row.text("password_hash")?,
        created_at: row.time("created_at")?,
        password_changed_at: row.time("password_changed_at")?,
    })
}

/// A login session.
pub(crate) fn user_session(row: &impl Columns) -> StoreResult<crate::UserSessionRow> {
    Ok(crate::UserSessionRow {
        token_hash: row.bytes("token_hash")?,
        user_name: row.text("user_name")?,
        tenant_id: row.text("tenant_id")?,
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
        last_seen_at: row.time("last_seen_at")?,
    })
}

/// An audit log entry.
pub(crate) fn audit(row: &impl Columns) -> StoreResult<ferry_core::identity::AuditEntry> {
    Ok(ferry_core::identity::AuditEntry {
        id: row.int("id")?,
        at: row.time("at")?,
        actor: row.text("actor")?,
        action: row.text("action")?,
        target: row.text("target")?,
        detail: row.opt_value("detail")?,
    })
}

/// An API key (its secret only as the hash the server computed).
pub(crate) fn api_key(row: &impl Columns) -> StoreResult<crate::ApiKeyRow> {
    Ok(crate::ApiKeyRow {
        prefix: row.text("prefix")?,
        tenant_id: row.text("tenant_id")?,
        role: row.text("role")?,
        secret_hash: row.bytes("secret_hash")?,
        kinds: row.opt_json("kinds")?,
        name: row.text("name")?,
        created_at: row.time("created_at")?,
        expires_at: row.opt_time("expires_at")?,
        last_used_at: row.opt_time("last_used_at")?,
        revoked_at: row.opt_time("revoked_at")?,
    })
}

/// A worker row joined with its running jobs (`jobs`, `last_report`); connected when heard
/// from since `connected_since`.
pub(crate) fn worker(
    row: &impl Columns,
    connected_since: DateTime<Utc>,
) -> StoreResult<ferry_core::observe::WorkerInfo> {
    let last_claim = row.time("last_claim_at")?;
    let last_seen_at = match row.opt_time("last_report")? {
        Some(report) if report > last_claim => report,
        _ => last_claim,
    };
    Ok(ferry_core::observe::WorkerInfo {
        id: row.text("worker_id")?,
        tenant: row.text("tenant_id")?,
        kinds: row
            .opt_json("kinds")?
            .ok_or_else(|| StoreError::Corrupt("kinds is NULL".into()))?,
        agent: row.opt_text("agent")?,
        address: row.opt_text("address")?,
        jobs_in_hand: u64::try_from(row.int("jobs")?).unwrap_or(0),
        first_seen_at: row.time("first_seen_at")?,
        last_seen_at,
        connected: last_seen_at >= connected_since,
    })
}

pub(crate) fn job_head(row: &impl Columns) -> StoreResult<crate::JobHead> {
    Ok(crate::JobHead {
        id: row.id("id")?,
        tenant_id: row.text("tenant_id")?,
        kind: row.text("kind")?,
        status: state(&row.text("status")?)?,
        started_at: row.opt_time("started_at")?,
        traceparent: row
            .opt_text("traceparent")?
            .and_then(|t| ferry_core::TraceParent::parse(&t)),
    })
}

/// A vault secret (sealed).
pub(crate) fn secret(row: &impl Columns) -> StoreResult<crate::SecretRow> {
    Ok(crate::SecretRow {
        tenant_id: row.text("tenant_id")?,
        name: row.text("name")?,
        sealed: row.bytes("sealed")?,
        domains: row.opt_json("domains")?.unwrap_or_default(),
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}
