//! Tenants: made and listed by the operator (`ferry tenant create|list`), since a tenant's
//! admins act only inside their own. `default` is always there.

use ferry_core::{Clock, TenantId, identity::TenantInfo};
use ferry_store::{Store, TenantRow};

use super::{AppError, AppResult, Principal, Role};

const MAX_NAME_CHARS: usize = 200;

#[derive(Debug)]
pub struct Tenants<'a> {
    store: &'a Store,
    clock: &'a dyn Clock,
}

impl<'a> Tenants<'a> {
    pub fn new(store: &'a Store, clock: &'a dyn Clock) -> Self {
        Self { store, clock }
    }

    /// Makes a tenant for `actor` (who the new tenant's audit log names); `Conflict` when
    /// the id is taken.
    pub async fn create(&self, actor: &str, id: &TenantId, name: &str) -> AppResult<TenantInfo> {
        if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(AppError::field(
                "name",
                format!("at most {MAX_NAME_CHARS} characters, without control characters"),
            ));
        }
        let row = TenantRow {
            id: id.to_string(),
            name: if name.is_empty() {
                id.to_string()
            } else {
                name.to_owned()
            },
            created_at: self.clock.now(),
        };
        let audit = Principal::new(id.clone(), Role::Admin, actor).audit(
            row.created_at,
            "tenant.create",
            format!("tenant:{id}"),
        );
        if !self.store.tenant_insert(&row, &audit).await? {
            return Err(AppError::Conflict(format!(
                "a tenant {:?} exists already",
                row.id
            )));
        }
        Ok(info(row))
    }

    pub async fn list(&self) -> AppResult<Vec<TenantInfo>> {
        Ok(self
            .store
            .tenant_list()
            .await?
            .into_iter()
            .map(info)
            .collect())
    }
}

fn info(row: TenantRow) -> TenantInfo {
    TenantInfo {
        id: row.id,
        name: row.name,
        created_at: row.created_at,
    }
}
