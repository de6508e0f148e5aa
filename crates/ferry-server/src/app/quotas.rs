//! Per-tenant quotas on submits: jobs per second (a token bucket per tenant on this
//! instance) and unfinished jobs (counted in the store, recounted at most every
//! [`RECOUNT`], with this instance's own submits added in between). A tenant without
//! quotas costs one cached lookup per submit and nothing else.
//!
//! Both are exact on one instance. With several, each keeps its own bucket (a tenant may
//! submit its rate on each), and the unfinished count may run over by what other instances
//! accept within one [`RECOUNT`].

use std::{collections::HashMap, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use ferry_core::{JobState, identity::TenantQuotas};

use super::{AppError, AppResult, Principal};
use crate::Queue;

/// How long a tenant's quotas are used before they are read again (a change made on this
/// instance applies at once).
pub const QUOTAS_TTL: Duration = Duration::from_secs(1);

/// How long an unfinished-jobs count is used (plus this instance's submits since).
pub const RECOUNT: Duration = Duration::from_secs(1);

/// What this instance knows of each tenant's use.
#[derive(Debug, Default)]
pub struct QuotaState {
    tenants: Mutex<HashMap<String, Usage>>,
}

#[derive(Debug, Clone, Copy)]
struct Usage {
    quotas: TenantQuotas,
    read_at: DateTime<Utc>,
    /// Tokens in the bucket and when it was last filled.
    bucket: Option<(f64, DateTime<Utc>)>,
    /// Unfinished jobs as last counted (plus this instance's submits since) and when.
    unfinished: Option<(u64, DateTime<Utc>)>,
}

impl QuotaState {
    /// Forgets what is known of `tenant` (its quotas were changed here).
    pub fn forget(&self, tenant: &str) {
        self.lock().remove(tenant);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Usage>> {
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or_default()
}

impl Queue {
    /// Lets `who` submit `n` jobs now, or answers `QUOTA_EXCEEDED` with when to retry.
    pub async fn admit(&self, who: &Principal, n: usize) -> AppResult<()> {
        let tenant = who.tenant.as_str();
        let now = self.now();
        let known = self.quota_state().lock().get(tenant).copied();
        let mut usage = match known {
            Some(u) if elapsed(u.read_at, now) < QUOTAS_TTL => u,
            _ => {
                let quotas = self
                    .store()
                    .tenant_get(tenant)
                    .await?
                    .map(|t| t.quotas)
                    .unwrap_or_default();
                Usage {
                    quotas,
                    read_at: now,
                    bucket: known.and_then(|u| u.bucket),
                    unfinished: known.and_then(|u| u.unfinished),
                }
            }
        };
        if usage.quotas == TenantQuotas::default() {
            self.quota_state().lock().insert(tenant.to_owned(), usage);
            return Ok(());
        }
        let recount = usage.quotas.max_unfinished_jobs.is_some()
            && usage
                .unfinished
                .is_none_or(|(_, at)| elapsed(at, now) >= RECOUNT);
        if recount {
            let counts = self.store().job_counts(tenant).await?;
            let unfinished = counts
                .iter()
                .filter(|(s, _)| {
                    matches!(
                        s,
                        JobState::Scheduled | JobState::Pending | JobState::Running
                    )
                })
                .map(|(_, n)| n)
                .sum();
            usage.unfinished = Some((unfinished, now));
        }
        // Decided under the lock, against the freshest state (another submit may have
        // taken tokens while this one read the store).
        let mut tenants = self.quota_state().lock();
        if let Some(current) = tenants.get(tenant) {
            usage.bucket = current.bucket;
            if !recount {
                usage.unfinished = current.unfinished;
            }
        }
        let decision = decide(tenant, &mut usage, n as u64, now);
        tenants.insert(tenant.to_owned(), usage);
        decision
    }
}

/// Takes `n` from the tenant's bucket and unfinished allowance, or refuses and takes
/// nothing.
fn decide(tenant: &str, usage: &mut Usage, n: u64, now: DateTime<Utc>) -> AppResult<()> {
    if let (Some(max), Some((counted, _))) = (usage.quotas.max_unfinished_jobs, usage.unfinished)
        && counted + n > max
    {
        return Err(AppError::QuotaExceeded {
            message: format!(
                "tenant {tenant:?} may hold {max} unfinished jobs and holds {counted}; \
                 retry when some finish"
            ),
            retry_after: RECOUNT,
        });
    }
    if let Some(rate) = usage.quotas.max_submissions_per_second {
        let rate = f64::from(rate.max(1));
        let (tokens, at) = usage.bucket.unwrap_or((rate, now));
        let tokens = (tokens + elapsed(at, now).as_secs_f64() * rate).min(rate);
        // A full bucket lets any submit through (a batch larger than a second's worth
        // goes, then waits it off); otherwise the submit needs its tokens.
        let wanted = n as f64;
        if tokens < wanted && tokens < rate {
            usage.bucket = Some((tokens, now));
            let wait = (wanted.min(rate) - tokens) / rate;
            return Err(AppError::QuotaExceeded {
                message: format!(
                    "tenant {tenant:?} may submit {rate} jobs per second; retry in {wait:.1} s"
                ),
                retry_after: Duration::from_secs_f64(wait),
            });
        }
        usage.bucket = Some((tokens - wanted, now));
    }
    if let Some((counted, at)) = usage.unfinished {
        usage.unfinished = Some((counted + n, at));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(quotas: TenantQuotas, now: DateTime<Utc>) -> Usage {
        Usage {
            quotas,
            read_at: now,
            bucket: None,
            unfinished: Some((0, now)),
        }
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::milliseconds(ms)
    }

    #[test]
    fn a_bucket_refills_at_its_rate_and_a_big_batch_waits_its_debt_off() {
        let quotas = TenantQuotas {
            max_submissions_per_second: Some(10),
            max_unfinished_jobs: None,
        };
        let mut u = usage(quotas, at(0));
        assert!(
            decide("t", &mut u, 10, at(0)).is_ok(),
            "a full second's worth"
        );
        let Err(AppError::QuotaExceeded { retry_after, .. }) = decide("t", &mut u, 1, at(0)) else {
            panic!("an empty bucket refuses");
        };
        assert_eq!(retry_after, Duration::from_millis(100));
        assert!(decide("t", &mut u, 1, at(100)).is_ok(), "refilled by one");
        assert!(decide("t", &mut u, 1, at(100)).is_err());
        // A full bucket lets a batch of 25 through, and then waits 1.5 s of debt off.
        assert!(decide("t", &mut u, 25, at(2_000)).is_ok());
        assert!(decide("t", &mut u, 1, at(3_000)).is_err());
        assert!(decide("t", &mut u, 1, at(3_600)).is_ok());
    }

    #[test]
    fn unfinished_jobs_are_counted_with_what_this_instance_added() {
        let quotas = TenantQuotas {
            max_submissions_per_second: None,
            max_unfinished_jobs: Some(5),
        };
        let mut u = usage(quotas, at(0));
        assert!(decide("t", &mut u, 3, at(0)).is_ok());
        assert!(decide("t", &mut u, 2, at(0)).is_ok());
        let Err(AppError::QuotaExceeded { message, .. }) = decide("t", &mut u, 1, at(0)) else {
            panic!("six would be over five");
        };
        assert!(message.contains("5 unfinished jobs"), "{message}");
    }
}
