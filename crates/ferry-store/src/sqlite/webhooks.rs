//! Webhooks and their deliveries: registration, dispatch from the event record, due
//! deliveries, outcomes, the log and replays.

use chrono::{DateTime, Utc};
use ferry_core::{DeliveryId, JobId, WebhookId};

use ferry_core::api::DeliveryInfo;

use crate::{DeliveryOutcome, DueDelivery, StoreError, StoreResult, WebhookRow};

use super::{SqliteStore, ms};
use crate::AuditRow;

impl SqliteStore {
    pub async fn webhook_insert(&self, w: &WebhookRow, audit: &AuditRow) -> StoreResult<()> {
        let change = sqlx::query(
            "INSERT INTO ferry_webhooks (id, tenant_id, url, sealed_secret, events, kinds, cursor, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(w.id.to_string())
        .bind(&w.tenant_id)
        .bind(&w.url)
        .bind(&w.sealed_secret)
        .bind(serde_json::to_string(&w.events).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(serde_json::to_string(&w.kinds).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(w.cursor)
        .bind(ms(w.created_at));
        self.execute_audited(change, audit).await?;
        Ok(())
    }

    /// Webhooks of `tenant` (all tenants' when `None`), oldest first.
    pub async fn webhook_list(&self, tenant_id: Option<&str>) -> StoreResult<Vec<WebhookRow>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, url, sealed_secret, events, kinds, cursor, created_at \
             FROM ferry_webhooks WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(crate::rows::webhook).collect()
    }

    pub async fn webhook_delete(
        &self,
        tenant_id: &str,
        id: WebhookId,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "DELETE FROM ferry_webhook_deliveries WHERE webhook_id = ? AND EXISTS \
             (SELECT 1 FROM ferry_webhooks WHERE id = ? AND tenant_id = ?)",
        )
        .bind(id.to_string())
        .bind(id.to_string())
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM ferry_webhooks WHERE id = ? AND tenant_id = ?")
            .bind(id.to_string())
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() > 0 {
            super::audit::audit_insert(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
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
        let mut tx = self.write.begin().await?;
        let moved = sqlx::query("UPDATE ferry_webhooks SET cursor = ? WHERE id = ? AND cursor = ?")
            .bind(to)
            .bind(webhook.to_string())
            .bind(from)
            .execute(&mut *tx)
            .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        let base: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(seq), 0) FROM ferry_webhook_deliveries WHERE webhook_id = ?",
        )
        .bind(webhook.to_string())
        .fetch_one(&mut *tx)
        .await?;
        for (i, (event, job)) in events.iter().enumerate() {
            sqlx::query(
                "INSERT INTO ferry_webhook_deliveries (id, webhook_id, event_id, job_id, seq, status, next_at, created_at) \
                 VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (webhook_id, event_id) DO NOTHING",
            )
            .bind(JobId::new().to_string())
            .bind(webhook.to_string())
            .bind(event)
            .bind(job.map(|j| j.to_string()))
            .bind(base + i as i64 + 1)
            .bind(ms(now))
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
        }
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
             FROM ferry_webhook_deliveries d JOIN ferry_webhooks w ON w.id = d.webhook_id \
             WHERE d.status = 'pending' AND d.next_at <= ? \
               AND NOT EXISTS (SELECT 1 FROM ferry_webhook_deliveries e WHERE e.webhook_id = d.webhook_id \
                   AND e.job_id IS d.job_id AND e.status = 'pending' AND e.seq < d.seq) \
             ORDER BY d.next_at, d.seq LIMIT ?",
        )
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(crate::rows::due_delivery).collect()
    }

    pub async fn delivery_record(&self, id: DeliveryId, o: &DeliveryOutcome) -> StoreResult<()> {
        sqlx::query(
            "UPDATE ferry_webhook_deliveries SET status = ?, attempts = ?, next_at = ?, last_status = ?, \
             last_error = ?, delivered_at = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(o.status)
        .bind(i64::from(o.attempts))
        .bind(ms(o.next_at))
        .bind(o.last_status.map(i64::from))
        .bind(&o.last_error)
        .bind(o.delivered_at.map(ms))
        .bind(id.to_string())
        .execute(&self.write)
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
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM ferry_webhooks WHERE id = ? AND tenant_id = ?")
                .bind(webhook.to_string())
                .bind(tenant_id)
                .fetch_optional(&self.read)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT id, event_id, status, attempts, next_at, last_status, last_error, created_at, delivered_at \
             FROM ferry_webhook_deliveries WHERE webhook_id = ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(webhook.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.read)
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
            "UPDATE ferry_webhook_deliveries SET status = 'pending', attempts = 0, next_at = ?, \
             created_at = ?, last_error = NULL WHERE id = ? AND webhook_id = ? AND status = 'dead' \
             AND EXISTS (SELECT 1 FROM ferry_webhooks WHERE id = ? AND tenant_id = ?)",
        )
        .bind(ms(now))
        .bind(ms(now))
        .bind(delivery.to_string())
        .bind(webhook.to_string())
        .bind(webhook.to_string())
        .bind(tenant_id);
        let changed = self.execute_audited(change, audit).await?;
        Ok(changed > 0)
    }
}
