//! A tenant's jobs at a glance (the dashboard's overview): waiting, running and failed jobs
//! by kind, jobs finished per five minutes since a time, and the oldest waiting job. Each
//! read uses an index; completed jobs are counted only within the window.

use chrono::{DateTime, Utc};
use ferry_core::api::JobStats;

use crate::StoreResult;

use super::{PostgresStore, ms};

/// The width of a throughput bucket.
const BUCKET_MS: i64 = 300_000;

impl PostgresStore {
    pub async fn job_stats(
        &self,
        tenant_id: &str,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<JobStats> {
        let kinds: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT kind, status, count(*) FROM ferry.jobs WHERE tenant_id = $1 \
             AND status IN ('scheduled', 'pending', 'running', 'failed') \
             GROUP BY kind, status ORDER BY kind, status",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        let finished: Vec<(i64, String, i64)> = match since {
            None => Vec::new(),
            Some(since) => {
                sqlx::query_as(
                    "SELECT finished_at - finished_at % $3 AS bucket, status, count(*) \
                     FROM ferry.jobs WHERE finished_at >= $2 AND tenant_id = $1 \
                     AND status IN ('completed', 'failed') \
                     GROUP BY bucket, status ORDER BY bucket",
                )
                .bind(tenant_id)
                .bind(ms(since))
                .bind(BUCKET_MS)
                .fetch_all(&self.pool)
                .await?
            }
        };
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT created_at FROM ferry.jobs WHERE status = 'pending' AND tenant_id = $1 \
             ORDER BY id LIMIT 1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?;
        crate::rows::job_stats(kinds, finished, oldest)
    }
}
