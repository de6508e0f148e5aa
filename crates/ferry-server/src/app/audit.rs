//! The audit log, for a tenant's admins: entries are written by the store with the change
//! they record (services pass `Principal::audit` to each audited store call); this reads
//! them back a page at a time, newest first.

use ferry_core::identity::AuditPage;

use super::{AppResult, Principal};
use crate::Queue;

/// The audit log of the principal's tenant.
#[derive(Debug, Clone, Copy)]
pub struct Audit<'q>(pub(super) &'q Queue);

impl Audit<'_> {
    /// Up to `limit` entries older than `before` (the newest when `None`).
    pub async fn page(
        &self,
        who: &Principal,
        before: Option<i64>,
        limit: u32,
    ) -> AppResult<AuditPage> {
        let entries = self
            .0
            .store()
            .audit_list(&who.tenant, before, limit)
            .await?;
        let next_before = match entries.last() {
            Some(last) if entries.len() == limit as usize => Some(last.id),
            _ => None,
        };
        Ok(AuditPage {
            entries,
            next_before,
        })
    }
}
