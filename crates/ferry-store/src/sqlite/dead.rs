//! Dead letters: a tenant's failed jobs grouped by kind and error code, and a group
//! retried at once.

use chrono::{DateTime, Utc};
use ferry_core::api::FailedGroup;

use crate::{AuditRow, RETRY_GROUP_MAX, StoreResult};

use super::{SqliteStore, ms};

impl SqliteStore {
    /// The tenant's failed jobs by kind and error code, largest groups first.
    pub async fn job_failed_groups(
        &self,
        tenant_id: &str,
        limit: u32,
    ) -> StoreResult<Vec<FailedGroup>> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT kind, coalesce(json_extract(error, '$.code'), '') AS code, count(*) AS n, max(finished_at) AS last_at \
             FROM ferry_jobs WHERE status = 'failed' AND tenant_id = ?1 \
             GROUP BY kind, code ORDER BY n DESC, kind, code LIMIT ?2",
        )
        .bind(tenant_id)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter().map(crate::rows::failed_group).collect()
    }

    /// Sends up to [`RETRY_GROUP_MAX`] of the tenant's failed jobs of `kind` that failed
    /// with `code` (`""`: without one) back to waiting; answers how many.
    pub async fn job_retry_group(
        &self,
        tenant_id: &str,
        kind: &str,
        code: &str,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<u64> {
        let change = sqlx::query(
            "UPDATE ferry_jobs SET status = 'pending', attempt = 0, run_at = ?1, finished_at = NULL, \
             cancel_requested = 0, progress = NULL, lease_expires_at = NULL, updated_at = ?1 \
             WHERE id IN (SELECT id FROM ferry_jobs WHERE status = 'failed' AND tenant_id = ?2 \
             AND kind = ?3 AND coalesce(json_extract(error, '$.code'), '') = ?4 LIMIT ?5)",
        )
        .bind(ms(now))
        .bind(tenant_id)
        .bind(kind)
        .bind(code)
        .bind(i64::from(RETRY_GROUP_MAX));
        self.execute_audited(change, audit).await
    }
}
