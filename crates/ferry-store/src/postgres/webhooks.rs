//! Webhooks and their deliveries: registration, dispatch from the event record, due
//! deliveries, outcomes, the log and replays.

use chrono::{DateTime, Utc};
use ferry_core::{DeliveryId, JobId, WebhookId};
use uuid::Uuid;

use ferry_core::api::DeliveryInfo;

use crate::{DeliveryOutcome, DueDelivery, StoreResult, WebhookRow};

use super::{PostgresStore, ms};
use crate::AuditRow;

impl PostgresStore {
    pub async fn webhook_insert(&self, w: &WebhookRow, audit: &AuditRow) -> StoreResult<()> {
        let change = sqlx::query(
            "INSERT INTO ferry.webhooks (id, tenant_id, url, sealed_secret, events, kinds, cursor, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(w.id.as_uuid())
        .bind(&w.tenant_id)
        .bind(&w.url)
        .bind(&w.sealed_secret)
        .bind(serde_json::json!(w.events))
        .bind(serde_json::json!(w.kinds))
        .bind(w.cursor)
        .bind(ms(w.created_at));
        self.execute_audited(change, audit).await?;
        Ok(())
    }

    /// Webhooks of `tenant` (all tenants' when `None`), oldest first.
    pub async fn webhook_list(&self, tenant_id: Option<&str>) -> StoreResult<Vec<WebhookRow>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, url, sealed_secret, events, kinds, cursor, created_at \
             FROM ferry.webhooks WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::rows::webhook).collect()
    }

    pub async fn webhook_delete(
        &self,
        tenant_id: &str,
        id: WebhookId,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query("DELETE FROM ferry.webhooks WHERE id = $1 AND tenant_id = $2")
            .bind(id.as_uuid())
            .bind(tenant_id);
        let changed = self.execute_audited(change, audit).await?;
        Ok(changed > 0)
    }

    /// Turns events into deliveries and moves the cursor from `from` to `to`, in one
    /// transaction; answers false (and does nothing) if the cursor was moved meanwhile.
    pub async fn webhook_dispatch(
        &self,
        webhook: WebhookId,
        from: i64,
        to: i64,
        events: &[(i64, Option<JobId>)],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let moved =
            sqlx::query("UPDATE ferry.webhooks SET cursor = $1 WHERE id = $2 AND cursor = $3")
                .bind(to)
                .bind(webhook.as_uuid())
                .bind(from)
                .execute(&mut *tx)
                .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        let base: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(seq), 0)::bigint FROM ferry.webhook_deliveries WHERE webhook_id = $1",
        )
        .bind(webhook.as_uuid())
        .fetch_one(&mut *tx)
        .await?;
        let ids: Vec<Uuid> = events.iter().map(|_| JobId::new().as_uuid()).collect();
        let event_ids: Vec<i64> = events.iter().map(|e| e.0).collect();
        let jobs: Vec<Option<Uuid>> = events.iter().map(|e| e.1.map(|j| j.as_uuid())).collect();
        let seqs: Vec<i64> = (0..events.len() as i64).map(|i| base + i + 1).collect();
        sqlx::query(
            "INSERT INTO ferry.webhook_deliveries (id, webhook_id, event_id, job_id, seq, status, next_at, created_at) \
             SELECT d.id, $1, d.event_id, d.job_id, d.seq, 'pending', $6, $6 \
             FROM unnest($2::uuid[], $3::bigint[], $4::uuid[], $5::bigint[]) AS d(id, event_id, job_id, seq) \
             ON CONFLICT (webhook_id, event_id) DO NOTHING",
        )
        .bind(webhook.as_uuid())
        .bind(ids)
        .bind(event_ids)
        .bind(jobs)
        .bind(seqs)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Pending deliveries due by `now`, each the first pending one of its job for its
    /// webhook (so a job's events arrive in order).
    pub async fn deliveries_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>> {
        let rows = sqlx::query(
            "SELECT d.id, d.webhook_id, w.tenant_id, w.url, w.sealed_secret, d.event_id, d.attempts, d.created_at \
             FROM ferry.webhook_deliveries d JOIN ferry.webhooks w ON w.id = d.webhook_id \
             WHERE d.status = 'pending' AND d.next_at <= $1 \
               AND NOT EXISTS (SELECT 1 FROM ferry.webhook_deliveries e WHERE e.webhook_id = d.webhook_id \
                   AND e.job_id IS NOT DISTINCT FROM d.job_id AND e.status = 'pending' AND e.seq < d.seq) \
             ORDER BY d.next_at, d.seq LIMIT $2",
        )
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::rows::due_delivery).collect()
    }

    pub async fn delivery_record(&self, id: DeliveryId, o: &DeliveryOutcome) -> StoreResult<()> {
        sqlx::query(
            "UPDATE ferry.webhook_deliveries SET status = $1, attempts = $2, next_at = $3, last_status = $4, \
             last_error = $5, delivered_at = $6 WHERE id = $7 AND status = 'pending'",
        )
        .bind(o.status)
        .bind(o.attempts as i32)
        .bind(ms(o.next_at))
        .bind(o.last_status.map(i32::from))
        .bind(&o.last_error)
        .bind(o.delivered_at.map(ms))
        .bind(id.as_uuid())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A webhook's deliveries, newest first; `None` if there is no such webhook.
    pub async fn delivery_list(
        &self,
        tenant_id: &str,
        webhook: WebhookId,
        limit: u32,
    ) -> StoreResult<Option<Vec<DeliveryInfo>>> {
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM ferry.webhooks WHERE id = $1 AND tenant_id = $2")
                .bind(webhook.as_uuid())
                .bind(tenant_id)
                .fetch_optional(&self.pool)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT id, event_id, status, attempts, next_at, last_status, last_error, created_at, delivered_at \
             FROM ferry.webhook_deliveries WHERE webhook_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(webhook.as_uuid())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(crate::rows::delivery)
            .collect::<StoreResult<Vec<_>>>()
            .map(Some)
    }

    /// A dead delivery goes back to pending with fresh attempts; answers whether it was dead.
    pub async fn delivery_replay(
        &self,
        tenant_id: &str,
        webhook: WebhookId,
        delivery: DeliveryId,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query(
            "UPDATE ferry.webhook_deliveries SET status = 'pending', attempts = 0, next_at = $1, \
             created_at = $1, last_error = NULL WHERE id = $2 AND webhook_id = $3 AND status = 'dead' \
             AND EXISTS (SELECT 1 FROM ferry.webhooks WHERE id = $3 AND tenant_id = $4)",
        )
        .bind(ms(now))
        .bind(delivery.as_uuid())
        .bind(webhook.as_uuid())
        .bind(tenant_id);
        let changed = self.execute_audited(change, audit).await?;
        Ok(changed > 0)
    }
}
