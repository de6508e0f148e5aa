//! Acting under a job's lease: a worker's proof that it may read or write what the job
//! names (its session, its artifacts). The lease must hold the job *now*, and the job must
//! be in the principal's tenant.

use std::collections::HashMap;

use ferry_core::{
    JobId, JobState,
    api::{ClaimedJob, LeaseStatus},
    validate::Claim,
};
use ferry_store::{CompleteParams, JobHead, LeasedJob};

use super::{AppError, AppResult, Principal};
use crate::{Queue, metrics::ran};

/// A job and the lease token a worker holds it with.
#[derive(Debug, Clone)]
pub struct Lease {
    pub job: JobId,
    pub token: String,
}

impl Queue {
    /// Claims jobs for a worker: only kinds within its token's patterns (asking for a
    /// pattern wider than those is refused, `KIND_NOT_ALLOWED`), only in its tenant.
    pub async fn claim_for(&self, who: &Principal, claim: &Claim) -> AppResult<Vec<ClaimedJob>> {
        who.check_patterns(&claim.kinds)?;
        let mut jobs = self.claim(&who.tenant, claim).await?;
        self.metrics().claimed(&who.tenant, &jobs, self.now());
        crate::traces::claimed(&jobs, who.tenant.as_str(), &claim.worker_id);
        if !jobs.is_empty() {
            // Rate limits are the server's (applied at submit): a worker gets only where
            // it may connect (and a worker older than them would refuse the field).
            let egress = ferry_core::egress::EgressPolicy {
                rate_limits: Vec::new(),
                ..self.egress_of(&who.tenant).await?
            };
            for job in &mut jobs {
                job.egress = egress.clone();
                job.tenant = who.tenant.to_string();
            }
        }
        Ok(jobs)
    }

    /// The job's head, or `LeaseLost` when it is another tenant's: a lease is good only in
    /// its own tenant, so one that leaked does nothing elsewhere. (A job that does not
    /// exist is left to the store, which answers as for any lost lease: `None`.)
    pub async fn fence(&self, who: &Principal, job: JobId) -> AppResult<Option<JobHead>> {
        let head = self.store().job_heads(&[job]).await?.pop();
        match head {
            Some(head) if head.tenant_id != who.tenant.as_str() => Err(AppError::LeaseLost),
            head => Ok(head),
        }
    }

    /// Renews the lease of a job of the principal's tenant.
    pub async fn heartbeat_for(&self, who: &Principal, lease: &Lease) -> AppResult<LeaseStatus> {
        self.fence(who, lease.job).await?;
        Ok(self.heartbeat(lease.job, &lease.token).await?)
    }

    /// Completes jobs of the principal's tenant, one answer per entry, in order; an entry
    /// naming another tenant's job is answered `LeaseLost` and not applied.
    pub async fn complete_for(
        &self,
        who: &Principal,
        entries: &[CompleteParams<'_>],
    ) -> AppResult<Vec<AppResult<()>>> {
        let ids: Vec<JobId> = entries.iter().map(|e| e.id).collect();
        let heads: HashMap<JobId, JobHead> = self
            .store()
            .job_heads(&ids)
            .await?
            .into_iter()
            .map(|h| (h.id, h))
            .collect();
        let foreign = |id: &JobId| {
            heads
                .get(id)
                .is_some_and(|h| h.tenant_id != who.tenant.as_str())
        };
        let own: Vec<CompleteParams<'_>> = entries
            .iter()
            .filter(|e| !foreign(&e.id))
            .cloned()
            .collect();
        let mut answers = if own.is_empty() {
            Vec::new()
        } else {
            self.complete(&own).await?
        }
        .into_iter();
        let now = self.now();
        Ok(entries
            .iter()
            .map(|e| match foreign(&e.id) {
                true => Err(AppError::LeaseLost),
                false => {
                    let answer = answers.next().unwrap_or(Ok(()));
                    // Counted once: a repeated report finds the job completed already.
                    if let (Ok(()), Some(head)) = (&answer, heads.get(&e.id))
                        && head.status == JobState::Running
                    {
                        self.metrics().attempt_ended(
                            &head.tenant_id,
                            &head.kind,
                            "completed",
                            "",
                            ran(head.started_at, now),
                        );
                        crate::traces::attempt_ended(head, "completed", "");
                    }
                    answer.map_err(AppError::from)
                }
            })
            .collect())
    }

    /// The running job the lease holds, or `LeaseLost`.
    pub async fn leased(&self, who: &Principal, lease: &Lease) -> AppResult<LeasedJob> {
        self.store()
            .job_leased(lease.job, &lease.token)
            .await?
            .filter(|job| job.tenant_id == who.tenant.as_str())
            .ok_or(AppError::LeaseLost)
    }
}
