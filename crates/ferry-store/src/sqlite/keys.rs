//! Identity: tenants, and API keys of a tenant (worker tokens are keys with the `worker`
//! role): stored with a keyed hash of the secret, found by their visible prefix, revoked.

use chrono::{DateTime, Utc};
use ferry_core::identity::TenantQuotas;

use crate::{ApiKeyRow, AuditRow, StoreError, StoreResult, TenantRow};

use super::{SqliteStore, ms};

impl SqliteStore {
    /// Adds a tenant; false when one with that id exists.
    pub async fn tenant_insert(&self, t: &TenantRow, audit: &AuditRow) -> StoreResult<bool> {
        let change = sqlx::query(
            "INSERT INTO ferry_tenants (id, name, created_at, max_submissions_per_second, \
             max_unfinished_jobs) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(ms(t.created_at))
        .bind(t.quotas.max_submissions_per_second.map(i64::from))
        .bind(
            t.quotas
                .max_unfinished_jobs
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        );
        let changed = self.execute_audited(change, audit).await?;
        Ok(changed == 1)
    }

    /// The tenant with this id.
    pub async fn tenant_get(&self, id: &str) -> StoreResult<Option<TenantRow>> {
        sqlx::query("SELECT * FROM ferry_tenants WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(crate::rows::tenant)
            .transpose()
    }

    /// Sets the tenant's quotas; false when there is no such tenant.
    pub async fn tenant_set_quotas(
        &self,
        id: &str,
        quotas: &TenantQuotas,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query(
            "UPDATE ferry_tenants SET max_submissions_per_second = ?, max_unfinished_jobs = ? \
             WHERE id = ?",
        )
        .bind(quotas.max_submissions_per_second.map(i64::from))
        .bind(
            quotas
                .max_unfinished_jobs
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        )
        .bind(id);
        Ok(self.execute_audited(change, audit).await? > 0)
    }

    /// Sets the tenant's egress policy; false when there is no such tenant.
    pub async fn tenant_set_egress(
        &self,
        id: &str,
        egress: &ferry_core::egress::EgressPolicy,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query("UPDATE ferry_tenants SET egress = ? WHERE id = ?")
            .bind(serde_json::to_string(egress).map_err(|e| StoreError::Corrupt(e.to_string()))?)
            .bind(id);
        Ok(self.execute_audited(change, audit).await? > 0)
    }

    pub async fn tenant_list(&self) -> StoreResult<Vec<TenantRow>> {
        sqlx::query("SELECT * FROM ferry_tenants ORDER BY id")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(crate::rows::tenant)
            .collect()
    }

    pub async fn api_key_insert(&self, k: &ApiKeyRow, audit: &AuditRow) -> StoreResult<()> {
        let kinds = k
            .kinds
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let change = sqlx::query(
            "INSERT INTO ferry_api_keys (prefix, tenant_id, role, secret_hash, kinds, name, \
             created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&k.prefix)
        .bind(&k.tenant_id)
        .bind(&k.role)
        .bind(&k.secret_hash)
        .bind(kinds)
        .bind(&k.name)
        .bind(ms(k.created_at))
        .bind(k.expires_at.map(ms));
        self.execute_audited(change, audit).await?;
        Ok(())
    }

    /// The key with this prefix, revoked or expired ones included (the caller decides).
    pub async fn api_key_get(&self, prefix: &str) -> StoreResult<Option<ApiKeyRow>> {
        sqlx::query("SELECT * FROM ferry_api_keys WHERE prefix = ?")
            .bind(prefix)
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(crate::rows::api_key)
            .transpose()
    }

    /// The tenant's keys, oldest first.
    pub async fn api_key_list(&self, tenant_id: &str) -> StoreResult<Vec<ApiKeyRow>> {
        sqlx::query("SELECT * FROM ferry_api_keys WHERE tenant_id = ? ORDER BY created_at, prefix")
            .bind(tenant_id)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(crate::rows::api_key)
            .collect()
    }

    /// Revokes the tenant's key; false when it has no such key or it was revoked already.
    pub async fn api_key_revoke(
        &self,
        tenant_id: &str,
        prefix: &str,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query(
            "UPDATE ferry_api_keys SET revoked_at = ? \
             WHERE tenant_id = ? AND prefix = ? AND revoked_at IS NULL",
        )
        .bind(ms(now))
        .bind(tenant_id)
        .bind(prefix);
        let changed = self.execute_audited(change, audit).await?;
        Ok(changed == 1)
    }

    /// Records that the key was used now.
    pub async fn api_key_used(&self, prefix: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE ferry_api_keys SET last_used_at = ? WHERE prefix = ?")
            .bind(ms(now))
            .bind(prefix)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
