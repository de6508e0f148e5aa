//! Cron schedules: insert, list, delete, pause, and advance after a tick.

use chrono::{DateTime, Utc};
use ferry_core::ScheduleId;

use ferry_core::schedule::Schedule;

use crate::{StoreError, StoreResult};

use super::{PostgresStore, ms};
use crate::AuditRow;

impl PostgresStore {
    /// Adds a schedule; false when the tenant has one of that name.
    pub async fn schedule_insert(
        &self,
        tenant_id: &str,
        s: &Schedule,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query(
            "INSERT INTO ferry.schedules (id, tenant_id, name, cron, timezone, job, catch_up, paused, next_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (tenant_id, name) DO NOTHING",
        )
        .bind(s.id.as_uuid())
        .bind(tenant_id)
        .bind(&s.name)
        .bind(&s.cron)
        .bind(&s.timezone)
        .bind(serde_json::to_value(&s.job).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(s.catch_up)
        .bind(s.paused)
        .bind(ms(s.next_at))
        .bind(ms(s.created_at));
        let changed = self.execute_audited(change, audit).await?;
        Ok(changed > 0)
    }

    /// Schedules of `tenant` (all tenants' when `None`), by name.
    pub async fn schedule_list(
        &self,
        tenant_id: Option<&str>,
    ) -> StoreResult<Vec<(String, Schedule)>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, name, cron, timezone, job, catch_up, paused, next_at, last_at, created_at \
             FROM ferry.schedules WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::rows::schedule).collect()
    }

    pub async fn schedule_delete(
        &self,
        tenant_id: &str,
        name: &str,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query("DELETE FROM ferry.schedules WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name);
        let changed = self.execute_audited(change, audit).await?;
        Ok(changed > 0)
    }

    /// Pauses or resumes; a resumed schedule's next tick is `next_at`.
    pub async fn schedule_pause(
        &self,
        tenant_id: &str,
        name: &str,
        paused: bool,
        next_at: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query(
            "UPDATE ferry.schedules SET paused = $1, next_at = CASE WHEN $1 THEN next_at ELSE $2 END \
             WHERE tenant_id = $3 AND name = $4",
        )
        .bind(paused)
        .bind(ms(next_at))
        .bind(tenant_id)
        .bind(name);
        let changed = self.execute_audited(change, audit).await?;
        Ok(changed > 0)
    }

    /// Moves a schedule's next tick from `expected` to `next` (compare-and-set); `fired`
    /// records the tick that enqueued a job.
    pub async fn schedule_advance(
        &self,
        id: ScheduleId,
        expected: DateTime<Utc>,
        next: DateTime<Utc>,
        fired: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE ferry.schedules SET next_at = $1, last_at = coalesce($2, last_at) WHERE id = $3 AND next_at = $4",
        )
        .bind(ms(next))
        .bind(fired.map(ms))
        .bind(id.as_uuid())
        .bind(ms(expected))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
