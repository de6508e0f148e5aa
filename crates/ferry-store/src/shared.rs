//! What both backends share that is not SQL: how a freshly inserted job reads back, and
//! the errors the maintenance passes record.

use chrono::{DateTime, Utc};
use ferry_core::{Job, JobError, JobState, NewJob, error::job_codes};

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

/// Lease tokens of jobs that carry `then` start with this (set by the claim), so a
/// completion knows without a query that it must enqueue children in its transaction. A
/// token is only ever compared whole, so the mark gives a worker nothing to forge.
pub(crate) const CHAINED_LEASE: &str = "c";
