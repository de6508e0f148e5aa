//! The worker API: claim (long-poll), heartbeat, progress, complete, fail. Every call
//! about a job is fenced by the lease token of the attempt it was claimed with.

use axum::{Router, extract::State, routing::post};
use ferry_core::{
    FieldError, Job, JobError, Progress,
    api::{
        BatchCompleteRequest, BatchCompleteResponse, BatchCompleteResult, ClaimRequest,
        ClaimResponse, CompleteRequest, FailRequest, HeartbeatRequest, LeaseStatus,
        ProgressRequest,
    },
    validate::{self, MAX_PROGRESS_MESSAGE_LEN},
};
use ferry_store::{CompleteParams, ProgressParams};

use super::{ApiError, AppState, Json, PathId, Principal};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/worker/claim", post(claim))
        .route("/v1/worker/complete", post(complete_batch))
        .route("/v1/worker/jobs/{id}/heartbeat", post(heartbeat))
        .route("/v1/worker/jobs/{id}/progress", post(progress))
        .route("/v1/worker/jobs/{id}/complete", post(complete))
        .route("/v1/worker/jobs/{id}/fail", post(fail))
}

const MAX_ITEMS_PER_REPORT: usize = 1_000;
const MAX_BATCH_COMPLETE: usize = 1_000;

async fn claim(
    State(queue): State<AppState>,
    principal: Principal,
    Json(req): Json<ClaimRequest>,
) -> Result<Json<ClaimResponse>, ApiError> {
    let claim = validate::claim(req, &queue.config().lease).map_err(ApiError::validation)?;
    let jobs = queue.claim(&principal.tenant, &claim).await?;
    Ok(Json(ClaimResponse { jobs }))
}

async fn heartbeat(
    State(queue): State<AppState>,
    PathId(id): PathId,
    Json(req): Json<HeartbeatRequest>,
) -> Result<Json<LeaseStatus>, ApiError> {
    Ok(Json(queue.heartbeat(id, &req.lease).await?))
}

async fn progress(
    State(queue): State<AppState>,
    PathId(id): PathId,
    Json(req): Json<ProgressRequest>,
) -> Result<Json<LeaseStatus>, ApiError> {
    let mut errors = Vec::new();
    if req
        .message
        .as_ref()
        .is_some_and(|m| m.len() > MAX_PROGRESS_MESSAGE_LEN)
    {
        errors.push(FieldError::new(
            "message",
            format!("at most {MAX_PROGRESS_MESSAGE_LEN} bytes"),
        ));
    }
    let items = req.items.unwrap_or_default();
    if items.len() > MAX_ITEMS_PER_REPORT {
        errors.push(FieldError::new(
            "items",
            format!("at most {MAX_ITEMS_PER_REPORT} items per report"),
        ));
    }
    if req.current.zip(req.total).is_some_and(|(c, t)| c > t) {
        errors.push(FieldError::new("current", "must not exceed total"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let progress = (req.current.is_some() || req.total.is_some() || req.message.is_some())
        .then_some(Progress {
            current: req.current,
            total: req.total,
            message: req.message,
        });
    let status = queue
        .progress(ProgressParams {
            id,
            lease: &req.lease,
            progress,
            items: &items,
            items_offset: req.items_offset,
            now: queue.now(),
        })
        .await?;
    Ok(Json(status))
}

async fn complete(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
    Json(req): Json<CompleteRequest>,
) -> Result<Json<Job>, ApiError> {
    queue.complete_one(id, &req.lease, &req.result).await?;
    Ok(Json(queue.get(&principal.tenant, id).await?))
}

async fn complete_batch(
    State(queue): State<AppState>,
    Json(req): Json<BatchCompleteRequest>,
) -> Result<Json<BatchCompleteResponse>, ApiError> {
    if req.jobs.is_empty() || req.jobs.len() > MAX_BATCH_COMPLETE {
        return Err(ApiError::field(
            "jobs",
            format!("give 1-{MAX_BATCH_COMPLETE} entries"),
        ));
    }
    let entries: Vec<_> = req
        .jobs
        .iter()
        .map(|e| CompleteParams {
            id: e.id,
            lease: &e.lease,
            result: &e.result,
        })
        .collect();
    let answers = queue.complete(&entries).await?;
    let results = req
        .jobs
        .iter()
        .zip(answers)
        .map(|(e, answer)| BatchCompleteResult {
            id: e.id,
            ok: answer.is_ok(),
            error: answer.err().map(|err| ApiError::from(err).detail()),
        })
        .collect();
    Ok(Json(BatchCompleteResponse { results }))
}

async fn fail(
    State(queue): State<AppState>,
    PathId(id): PathId,
    Json(req): Json<FailRequest>,
) -> Result<Json<Job>, ApiError> {
    validate::fail_error(&req.error).map_err(ApiError::validation)?;
    let error = JobError {
        code: req.error.code,
        message: req.error.message,
        retryable: req.error.retryable,
    };
    Ok(Json(
        queue
            .fail(id, &req.lease, error, req.error.retry_after_ms)
            .await?,
    ))
}
