//! The store's methods for the secrets vault, dispatched like the rest (see `lib.rs`):
//! sealed secrets by tenant and name, with the domains each may be sent to.

use crate::{AuditRow, SecretRow, Store, StoreResult};

impl Store {
    /// Saves (or replaces) a secret; `created_at` is the caller's to keep.
    pub async fn secret_put(&self, row: &SecretRow, audit: &AuditRow) -> StoreResult<()> {
        dispatch!(self, s => s.secret_put(row, audit).await)
    }

    /// The tenant's secrets by name (sealed).
    pub async fn secret_list(&self, tenant_id: &str) -> StoreResult<Vec<SecretRow>> {
        dispatch!(self, s => s.secret_list(tenant_id).await)
    }

    /// The tenant's secrets of these names that exist (sealed).
    pub async fn secrets_named(
        &self,
        tenant_id: &str,
        names: &[String],
    ) -> StoreResult<Vec<SecretRow>> {
        dispatch!(self, s => s.secrets_named(tenant_id, names).await)
    }

    /// Deletes a secret; false when there was none.
    pub async fn secret_delete(
        &self,
        tenant_id: &str,
        name: &str,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        dispatch!(self, s => s.secret_delete(tenant_id, name, audit).await)
    }
}
