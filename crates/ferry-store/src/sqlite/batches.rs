//! Batches: one job per item inserted whole, progress and results read in order, cancelled
//! whole.

use chrono::{DateTime, Utc};
use ferry_core::{
    BatchId, JobId, NewJob,
    api::{Batch, BatchProgress, BatchResult},
};
use sqlx::Row;

use crate::{Entity, NewBatch, StoreError, StoreResult};

use super::{SqliteStore, from_ms, insert_jobs, ms, opt_from_ms, parse_state, to_text};
use crate::AuditRow;

impl SqliteStore {
    /// Inserts a batch and its item jobs in one transaction.
    pub async fn batch_insert(
        &self,
        batch: &NewBatch,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO ferry_batches (id, tenant_id, kind, total, labels, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(batch.id.to_string())
        .bind(&batch.tenant_id)
        .bind(&batch.kind)
        .bind(jobs.len() as i64)
        .bind(to_text(&batch.labels))
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        insert_jobs(&mut tx, jobs, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn batch_get(&self, tenant_id: &str, id: BatchId) -> StoreResult<Batch> {
        let row = sqlx::query(
            "SELECT kind, labels, created_at, cancelled_at, total FROM ferry_batches WHERE id = ? AND tenant_id = ?",
        )
        .bind(id.to_string())
        .bind(tenant_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(StoreError::NotFound(Entity::Batch))?;
        let mut progress = BatchProgress {
            total: row.try_get::<i64, _>("total")? as u64,
            ..Default::default()
        };
        let counts = sqlx::query(
            "SELECT status, count(*) AS n FROM ferry_jobs WHERE batch_id = ? GROUP BY status",
        )
        .bind(id.to_string())
        .fetch_all(&self.read)
        .await?;
        for c in &counts {
            progress.add(
                parse_state(c.try_get("status")?)?,
                c.try_get::<i64, _>("n")? as u64,
            );
        }
        let labels: String = row.try_get("labels")?;
        let cancelled_at = opt_from_ms(row.try_get("cancelled_at")?)?;
        Ok(Batch {
            id,
            kind: row.try_get("kind")?,
            status: Batch::state_of(&progress, cancelled_at.is_some()),
            progress,
            labels: serde_json::from_str(&labels)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            created_at: from_ms(row.try_get("created_at")?)?,
            cancelled_at,
        })
    }

    /// The tenant's batches, newest first, older than `before` if given.
    pub async fn batch_list(
        &self,
        tenant_id: &str,
        before: Option<BatchId>,
        limit: u32,
    ) -> StoreResult<Vec<Batch>> {
        let rows = sqlx::query(
            "SELECT id FROM ferry_batches WHERE tenant_id = ? AND (? IS NULL OR id < ?) \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(tenant_id)
        .bind(before.map(|b| b.to_string()))
        .bind(before.map(|b| b.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        let mut batches = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id")?;
            let id = id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("batch id {id:?}")))?;
            batches.push(self.batch_get(tenant_id, id).await?);
        }
        Ok(batches)
    }

    /// Finished items of a batch in commit order, after the position `(finish_seq, id)`
    /// (a per-batch counter bumped by the statement that finishes an item).
    pub async fn batch_results(
        &self,
        tenant_id: &str,
        id: BatchId,
        after: Option<(i64, JobId)>,
        limit: u32,
    ) -> StoreResult<Vec<(i64, BatchResult)>> {
        self.batch_get(tenant_id, id).await?;
        let (after_pos, after_id) =
            after.map_or((i64::MIN, String::new()), |(t, id)| (t, id.to_string()));
        let rows = sqlx::query(
            "SELECT id, batch_index, status, result, error, finished_at, finish_seq FROM ferry_jobs \
             WHERE batch_id = ? AND finished_at IS NOT NULL AND finish_seq IS NOT NULL \
               AND (finish_seq, id) > (?, ?) \
             ORDER BY finish_seq, id LIMIT ?",
        )
        .bind(id.to_string())
        .bind(after_pos)
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| crate::rows::batch_result(row, "finish_seq"))
            .collect()
    }

    /// Cancels a batch's waiting items and asks its running ones to stop.
    pub async fn batch_cancel(
        &self,
        tenant_id: &str,
        id: BatchId,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<Batch> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE ferry_batches SET cancelled_at = coalesce(cancelled_at, ?) WHERE id = ? AND tenant_id = ?",
        )
        .bind(ms(now))
        .bind(id.to_string())
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::Batch));
        }
        sqlx::query(
            "UPDATE ferry_jobs SET status = 'cancelled', finished_at = ?1, updated_at = ?1 \
             WHERE batch_id = ?2 AND status IN ('pending', 'scheduled')",
        )
        .bind(ms(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE ferry_jobs SET cancel_requested = 1, updated_at = ?1 WHERE batch_id = ?2 AND status = 'running'",
        )
        .bind(ms(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        super::audit::audit_insert(&mut tx, audit).await?;
        tx.commit().await?;
        self.batch_get(tenant_id, id).await
    }
}
