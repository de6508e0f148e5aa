//! The worker API: claim (long-poll), heartbeat, progress, complete, fail. Every call
//! about a job is fenced by the lease token of the attempt it was claimed with.

use axum::{Router, extract::State, routing::post};
use ferry_core::{
    Job,
    api::{
        BatchCompleteRequest, BatchCompleteResponse, BatchCompleteResult, ClaimRequest,
        ClaimResponse, CompleteRequest, FailRequest, HeartbeatRequest, LeaseStatus,
        ProgressRequest,
    },
    validate,
};
use ferry_store::CompleteParams;

use super::{ApiError, AppState, Json, Leased, Principal};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/worker/claim", post(claim))
        .route("/v1/worker/complete", post(complete_batch))
        .route("/v1/worker/jobs/{id}/heartbeat", post(heartbeat))
        .route("/v1/worker/jobs/{id}/progress", post(progress))
        .route("/v1/worker/jobs/{id}/complete", post(complete))
        .route("/v1/worker/jobs/{id}/fail", post(fail))
}

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
    Leased { lease, .. }: Leased<HeartbeatRequest>,
) -> Result<Json<LeaseStatus>, ApiError> {
    Ok(Json(queue.heartbeat(lease.job, &lease.token).await?))
}

async fn progress(
    State(queue): State<AppState>,
    Leased { lease, body }: Leased<ProgressRequest>,
) -> Result<Json<LeaseStatus>, ApiError> {
    Ok(Json(queue.report_progress(&lease, body).await?))
}

async fn complete(
    State(queue): State<AppState>,
    principal: Principal,
    Leased { lease, body }: Leased<CompleteRequest>,
) -> Result<Json<Job>, ApiError> {
    queue
        .complete_one(lease.job, &lease.token, &body.result)
        .await?;
    Ok(Json(queue.get(&principal.tenant, lease.job).await?))
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
    Leased { lease, body }: Leased<FailRequest>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(queue.report_failure(&lease, body).await?))
}
