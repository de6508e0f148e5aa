//! Identity: tenants, and API keys of a tenant (worker tokens are keys with the `worker`
//! role): stored with a keyed hash of the secret, found by their visible prefix, revoked.

use chrono::{DateTime, Utc};
use ferry_core::identity::TenantQuotas;

use crate::{ApiKeyRow, StoreResult, TenantRow};

use super::{PostgresStore, ms};
use crate::AuditRow;

impl PostgresStore {
    /// Adds a tenant; false when one with that id exists.
    pub async fn tenant_insert(&self, t: &TenantRow, audit: &AuditRow) -> StoreResult<bool> {
        let change = sqlx::query(
            "INSERT INTO ferry.tenants (id, name, created_at, max_submissions_per_second, \
             max_unfinished_jobs) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
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
        sqlx::query("SELECT * FROM ferry.tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
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
            "UPDATE ferry.tenants SET max_submissions_per_second = $1, max_unfinished_jobs = $2 \
             WHERE id = $3",
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
        let change = sqlx::query("UPDATE ferry.tenants SET egress = $1 WHERE id = $2")
            .bind(sqlx::types::Json(egress))
            .bind(id);
        Ok(self.execute_audited(change, audit).await? > 0)
    }

    pub async fn tenant_list(&self) -> StoreResult<Vec<TenantRow>> {
        sqlx::query("SELECT * FROM ferry.tenants ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(crate::rows::tenant)
            .collect()
    }

    pub async fn api_key_insert(&self, k: &ApiKeyRow, audit: &AuditRow) -> StoreResult<()> {
        let kinds = k.kinds.as_ref().map(|k| serde_json::json!(k));
        let change = sqlx::query(
            "INSERT INTO ferry.api_keys (prefix, tenant_id, role, secret_hash, kinds, name, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        sqlx::query("SELECT * FROM ferry.api_keys WHERE prefix = $1")
            .bind(prefix)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(crate::rows::api_key)
            .transpose()
    }

    /// The tenant's keys, oldest first.
    pub async fn api_key_list(&self, tenant_id: &str) -> StoreResult<Vec<ApiKeyRow>> {
        sqlx::query("SELECT * FROM ferry.api_keys WHERE tenant_id = $1 ORDER BY created_at, prefix")
            .bind(tenant_id)
            .fetch_all(&self.pool)
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
            "UPDATE ferry.api_keys SET revoked_at = $1 \
             WHERE tenant_id = $2 AND prefix = $3 AND revoked_at IS NULL",
        )
        .bind(ms(now))
        .bind(tenant_id)
        .bind(prefix);
        let changed = self.execute_audited(change, audit).await?;
        Ok(changed == 1)
    }

    /// Records that the key was used now.
    pub async fn api_key_used(&self, prefix: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE ferry.api_keys SET last_used_at = $1 WHERE prefix = $2")
            .bind(ms(now))
            .bind(prefix)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
