//! What both backends share that is not SQL: how a freshly inserted job reads back, and
//! the errors the maintenance passes record.

use chrono::{DateTime, Utc};
use ferry_core::{Job, JobError, JobState, NewJob, error::job_codes};
use serde_json::Value;

use crate::{StoreError, StoreResult};

/// Which overdue attempts a maintenance pass fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overdue {
    /// The lease expired: the rescuer.
    Lease,
    /// The deadline passed: the timeout enforcer.
    Deadline,
}

/// The error recorded on an attempt that a maintenance pass failed.
pub(crate) fn overdue_error(which: Overdue) -> JobError {
    match which {
        Overdue::Lease => JobError::new(
            job_codes::LEASE_EXPIRED,
            "the worker stopped renewing its lease (it died or lost its connection)",
            true,
        ),
        Overdue::Deadline => JobError::new(
            job_codes::TIMEOUT,
            "the attempt ran past its timeout_ms",
            true,
        ),
    }
}

fn ms_precision(t: DateTime<Utc>) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(t.timestamp_millis())
        .ok_or_else(|| StoreError::Corrupt(format!("bad time {t}")))
}

/// The row a freshly inserted job reads back as, without reading it back. Times are
/// rounded to the stored millisecond so the answer equals a later read.
pub(crate) fn new_job_row(job: &NewJob, now: DateTime<Utc>) -> StoreResult<Job> {
    Ok(Job {
        id: job.id,
        kind: job.kind.to_string(),
        status: job.initial_state(now),
        payload: job.payload.clone(),
        labels: job.labels.clone(),
        priority: job.priority,
        attempt: 0,
        max_attempts: job.max_attempts,
        timeout_ms: job.timeout_ms,
        backoff: job.backoff,
        run_at: ms_precision(job.run_at)?,
        created_at: ms_precision(now)?,
        updated_at: ms_precision(now)?,
        started_at: None,
        finished_at: None,
        worker_id: None,
        lease_expires_at: None,
        deadline_at: None,
        cancel_requested: false,
        progress: None,
        result: None,
        error: None,
        dedupe_key: job.dedupe_key.clone(),
        parent_id: job.parent_id,
        input: job.input.clone(),
        concurrency: job.concurrency.clone(),
        rate_limit: job.rate_limit.clone(),
        output: job.output.clone(),
        trace_id: job.traceparent.as_ref().map(|t| t.trace_id().to_owned()),
    })
}

/// The facts of a job row that decide what a report about it means, when the report's
/// compare-and-set changed nothing. Both backends answer through these, so they agree.
pub(crate) struct LeaseRow {
    pub status: JobState,
    pub lease_token: Option<String>,
}

impl LeaseRow {
    fn same_attempt(&self, lease: &str) -> bool {
        self.lease_token.as_deref() == Some(lease)
    }

    /// A `complete` that changed nothing: the repeat of the completion already applied with
    /// this lease (answered again), or a report that lost its lease.
    pub fn repeated_complete(&self, lease: &str) -> StoreResult<()> {
        if self.same_attempt(lease) && self.status == JobState::Completed {
            Ok(())
        } else {
            Err(StoreError::LeaseLost {
                status: self.status,
            })
        }
    }

    /// A `fail` that changed nothing: the repeat of a failure of this attempt (answered with
    /// the job as it is), or a report that lost its lease.
    pub fn repeated_fail(&self, lease: &str) -> StoreResult<()> {
        let ended_unsuccessfully = matches!(
            self.status,
            JobState::Scheduled | JobState::Failed | JobState::Cancelled
        );
        if self.same_attempt(lease) && ended_unsuccessfully {
            Ok(())
        } else {
            Err(StoreError::LeaseLost {
                status: self.status,
            })
        }
    }
}

/// How a kind pattern is stored for matching: `(exact, prefix)`: an exact kind, or a
/// prefix (with its dot; empty for `*`) that kinds start with.
pub(crate) fn pattern_match_form(pattern: &ferry_core::KindPattern) -> (bool, String) {
    use ferry_core::KindPattern;
    match pattern {
        KindPattern::Any => (false, String::new()),
        KindPattern::Exact(kind) => (true, kind.as_str().to_owned()),
        KindPattern::Prefix(prefix) => (false, prefix.clone()),
    }
}

/// Defaults for enqueuing chained jobs: their specs had the server's defaults filled in
/// when the parent was submitted, and their depth was checked then.
pub(crate) fn spawn_defaults() -> ferry_core::validate::JobDefaults {
    ferry_core::validate::JobDefaults {
        max_chain_depth: u32::MAX,
        ..Default::default()
    }
}

/// The jobs the completion of `parent` enqueues: its `then` specs, each with `result` as
/// its `input`. They were checked when the parent was submitted, so this cannot fail on
/// what was stored then; if it does (a stored spec that a newer version refuses), the
/// completion is refused (and logged) rather than applied without the children.
pub(crate) fn children(
    parent: ferry_core::JobId,
    tenant: &str,
    traceparent: Option<String>,
    then: Vec<ferry_core::api::SubmitJob>,
    result: &Value,
    now: DateTime<Utc>,
) -> StoreResult<Vec<NewJob>> {
    let tenant = ferry_core::TenantId::new(tenant)
        .map_err(|e| StoreError::Corrupt(format!("job {parent}: {e}")))?;
    let traceparent = traceparent.and_then(|t| ferry_core::TraceParent::parse(&t));
    NewJob::children(
        parent,
        &tenant,
        traceparent.as_ref(),
        then,
        result,
        &spawn_defaults(),
        now,
    )
    .map_err(|errors| {
        let fields = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        tracing::error!(job_id = %parent, %fields, "a chained job cannot be created; the completion is refused");
        StoreError::Corrupt(format!(
            "job {parent}: a chained job cannot be created ({fields})"
        ))
    })
}

/// A job's flow-control columns, read back into its `concurrency` and `rate_limit`.
pub(crate) struct FlowColumns {
    pub concurrency_key: Option<String>,
    pub concurrency_limit: Option<i64>,
    pub rate_key: Option<String>,
    pub rate_interval_ms: Option<i64>,
    pub rate_max: Option<i64>,
    pub rate_per_ms: Option<i64>,
}

impl FlowColumns {
    pub fn of(job: &ferry_core::NewJob) -> Self {
        let rate = job.rate_limit.as_ref();
        Self {
            concurrency_key: job.concurrency.as_ref().map(|c| c.key.clone()),
            concurrency_limit: job.concurrency.as_ref().map(|c| i64::from(c.limit)),
            rate_key: rate.map(|r| r.key.clone()),
            rate_interval_ms: rate.and_then(|r| r.interval_ms).map(|v| v as i64),
            rate_max: rate.and_then(|r| r.max).map(i64::from),
            rate_per_ms: rate.and_then(|r| r.per_ms).map(|v| v as i64),
        }
    }

    pub fn split(
        self,
    ) -> (
        Option<ferry_core::flow::Concurrency>,
        Option<ferry_core::flow::RateLimit>,
    ) {
        let concurrency = match (self.concurrency_key, self.concurrency_limit) {
            (Some(key), Some(limit)) => Some(ferry_core::flow::Concurrency {
                key,
                limit: limit as u32,
            }),
            _ => None,
        };
        let rate = self.rate_key.map(|key| ferry_core::flow::RateLimit {
            key,
            interval_ms: self.rate_interval_ms.map(|v| v as u64),
            max: self.rate_max.map(|v| v as u32),
            per_ms: self.rate_per_ms.map(|v| v as u64),
        });
        (concurrency, rate)
    }
}

/// The data of the `job.progress` event a report records: the progress fields it set and
/// how many items it carried. `None` for a report with neither (a bare lease renewal).
pub(crate) fn progress_event(p: &crate::ProgressParams<'_>) -> Option<Value> {
    if p.progress.is_none() && p.items.is_empty() {
        return None;
    }
    let mut data = match p.progress.as_ref().map(serde_json::to_value) {
        Some(Ok(Value::Object(map))) => map,
        _ => serde_json::Map::new(),
    };
    data.insert("items".to_owned(), Value::from(p.items.len()));
    Some(Value::Object(data))
}

/// Lease tokens of jobs that carry `then` start with this (set by the claim), so a
/// completion knows without a query that it must enqueue children in its transaction. A
/// token is only ever compared whole, so the mark gives a worker nothing to forge.
pub(crate) const CHAINED_LEASE: &str = "c";

/// Table names and hints of one backend, for SQL both backends share.
pub(crate) struct Dialect {
    pub jobs: &'static str,
    /// Forces the claim-order index on SQLite (its planner may otherwise pick another).
    pub jobs_ready: &'static str,
    pub rate_starts: &'static str,
    pub rate_keys: &'static str,
    /// The scalar maximum of several values.
    pub greatest: &'static str,
}

pub(crate) const SQLITE: Dialect = Dialect {
    jobs: "ferry_jobs",
    jobs_ready: "ferry_jobs AS j INDEXED BY ferry_jobs_ready",
    rate_starts: "ferry_rate_starts",
    rate_keys: "ferry_rate_keys",
    greatest: "max",
};

pub(crate) const POSTGRES: Dialect = Dialect {
    jobs: "ferry.jobs",
    jobs_ready: "ferry.jobs AS j",
    rate_starts: "ferry.rate_starts",
    rate_keys: "ferry.rate_keys",
    greatest: "greatest",
};

/// How many claimable rows the admitting claim looks at per job asked for. Rows whose key
/// is at its limit are passed over in the scan and do not count.
const CANDIDATES_PER_JOB: u32 = 2;

/// Pushes `WITH … admitted AS (…)`: the ids of the jobs a claim may start, at most
/// `max_jobs`, in claim order, honouring concurrency and rate keys.
///
/// A candidate is a due, claimable job (of the kinds `filters` appends) whose concurrency
/// key has a free slot and whose rate key may start a job now. Among the candidates, the
/// n-th one of a key (in claim order) is admitted only if the key has room for n more:
/// `running + n <= limit`, one start per claim for an interval, `recent + n <= max` for a
/// window. Callers make the statement atomic with respect to other admissions (SQLite's
/// single writer; a transaction advisory lock on PostgreSQL), and their UPDATE re-checks
/// that each admitted job is still waiting: candidates are not locked while they are
/// ranked (locking a scan's worth of rows costs a write each), so on PostgreSQL a plain
/// claim may take an unkeyed candidate first, and the re-check skips it.
pub(crate) fn push_admitted<DB: sqlx::Database>(
    q: &mut sqlx::QueryBuilder<DB>,
    d: &Dialect,
    tenant_id: &str,
    now: i64,
    max_jobs: u32,
    filters: impl FnOnce(&mut sqlx::QueryBuilder<DB>),
) where
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let (jobs, starts, keys) = (d.jobs, d.rate_starts, d.rate_keys);
    // Jobs running per key, and the keys that are full (by the smallest limit among their
    // running jobs; jobs sharing a key should share its limit). The scan skips full keys
    // through a hashed set; the exact count of the few candidates' keys is read afterwards.
    q.push(format!(
        "WITH running AS (SELECT concurrency_key AS k, count(*) AS n, \
         min(concurrency_limit) AS lim FROM {jobs} \
         WHERE status = 'running' AND concurrency_key IS NOT NULL AND tenant_id = "
    ))
    .push_bind(tenant_id.to_owned())
    .push(" GROUP BY concurrency_key), ");
    // Starts of the candidate's rate key within its window.
    let recent = |q: &mut sqlx::QueryBuilder<DB>| {
        q.push(format!(
            "(SELECT count(*) FROM {starts} s WHERE s.tenant_id = j.tenant_id \
             AND s.key = j.rate_key AND s.at > "
        ))
        .push_bind(now)
        .push(" - j.rate_per_ms)");
    };
    q.push(
        "cand AS (SELECT j.id, j.priority, j.run_at, j.concurrency_key AS ck, \
         j.concurrency_limit AS cl, j.rate_key AS rk, \
         j.rate_interval_ms AS ri, j.rate_max AS rm, CASE WHEN j.rate_max IS NULL THEN 0 ELSE ",
    );
    recent(q);
    q.push(format!(
        " END AS recent FROM {} WHERE j.tenant_id = ",
        d.jobs_ready
    ))
    .push_bind(tenant_id.to_owned())
    .push(" AND j.status IN ('pending', 'scheduled') AND j.run_at <= ")
    .push_bind(now);
    filters(q);
    q.push(
        " AND (j.concurrency_key IS NULL OR j.concurrency_key NOT IN \
         (SELECT k FROM running WHERE n >= lim))",
    )
    .push(format!(
        " AND (j.rate_key IS NULL OR (NOT EXISTS (SELECT 1 FROM {keys} b \
             WHERE b.tenant_id = j.tenant_id AND b.key = j.rate_key AND b.blocked_until > "
    ))
    .push_bind(now)
    .push(format!(
        ") AND (j.rate_interval_ms IS NULL OR NOT EXISTS (SELECT 1 FROM {starts} s \
             WHERE s.tenant_id = j.tenant_id AND s.key = j.rate_key AND s.at > "
    ))
    .push_bind(now)
    .push(" - j.rate_interval_ms)) AND (j.rate_max IS NULL OR ");
    recent(q);
    q.push(" < j.rate_max))) ORDER BY j.priority DESC, j.run_at, j.id LIMIT ")
        .push(i64::from(max_jobs.saturating_mul(CANDIDATES_PER_JOB)))
        .push("), ranked AS (SELECT c.id, c.priority, c.run_at, c.ck, c.cl, ");
    // Each candidate's running count is read from the key index (a seek each): joined
    // from the grouped counts, SQLite scanned all of them for every candidate.
    q.push(format!(
        "(SELECT count(*) FROM {jobs} rj WHERE rj.tenant_id = "
    ))
    .push_bind(tenant_id.to_owned())
    .push(
        " AND rj.concurrency_key = c.ck AND rj.status = 'running') AS cn, c.rk, c.ri, c.rm, \
         c.recent, \
         row_number() OVER (PARTITION BY c.ck ORDER BY c.priority DESC, c.run_at, c.id) AS c_rank, \
         row_number() OVER (PARTITION BY c.rk ORDER BY c.priority DESC, c.run_at, c.id) AS r_rank \
         FROM cand c",
    );
    q.push(
        "), admitted AS (SELECT id FROM ranked \
             WHERE (ck IS NULL OR cn + c_rank <= cl) \
             AND (rk IS NULL OR ((ri IS NULL OR r_rank = 1) AND (rm IS NULL OR recent + r_rank <= rm))) \
             ORDER BY priority DESC, run_at, id LIMIT ",
        )
        .push(i64::from(max_jobs))
        .push(") ");
}

/// Pushes a query for the earliest time after `now` at which a due job held back by its
/// rate key (interval, window or a worker's push-back) may start: when the last start is
/// `interval_ms` old, when the oldest start in a full window leaves it, when a push-back
/// ends — whichever is latest for that job. Looks at the first 256 such jobs in claim order.
pub(crate) fn push_rate_opening<DB: sqlx::Database>(
    q: &mut sqlx::QueryBuilder<DB>,
    d: &Dialect,
    tenant_id: &str,
    now: i64,
    filters: impl FnOnce(&mut sqlx::QueryBuilder<DB>),
) where
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let (starts, keys) = (d.rate_starts, d.rate_keys);
    let same_key = "s.tenant_id = j.tenant_id AND s.key = j.rate_key";
    q.push(format!(
        "SELECT min(open_at) AS next FROM (SELECT {}(\
         coalesce((SELECT b.blocked_until FROM {keys} b WHERE b.tenant_id = j.tenant_id \
         AND b.key = j.rate_key), 0), \
         CASE WHEN j.rate_interval_ms IS NULL THEN 0 ELSE coalesce((SELECT max(s.at) \
         FROM {starts} s WHERE {same_key}), 0) + j.rate_interval_ms END, \
         CASE WHEN j.rate_max IS NULL OR (SELECT count(*) FROM {starts} s WHERE {same_key} \
         AND s.at > ",
        d.greatest
    ))
    .push_bind(now)
    .push(format!(
        " - j.rate_per_ms) < j.rate_max THEN 0 ELSE coalesce((SELECT min(s.at) \
         FROM {starts} s WHERE {same_key} AND s.at > "
    ))
    .push_bind(now)
    .push(format!(
        " - j.rate_per_ms), 0) + j.rate_per_ms END) AS open_at FROM {} \
         WHERE j.tenant_id = ",
        d.jobs_ready
    ))
    .push_bind(tenant_id.to_owned())
    .push(" AND j.status IN ('pending', 'scheduled') AND j.rate_key IS NOT NULL AND j.run_at <= ")
    .push_bind(now);
    filters(q);
    q.push(" ORDER BY j.priority DESC, j.run_at, j.id LIMIT 256) o WHERE open_at > ")
        .push_bind(now);
}

/// Remembers that a claim recently found keyed jobs due, so the claims that follow take
/// the admitting path without asking again. Taking it when no keyed job is due is only
/// slower (it admits unkeyed jobs too), never wrong; so is asking again.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyedHint {
    /// Unix ms of the last claim that found keyed jobs due.
    seen_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl KeyedHint {
    /// How long a sighting is trusted.
    const TRUST_MS: i64 = 1_000;

    pub fn recent(&self, now: i64) -> bool {
        let seen = self.seen_at.load(std::sync::atomic::Ordering::Relaxed);
        seen > 0 && (0..Self::TRUST_MS).contains(&(now - seen))
    }

    pub fn record(&self, now: i64, keyed: bool) {
        self.seen_at.store(
            if keyed { now } else { 0 },
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// One read of the event record: the events that matched, up to `limit`, among those it
/// scanned, `scanned_to` being the last of these. A full page continues after its last
/// event (more may match before `scanned_to`); otherwise the reader moves past everything
/// it scanned, so a filter that rarely matches never makes it read the same events twice.
pub(crate) fn event_page(
    events: Vec<ferry_core::api::Event>,
    limit: u32,
    scanned_to: i64,
) -> ferry_core::api::EventPage {
    let next_after = match events.last() {
        Some(last) if events.len() >= limit as usize => last.id,
        _ => scanned_to,
    };
    ferry_core::api::EventPage { events, next_after }
}
