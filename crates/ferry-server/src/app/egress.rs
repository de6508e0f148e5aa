//! The egress policy a tenant's jobs and webhooks run under: the operator's rules
//! (`[egress]` in the config) with the tenant's own, set by its admins. Workers get it with
//! each claimed job and enforce it where they connect; the webhook sender enforces it on
//! the server. Read at most every [`EGRESS_TTL`] per tenant on each instance (a change made
//! here applies at once).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use ferry_core::{TenantId, egress::EgressPolicy};
use ferry_store::StoreError;

use super::{AppError, AppResult, Principal};
use crate::Queue;

/// How long a tenant's policy is used before it is read again.
pub const EGRESS_TTL: Duration = Duration::from_secs(1);

/// Tenants' policies as last read on this instance.
#[derive(Debug, Default)]
pub struct EgressBook {
    tenants: Mutex<HashMap<String, (EgressPolicy, Instant)>>,
}

impl EgressBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (EgressPolicy, Instant)>> {
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Queue {
    /// The policy `tenant`'s connections are held to: the operator's rules and the
    /// tenant's.
    pub async fn egress_of(&self, tenant: &str) -> Result<EgressPolicy, StoreError> {
        let own = self.tenant_egress(tenant).await?;
        Ok(self.config().egress.merged(&own))
    }

    /// The tenant's own rules (cached).
    async fn tenant_egress(&self, tenant: &str) -> Result<EgressPolicy, StoreError> {
        if let Some((policy, at)) = self.egress_book().lock().get(tenant)
            && at.elapsed() < EGRESS_TTL
        {
            return Ok(policy.clone());
        }
        let policy = self
            .store()
            .tenant_get(tenant)
            .await?
            .map(|t| t.egress)
            .unwrap_or_default();
        self.egress_book()
            .lock()
            .insert(tenant.to_owned(), (policy.clone(), Instant::now()));
        Ok(policy)
    }

    /// Sets the principal's tenant's own rules (an admin's call; audited).
    pub async fn set_egress(
        &self,
        who: &Principal,
        policy: EgressPolicy,
    ) -> AppResult<EgressPolicy> {
        if policy.allow_private {
            return Err(AppError::field(
                "allow_private",
                "internal addresses are allowed for a deployment by its operator \
                 ([egress] allow_private); a tenant names what it needs in `allow`",
            ));
        }
        if let Some((field, message)) = policy.problems().into_iter().next() {
            return Err(AppError::field(field, message));
        }
        // A proxy written as an address the policy denies would fail every job.
        if let Some(proxy) = &policy.proxy
            && let Ok(ip) = proxy.host().parse()
            && let Err(denied) = self.config().egress.merged(&policy).check(proxy.host(), ip)
        {
            return Err(AppError::field(
                "proxy",
                format!("{denied}: name the proxy's address in `allow`"),
            ));
        }
        let audit = who
            .audit(
                self.now(),
                "tenant.egress",
                format!("tenant:{}", who.tenant),
            )
            .with_detail(serde_json::json!({"egress": policy}));
        if !self
            .store()
            .tenant_set_egress(&who.tenant, &policy, &audit)
            .await?
        {
            return Err(AppError::NotFound("tenant"));
        }
        self.egress_book().lock().remove(who.tenant.as_str());
        Ok(policy)
    }

    /// Gives each spec aimed at a domain the tenant limits (and the specs its chain will
    /// enqueue) that domain's rate limit, unless it has its own (`domain_rate`).
    pub async fn polite(
        &self,
        tenant: &TenantId,
        specs: &mut [ferry_core::api::SubmitJob],
    ) -> AppResult<()> {
        let rates = self.egress_of(tenant).await?.rate_limits;
        if !rates.is_empty() {
            for spec in specs {
                ferry_core::domain_rate::apply_to_spec(&rates, spec);
            }
        }
        Ok(())
    }

    /// The tenant's own rules and what they add up to with the operator's.
    pub async fn egress_view(&self, tenant: &TenantId) -> AppResult<(EgressPolicy, EgressPolicy)> {
        let own = self.tenant_egress(tenant).await?;
        let effective = self.config().egress.merged(&own);
        Ok((own, effective))
    }
}
