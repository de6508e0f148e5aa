//! Parameter structs of the store methods (one per method that takes more than an id).

use chrono::{DateTime, Utc};
use ferry_core::{
    BatchId, DeliveryId, Job, JobError, JobId, JobState, KindPattern, Progress, WebhookId,
};
use serde_json::Value;

/// `job_claim`
#[derive(Debug, Clone)]
pub struct ClaimParams<'a> {
    pub tenant_id: &'a str,
    pub worker_id: &'a str,
    pub kinds: &'a [KindPattern],
    pub max_jobs: u32,
    pub lease_ms: u64,
    pub now: DateTime<Utc>,
}

/// `worker_seen`: a worker as one of its claims shows it.
#[derive(Debug, Clone)]
pub struct WorkerSeen<'a> {
    pub tenant_id: &'a str,
    pub worker_id: &'a str,
    pub kinds: &'a [String],
    pub agent: Option<&'a str>,
    pub address: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// `job_list`
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub tenant_id: String,
    pub status: Option<JobState>,
    pub kind: Option<KindPattern>,
    pub labels: Vec<(String, String)>,
    /// Only jobs with an id below this one (the previous page's last id).
    pub before: Option<JobId>,
    /// Only the jobs this one's chain enqueued.
    pub parent: Option<JobId>,
    /// Only jobs whose kind or dedupe key contains this text (any case).
    pub search: Option<String>,
    pub limit: u32,
}

/// `text` as a `LIKE` pattern matching it anywhere (`%`, `_` and `\` in it escaped).
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// `job_progress`
#[derive(Debug, Clone)]
pub struct ProgressParams<'a> {
    pub id: JobId,
    pub lease: &'a str,
    /// Fields to merge into the stored progress (absent ones keep their value).
    pub progress: Option<Progress>,
    pub items: &'a [Value],
    pub items_offset: Option<u64>,
    pub now: DateTime<Utc>,
}

/// One entry of `job_complete`.
#[derive(Debug, Clone)]
pub struct CompleteParams<'a> {
    pub id: JobId,
    pub lease: &'a str,
    pub result: &'a Value,
}

impl<'a> From<&'a ferry_core::api::BatchCompleteEntry> for CompleteParams<'a> {
    fn from(e: &'a ferry_core::api::BatchCompleteEntry) -> Self {
        Self {
            id: e.id,
            lease: &e.lease,
            result: &e.result,
        }
    }
}

/// `job_fail`
#[derive(Debug, Clone)]
pub struct FailParams<'a> {
    pub id: JobId,
    pub lease: &'a str,
    pub error: JobError,
    pub retry_after_ms: Option<u64>,
    pub now: DateTime<Utc>,
}

/// `job_heads`: a job's tenant, kind, state and attempt start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHead {
    pub id: JobId,
    pub tenant_id: String,
    pub kind: String,
    pub status: JobState,
    pub started_at: Option<DateTime<Utc>>,
    /// The trace the job belongs to, if it has one.
    pub traceparent: Option<ferry_core::TraceParent>,
}

/// What a maintenance pass did to one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub id: JobId,
    pub kind: String,
    pub to: JobState,
    pub tenant_id: String,
    /// The attempt that ended.
    pub attempt: u32,
    pub traceparent: Option<ferry_core::TraceParent>,
}

/// A tenant: every resource belongs to exactly one.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantRow {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub quotas: ferry_core::identity::TenantQuotas,
    /// The tenant's own egress rules (the operator's are added by the server).
    pub egress: ferry_core::egress::EgressPolicy,
}

/// An API key (or worker token: role `worker`) as the store keeps it: found by its visible
/// prefix, its secret only as a keyed hash computed by the server.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRow {
    pub prefix: String,
    pub tenant_id: String,
    pub role: String,
    pub secret_hash: Vec<u8>,
    /// Kind patterns the key is limited to (`None`: every kind).
    pub kinds: Option<Vec<String>>,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A user as the store keeps them: the password only as an argon2id PHC string.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    /// The login name (lower case).
    pub name: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
}

/// A login session: found by a keyed hash of its token, in one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSessionRow {
    pub token_hash: Vec<u8>,
    pub user_name: String,
    pub tenant_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// An audit log entry to write with the change it records (in the same transaction);
/// the store writes it only when the change happened.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub tenant_id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: &'static str,
    pub target: String,
    pub detail: Option<serde_json::Value>,
}

impl AuditRow {
    /// The entry with `detail` (never a secret).
    pub fn with_detail(self, detail: serde_json::Value) -> Self {
        Self {
            detail: Some(detail),
            ..self
        }
    }
}

/// A webhook as the store keeps it (the secret sealed by the server).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRow {
    pub id: WebhookId,
    pub tenant_id: String,
    pub url: String,
    pub sealed_secret: Vec<u8>,
    pub events: Vec<String>,
    pub kinds: Vec<String>,
    /// The last event id turned into deliveries.
    pub cursor: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A delivery due to be sent, with what sending needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub tenant_id: String,
    pub url: String,
    pub sealed_secret: Vec<u8>,
    pub event_id: i64,
    pub attempts: u32,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryOutcome {
    pub status: &'static str,
    pub attempts: u32,
    pub next_at: chrono::DateTime<chrono::Utc>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Which events to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Only this job's.
    pub job: Option<JobId>,
    /// Only events of jobs of these kinds (empty: all).
    pub kinds: Vec<ferry_core::KindPattern>,
    /// Only these types (`job.completed`, …; empty: all).
    pub types: Vec<String>,
}

/// A running job whose lease a worker proved it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct LeasedJob {
    pub tenant_id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub attempt: u32,
}

/// What `job_insert` did with one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Inserted {
    /// The new job, or — when its dedupe key was taken — the unfinished job holding it.
    pub job: Job,
    pub created: bool,
}

/// A batch to create with its item jobs.
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub id: BatchId,
    pub tenant_id: String,
    pub kind: String,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// What `job_complete` did: one answer per entry, in order, and how many chained jobs
/// (`then`) it enqueued.
#[derive(Debug, Default)]
pub struct Completed {
    pub answers: Vec<crate::StoreResult<()>>,
    pub spawned: usize,
}

/// A vault secret as the store keeps it: sealed by the server, with the domains it may be
/// sent to (`ferry_core::egress::EgressRule`s as text).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRow {
    pub tenant_id: String,
    pub name: String,
    pub sealed: Vec<u8>,
    pub domains: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
