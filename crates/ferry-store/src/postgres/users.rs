//! Users (people who log in to the dashboard): a login name and an argon2id hash of the
//! password, a role in each tenant they belong to, and their login sessions (found by a
//! keyed hash of the cookie's token, as keys are).

use chrono::{DateTime, Utc};

use crate::{AuditRow, StoreResult, UserRow, UserSessionRow};

use super::{PostgresStore, ms};

impl PostgresStore {
    /// Adds a user; false when the name is taken.
    pub async fn user_insert(&self, u: &UserRow, audit: &AuditRow) -> StoreResult<bool> {
        let change = sqlx::query(
            "INSERT INTO ferry.users (name, password_hash, created_at, password_changed_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(ms(u.created_at));
        Ok(self.execute_audited(change, audit).await? > 0)
    }

    pub async fn user_get(&self, name: &str) -> StoreResult<Option<UserRow>> {
        sqlx::query("SELECT * FROM ferry.users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(crate::rows::user)
            .transpose()
    }

    /// Replaces the user's password hash and ends their sessions, writing `audits` (one
    /// per tenant they belong to); false when there is no such user.
    pub async fn user_set_password(
        &self,
        name: &str,
        password_hash: &str,
        now: DateTime<Utc>,
        audits: &[AuditRow],
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE ferry.users SET password_hash = $1, password_changed_at = $2 WHERE name = $3",
        )
        .bind(password_hash)
        .bind(ms(now))
        .bind(name)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM ferry.user_sessions WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        for audit in audits {
            super::audit::audit_insert(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Removes the user, their roles and sessions, writing `audits` (one per tenant they
    /// belonged to); false when there is no such user.
    pub async fn user_delete(&self, name: &str, audits: &[AuditRow]) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM ferry.user_sessions WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM ferry.user_roles WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM ferry.users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        for audit in audits {
            super::audit::audit_insert(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(true)
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
        let change = sqlx::query(
            "INSERT INTO ferry.user_roles (user_name, tenant_id, role, created_at) \
             SELECT name, $2, $3, $4 FROM ferry.users WHERE name = $1 \
             ON CONFLICT (user_name, tenant_id) DO UPDATE SET role = excluded.role",
        )
        .bind(name)
        .bind(tenant_id)
        .bind(role)
        .bind(ms(now));
        Ok(self.execute_audited(change, audit).await? > 0)
    }

    /// Takes the user's role in the tenant away and ends their sessions there; false when
    /// they had none.
    pub async fn user_role_remove(
        &self,
        name: &str,
        tenant_id: &str,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("DELETE FROM ferry.user_roles WHERE user_name = $1 AND tenant_id = $2")
                .bind(name)
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM ferry.user_sessions WHERE user_name = $1 AND tenant_id = $2")
            .bind(name)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        super::audit::audit_insert(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The user's roles: `(tenant, role)` by tenant.
    pub async fn user_roles(&self, name: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, role FROM ferry.user_roles WHERE user_name = $1 ORDER BY tenant_id",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The tenant's users with their role there, by name.
    pub async fn user_list(&self, tenant_id: &str) -> StoreResult<Vec<(UserRow, String)>> {
        sqlx::query(
            "SELECT u.*, r.role FROM ferry.users u JOIN ferry.user_roles r ON r.user_name = u.name \
             WHERE r.tenant_id = $1 ORDER BY u.name",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok((
                crate::rows::user(row)?,
                crate::rows::Columns::text(row, "role")?,
            ))
        })
        .collect()
    }

    /// Starts a login session (the login recorded by `audit`).
    pub async fn user_session_insert(
        &self,
        s: &UserSessionRow,
        audit: &AuditRow,
    ) -> StoreResult<()> {
        let change = sqlx::query(
            "INSERT INTO ferry.user_sessions (token_hash, user_name, tenant_id, created_at, \
             expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $4)",
        )
        .bind(&s.token_hash)
        .bind(&s.user_name)
        .bind(&s.tenant_id)
        .bind(ms(s.created_at))
        .bind(ms(s.expires_at));
        self.execute_audited(change, audit).await?;
        Ok(())
    }

    /// The session with this token hash and the user's role in its tenant now (`None`
    /// when the session is unknown or the user no longer belongs to the tenant).
    pub async fn user_session_get(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<(UserSessionRow, String)>> {
        sqlx::query(
            "SELECT s.*, r.role FROM ferry.user_sessions s JOIN ferry.user_roles r \
             ON r.user_name = s.user_name AND r.tenant_id = s.tenant_id WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(|row| {
            Ok((
                crate::rows::user_session(row)?,
                crate::rows::Columns::text(row, "role")?,
            ))
        })
        .transpose()
    }

    /// Ends a session; false when there was none.
    pub async fn user_session_delete(&self, token_hash: &[u8]) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM ferry.user_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records that the session was used now.
    pub async fn user_session_seen(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE ferry.user_sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(ms(now))
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes the sessions that expired before `now`.
    pub async fn user_sessions_prune(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM ferry.user_sessions WHERE expires_at < $1")
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
