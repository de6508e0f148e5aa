//! The store's identity methods, dispatched like the rest (see `lib.rs`): tenants and
//! their quotas, API keys, users with their roles and sessions, and the audit log.

use chrono::{DateTime, Utc};

use crate::{ApiKeyRow, AuditRow, Store, StoreResult, TenantRow, UserRow, UserSessionRow};

impl Store {
    /// The tenant's audit log entries older than `before` (all when `None`), newest first.
    pub async fn audit_list(
        &self,
        tenant_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<ferry_core::identity::AuditEntry>> {
        dispatch!(self, s => s.audit_list(tenant_id, before, limit).await)
    }

    /// Adds a user; false when the name is taken.
    pub async fn user_insert(&self, u: &UserRow, audit: &AuditRow) -> StoreResult<bool> {
        dispatch!(self, s => s.user_insert(u, audit).await)
    }

    pub async fn user_get(&self, name: &str) -> StoreResult<Option<UserRow>> {
        dispatch!(self, s => s.user_get(name).await)
    }

    /// Replaces the user's password hash and ends their sessions; false when there is no
    /// such user.
    pub async fn user_set_password(
        &self,
        name: &str,
        password_hash: &str,
        now: DateTime<Utc>,
        audits: &[AuditRow],
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.user_set_password(name, password_hash, now, audits).await)
    }

    /// Removes the user, their roles and sessions, writing `audits` (one per tenant they
    /// belonged to); false when there is no such user.
    pub async fn user_delete(&self, name: &str, audits: &[AuditRow]) -> StoreResult<bool> {
        dispatch!(self, s => s.user_delete(name, audits).await)
    }

    /// Gives the user `role` in the tenant (replacing the one they had); false when there
    /// is no such user.
    pub async fn user_role_set(
        &self,
        name: &str,
        tenant_id: &str,
        role: &str,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.user_role_set(name, tenant_id, role, now, audit).await)
    }

    /// Takes the user's role in the tenant away and ends their sessions there; false when
    /// they had none.
    pub async fn user_role_remove(
        &self,
        name: &str,
        tenant_id: &str,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.user_role_remove(name, tenant_id, audit).await)
    }

    /// The user's roles: `(tenant, role)` by tenant.
    pub async fn user_roles(&self, name: &str) -> StoreResult<Vec<(String, String)>> {
        dispatch!(self, s => s.user_roles(name).await)
    }

    /// The tenant's users with their role there, by name.
    pub async fn user_list(&self, tenant_id: &str) -> StoreResult<Vec<(UserRow, String)>> {
        dispatch!(self, s => s.user_list(tenant_id).await)
    }

    /// Starts a login session (the login recorded by `audit`).
    pub async fn user_session_insert(
        &self,
        session: &UserSessionRow,
        audit: &AuditRow,
    ) -> StoreResult<()> {
        dispatch!(self, s => s.user_session_insert(session, audit).await)
    }

    /// The session with this token hash and the user's role in its tenant now (`None`
    /// when the session is unknown or the user no longer belongs to the tenant).
    pub async fn user_session_get(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<(UserSessionRow, String)>> {
        dispatch!(self, s => s.user_session_get(token_hash).await)
    }

    /// Ends a session; false when there was none.
    pub async fn user_session_delete(&self, token_hash: &[u8]) -> StoreResult<bool> {
        dispatch!(self, s => s.user_session_delete(token_hash).await)
    }

    /// Records that the session was used now.
    pub async fn user_session_seen(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        dispatch!(self, s => s.user_session_seen(token_hash, now).await)
    }

    /// Deletes the sessions that expired before `now`.
    pub async fn user_sessions_prune(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        dispatch!(self, s => s.user_sessions_prune(now).await)
    }

    /// Adds a tenant; false when one with that id exists.
    pub async fn tenant_insert(&self, t: &TenantRow, audit: &AuditRow) -> StoreResult<bool> {
        dispatch!(self, s => s.tenant_insert(t, audit).await)
    }

    pub async fn tenant_get(&self, id: &str) -> StoreResult<Option<TenantRow>> {
        dispatch!(self, s => s.tenant_get(id).await)
    }

    /// Sets the tenant's quotas; false when there is no such tenant.
    pub async fn tenant_set_quotas(
        &self,
        id: &str,
        quotas: &ferry_core::identity::TenantQuotas,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.tenant_set_quotas(id, quotas, audit).await)
    }

    /// Sets the tenant's egress policy; false when there is no such tenant.
    pub async fn tenant_set_egress(
        &self,
        id: &str,
        egress: &ferry_core::egress::EgressPolicy,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.tenant_set_egress(id, egress, audit).await)
    }

    pub async fn tenant_list(&self) -> StoreResult<Vec<TenantRow>> {
        dispatch!(self, s => s.tenant_list().await)
    }

    /// Stores a new API key (its prefix is unique; the secret only as the server's hash).
    pub async fn api_key_insert(&self, k: &ApiKeyRow, audit: &AuditRow) -> StoreResult<()> {
        dispatch!(self, s => s.api_key_insert(k, audit).await)
    }

    /// The key with this prefix, revoked or expired ones included (the caller decides).
    pub async fn api_key_get(&self, prefix: &str) -> StoreResult<Option<ApiKeyRow>> {
        dispatch!(self, s => s.api_key_get(prefix).await)
    }

    /// The tenant's keys, oldest first.
    pub async fn api_key_list(&self, tenant_id: &str) -> StoreResult<Vec<ApiKeyRow>> {
        dispatch!(self, s => s.api_key_list(tenant_id).await)
    }

    /// Revokes the tenant's key; false when it has no such key or it was revoked already.
    pub async fn api_key_revoke(
        &self,
        tenant_id: &str,
        prefix: &str,
        now: DateTime<Utc>,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.api_key_revoke(tenant_id, prefix, now, audit).await)
    }

    /// Records that the key was used now.
    pub async fn api_key_used(&self, prefix: &str, now: DateTime<Utc>) -> StoreResult<()> {
        dispatch!(self, s => s.api_key_used(prefix, now).await)
    }
}
