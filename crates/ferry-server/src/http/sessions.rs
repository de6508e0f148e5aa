//! Saved browser sessions: `GET /v1/sessions`, `DELETE /v1/sessions/{name}` for clients
//! (never the contents), and for workers `POST /v1/worker/jobs/{id}/session/load|save`
//! under the job's lease. `app::Sessions` keeps the rules.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use ferry_core::api::{SessionList, SessionLoadRequest, SessionLoadResponse, SessionSaveRequest};

use super::routes::{Access, Routes};
use super::{ApiError, AppState, Json, Leased, Principal};

pub fn routes(r: Routes) -> Routes {
    r.get("/v1/sessions", Access::Read, list, |op| {
        op.id("listSessions")
            .summary("Saved sessions")
            .description("Names and ages; never contents.")
    })
    .delete("/v1/sessions/{name}", Access::Write, remove, |op| {
        op.id("deleteSession")
            .summary("Delete a saved session")
            .response_with::<204, (), _>(|r| r.description("Deleted."))
    })
    .post(
        "/v1/worker/jobs/{id}/session/load",
        Access::Worker,
        load,
        |op| {
            op.id("workerLoadSession")
                .summary("Load a session (worker)")
                .description(
                    "The saved session (cookies, storage) a job's recipe names, for the job's \
                 worker; `found: false` when none is saved yet.",
                )
                .response_with::<403, Json<ferry_core::api::ApiErrorBody>, _>(|r| {
                    r.description(
                        "The job does not name this session (`SESSION_NOT_NAMED`), or the \
                         credential is not a worker token (`FORBIDDEN`).",
                    )
                })
        },
    )
    .post(
        "/v1/worker/jobs/{id}/session/save",
        Access::Worker,
        save,
        |op| {
            op.id("workerSaveSession")
                .summary("Save a session (worker)")
                .description("Sealed at rest with the server's key.")
                .response_with::<204, (), _>(|r| r.description("Saved."))
                .response_with::<403, Json<ferry_core::api::ApiErrorBody>, _>(|r| {
                    r.description(
                        "The job does not name this session (`SESSION_NOT_NAMED`), or the \
                         credential is not a worker token (`FORBIDDEN`).",
                    )
                })
        },
    )
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<SessionList>, ApiError> {
    Ok(Json(SessionList {
        sessions: queue.sessions().list(&principal).await?,
    }))
}

async fn remove(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    queue.sessions().delete(&principal, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn load(
    State(queue): State<AppState>,
    principal: Principal,
    Leased { lease, .. }: Leased<SessionLoadRequest>,
) -> Result<Json<SessionLoadResponse>, ApiError> {
    let (name, state) = queue.sessions().load(&principal, &lease).await?;
    Ok(Json(SessionLoadResponse { name, state }))
}

async fn save(
    State(queue): State<AppState>,
    principal: Principal,
    Leased { lease, body }: Leased<SessionSaveRequest>,
) -> Result<StatusCode, ApiError> {
    queue
        .sessions()
        .save(&principal, &lease, &body.name, &body.state)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
