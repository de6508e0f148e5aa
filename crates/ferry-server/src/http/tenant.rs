//! `GET /v1/tenant`: the caller's tenant (its id, name and quotas), for anyone who reads it.
//! Tenants are made and their quotas set by the operator (`ferry tenant`).

use axum::extract::State;
use ferry_core::identity::TenantInfo;

use super::routes::{Access, Routes};
use super::{ApiError, AppState, Json, Principal};

pub fn routes(r: Routes) -> Routes {
    r.get("/v1/tenant", Access::Read, own)
}

async fn own(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<TenantInfo>, ApiError> {
    Ok(Json(queue.tenants().get(&principal.tenant).await?))
}
