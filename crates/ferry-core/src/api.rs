//! The JSON bodies of the HTTP API, shared by the server, the client and the worker.
//! `docs/http-api.md` documents them for people writing workers in other languages.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    Backoff, BatchId, DeliveryId, ErrorCode, FieldError, Job, JobError, JobId, JobItem, JobState,
    WebhookId,
};

/// `POST /v1/jobs` and each entry of `POST /v1/jobs/batch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// What the job is, and which workers take it: dot-separated segments of letters,
    /// digits, `_` and `-` (`reviews.sync`, `http.request`, `browser.run`).
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    )]
    pub kind: String,
    /// The job's input, as its handler expects it (`browser.run`: a recipe).
    #[serde(default)]
    pub payload: Value,
    /// Up to 32 `key: value` labels to find the job by (keys: 1-64 of letters, digits,
    /// `_-./`; values up to 256 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Higher runs first among ready jobs (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -1000, max = 1000))]
    pub priority: Option<i32>,
    /// Not before this time (or give `delay_ms`, not both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_at: Option<DateTime<Utc>>,
    /// Not before this many milliseconds from now (at most 366 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::validate::MAX_DELAY_MS))]
    pub delay_ms: Option<u64>,
    /// Attempts before the job fails for good (default: the server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = crate::validate::MAX_ATTEMPTS))]
    pub max_attempts: Option<u32>,
    /// How long one attempt may run (default: the server's; at most 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = crate::validate::MAX_TIMEOUT_MS))]
    pub timeout_ms: Option<u64>,
    /// The wait before each retry (default: the server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// At most one unfinished job per tenant has this key: submitting another answers
    /// the existing job (`200`) instead of creating one. 1-256 bytes, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub dedupe_key: Option<String>,
    /// With `dedupe_key`: a job with the key that finished less than this long ago also
    /// answers in place of a new one (BullMQ's deduplication TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::validate::MAX_DELAY_MS))]
    pub dedupe_ttl_ms: Option<u64>,
    /// Jobs to enqueue when this one completes, in the same transaction that records its
    /// result; each gets the result as its `input` (beside its payload, which stays as
    /// given) and this job as `parent_id`. A spec that could not be enqueued is refused here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<Vec<SubmitJob>>,
    /// At most `limit` jobs with this key run at once (one login per account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<crate::flow::ConcurrencySpec>,
    /// Starts of jobs with this key are spaced (`interval_ms`) and/or capped per window
    /// (`max` per `per_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<crate::flow::RateLimit>,
    /// Where the job's items go when it completes: upserted by key into a dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<crate::dataset::Output>,
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatch {
    pub jobs: Vec<SubmitJob>,
}

/// Answer of `POST /v1/jobs/batch`: the jobs, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobsCreated {
    pub jobs: Vec<Job>,
    /// Per job: `false` when its `dedupe_key` matched an unfinished job, which is answered
    /// in its place.
    #[serde(default)]
    pub created: Vec<bool>,
}

/// Answer of `GET /v1/kinds/paused` and of pause/resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PausedKinds {
    pub paused: Vec<String>,
}

/// Answer of `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Pass as `cursor` to get the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Answer of `GET /v1/jobs/{id}/items`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ItemPage {
    pub items: Vec<JobItem>,
    /// Pass as `after` to continue; the last item's `seq` (or the `after` given).
    pub next_after: i64,
}

/// The event types the record holds.
pub const EVENT_TYPES: &[&str] = &[
    "job.created",
    "job.started",
    "job.completed",
    "job.failed",
    "job.retrying",
    "job.cancelled",
    "job.progress",
    "batch.created",
    "batch.finished",
    "dataset.changed",
];

/// One entry of the event record: a job's state change, written in the same transaction
/// as the change. `type` is `job.created`, `job.started`, `job.completed`, `job.failed`,
/// `job.cancelled` or `job.retrying` (back to waiting after a failed attempt or a retry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    /// Increasing; use it as the `after` cursor.
    pub id: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub job_id: Option<JobId>,
    pub kind: Option<String>,
    pub attempt: Option<u32>,
    /// The attempt's error, for `job.failed` and `job.retrying`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    pub at: DateTime<Utc>,
}

/// Answer of `GET /v1/events` and `GET /v1/jobs/{id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// Pass as `after` to continue: the last event's `id` when the page is full, else the
    /// last event the read scanned, matching or not; the `after` given at the end.
    pub next_after: i64,
}

/// `POST /v1/worker/claim`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The result of the job whose completion enqueued this one (`then`), given beside the
    /// payload; absent for a job that no chain enqueued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// Where the job's connections may go (its tenant's policy with the operator's rules):
    /// the worker enforces it wherever it connects for the job.
    #[serde(default)]
    pub egress: crate::egress::EgressPolicy,
    /// The job's tenant (the worker's logs name it).
    #[serde(default)]
    pub tenant: String,
    /// When the job became due (its `run_at`): the claim's time less this is how long it
    /// waited in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// The trace the job belongs to (W3C `traceparent`): the worker's spans for this
    /// attempt continue it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<crate::TraceParent>,
}

/// Answer of `POST /v1/worker/claim`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClaimResponse {
    pub jobs: Vec<ClaimedJob>,
}

/// `POST /v1/worker/jobs/{id}/heartbeat`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    pub lease: String,
}

/// Answer of heartbeat and progress calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LeaseStatus {
    pub lease_expires_at: DateTime<Utc>,
    /// A client asked to cancel the job: stop and report `fail` with code `CANCELLED`.
    pub cancel: bool,
}

/// `POST /v1/worker/jobs/{id}/progress`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub lease: String,
    #[serde(default)]
    pub result: Value,
}

/// The error a worker reports with `fail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    pub lease: String,
    pub error: FailError,
}

/// One entry of `POST /v1/worker/complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchCompleteEntry {
    pub id: JobId,
    pub lease: String,
    #[serde(default)]
    pub result: Value,
}

/// `POST /v1/worker/complete`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchCompleteRequest {
    pub jobs: Vec<BatchCompleteEntry>,
}

/// The per-job answer of `POST /v1/worker/complete`, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BatchCompleteResult {
    pub id: JobId,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiErrorDetail>,
}

/// Answer of `POST /v1/worker/complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BatchCompleteResponse {
    pub results: Vec<BatchCompleteResult>,
}

/// The body of every error answer: `{"error": {"code", "message", "fields"?}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

/// `GET /healthz`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// The options every item of a batch shares (those of `POST /v1/jobs` but kind and payload).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchOptions {
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
    /// Applies to every item: items share the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<crate::flow::ConcurrencySpec>,
    /// Applies to every item: items share the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<crate::flow::RateLimit>,
    /// Every item's job writes its items to this dataset. Each item holds only part of
    /// the dataset, so the mode must be `merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<crate::dataset::Output>,
}

/// `POST /v1/batches`: one job of `kind` per item; each item is that job's payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBatch {
    pub kind: String,
    pub items: Vec<Value>,
    #[serde(default)]
    pub options: BatchOptions,
}

impl CreateBatch {
    /// The job spec of item `index`.
    pub fn item_spec(&self, index: usize) -> SubmitJob {
        let o = &self.options;
        SubmitJob {
            kind: self.kind.clone(),
            payload: self.items.get(index).cloned().unwrap_or_default(),
            labels: o.labels.clone(),
            priority: o.priority,
            run_at: o.run_at,
            delay_ms: o.delay_ms,
            max_attempts: o.max_attempts,
            timeout_ms: o.timeout_ms,
            backoff: o.backoff,
            dedupe_key: None,
            dedupe_ttl_ms: None,
            then: None,
            concurrency: o.concurrency.clone(),
            rate_limit: o.rate_limit.clone(),
            output: o.output.clone(),
        }
    }
}

/// Answer of `POST /v1/batches`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BatchCreated {
    pub batch_id: BatchId,
    pub total: u64,
}

/// Where a batch is: `running` while any item is unfinished; then `completed` (all
/// completed), `failed` (some failed) or `cancelled` (cancelled before all finished).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    Running,
    Completed,
    Failed,
    Cancelled,
}

/// Item counts of a batch by state.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct BatchProgress {
    pub total: u64,
    pub pending: u64,
    pub running: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl BatchProgress {
    /// Adds `n` jobs in `state` (`scheduled` counts as pending).
    pub fn add(&mut self, state: JobState, n: u64) {
        match state {
            JobState::Scheduled | JobState::Pending => self.pending += n,
            JobState::Running => self.running += n,
            JobState::Completed => self.completed += n,
            JobState::Failed => self.failed += n,
            JobState::Cancelled => self.cancelled += n,
        }
    }

    pub fn unfinished(&self) -> u64 {
        self.pending + self.running
    }
}

/// `GET /v1/batches/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Batch {
    pub id: BatchId,
    pub kind: String,
    pub status: BatchState,
    pub progress: BatchProgress,
    pub labels: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl Batch {
    /// The state a batch is in, from its counts.
    pub fn state_of(progress: &BatchProgress, cancelled: bool) -> BatchState {
        if progress.unfinished() > 0 {
            BatchState::Running
        } else if cancelled {
            BatchState::Cancelled
        } else if progress.failed > 0 || progress.cancelled > 0 {
            BatchState::Failed
        } else {
            BatchState::Completed
        }
    }
}

/// One finished item of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BatchResult {
    /// The item's position in the `items` it was created from.
    pub index: u32,
    pub job_id: JobId,
    pub status: JobState,
    pub result: Option<Value>,
    pub error: Option<JobError>,
    pub finished_at: DateTime<Utc>,
}

/// `GET /v1/batches`: the tenant's batches, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BatchList {
    pub batches: Vec<Batch>,
    /// Pass as `before` for the next (older) page; `None` on the last page.
    pub next_before: Option<BatchId>,
}

/// `GET /v1/batches/{id}/results`: finished items in the order they finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BatchResultPage {
    pub results: Vec<BatchResult>,
    /// Pass as `after` to get only items that finish later; the `after` given when empty.
    pub next_after: Option<String>,
}

/// A saved browser session as the client API shows it: never its contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionInfo {
    pub name: String,
    /// Size of the sealed (encrypted) contents.
    pub size_bytes: u64,
    pub updated_at: DateTime<Utc>,
    /// The job that saved it last.
    pub saved_by_job: Option<JobId>,
}

/// `GET /v1/sessions`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

/// `POST /v1/worker/jobs/{id}/session/load`: the session the job's recipe names in
/// `use_session`, for the worker holding the lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionLoadRequest {
    pub lease: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionLoadResponse {
    pub name: String,
    /// `null` when nothing is saved under the name yet.
    pub state: Option<Value>,
}

/// `POST /v1/worker/jobs/{id}/session/save`: a session the job's recipe names in a
/// `save_session` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionSaveRequest {
    pub lease: String,
    pub name: String,
    pub state: Value,
}

/// A file a job left (a screenshot, the page's HTML, its network log).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArtifactInfo {
    pub name: String,
    pub content_type: String,
    pub size_bytes: u64,
    /// The attempt that made it.
    pub attempt: u32,
    pub created_at: DateTime<Utc>,
}

/// `GET /v1/jobs/{id}/artifacts`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArtifactList {
    pub artifacts: Vec<ArtifactInfo>,
}

/// `POST /v1/webhooks`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// Where deliveries are POSTed (http or https).
    pub url: String,
    /// Event types to deliver (`job.completed`, …).
    pub events: Vec<String>,
    /// Only events of jobs of these kinds (patterns; empty or absent: all).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Signs every delivery (`Ferry-Signature`); 16 to 256 bytes; never answered back.
    pub secret: String,
}

/// A webhook as the API shows it (without its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookInfo {
    pub id: WebhookId,
    pub url: String,
    pub events: Vec<String>,
    pub kinds: Vec<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookInfo>,
}

/// One event's delivery to one webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeliveryInfo {
    /// Sent as `Ferry-Id` with every attempt (the receiver's idempotency key).
    pub id: DeliveryId,
    pub event_id: i64,
    /// `pending` (will be tried at `next_at`), `delivered` or `dead`.
    pub status: String,
    pub attempts: u32,
    pub next_at: DateTime<Utc>,
    /// The receiver's last answer status, if it answered.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryInfo>,
}

// The dashboard's and `/v1/stats`' bodies live in `observe`.
pub use crate::observe::{FailedGroup, FinishedBucket, JobStats, KindCount};
