//! The secrets vault: sealed secrets by tenant and name, with their domains.

use crate::{AuditRow, SecretRow, StoreResult};

use super::{PostgresStore, ms};

impl PostgresStore {
    /// Saves (or replaces) a secret; `created_at` is the caller's to keep.
    pub async fn secret_put(&self, row: &SecretRow, audit: &AuditRow) -> StoreResult<()> {
        let change = sqlx::query(
            "INSERT INTO ferry.secrets (tenant_id, name, sealed, domains, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, name) DO UPDATE SET \
             sealed = excluded.sealed, domains = excluded.domains, updated_at = excluded.updated_at",
        )
        .bind(&row.tenant_id)
        .bind(&row.name)
        .bind(&row.sealed)
        .bind(sqlx::types::Json(&row.domains))
        .bind(ms(row.created_at))
        .bind(ms(row.updated_at));
        self.execute_audited(change, audit).await?;
        Ok(())
    }

    pub async fn secret_list(&self, tenant_id: &str) -> StoreResult<Vec<SecretRow>> {
        sqlx::query("SELECT * FROM ferry.secrets WHERE tenant_id = $1 ORDER BY name")
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(crate::rows::secret)
            .collect()
    }

    pub async fn secrets_named(
        &self,
        tenant_id: &str,
        names: &[String],
    ) -> StoreResult<Vec<SecretRow>> {
        sqlx::query(
            "SELECT * FROM ferry.secrets WHERE tenant_id = $1 AND name = ANY($2) ORDER BY name",
        )
        .bind(tenant_id)
        .bind(names)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(crate::rows::secret)
        .collect()
    }

    pub async fn secret_delete(
        &self,
        tenant_id: &str,
        name: &str,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query("DELETE FROM ferry.secrets WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name);
        Ok(self.execute_audited(change, audit).await? > 0)
    }
}
