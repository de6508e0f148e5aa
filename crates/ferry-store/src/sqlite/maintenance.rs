//! Maintenance passes in bounded batches: promote due scheduled jobs, prune rate-key
//! starts, delete finished jobs past retention, and checkpoint the WAL.

use chrono::{DateTime, Utc};

use crate::StoreResult;

use super::{SqliteStore, ms};

impl SqliteStore {
    /// Moves due `scheduled` jobs to `pending`.
    pub async fn job_promote_scheduled(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE ferry_jobs SET status = 'pending', updated_at = ?1 WHERE id IN \
             (SELECT id FROM ferry_jobs WHERE status = 'scheduled' AND run_at <= ?1 LIMIT ?2) \
             AND status = 'scheduled'",
        )
        .bind(ms(now))
        .bind(limit as i64)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes up to `limit` jobs that finished before `before` (their items and labels go with them).
    pub async fn rate_prune(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let horizon = ms(now) - ferry_core::flow::MAX_RATE_WINDOW_MS as i64;
        let done = sqlx::query(
            "DELETE FROM ferry_rate_starts WHERE seq IN (SELECT seq FROM ferry_rate_starts \
             WHERE at < ? ORDER BY at LIMIT ?)",
        )
        .bind(horizon)
        .bind(limit as i64)
        .execute(&self.write)
        .await?;
        sqlx::query("DELETE FROM ferry_rate_keys WHERE blocked_until < ?")
            .bind(ms(now))
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn job_delete_finished(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM ferry_jobs WHERE id IN (SELECT id FROM ferry_jobs \
             WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at < ? LIMIT ?)",
        )
        .bind(ms(before))
        .bind(limit as i64)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }
}
