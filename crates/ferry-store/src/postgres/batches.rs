//! Batches: one job per item inserted whole, progress and results read in order, cancelled
//! whole.

use chrono::{DateTime, Utc};
use ferry_core::{
    BatchId, JobId, NewJob,
    api::{Batch, BatchProgress, BatchResult},
};
use sqlx::Row;
use uuid::Uuid;

use crate::{Entity, NewBatch, StoreError, StoreResult};

use super::{
    PostgresStore, from_json, from_ms, insert_jobs, ms, opt_from_ms, parse_state, to_json,
};
use crate::AuditRow;

impl PostgresStore {
    /// Inserts a batch and its item jobs in one transaction.
    pub async fn batch_insert(
        &self,
        batch: &NewBatch,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO ferry.batches (id, tenant_id, kind, total, labels, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(batch.id.as_uuid())
        .bind(&batch.tenant_id)
        .bind(&batch.kind)
        .bind(jobs.len() as i32)
        .bind(to_json(&batch.labels))
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        insert_jobs(&mut tx, jobs, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn batch_get(&self, tenant_id: &str, id: BatchId) -> StoreResult<Batch> {
        let row = sqlx::query(
            "SELECT kind, labels, created_at, cancelled_at, total FROM ferry.batches WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id.as_uuid())
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound(Entity::Batch))?;
        let mut progress = BatchProgress {
            total: row.try_get::<i32, _>("total")? as u64,
            ..Default::default()
        };
        let counts = sqlx::query(
            "SELECT status, count(*) AS n FROM ferry.jobs WHERE batch_id = $1 GROUP BY status",
        )
        .bind(id.as_uuid())
        .fetch_all(&self.pool)
        .await?;
        for c in &counts {
            progress.add(
                parse_state(c.try_get("status")?)?,
                c.try_get::<i64, _>("n")? as u64,
            );
        }
        let cancelled_at = opt_from_ms(row.try_get("cancelled_at")?)?;
        Ok(Batch {
            id,
            kind: row.try_get("kind")?,
            status: Batch::state_of(&progress, cancelled_at.is_some()),
            progress,
            labels: from_json(Some(row.try_get("labels")?))?.unwrap_or_default(),
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
            "SELECT id FROM ferry.batches WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant_id)
        .bind(before.map(|b| b.as_uuid()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut batches = Vec::with_capacity(rows.len());
        for row in rows {
            let id: Uuid = row.try_get("id")?;
            batches.push(self.batch_get(tenant_id, BatchId::from_uuid(id)).await?);
        }
        Ok(batches)
    }

    /// Finished items of a batch in commit order, after the position `(finish_tx, id)`.
    /// Only items finished by transactions older than every running one are returned, so an
    /// item that commits late can never land behind a position already handed out.
    pub async fn batch_results(
        &self,
        tenant_id: &str,
        id: BatchId,
        after: Option<(i64, JobId)>,
        limit: u32,
    ) -> StoreResult<Vec<(i64, BatchResult)>> {
        self.batch_get(tenant_id, id).await?;
        let (after_pos, after_id) =
            after.map_or((i64::MIN, Uuid::nil()), |(t, id)| (t, id.as_uuid()));
        let rows = sqlx::query(
            "SELECT id, batch_index, status, result, error, finished_at, finish_tx FROM ferry.jobs \
             WHERE batch_id = $1 AND finished_at IS NOT NULL AND finish_tx IS NOT NULL \
               AND (finish_tx, id) > ($2, $3) \
               AND finish_tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY finish_tx, id LIMIT $4",
        )
        .bind(id.as_uuid())
        .bind(after_pos)
        .bind(after_id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| crate::rows::batch_result(row, "finish_tx"))
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
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE ferry.batches SET cancelled_at = coalesce(cancelled_at, $1) WHERE id = $2 AND tenant_id = $3",
        )
        .bind(ms(now))
        .bind(id.as_uuid())
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::Batch));
        }
        sqlx::query(
            "UPDATE ferry.jobs SET status = 'cancelled', finished_at = $1, updated_at = $1 \
             WHERE batch_id = $2 AND status IN ('pending', 'scheduled')",
        )
        .bind(ms(now))
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE ferry.jobs SET cancel_requested = true, updated_at = $1 WHERE batch_id = $2 AND status = 'running'",
        )
        .bind(ms(now))
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await?;
        super::audit::audit_insert(&mut tx, audit).await?;
        tx.commit().await?;
        self.batch_get(tenant_id, id).await
    }
}
