//! The tenant's API keys and worker tokens, for its admins: `GET /v1/keys`, `POST
//! /v1/keys` (the answer is the only place the secret appears), `DELETE /v1/keys/{prefix}`
//! (revokes; the key stays listed). `app::Keys` keeps the rules.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use ferry_core::identity::{KeyCreateRequest, KeyList};

use super::routes::{Access, Routes};
use super::{ApiError, AppState, Json, Principal};

pub fn routes(r: Routes) -> Routes {
    r.get("/v1/keys", Access::Admin, list, |op| {
        op.id("listKeys")
            .summary("Keys and worker tokens")
            .description("Prefixes, roles, limits and ages; never the secrets.")
    })
    .post("/v1/keys", Access::Admin, create, |op| {
        op.id("createKey")
            .summary("Make a key or worker token")
            .description("The secret is in this answer only.")
            .response_with::<201, Json<ferry_core::identity::KeyCreated>, _>(|r| {
                r.description("Made.")
            })
    })
    .delete("/v1/keys/{prefix}", Access::Admin, revoke, |op| {
        op.id("revokeKey")
            .summary("Revoke a key or worker token")
            .response_with::<204, (), _>(|r| r.description("Revoked."))
    })
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(KeyList {
        keys: queue.keys().list(&principal.tenant).await?,
    }))
}

async fn create(
    State(queue): State<AppState>,
    principal: Principal,
    Json(req): Json<KeyCreateRequest>,
) -> Result<Response, ApiError> {
    let created = queue.keys().create(&principal, req).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn revoke(
    State(queue): State<AppState>,
    principal: Principal,
    Path(prefix): Path<String>,
) -> Result<StatusCode, ApiError> {
    queue.keys().revoke(&principal, &prefix).await?;
    Ok(StatusCode::NO_CONTENT)
}
