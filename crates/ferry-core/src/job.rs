//! The job record as the API shows it, and the validated spec of a new job.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Backoff, BatchId, JobId, JobState, Kind};

/// Labels: small string pairs an app filters by (`store_id: 42`).
pub type Labels = BTreeMap<String, String>;

/// Progress a worker reported for the running attempt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Progress {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobError {
    /// `UPPER_SNAKE_CASE`, see [`crate::error::job_codes`] for the well-known ones.
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

impl JobError {
    pub fn new(code: &str, message: impl Into<String>, retryable: bool) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            retryable,
        }
    }
}

/// A job, as the client API answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub status: JobState,
    pub payload: Value,
    pub labels: Labels,
    pub priority: i32,
    /// Attempts started so far (the running one included).
    pub attempt: u32,
    pub max_attempts: u32,
    pub timeout_ms: u64,
    pub backoff: Backoff,
    pub run_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub worker_id: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the running attempt must be over (`started_at + timeout_ms`).
    pub deadline_at: Option<DateTime<Utc>>,
    pub cancel_requested: bool,
    pub progress: Option<Progress>,
    pub result: Option<Value>,
    /// The last failed attempt's error while the job is not completed (kept when a retry is
    /// scheduled); `None` once it completes. Every attempt's error stays in the event record.
    pub error: Option<JobError>,
    pub dedupe_key: Option<String>,
    /// The job whose completion enqueued this one (`then`).
    pub parent_id: Option<JobId>,
    /// The result of `parent_id`, given to this job beside its payload (the payload stays as
    /// submitted); absent for a job that no chain enqueued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<crate::flow::Concurrency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<crate::flow::RateLimit>,
    /// The dataset its items go to when it completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<crate::dataset::Output>,
    /// The trace its spans belong to (the `traceparent` it was submitted under, or the
    /// one the server started): 32 hex digits, to look the job up in a tracing backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// One partial result item a worker streamed while the job ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobItem {
    /// Position in the job's item stream, increasing; use it as the `after` cursor.
    pub seq: i64,
    /// The attempt that produced the item.
    pub attempt: u32,
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

/// A validated job to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub id: JobId,
    pub tenant_id: String,
    pub kind: Kind,
    pub payload: Value,
    pub labels: Labels,
    pub priority: i32,
    pub run_at: DateTime<Utc>,
    pub max_attempts: u32,
    pub timeout_ms: u64,
    pub backoff: Backoff,
    pub dedupe_key: Option<String>,
    /// How long after it finished a job still holds its dedupe key.
    pub dedupe_ttl_ms: Option<u64>,
    /// The batch this job is item `.1` of.
    pub batch: Option<(BatchId, u32)>,
    /// Jobs to enqueue when this one completes: validated specs with defaults filled in.
    pub then: Vec<crate::api::SubmitJob>,
    pub parent_id: Option<JobId>,
    /// The parent's result, for a job a chain enqueued.
    pub input: Option<Value>,
    pub concurrency: Option<crate::flow::Concurrency>,
    pub rate_limit: Option<crate::flow::RateLimit>,
    pub output: Option<crate::dataset::Output>,
    /// The trace the job continues: set by the submit (from the caller's `traceparent`
    /// or the server's own span), inherited by a chain's children.
    pub traceparent: Option<crate::TraceParent>,
}

impl NewJob {
    /// The children of a completed job: its `then` specs, each with the parent's result (if
    /// not `null`) as its `input`, beside the payload, which stays as submitted, and the
    /// parent as `parent_id`. Every spec was validated at the parent's submit with these
    /// same checks, so this cannot fail on what was stored then; should it (a stored spec
    /// that a newer server refuses), the fields are named `then[i].…` and no child is
    /// dropped: the caller refuses the completion. The children continue the parent's
    /// trace.
    pub fn children(
        parent_id: JobId,
        tenant: &crate::TenantId,
        traceparent: Option<&crate::TraceParent>,
        then: Vec<crate::api::SubmitJob>,
        result: &Value,
        defaults: &crate::validate::JobDefaults,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewJob>, Vec<crate::FieldError>> {
        let mut children = Vec::with_capacity(then.len());
        let mut errors = Vec::new();
        for (i, spec) in then.into_iter().enumerate() {
            match crate::validate::new_job(tenant, spec, defaults, now, &format!("then[{i}]")) {
                Ok(mut job) => {
                    job.parent_id = Some(parent_id);
                    // A result of `null` is no input, as on the wire.
                    job.input = (!result.is_null()).then(|| result.clone());
                    job.traceparent = traceparent.cloned();
                    children.push(job);
                }
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(children)
        } else {
            Err(errors)
        }
    }
}

impl NewJob {
    /// The state a new job starts in.
    pub fn initial_state(&self, now: DateTime<Utc>) -> JobState {
        if self.run_at > now {
            JobState::Scheduled
        } else {
            JobState::Pending
        }
    }
}
