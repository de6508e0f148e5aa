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
    r.post("/v1/worker/claim", Access::Worker, claim, |op| {
        op.id("workerClaim")
            .summary("Claim jobs (worker)")
            .description(
                "Up to `limit` ready jobs of the kinds asked for, each with a lease to hold by \
             heartbeats; waits up to `wait_ms` for one when none is ready.",
            )
    })
    .post(
        "/v1/worker/complete",
        Access::Worker,
        complete_batch,
        |op| {
            op.id("workerCompleteMany")
                .summary("Complete many jobs (worker)")
                .description(
                    "Each entry completes one job under its lease; each answers on its own (a lost \
             lease fails only its entry).",
                )
        },
    )
    .post(
        "/v1/worker/jobs/{id}/heartbeat",
        Access::Worker,
        heartbeat,
        |op| {
            op.id("workerHeartbeat")
                .summary("Extend a lease (worker)")
                .description(
                    "Answers the new expiry, and whether the job was cancelled (stop, report \
             nothing).",
                )
        },
    )
    .post(
        "/v1/worker/jobs/{id}/progress",
        Access::Worker,
        progress,
        |op| {
            op.id("workerProgress")
                .summary("Report progress and items (worker)")
                .description(
                    "Progress, a message and items (rows), appended in order; also extends the \
                 lease.",
                )
        },
    )
    .post(
        "/v1/worker/jobs/{id}/complete",
        Access::Worker,
        complete,
        |op| {
            op.id("workerComplete")
                .summary("Complete a job (worker)")
                .description("Applied once: a repeat of the same report answers the same job.")
        },
    )
    .post("/v1/worker/jobs/{id}/fail", Access::Worker, fail, |op| {
        op.id("workerFail")
            .summary("Fail an attempt (worker)")
            .description(
                "A retryable error schedules the next attempt by the job's backoff; a fatal one, \
             or the last attempt, fails the job.",
            )
    })
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
    let entries: Vec<CompleteParams<'_>> = req.jobs.iter().map(CompleteParams::from).collect();
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
