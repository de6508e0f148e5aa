//! Jobs as clients see them: insert (with dedupe and chains), read, list, items, counts,
//! cancel, retry, and paused kinds.

use chrono::{DateTime, Utc};
use ferry_core::{Job, JobId, JobItem, JobState, KindPattern, NewJob};
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::{Entity, Inserted, ListParams, StoreError, StoreResult, shared};

use super::{
    SqliteStore, insert_jobs, job_by_id, ms, opt_from_ms, parse_state, push_kind_filter,
    push_not_paused,
};
use crate::AuditRow;

impl SqliteStore {
    pub async fn job_insert(
        &self,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Inserted>> {
        let mut tx = self.write.begin().await?;
        let out = insert_jobs(&mut tx, jobs, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn job_get(&self, tenant_id: &str, id: JobId) -> StoreResult<Job> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry_jobs WHERE id = ? AND tenant_id = ?"
        ))
        .bind(id.to_string())
        .bind(tenant_id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(StoreError::NotFound(Entity::Job))?;
        crate::rows::job(&row)
    }

    pub async fn job_list(&self, params: &ListParams) -> StoreResult<Vec<Job>> {
        let mut q = QueryBuilder::<Sqlite>::new(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry_jobs WHERE tenant_id = "
        ));
        q.push_bind(params.tenant_id.clone());
        if let Some(status) = params.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(kind) = &params.kind {
            push_kind_filter(&mut q, std::slice::from_ref(kind));
        }
        for (key, value) in &params.labels {
            q.push(" AND id IN (SELECT job_id FROM ferry_job_labels WHERE key = ")
                .push_bind(key.clone())
                .push(" AND value = ")
                .push_bind(value.clone())
                .push(")");
        }
        if let Some(before) = params.before {
            q.push(" AND id < ").push_bind(before.to_string());
        }
        if let Some(parent) = params.parent {
            q.push(" AND parent_id = ").push_bind(parent.to_string());
        }
        if let Some(text) = params.search.as_deref().filter(|t| !t.is_empty()) {
            let pattern = crate::params::contains_pattern(text);
            q.push(" AND (kind LIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR dedupe_key LIKE ")
                .push_bind(pattern)
                .push(" ESCAPE '\\')");
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(params.limit as i64);
        let rows = q.build().fetch_all(&self.read).await?;
        rows.iter().map(crate::rows::job).collect()
    }

    pub async fn job_items(
        &self,
        tenant_id: &str,
        id: JobId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<JobItem>> {
        // The job must exist for this tenant; an empty list then means "no items yet".
        self.job_get(tenant_id, id).await?;
        let rows = sqlx::query(
            "SELECT seq, attempt, data, created_at FROM ferry_job_items \
             WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(id.to_string())
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(crate::rows::job_item).collect()
    }

    pub async fn job_counts(&self, tenant_id: &str) -> StoreResult<Vec<(JobState, u64)>> {
        let rows = sqlx::query(
            "SELECT status, count(*) AS n FROM ferry_jobs WHERE tenant_id = ? GROUP BY status",
        )
        .bind(tenant_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_state(row.try_get("status")?)?,
                    row.try_get::<i64, _>("n")? as u64,
                ))
            })
            .collect()
    }

    pub async fn job_next_run_at(
        &self,
        tenant_id: &str,
        kinds: &[KindPattern],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT min(run_at) AS next FROM ferry_jobs INDEXED BY ferry_jobs_ready WHERE tenant_id = ",
        );
        q.push_bind(tenant_id.to_owned())
            .push(" AND status IN ('pending', 'scheduled') AND run_at > ")
            .push_bind(ms(now));
        push_kind_filter(&mut q, kinds);
        push_not_paused(&mut q, tenant_id);
        let due: Option<i64> = q.build().fetch_one(&self.read).await?.try_get("next")?;
        let mut q = QueryBuilder::<Sqlite>::new("");
        shared::push_rate_opening(&mut q, &shared::SQLITE, tenant_id, ms(now), |q| {
            push_kind_filter(q, kinds);
            push_not_paused(q, tenant_id);
        });
        let opening: Option<i64> = q.build().fetch_one(&self.read).await?.try_get("next")?;
        opt_from_ms(due.into_iter().chain(opening).min())
    }

    pub async fn job_insert_history(
        &self,
        tenant_id: &str,
        kind: &str,
        n: u64,
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?1) \
             INSERT INTO ferry_jobs (id, tenant_id, kind, status, payload, labels, run_at, attempt, \
             max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms, lease_token, created_at, \
             updated_at, started_at, finished_at, result) \
             SELECT printf('00000000-0000-7000-8000-%012d', n), ?2, ?3, 'completed', '{}', '{}', ?4, 1, \
             3, 1800000, 1000, 600000, lower(hex(randomblob(16))), ?4, ?4, ?4, ?4, '{}' FROM g",
        )
        .bind(n as i64)
        .bind(tenant_id)
        .bind(kind)
        .bind(ms(at))
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn kind_pause(
        &self,
        tenant_id: &str,
        pattern: &KindPattern,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<()> {
        let (exact, prefix) = shared::pattern_match_form(pattern);
        let change = sqlx::query(
            "INSERT INTO ferry_paused_kinds (tenant_id, pattern, exact, prefix, paused_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, pattern) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(pattern.to_string())
        .bind(exact)
        .bind(prefix)
        .bind(ms(now));
        self.execute_audited(change, audit).await?;
        Ok(())
    }

    pub async fn kind_resume(
        &self,
        tenant_id: &str,
        pattern: &KindPattern,
        audit: &AuditRow,
    ) -> StoreResult<()> {
        let change =
            sqlx::query("DELETE FROM ferry_paused_kinds WHERE tenant_id = ? AND pattern = ?")
                .bind(tenant_id)
                .bind(pattern.to_string());
        self.execute_audited(change, audit).await?;
        Ok(())
    }

    pub async fn kind_paused(&self, tenant_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT pattern FROM ferry_paused_kinds WHERE tenant_id = ? ORDER BY pattern",
        )
        .bind(tenant_id)
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn job_cancel(
        &self,
        tenant_id: &str,
        id: JobId,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<Job> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry_jobs WHERE id = ? AND tenant_id = ?"
        ))
        .bind(id.to_string())
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound(Entity::Job))?;
        let job = crate::rows::job(&row)?;
        match job.status {
            JobState::Scheduled | JobState::Pending => {
                sqlx::query(
                    "UPDATE ferry_jobs SET status = 'cancelled', finished_at = ?, updated_at = ? \
                     WHERE id = ? AND status = ?",
                )
                .bind(ms(now))
                .bind(ms(now))
                .bind(id.to_string())
                .bind(job.status.as_str())
                .execute(&mut *tx)
                .await?;
            }
            JobState::Running => {
                sqlx::query(
                    "UPDATE ferry_jobs SET cancel_requested = 1, updated_at = ? WHERE id = ? AND status = 'running'",
                )
                .bind(ms(now))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            JobState::Cancelled => return Ok(job),
            status @ (JobState::Completed | JobState::Failed) => {
                return Err(StoreError::InvalidState {
                    op: "cancel",
                    status,
                });
            }
        }
        let job = job_by_id(&mut tx, id).await?;
        super::audit::audit_insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(job)
    }

    pub async fn job_retry(
        &self,
        tenant_id: &str,
        id: JobId,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<Job> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE ferry_jobs SET status = 'pending', attempt = 0, run_at = ?1, finished_at = NULL, \
             cancel_requested = 0, progress = NULL, lease_expires_at = NULL, updated_at = ?1 \
             WHERE id = ?2 AND tenant_id = ?3 AND status IN ('failed', 'cancelled')",
        )
        .bind(ms(now))
        .bind(id.to_string())
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Another tenant's job is not found, whatever its state.
            let mine: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM ferry_jobs WHERE id = ? AND tenant_id = ?")
                    .bind(id.to_string())
                    .bind(tenant_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if mine.is_none() {
                return Err(StoreError::NotFound(Entity::Job));
            }
            let job = job_by_id(&mut tx, id).await?;
            return Err(StoreError::InvalidState {
                op: "retry",
                status: job.status,
            });
        }
        let job = job_by_id(&mut tx, id).await?;
        super::audit::audit_insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(job)
    }
}
