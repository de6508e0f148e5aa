//! Tenants: made and listed by the operator (`ferry tenant create|list`), since a tenant's
//! admins act only inside their own. `default` is always there.

use ferry_core::{
    Clock, TenantId,
    identity::{TenantInfo, TenantQuotas},
};
use ferry_store::{Store, TenantRow};

use super::{AppError, AppResult, Principal, Role};

const MAX_NAME_CHARS: usize = 200;

impl crate::Queue {
    pub fn tenants(&self) -> Tenants<'_> {
        Tenants::new(self.store(), self.clock())
    }
}

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
    pub async fn create(
        &self,
        actor: &str,
        id: &TenantId,
        name: &str,
        quotas: TenantQuotas,
    ) -> AppResult<TenantInfo> {
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
            quotas,
            egress: Default::default(),
        };
        let audit = Principal::new(id.clone(), Role::Admin, actor)
            .audit(row.created_at, "tenant.create", format!("tenant:{id}"))
            .with_detail(serde_json::json!({"quotas": quotas}));
        if !self.store.tenant_insert(&row, &audit).await? {
            return Err(AppError::Conflict(format!(
                "a tenant {:?} exists already",
                row.id
            )));
        }
        Ok(info(row))
    }

    /// Sets the tenant's quotas (servers apply them within [`super::QUOTAS_TTL`]).
    pub async fn set_quotas(
        &self,
        actor: &str,
        id: &TenantId,
        quotas: TenantQuotas,
    ) -> AppResult<TenantInfo> {
        let audit = Principal::new(id.clone(), Role::Admin, actor)
            .audit(self.clock.now(), "tenant.quotas", format!("tenant:{id}"))
            .with_detail(serde_json::json!({"quotas": quotas}));
        if !self.store.tenant_set_quotas(id, &quotas, &audit).await? {
            return Err(AppError::NotFound("tenant"));
        }
        self.get(id).await
    }

    pub async fn get(&self, id: &TenantId) -> AppResult<TenantInfo> {
        self.store
            .tenant_get(id)
            .await?
            .map(info)
            .ok_or(AppError::NotFound("tenant"))
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
        quotas: row.quotas,
        egress: row.egress,
    }
}
