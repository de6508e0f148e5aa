//! Maintenance passes in bounded batches: promote due scheduled jobs, prune rate-key
//! starts, delete finished jobs past retention.

use chrono::{DateTime, Utc};

use crate::StoreResult;

use super::{PostgresStore, ms};

impl PostgresStore {
    pub async fn job_promote_scheduled(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE ferry.jobs SET status = 'pending', updated_at = $1 WHERE id IN \
             (SELECT id FROM ferry.jobs WHERE status = 'scheduled' AND run_at <= $1 LIMIT $2 \
              FOR UPDATE SKIP LOCKED)",
        )
        .bind(ms(now))
        .bind(limit as i64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn rate_prune(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let horizon = ms(now) - ferry_core::flow::MAX_RATE_WINDOW_MS as i64;
        let done = sqlx::query(
            "DELETE FROM ferry.rate_starts WHERE seq IN (SELECT seq FROM ferry.rate_starts \
             WHERE at < $1 ORDER BY at LIMIT $2)",
        )
        .bind(horizon)
        .bind(limit as i64)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM ferry.rate_keys WHERE blocked_until < $1")
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn job_delete_finished(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM ferry.jobs WHERE id IN (SELECT id FROM ferry.jobs \
             WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < $1 LIMIT $2 \
             FOR UPDATE SKIP LOCKED)",
        )
        .bind(ms(before))
        .bind(limit as i64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
