//! The audit log: an entry is written in the transaction of the change it records (only
//! when that change happened), and read newest first by the tenant's admins.

use ferry_core::identity::AuditEntry;
use sqlx::{PgConnection, Postgres, postgres::PgArguments, query::Query};

use crate::{AuditRow, StoreResult};

use super::{PostgresStore, ms};

impl PostgresStore {
    /// The tenant's entries older than `before` (all when `None`), newest first.
    pub async fn audit_list(
        &self,
        tenant_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>> {
        sqlx::query(
            "SELECT id, at, actor, action, target, detail FROM ferry.audit \
             WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant_id)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(crate::rows::audit)
        .collect()
    }

    /// Runs `change` and, when it changed a row, writes `audit`, in one transaction;
    /// answers the rows changed.
    pub(super) async fn execute_audited<'q>(
        &self,
        change: Query<'q, Postgres, PgArguments>,
        audit: &AuditRow,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let changed = change.execute(&mut *tx).await?.rows_affected();
        if changed > 0 {
            audit_insert(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}

/// Writes `audit` in the caller's transaction.
pub(super) async fn audit_insert(tx: &mut PgConnection, audit: &AuditRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO ferry.audit (tenant_id, at, actor, action, target, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&audit.tenant_id)
    .bind(ms(audit.at))
    .bind(&audit.actor)
    .bind(audit.action)
    .bind(&audit.target)
    .bind(&audit.detail)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
