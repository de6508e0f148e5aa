//! Acting under a job's lease: a worker's proof that it may read or write what the job
//! names (its session, its artifacts). The lease must hold the job *now*, and the job must
//! be in the principal's tenant.

use ferry_core::JobId;
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
    /// The running job the lease holds, or `LeaseLost`.
    pub async fn leased(&self, who: &Principal, lease: &Lease) -> AppResult<LeasedJob> {
        self.store()
            .job_leased(lease.job, &lease.token)
            .await?
            .filter(|job| job.tenant_id == who.tenant.as_str())
            .ok_or(AppError::LeaseLost)
    }
}
