//! The job state machine. It lives in three places that must agree: this enum, the
//! `CHECK` constraints of the schemas, and `docs/job-lifecycle.md`.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for `run_at`: a delayed job or a retry in backoff.
    Scheduled,
    /// Ready to be claimed.
    Pending,
    /// Claimed by a worker that holds a lease.
    Running,
    /// Finished with a result.
    Completed,
    /// Dead: attempts used up or a non-retryable error.
    Failed,
    /// Cancelled by a client.
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Scheduled,
        JobState::Pending,
        JobState::Running,
        JobState::Completed,
        JobState::Failed,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// A final state changes only through an explicit client retry.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Cancelled
        )
    }

    /// Whether the state machine allows `self -> to`. Stores enforce the same edges
    /// with compare-and-set updates; this is the reference the tests check them against.
    pub fn can_transition_to(self, to: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, to),
            (Scheduled, Pending)
                | (Scheduled, Running)
                | (Scheduled, Cancelled)
                | (Pending, Running)
                | (Pending, Cancelled)
                | (Running, Completed)
                | (Running, Failed)
                | (Running, Scheduled)
                | (Running, Cancelled)
                | (Failed, Pending)
                | (Cancelled, Pending)
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown job status {0:?} (expected one of scheduled, pending, running, completed, failed, cancelled)"
)]
pub struct ParseJobStateError(pub String);

impl FromStr for JobState {
    type Err = ParseJobStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| ParseJobStateError(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states_only_leave_by_retry() {
        for from in JobState::ALL.into_iter().filter(|s| s.is_final()) {
            for to in JobState::ALL {
                let allowed = from.can_transition_to(to);
                let is_retry = from != JobState::Completed && to == JobState::Pending;
                assert_eq!(allowed, is_retry, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn names_roundtrip() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().ok(), Some(s));
            assert_eq!(serde_json::to_string(&s).ok(), Some(format!("\"{s}\"")));
        }
    }
}
