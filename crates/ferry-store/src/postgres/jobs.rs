//! Jobs as clients see them: insert (with dedupe and chains), read, list, items, counts,
//! cancel, retry, and paused kinds.

use chrono::{DateTime, Utc};
use ferry_core::{Job, JobId, JobItem, JobState, KindPattern, NewJob};
use sqlx::{Postgres, QueryBuilder, Row};

use crate::{Entity, Inserted, ListParams, StoreError, StoreResult, shared};

use super::{
    PostgresStore, WORK_CHANNEL, insert_jobs, job_by_id, ms, opt_from_ms, parse_state,
    push_kind_filter, push_not_paused,
};
use crate::AuditRow;

impl PostgresStore {
    pub async fn job_insert(
        &self,
        jobs: &[NewJob],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Inserted>> {
        let mut tx = self.pool.begin().await?;
        let out = insert_jobs(&mut tx, jobs, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn job_get(&self, tenant_id: &str, id: JobId) -> StoreResult<Job> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry.jobs WHERE id = $1 AND tenant_id = $2"
        ))
        .bind(id.as_uuid())
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound(Entity::Job))?;
        crate::rows::job(&row)
    }

    pub async fn job_list(&self, params: &ListParams) -> StoreResult<Vec<Job>> {
        let mut q = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            job_columns!(),
            " FROM ferry.jobs WHERE tenant_id = "
        ));
        q.push_bind(params.tenant_id.clone());
        if let Some(status) = params.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(kind) = &params.kind {
            push_kind_filter(&mut q, std::slice::from_ref(kind));
        }
        // All pairs must match: one containment test per pair (the GIN index serves each).
        for (k, v) in &params.labels {
            q.push(" AND labels @> ")
                .push_bind(serde_json::json!({ k: v }));
        }
        if let Some(before) = params.before {
            q.push(" AND id < ").push_bind(before.as_uuid());
        }
        if let Some(parent) = params.parent {
            q.push(" AND parent_id = ").push_bind(parent.as_uuid());
        }
        if let Some(text) = params.search.as_deref().filter(|t| !t.is_empty()) {
            let pattern = crate::params::contains_pattern(text);
            q.push(" AND (kind ILIKE ")
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\' OR dedupe_key ILIKE ")
                .push_bind(pattern)
                .push(" ESCAPE '\\')");
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .push_bind(params.limit as i64);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(crate::rows::job).collect()
    }

    pub async fn job_items(
        &self,
        tenant_id: &str,
        id: JobId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<JobItem>> {
        self.job_get(tenant_id, id).await?;
        let rows = sqlx::query(
            "SELECT seq, attempt, data, created_at FROM ferry.job_items \
             WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(id.as_uuid())
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::rows::job_item).collect()
    }

    pub async fn job_counts(&self, tenant_id: &str) -> StoreResult<Vec<(JobState, u64)>> {
        let rows = sqlx::query(
            "SELECT status, count(*) AS n FROM ferry.jobs WHERE tenant_id = $1 GROUP BY status",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
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
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT min(run_at) AS next FROM ferry.jobs WHERE tenant_id = ",
        );
        q.push_bind(tenant_id.to_owned())
            .push(" AND status IN ('pending', 'scheduled') AND run_at > ")
            .push_bind(ms(now));
        push_kind_filter(&mut q, kinds);
        push_not_paused(&mut q, tenant_id);
        let due: Option<i64> = q.build().fetch_one(&self.pool).await?.try_get("next")?;
        let mut q = QueryBuilder::<Postgres>::new("");
        shared::push_rate_opening(&mut q, &shared::POSTGRES, tenant_id, ms(now), |q| {
            push_kind_filter(q, kinds);
            push_not_paused(q, tenant_id);
        });
        let opening: Option<i64> = q.build().fetch_one(&self.pool).await?.try_get("next")?;
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
            "INSERT INTO ferry.jobs (id, tenant_id, kind, status, payload, labels, run_at, attempt, \
             max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms, lease_token, created_at, \
             updated_at, started_at, finished_at, result) \
             SELECT ('00000000-0000-7000-8000-' || lpad(g::text, 12, '0'))::uuid, $2, $3, 'completed', \
             '{}', '{}', $4, 1, 3, 1800000, 1000, 600000, md5(g::text), $4, $4, $4, $4, '{}' \
             FROM generate_series(1, $1) AS g",
        )
        .bind(n as i64)
        .bind(tenant_id)
        .bind(kind)
        .bind(ms(at))
        .execute(&self.pool)
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
            "INSERT INTO ferry.paused_kinds (tenant_id, pattern, exact, prefix, paused_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, pattern) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(pattern.to_string())
        .bind(exact)
        .bind(prefix)
        .bind(ms(now));
        self.execute_audited(change, audit).await?;
        Ok(())
    }

    /// Resumes a pattern and wakes long-polls on every instance.
    pub async fn kind_resume(
        &self,
        tenant_id: &str,
        pattern: &KindPattern,
        audit: &AuditRow,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("DELETE FROM ferry.paused_kinds WHERE tenant_id = $1 AND pattern = $2")
                .bind(tenant_id)
                .bind(pattern.to_string())
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() > 0 {
            super::audit::audit_insert(&mut tx, audit).await?;
        }
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(WORK_CHANNEL)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn kind_paused(&self, tenant_id: &str) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT pattern FROM ferry.paused_kinds WHERE tenant_id = $1 ORDER BY pattern",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn job_cancel(
        &self,
        tenant_id: &str,
        id: JobId,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<Job> {
        let mut tx = self.pool.begin().await?;
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM ferry.jobs WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
        )
        .bind(id.as_uuid())
        .bind(tenant_id)
        .fetch_optional(&mut *tx)
        .await?;
        let status = parse_state(&status.ok_or(StoreError::NotFound(Entity::Job))?)?;
        match status {
            JobState::Scheduled | JobState::Pending => {
                sqlx::query("UPDATE ferry.jobs SET status = 'cancelled', finished_at = $1, updated_at = $1 WHERE id = $2")
                    .bind(ms(now))
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
            }
            JobState::Running => {
                sqlx::query(
                    "UPDATE ferry.jobs SET cancel_requested = true, updated_at = $1 WHERE id = $2",
                )
                .bind(ms(now))
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
            }
            JobState::Cancelled => {}
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
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE ferry.jobs SET status = 'pending', attempt = 0, run_at = $1, finished_at = NULL, \
             cancel_requested = false, progress = NULL, lease_expires_at = NULL, updated_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND status IN ('failed', 'cancelled')",
        )
        .bind(ms(now))
        .bind(id.as_uuid())
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Another tenant's job is not found, whatever its state.
            let mine: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM ferry.jobs WHERE id = $1 AND tenant_id = $2")
                    .bind(id.as_uuid())
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
