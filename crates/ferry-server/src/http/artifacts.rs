//! Job artifacts: `PUT /v1/worker/jobs/{id}/artifacts/{name}` (the body is the file, the
//! lease in the `Ferry-Lease` header), `GET /v1/jobs/{id}/artifacts[/{name}]` for clients.
//! `app::Artifacts` keeps the rules.

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use ferry_core::api::{ArtifactInfo, ArtifactList};

use super::routes::{Access, Routes};
use super::{ApiError, AppState, Json, PathId, Principal, context::Lease};

/// The header carrying the worker's lease on an upload (the body is the file).
pub const LEASE_HEADER: &str = "ferry-lease";

pub fn routes(r: Routes, max_upload_bytes: usize) -> Routes {
    const UPLOAD: &str = "/v1/worker/jobs/{id}/artifacts/{name}";
    let upload = aide::axum::routing::put_with(upload, |op| {
        let op = op
            .id("workerUploadArtifact")
            .summary("Upload an artifact (worker)")
            .description(
                "The body is the file (a failure screenshot, the page's HTML, a network log); \
                 the job's lease goes in the `Ferry-Lease` header.",
            )
            .response_with::<201, Json<ArtifactInfo>, _>(|r| r.description("Stored."))
            .with(super::openapi::any_body)
            .with(|op| {
                super::openapi::required_header(
                    op,
                    "Ferry-Lease",
                    "The lease of the job's attempt.",
                )
            });
        super::openapi::describe(op, UPLOAD, Access::Worker)
    })
    .layer(DefaultBodyLimit::max(max_upload_bytes));
    r.get("/v1/jobs/{id}/artifacts", Access::Read, list, |op| {
        op.id("listArtifacts").summary("A job's artifacts")
    })
    .get(
        "/v1/jobs/{id}/artifacts/{name}",
        Access::Read,
        download,
        |op| {
            op.id("getArtifact")
                .summary("Download an artifact")
                .description("The file, with the content type it was uploaded with.")
                .with(|op| super::openapi::media(op, 200, &["*/*"], "The file."))
        },
    )
    .add(Method::PUT, UPLOAD, Access::Worker, upload)
}

async fn upload(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
    Path((_, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ArtifactInfo>), ApiError> {
    let token = headers
        .get(LEASE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::field(LEASE_HEADER, "the header with the job's lease"))?;
    let lease = Lease {
        job: id,
        token: token.to_owned(),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let info = queue
        .artifacts()
        .upload(&principal, &lease, &name, content_type, body)
        .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
) -> Result<Json<ArtifactList>, ApiError> {
    Ok(Json(ArtifactList {
        artifacts: queue.artifacts().list(&principal, id).await?,
    }))
}

async fn download(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
    Path((_, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let download = queue.artifacts().download(&principal, id, &name).await?;
    Ok((
        [
            (header::CONTENT_TYPE, download.info.content_type),
            (header::CACHE_CONTROL, "private, max-age=3600".to_owned()),
            // A page's HTML is shown as data, never run on the API's origin.
            (header::CONTENT_SECURITY_POLICY, "sandbox".to_owned()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        download.bytes,
    )
        .into_response())
}
