//! Retry policy: exponential backoff with jitter, and the one decision every failed
//! attempt goes through (retry later, dead, or cancelled).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Exponential backoff: attempt `n` (1-based) waits about `base_ms * 2^(n-1)`, capped
/// at `max_ms`, with "equal jitter" (half fixed, half random) so retries of many jobs
/// that failed together spread out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base_ms: 1_000,
            max_ms: 10 * 60 * 1_000,
        }
    }
}

impl Backoff {
    /// The delay before the retry that follows failed attempt `attempt` (1-based).
    /// `unit` in `[0, 1)` is the random draw, passed in so tests are deterministic.
    pub fn delay_ms(&self, attempt: u32, unit: f64) -> u64 {
        let exp = attempt.saturating_sub(1).min(32);
        let full = self.base_ms.saturating_mul(1u64 << exp).min(self.max_ms);
        let half = full / 2;
        half + ((full - half) as f64 * unit.clamp(0.0, 1.0)) as u64
    }
}

/// What happens to a job whose current attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Back to `scheduled`, to run again at the given time.
    Retry { run_at: DateTime<Utc> },
    /// `failed`: attempts used up or the error is not retryable.
    Dead,
    /// `cancelled`: a client asked for it while the attempt ran.
    Cancelled,
}

/// Facts about the failed attempt that decide its outcome.
#[derive(Debug, Clone, Copy)]
pub struct FailedAttempt {
    pub attempt: u32,
    pub max_attempts: u32,
    pub retryable: bool,
    pub cancel_requested: bool,
    /// The handler's own wish (e.g. an upstream's `Retry-After`), overriding backoff.
    pub retry_after_ms: Option<u64>,
    pub backoff: Backoff,
}

impl FailedAttempt {
    pub fn outcome(&self, now: DateTime<Utc>, unit: f64) -> FailureOutcome {
        if self.cancel_requested {
            return FailureOutcome::Cancelled;
        }
        if !self.retryable || self.attempt >= self.max_attempts {
            return FailureOutcome::Dead;
        }
        let delay = self
            .retry_after_ms
            .unwrap_or_else(|| self.backoff.delay_ms(self.attempt, unit));
        let delay = Duration::milliseconds(i64::try_from(delay).unwrap_or(i64::MAX / 2));
        FailureOutcome::Retry {
            run_at: now + delay,
        }
    }
}

/// A uniform draw in `[0, 1)` for jitter.
pub fn jitter_unit() -> f64 {
    fastrand::f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff {
            base_ms: 1000,
            max_ms: 8000,
        };
        let at = |n, u| b.delay_ms(n, u);
        assert_eq!((at(1, 0.0), at(1, 1.0)), (500, 1000));
        assert_eq!((at(2, 0.0), at(2, 1.0)), (1000, 2000));
        assert_eq!((at(3, 0.0), at(3, 0.99)), (2000, 3980));
        assert_eq!((at(4, 0.0), at(4, 1.0)), (4000, 8000));
        assert_eq!(at(50, 1.0), 8000);
        assert_eq!(at(u32::MAX, 1.0), 8000);
    }

    #[test]
    fn outcome_rules() {
        let now = Utc::now();
        let base = FailedAttempt {
            attempt: 1,
            max_attempts: 3,
            retryable: true,
            cancel_requested: false,
            retry_after_ms: None,
            backoff: Backoff {
                base_ms: 100,
                max_ms: 100,
            },
        };
        assert_eq!(
            base.outcome(now, 1.0),
            FailureOutcome::Retry {
                run_at: now + Duration::milliseconds(100)
            }
        );
        let later = FailedAttempt {
            retry_after_ms: Some(5000),
            ..base
        };
        assert_eq!(
            later.outcome(now, 0.0),
            FailureOutcome::Retry {
                run_at: now + Duration::milliseconds(5000)
            }
        );
        assert_eq!(
            FailedAttempt { attempt: 3, ..base }.outcome(now, 0.5),
            FailureOutcome::Dead
        );
        assert_eq!(
            FailedAttempt {
                retryable: false,
                ..base
            }
            .outcome(now, 0.5),
            FailureOutcome::Dead
        );
        assert_eq!(
            FailedAttempt {
                cancel_requested: true,
                ..base
            }
            .outcome(now, 0.5),
            FailureOutcome::Cancelled
        );
    }
}
