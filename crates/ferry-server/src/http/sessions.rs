//! Saved browser sessions. The client API lists and deletes them but never shows their
//! contents; a worker loads or saves one only for a job it holds the lease of, and only a
//! session that job's recipe names (`use_session` to load, a `save_session` step to save).

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{delete, get, post},
};
use ferry_core::{
    ErrorCode,
    api::{SessionList, SessionLoadRequest, SessionLoadResponse, SessionSaveRequest},
    recipe::{self, Step},
};
use ferry_store::LeasedJob;

use super::{ApiError, AppState, Json, PathId, Principal};

/// Largest session a worker may save (cookies and storage of one site are far smaller).
const MAX_SESSION_BYTES: usize = 2 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", get(list))
        .route("/v1/sessions/{name}", delete(remove))
}

pub fn worker_router() -> Router<AppState> {
    Router::new()
        .route("/v1/worker/jobs/{id}/session/load", post(load))
        .route("/v1/worker/jobs/{id}/session/save", post(save))
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<SessionList>, ApiError> {
    Ok(Json(SessionList {
        sessions: queue.store().session_list(&principal.tenant).await?,
    }))
}

async fn remove(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if queue
        .store()
        .session_delete(&principal.tenant, &name)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("session"))
    }
}

/// The job behind a worker call, if the lease still holds it.
pub(super) async fn leased(
    queue: &AppState,
    id: ferry_core::JobId,
    lease: &str,
) -> Result<LeasedJob, ApiError> {
    queue.store().job_leased(id, lease).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::LeaseLost,
            "this lease no longer holds the job; stop working on it",
        )
    })
}

fn not_named(name: &str, how: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::SessionNotNamed,
        format!("the job's recipe does not name session {name:?} in {how}"),
    )
}

/// What seals a session: its tenant and name, so a blob moved under another name fails.
fn context(tenant: &str, name: &str) -> String {
    format!("{tenant}/{name}")
}

async fn load(
    State(queue): State<AppState>,
    PathId(id): PathId,
    Json(req): Json<SessionLoadRequest>,
) -> Result<Json<SessionLoadResponse>, ApiError> {
    let job = leased(&queue, id, &req.lease).await?;
    let name = recipe::validate(&job.payload, "payload")
        .ok()
        .and_then(|r| r.use_session)
        .ok_or_else(|| not_named("(none)", "use_session"))?;
    let state = match queue.store().session_get(&job.tenant_id, &name).await? {
        None => None,
        Some(sealed) => {
            let plain = queue
                .config()
                .sealing_key
                .open(&context(&job.tenant_id, &name), &sealed)
                .map_err(|e| {
                    tracing::error!(session = %name, error = %e, "a saved session does not open");
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        ErrorCode::Internal,
                        format!("session {name:?} does not open with this server's key (was session.key changed?)"),
                    )
                })?;
            Some(serde_json::from_slice(&plain).map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    format!("session {name:?} is not JSON"),
                )
            })?)
        }
    };
    Ok(Json(SessionLoadResponse { name, state }))
}

async fn save(
    State(queue): State<AppState>,
    PathId(id): PathId,
    Json(req): Json<SessionSaveRequest>,
) -> Result<StatusCode, ApiError> {
    let job = leased(&queue, id, &req.lease).await?;
    let named = recipe::validate(&job.payload, "payload")
        .ok()
        .is_some_and(|r| {
            r.steps
                .iter()
                .any(|s| matches!(s, Step::SaveSession(n) if *n == req.name))
        });
    if !named {
        return Err(not_named(&req.name, "a save_session step"));
    }
    let plain = serde_json::to_vec(&req.state).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if plain.len() > MAX_SESSION_BYTES {
        return Err(ApiError::field(
            "state",
            format!("at most {MAX_SESSION_BYTES} bytes"),
        ));
    }
    let sealed = queue
        .config()
        .sealing_key
        .seal(&context(&job.tenant_id, &req.name), &plain);
    queue
        .store()
        .session_put(&job.tenant_id, &req.name, &sealed, Some(id), queue.now())
        .await?;
    tracing::info!(job_id = %id, session = %req.name, "session saved");
    Ok(StatusCode::NO_CONTENT)
}
