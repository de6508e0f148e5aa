//! Job artifacts: a worker uploads files (a failure's screenshot, HTML and network log, a
//! `screenshot` step's PNG) for a job it holds the lease of; clients list and download them.
//! The bytes go to the configured object store (a directory under the data dir), the index
//! to the database.

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use ferry_core::{
    ErrorCode, JobId,
    api::{ArtifactInfo, ArtifactList},
    recipe::artifact_name_ok,
};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{ApiError, AppState, Json, PathId, Principal, sessions::leased};

/// The header carrying the worker's lease on an upload (the body is the file).
pub const LEASE_HEADER: &str = "ferry-lease";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs/{id}/artifacts", get(list))
        .route("/v1/jobs/{id}/artifacts/{name}", get(download))
}

pub fn worker_router(max_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/v1/worker/jobs/{id}/artifacts/{name}", put(upload))
        .layer(DefaultBodyLimit::max(max_bytes))
}

fn store(queue: &AppState) -> Result<&dyn ObjectStore, ApiError> {
    queue.config().artifacts.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ArtifactsDisabled,
            "this server keeps no artifacts (start it with a data dir)",
        )
    })
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if artifact_name_ok(name) {
        Ok(())
    } else {
        Err(ApiError::field(
            "name",
            "1 to 100 letters, digits, `.`, `_`, `-` (not starting with `.`)",
        ))
    }
}

fn storage_error(e: object_store::Error) -> ApiError {
    tracing::error!(error = %e, "artifact store failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "the artifact store is unavailable; retry shortly",
    )
}

async fn upload(
    State(queue): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ArtifactInfo>), ApiError> {
    let id: JobId = id.parse().map_err(|e: ferry_core::id::ParseJobIdError| {
        ApiError::bad_request(format!("{id:?}: {e}"))
    })?;
    check_name(&name)?;
    let lease = headers
        .get(LEASE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::field(LEASE_HEADER, "the header with the job's lease"))?;
    let job = leased(&queue, id, lease).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let size_bytes = body.len() as u64;
    store(&queue)?
        .put(
            &crate::queue::artifact_path(id, &name),
            PutPayload::from_bytes(body),
        )
        .await
        .map_err(storage_error)?;
    let info = ArtifactInfo {
        name,
        content_type,
        size_bytes,
        attempt: job.attempt,
        created_at: queue.now(),
    };
    queue
        .store()
        .artifact_put(&job.tenant_id, id, &info)
        .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
) -> Result<Json<ArtifactList>, ApiError> {
    // A job that does not exist is a 404, one without artifacts an empty list.
    queue.store().job_get(&principal.tenant, id).await?;
    Ok(Json(ArtifactList {
        artifacts: queue.store().artifact_list(&principal.tenant, id).await?,
    }))
}

async fn download(
    State(queue): State<AppState>,
    principal: Principal,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id: JobId = id.parse().map_err(|e: ferry_core::id::ParseJobIdError| {
        ApiError::bad_request(format!("{id:?}: {e}"))
    })?;
    check_name(&name)?;
    let Some(info) = queue
        .store()
        .artifact_list(&principal.tenant, id)
        .await?
        .into_iter()
        .find(|a| a.name == name)
    else {
        return Err(ApiError::not_found("artifact"));
    };
    let bytes = store(&queue)?
        .get(&crate::queue::artifact_path(id, &name))
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => ApiError::not_found("artifact"),
            other => storage_error(other),
        })?
        .bytes()
        .await
        .map_err(storage_error)?;
    Ok((
        [
            (header::CONTENT_TYPE, info.content_type),
            (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
            // A page's HTML is shown as data, never run on the API's origin.
            (header::CONTENT_SECURITY_POLICY, "sandbox".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        bytes,
    )
        .into_response())
}
