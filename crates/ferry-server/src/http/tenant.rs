//! `GET /v1/tenant`: the caller's tenant (its id, name, quotas and egress rules), for anyone
//! who reads it. Tenants are made and their quotas set by the operator (`ferry tenant`);
//! `PUT /v1/tenant/egress`: the tenant's admins set where its jobs may connect.

use axum::extract::State;
use ferry_core::{
    egress::EgressPolicy,
    identity::{TenantEgress, TenantInfo},
};

use super::routes::{Access, Routes};
use super::{ApiError, AppState, Json, Principal};

pub fn routes(r: Routes) -> Routes {
    r.get("/v1/tenant", Access::Read, own, |op| {
        op.id("getTenant")
            .summary("The tenant, its quotas and usage")
    })
    .get("/v1/tenant/egress", Access::Read, egress, |op| {
        op.id("getEgress")
            .summary("The egress policy")
            .description("Where the tenant's jobs may connect.")
    })
    .put("/v1/tenant/egress", Access::Admin, set_egress, |op| {
        op.id("setEgress")
            .summary("Set the egress policy")
            .description("Replaces the whole policy.")
    })
}

async fn egress(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<TenantEgress>, ApiError> {
    let (tenant, effective) = queue.egress_view(&principal.tenant).await?;
    Ok(Json(TenantEgress { tenant, effective }))
}

async fn set_egress(
    State(queue): State<AppState>,
    principal: Principal,
    Json(policy): Json<EgressPolicy>,
) -> Result<Json<TenantEgress>, ApiError> {
    queue.set_egress(&principal, policy).await?;
    let (tenant, effective) = queue.egress_view(&principal.tenant).await?;
    Ok(Json(TenantEgress { tenant, effective }))
}

async fn own(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<TenantInfo>, ApiError> {
    Ok(Json(queue.tenants().get(&principal.tenant).await?))
}
