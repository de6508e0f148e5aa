//! The secrets vault: sealed secrets by tenant and name, with their domains.

use crate::{AuditRow, SecretRow, StoreError, StoreResult};

use super::{SqliteStore, ms};

impl SqliteStore {
    /// Saves (or replaces) a secret; `created_at` is the caller's to keep.
    pub async fn secret_put(&self, row: &SecretRow, audit: &AuditRow) -> StoreResult<()> {
        let change = sqlx::query(
            "INSERT INTO ferry_secrets (tenant_id, name, sealed, domains, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, name) DO UPDATE SET \
             sealed = excluded.sealed, domains = excluded.domains, updated_at = excluded.updated_at",
        )
        .bind(&row.tenant_id)
        .bind(&row.name)
        .bind(&row.sealed)
        .bind(serde_json::to_string(&row.domains).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(ms(row.created_at))
        .bind(ms(row.updated_at));
        self.execute_audited(change, audit).await?;
        Ok(())
    }

    pub async fn secret_list(&self, tenant_id: &str) -> StoreResult<Vec<SecretRow>> {
        sqlx::query("SELECT * FROM ferry_secrets WHERE tenant_id = ? ORDER BY name")
            .bind(tenant_id)
            .fetch_all(&self.read)
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
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; names.len()].join(", ");
        let sql = format!(
            "SELECT * FROM ferry_secrets WHERE tenant_id = ? AND name IN ({marks}) ORDER BY name"
        );
        // Only placeholders are formatted in; the names are bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(tenant_id);
        for name in names {
            query = query.bind(name);
        }
        query
            .fetch_all(&self.read)
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
        let change = sqlx::query("DELETE FROM ferry_secrets WHERE tenant_id = ? AND name = ?")
            .bind(tenant_id)
            .bind(name);
        Ok(self.execute_audited(change, audit).await? > 0)
    }
}
