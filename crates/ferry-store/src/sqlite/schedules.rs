//! Cron schedules: insert, list, delete, pause, and advance after a tick.

use chrono::{DateTime, Utc};
use ferry_core::ScheduleId;

use ferry_core::schedule::Schedule;

use crate::{StoreError, StoreResult};

use super::{SqliteStore, ms};
use crate::AuditRow;

impl SqliteStore {
    /// Adds a schedule; false when the tenant has one of that name.
    pub async fn schedule_insert(
        &self,
        tenant_id: &str,
        s: &Schedule,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query(
            "INSERT INTO ferry_schedules (id, tenant_id, name, cron, timezone, job, catch_up, paused, next_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, name) DO NOTHING",
        )
        .bind(s.id.to_string())
        .bind(tenant_id)
        .bind(&s.name)
        .bind(&s.cron)
        .bind(&s.timezone)
        .bind(serde_json::to_string(&s.job).map_err(|e| StoreError::Corrupt(e.to_string()))?)
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
             FROM ferry_schedules WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(crate::rows::schedule).collect()
    }

    pub async fn schedule_delete(
        &self,
        tenant_id: &str,
        name: &str,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query("DELETE FROM ferry_schedules WHERE tenant_id = ? AND name = ?")
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
            "UPDATE ferry_schedules SET paused = ?, next_at = CASE WHEN ? THEN next_at ELSE ? END \
             WHERE tenant_id = ? AND name = ?",
        )
        .bind(paused)
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
            "UPDATE ferry_schedules SET next_at = ?, last_at = coalesce(?, last_at) WHERE id = ? AND next_at = ?",
        )
        .bind(ms(next))
        .bind(fired.map(ms))
        .bind(id.to_string())
        .bind(ms(expected))
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
