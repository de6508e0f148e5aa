//! What an operator watches: a tenant's jobs at a glance (`GET /v1/stats`, the dashboard's
//! overview), failed jobs grouped (dead letters) and the workers the server has heard from
//! (`GET /v1/workers`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::JobState;

/// Failed jobs of one kind that failed with one error code (the dashboard's dead letters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FailedGroup {
    pub kind: String,
    /// The last attempt's error code (`""` when it had none).
    pub code: String,
    pub count: u64,
    pub last_failed_at: DateTime<Utc>,
}

/// A tenant's jobs at a glance: unfinished and failed jobs by kind, jobs finished per five
/// minutes in a recent window, and how old the oldest waiting job is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobStats {
    /// Scheduled, pending, running and failed jobs by kind (completed and cancelled ones
    /// are counted only in `finished`).
    pub kinds: Vec<KindCount>,
    /// Jobs completed and failed per five minutes, oldest first (empty buckets left out).
    pub finished: Vec<FinishedBucket>,
    /// When the oldest job waiting to be claimed was created.
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KindCount {
    pub kind: String,
    pub state: JobState,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FinishedBucket {
    /// The bucket's start.
    pub at: DateTime<Utc>,
    pub completed: u64,
    pub failed: u64,
}

/// `GET /v1/stats`: the tenant's jobs at a glance over the last hour, its paused kind
/// patterns and how many of its workers are connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Stats {
    #[serde(flatten)]
    pub jobs: JobStats,
    /// The start of the window `finished` covers.
    pub since: DateTime<Utc>,
    /// Jobs completed and failed in the window, summed over `finished`.
    pub completed: u64,
    pub failed: u64,
    /// `failed / (completed + failed)` in the window; absent when nothing finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
    pub paused_kinds: Vec<String>,
    pub workers_connected: u64,
}

impl Stats {
    pub fn new(
        jobs: JobStats,
        since: DateTime<Utc>,
        paused_kinds: Vec<String>,
        workers_connected: u64,
    ) -> Self {
        let completed = jobs.finished.iter().map(|b| b.completed).sum::<u64>();
        let failed = jobs.finished.iter().map(|b| b.failed).sum::<u64>();
        let failure_rate =
            (completed + failed > 0).then(|| failed as f64 / (completed + failed) as f64);
        Stats {
            jobs,
            since,
            completed,
            failed,
            failure_rate,
            paused_kinds,
            workers_connected,
        }
    }
}

/// A worker as the server last heard from it: its claims record who it is, its running
/// jobs when it last reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkerInfo {
    /// The `worker_id` it claims with.
    pub id: String,
    pub tenant: String,
    /// The kind patterns of its last claim.
    pub kinds: Vec<String>,
    /// Its HTTP user agent (Ferry's worker sends `ferry/VERSION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The address its last recorded claim came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Jobs it is running now.
    pub jobs_in_hand: u64,
    pub first_seen_at: DateTime<Utc>,
    /// Its last claim or report about a job it holds, whichever is later.
    pub last_seen_at: DateTime<Utc>,
    /// Heard from within the last [`CONNECTED_WITHIN_SECS`].
    pub connected: bool,
}

/// A worker counts as connected while it was heard from within this many seconds: more than
/// the longest claim long-poll (30 s) plus the time claims are recorded apart.
pub const CONNECTED_WITHIN_SECS: i64 = 90;

/// `GET /v1/workers`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerInfo>,
}
