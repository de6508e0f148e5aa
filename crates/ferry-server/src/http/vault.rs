//! The secrets vault: `GET /v1/secrets` (names and domains, never values),
//! `PUT|DELETE /v1/secrets/{name}` for editors, and for workers
//! `POST /v1/worker/jobs/{id}/secrets` under the job's lease. `app::Vault` keeps the rules.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use ferry_core::vault::{
    SecretInfo, SecretList, SecretSpec, WorkerSecretsRequest, WorkerSecretsResponse,
};

use super::routes::{Access, Routes};
use super::{ApiError, AppState, Json, Leased, Principal};

pub fn routes(r: Routes) -> Routes {
    r.get("/v1/secrets", Access::Read, list, |op| {
        op.id("listSecrets")
            .summary("Secrets")
            .description("Names, the hosts each may go to, and ages; never values.")
    })
    .put("/v1/secrets/{name}", Access::Write, put, |op| {
        op.id("putSecret")
            .summary("Set a secret")
            .description("Sealed at rest; recipes use it as `{{secret.NAME}}`.")
    })
    .delete("/v1/secrets/{name}", Access::Write, remove, |op| {
        op.id("deleteSecret")
            .summary("Delete a secret")
            .response_with::<204, (), _>(|r| r.description("Deleted."))
    })
    .post(
        "/v1/worker/jobs/{id}/secrets",
        Access::Worker,
        for_worker,
        |op| {
            op.id("workerSecrets")
                .summary("A job's secrets (worker)")
                .description("The values of the secrets the job's recipe uses, for its worker.")
        },
    )
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<SecretList>, ApiError> {
    Ok(Json(SecretList {
        secrets: queue.vault().list(&principal).await?,
    }))
}

/// Saves or replaces: `200` and the secret (never its value) either way.
async fn put(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Json(spec): Json<SecretSpec>,
) -> Result<Json<SecretInfo>, ApiError> {
    Ok(Json(queue.vault().put(&principal, &name, spec).await?))
}

async fn remove(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    queue.vault().delete(&principal, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn for_worker(
    State(queue): State<AppState>,
    principal: Principal,
    Leased { lease, .. }: Leased<WorkerSecretsRequest>,
) -> Result<Json<WorkerSecretsResponse>, ApiError> {
    Ok(Json(WorkerSecretsResponse {
        secrets: queue.vault().for_worker(&principal, &lease).await?,
    }))
}
