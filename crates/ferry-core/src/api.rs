//! The JSON bodies of the HTTP API, shared by the server, the client and the worker.
//! `docs/http-api.md` documents them for people writing workers in other languages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Backoff, ErrorCode, FieldError, Job, JobId, JobItem};

/// `POST /v1/jobs` and each entry of `POST /v1/jobs/batch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    pub kind: String,
    #[serde(default)]
    pub payload: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// At most one unfinished job per tenant has this key: submitting another answers
    /// the existing job (`200`) instead of creating one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_key: Option<String>,
}

impl SubmitJob {
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            payload,
            ..Self::default()
        }
    }
}

/// `POST /v1/jobs/batch`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatch {
    pub jobs: Vec<SubmitJob>,
}

/// Answer of `POST /v1/jobs/batch`: the jobs, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobsCreated {
    pub jobs: Vec<Job>,
    /// Per job: `false` when its `dedupe_key` matched an unfinished job, which is answered
    /// in its place.
    #[serde(default)]
    pub created: Vec<bool>,
}

/// Answer of `GET /v1/kinds/paused` and of pause/resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PausedKinds {
    pub paused: Vec<String>,
}

/// Answer of `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Answer of `GET /v1/jobs/{id}/items`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemPage {
    pub items: Vec<JobItem>,
    /// Pass as `after` to continue; the last item's `seq` (or the `after` given).
    pub next_after: i64,
}

/// `POST /v1/worker/claim`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub worker_id: String,
    pub kinds: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_jobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<u64>,
}

/// A job handed to a worker, with the lease that fences every later call about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimedJob {
    pub id: JobId,
    pub kind: String,
    pub payload: Value,
    pub labels: BTreeMap<String, String>,
    /// 1-based number of this attempt.
    pub attempt: u32,
    pub max_attempts: u32,
    /// The lease token of this attempt; send it with every report.
    pub lease: String,
    pub lease_ms: u64,
    pub lease_expires_at: DateTime<Utc>,
    /// The attempt fails with `TIMEOUT` after this instant.
    pub deadline: DateTime<Utc>,
}

/// Answer of `POST /v1/worker/claim`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimResponse {
    pub jobs: Vec<ClaimedJob>,
}

/// `POST /v1/worker/jobs/{id}/heartbeat`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub lease: String,
}

/// Answer of heartbeat and progress calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseStatus {
    pub lease_expires_at: DateTime<Utc>,
    /// A client asked to cancel the job: stop and report `fail` with code `CANCELLED`.
    pub cancel: bool,
}

/// `POST /v1/worker/jobs/{id}/progress`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressRequest {
    pub lease: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Partial results, appended to the job's item stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Value>>,
    /// Index of `items[0]` within this attempt's item stream. With it a repeated
    /// report (after a network error) stores each item once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items_offset: Option<u64>,
}

/// `POST /v1/worker/jobs/{id}/complete`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub lease: String,
    #[serde(default)]
    pub result: Value,
}

/// The error a worker reports with `fail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailError {
    pub code: String,
    pub message: String,
    #[serde(default = "default_true")]
    pub retryable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

fn default_true() -> bool {
    true
}

/// `POST /v1/worker/jobs/{id}/fail`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub lease: String,
    pub error: FailError,
}

/// One entry of `POST /v1/worker/complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchCompleteEntry {
    pub id: JobId,
    pub lease: String,
    #[serde(default)]
    pub result: Value,
}

/// `POST /v1/worker/complete`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchCompleteRequest {
    pub jobs: Vec<BatchCompleteEntry>,
}

/// The per-job answer of `POST /v1/worker/complete`, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchCompleteResult {
    pub id: JobId,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiErrorDetail>,
}

/// Answer of `POST /v1/worker/complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchCompleteResponse {
    pub results: Vec<BatchCompleteResult>,
}

/// The body of every error answer: `{"error": {"code", "message", "fields"?}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// `GET /healthz`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// Convenience for lists of ids in responses and tests.
pub type JobIds = Vec<JobId>;
