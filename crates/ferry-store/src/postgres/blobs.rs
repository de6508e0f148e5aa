//! Sealed sessions and the artifact index (the bytes live in the object store).

use chrono::{DateTime, Utc};
use ferry_core::JobId;
use sqlx::Row;

use ferry_core::api::{ArtifactInfo, SessionInfo};

use crate::StoreResult;

use super::{PostgresStore, ms};
use crate::AuditRow;

impl PostgresStore {
    pub async fn session_put(
        &self,
        tenant_id: &str,
        name: &str,
        sealed: &[u8],
        job: Option<JobId>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ferry.sessions (tenant_id, name, sealed, updated_at, saved_by_job) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, name) DO UPDATE SET \
             sealed = excluded.sealed, updated_at = excluded.updated_at, saved_by_job = excluded.saved_by_job",
        )
        .bind(tenant_id)
        .bind(name)
        .bind(sealed)
        .bind(ms(now))
        .bind(job.map(|j| j.as_uuid()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session_get(&self, tenant_id: &str, name: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar(
            "SELECT sealed FROM ferry.sessions WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn session_list(&self, tenant_id: &str) -> StoreResult<Vec<SessionInfo>> {
        let rows = sqlx::query(
            "SELECT name, octet_length(sealed)::bigint AS size, updated_at, saved_by_job FROM ferry.sessions \
             WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::rows::session).collect()
    }

    pub async fn session_delete(
        &self,
        tenant_id: &str,
        name: &str,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query("DELETE FROM ferry.sessions WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name);
        let changed = self.execute_audited(change, audit).await?;
        Ok(changed > 0)
    }

    pub async fn artifact_put(
        &self,
        tenant_id: &str,
        job_id: JobId,
        artifact: &ArtifactInfo,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ferry.artifacts (job_id, name, tenant_id, content_type, size_bytes, attempt, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (job_id, name) DO UPDATE SET \
             content_type = excluded.content_type, size_bytes = excluded.size_bytes, \
             attempt = excluded.attempt, created_at = excluded.created_at",
        )
        .bind(job_id.as_uuid())
        .bind(&artifact.name)
        .bind(tenant_id)
        .bind(&artifact.content_type)
        .bind(artifact.size_bytes as i64)
        .bind(artifact.attempt as i32)
        .bind(ms(artifact.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn artifact_list(
        &self,
        tenant_id: &str,
        job_id: JobId,
    ) -> StoreResult<Vec<ArtifactInfo>> {
        let rows = sqlx::query(
            "SELECT name, content_type, size_bytes, attempt, created_at FROM ferry.artifacts \
             WHERE job_id = $1 AND tenant_id = $2 ORDER BY created_at, name",
        )
        .bind(job_id.as_uuid())
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::rows::artifact).collect()
    }

    /// Artifacts whose job was deleted (by retention), to remove.
    pub async fn artifacts_orphaned(&self, limit: u32) -> StoreResult<Vec<(JobId, String)>> {
        let rows = sqlx::query(
            "SELECT a.job_id, a.name FROM ferry.artifacts a \
             WHERE NOT EXISTS (SELECT 1 FROM ferry.jobs j WHERE j.id = a.job_id) LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    JobId::from_uuid(row.try_get("job_id")?),
                    row.try_get("name")?,
                ))
            })
            .collect()
    }

    pub async fn artifact_delete(&self, job_id: JobId, name: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM ferry.artifacts WHERE job_id = $1 AND name = $2")
            .bind(job_id.as_uuid())
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
