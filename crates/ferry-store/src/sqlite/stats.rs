//! A tenant's jobs at a glance (the dashboard's overview): waiting, running and failed jobs
//! by kind, jobs finished per five minutes since a time, and the oldest waiting job. Each
//! read uses an index; completed jobs are counted only within the window.

use chrono::{DateTime, Utc};
use ferry_core::api::JobStats;

use crate::StoreResult;

use super::{SqliteStore, ms};

/// The width of a throughput bucket.
const BUCKET_MS: i64 = 300_000;

impl SqliteStore {
    pub async fn job_stats(
        &self,
        tenant_id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<JobStats> {
        let kinds: Vec<(String, String, i64)> = sqlx::query_as(
            // Through the status index: the planner would rather answer `GROUP BY kind`
            // from the (tenant_id, kind, id) index, which walks every job the tenant has
            // (0.5 s at 300,000 completed jobs, against under 1 ms this way).
            "SELECT kind, status, count(*) FROM ferry_jobs INDEXED BY ferry_jobs_status \
             WHERE tenant_id = ?1 AND status IN ('scheduled', 'pending', 'running', 'failed') \
             GROUP BY kind, status ORDER BY kind, status",
        )
        .bind(tenant_id)
        .fetch_all(&self.read)
        .await?;
        let finished: Vec<(i64, String, i64)> = match since {
            None => Vec::new(),
            // Through the index of finish times (a range of recent ones); the status
            // condition repeats that index's own so SQLite may use it. Left to itself, the
            // planner may walk every completed job of the tenant through the status index.
            Some(since) => {
                sqlx::query_as(
                    "SELECT finished_at - finished_at % ?3 AS bucket, status, count(*) \
                     FROM ferry_jobs INDEXED BY ferry_jobs_finished \
                     WHERE finished_at >= ?2 AND status IN ('completed', 'failed', 'cancelled') \
                     AND tenant_id = ?1 AND status <> 'cancelled' \
                     GROUP BY bucket, status ORDER BY bucket",
                )
                .bind(tenant_id)
                .bind(ms(since))
                .bind(BUCKET_MS)
                .fetch_all(&self.read)
                .await?
            }
        };
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT created_at FROM ferry_jobs WHERE status = 'pending' AND tenant_id = ?1 \
             ORDER BY id LIMIT 1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.read)
        .await?;
        crate::rows::job_stats(kinds, finished, oldest)
    }
}
