//! The worker API: claim (long-poll), heartbeat, progress, complete, fail. Every call
//! about a job is fenced by the lease token of the attempt it was claimed with.

use axum::{
    extract::State,
    http::{HeaderMap, header},
};
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

use super::routes::{Access, Routes};
use super::{ApiError, AppState, ClientAddr, Json, Leased, Principal};

pub fn routes(r: Routes) -> Routes {
    r.post("/v1/worker/claim", Access::Worker, claim)
        .post("/v1/worker/complete", Access::Worker, complete_batch)
        .post("/v1/worker/jobs/{id}/heartbeat", Access::Worker, heartbeat)
        .post("/v1/worker/jobs/{id}/progress", Access::Worker, progress)
        .post("/v1/worker/jobs/{id}/complete", Access::Worker, complete)
        .post("/v1/worker/jobs/{id}/fail", Access::Worker, fail)
}

const MAX_BATCH_COMPLETE: usize = 1_000;

/// The longest user agent recorded for a worker (`GET /v1/workers`), in bytes.
const MAX_AGENT_LEN: usize = 200;

async fn claim(
    State(queue): State<AppState>,
    principal: Principal,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    Json(req): Json<ClaimRequest>,
) -> Result<Json<ClaimResponse>, ApiError> {
    let claim = validate::claim(req, &queue.config().lease).map_err(ApiError::validation)?;
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok()) // visible ASCII only, so any byte is a char boundary
        .map(|a| &a[..a.len().min(MAX_AGENT_LEN)]);
    queue
        .worker_claims(&principal, &claim, agent, address)
        .await;
    let jobs = queue.claim_for(&principal, &claim).await?;
    Ok(Json(ClaimResponse { jobs }))
}

async fn heartbeat(
    State(queue): State<AppState>,
    principal: Principal,
    Leased { lease, .. }: Leased<HeartbeatRequest>,
) -> Result<Json<LeaseStatus>, ApiError> {
    Ok(Json(queue.heartbeat_for(&principal, &lease).await?))
}

async fn progress(
    State(queue): State<AppState>,
    principal: Principal,
    Leased { lease, body }: Leased<ProgressRequest>,
) -> Result<Json<LeaseStatus>, ApiError> {
    Ok(Json(queue.report_progress(&principal, &lease, body).await?))
}

async fn complete(
    State(queue): State<AppState>,
    principal: Principal,
    Leased { lease, body }: Leased<CompleteRequest>,
) -> Result<Json<Job>, ApiError> {
    let entry = CompleteParams {
        id: lease.job,
        lease: &lease.token,
        result: &body.result,
    };
    let mut answers = queue.complete_for(&principal, &[entry]).await?;
    answers.pop().unwrap_or(Ok(()))?;
    Ok(Json(queue.get(&principal.tenant, lease.job).await?))
}

async fn complete_batch(
    State(queue): State<AppState>,
    principal: Principal,
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
    let answers = queue.complete_for(&principal, &entries).await?;
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
    principal: Principal,
    Leased { lease, body }: Leased<FailRequest>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(queue.report_failure(&principal, &lease, body).await?))
}
