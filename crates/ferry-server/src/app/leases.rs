//! Acting under a job's lease: a worker's proof that it may read or write what the job
//! names (its session, its artifacts). The lease must hold the job *now*, and the job must
//! be in the principal's tenant.

use std::collections::HashSet;

use ferry_core::{
    JobId,
    api::{ClaimedJob, LeaseStatus},
    validate::Claim,
};
use ferry_store::CompleteParams;
use ferry_store::LeasedJob;

use super::{AppError, AppResult, Principal};
use crate::Queue;

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
        Ok(self.claim(&who.tenant, claim).await?)
    }

    /// `LeaseLost` when the job is another tenant's: a lease is good only in its own
    /// tenant, so one that leaked does nothing elsewhere. (A job that does not exist is
    /// left to the store, which answers as for any lost lease.)
    pub async fn fence(&self, who: &Principal, job: JobId) -> AppResult<()> {
        match self.others_jobs(who, &[job]).await?.is_empty() {
            true => Ok(()),
            false => Err(AppError::LeaseLost),
        }
    }

    /// Those of `jobs` that belong to another tenant than the principal's.
    pub async fn others_jobs(&self, who: &Principal, jobs: &[JobId]) -> AppResult<HashSet<JobId>> {
        Ok(self
            .store()
            .job_ids_of_other_tenants(&who.tenant, jobs)
            .await?
            .into_iter()
            .collect())
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
        let foreign = self.others_jobs(who, &ids).await?;
        let own: Vec<CompleteParams<'_>> = entries
            .iter()
            .filter(|e| !foreign.contains(&e.id))
            .cloned()
            .collect();
        let mut answers = if own.is_empty() {
            Vec::new()
        } else {
            self.complete(&own).await?
        }
        .into_iter();
        Ok(entries
            .iter()
            .map(|e| match foreign.contains(&e.id) {
                true => Err(AppError::LeaseLost),
                false => answers.next().unwrap_or(Ok(())).map_err(AppError::from),
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
