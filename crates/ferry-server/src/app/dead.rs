//! Dead letters: the tenant's failed jobs grouped by kind and error code, and a whole
//! group sent back to waiting at once (audited, as `job.retry_group`).

use ferry_core::api::FailedGroup;

use super::{AppResult, Principal};
use crate::Queue;

/// How many groups are shown at most.
const MAX_GROUPS: u32 = 500;

/// The dead letters of the principal's tenant.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetters<'q>(pub(super) &'q Queue);

impl DeadLetters<'_> {
    /// Failed jobs by kind and error code, largest groups first.
    pub async fn groups(&self, who: &Principal) -> AppResult<Vec<FailedGroup>> {
        Ok(self
            .0
            .store()
            .job_failed_groups(&who.tenant, MAX_GROUPS)
            .await?)
    }

    /// Sends the group's jobs back to waiting (up to `ferry_store::RETRY_GROUP_MAX`);
    /// how many.
    pub async fn retry(&self, who: &Principal, kind: &str, code: &str) -> AppResult<u64> {
        let now = self.0.now();
        let audit = who
            .audit(now, "job.retry_group", format!("kind:{kind}"))
            .with_detail(serde_json::json!({"code": code}));
        let revived = self
            .0
            .store()
            .job_retry_group(&who.tenant, kind, code, now, &audit)
            .await?;
        if revived > 0 {
            self.0.wake_claims();
        }
        Ok(revived)
    }
}
