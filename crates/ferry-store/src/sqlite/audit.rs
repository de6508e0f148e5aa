//! The audit log: an entry is written in the transaction of the change it records (only
//! when that change happened), and read newest first by the tenant's admins.

use ferry_core::identity::AuditEntry;
use sqlx::{Sqlite, SqliteConnection, query::Query, sqlite::SqliteArguments};

use crate::{AuditRow, StoreError, StoreResult};

use super::{SqliteStore, ms};

impl SqliteStore {
    /// The tenant's entries older than `before` (all when `None`), newest first.
    pub async fn audit_list(
        &self,
        tenant_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>> {
        sqlx::query(
            "SELECT id, at, actor, action, target, detail FROM ferry_audit \
             WHERE tenant_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(tenant_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(crate::rows::audit)
        .collect()
    }

    /// Runs `change` and, when it changed a row, writes `audit`, in one transaction;
    /// answers the rows changed.
    pub(super) async fn execute_audited<'q>(
        &self,
        change: Query<'q, Sqlite, SqliteArguments>,
        audit: &AuditRow,
    ) -> StoreResult<u64> {
        let mut tx = self.write.begin().await?;
        let changed = change.execute(&mut *tx).await?.rows_affected();
        if changed > 0 {
            audit_insert(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}

/// Writes `audit` in the caller's transaction.
pub(super) async fn audit_insert(tx: &mut SqliteConnection, audit: &AuditRow) -> StoreResult<()> {
    let detail = audit
        .detail
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO ferry_audit (tenant_id, at, actor, action, target, detail) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&audit.tenant_id)
    .bind(ms(audit.at))
    .bind(&audit.actor)
    .bind(audit.action)
    .bind(&audit.target)
    .bind(detail)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
