//! What an operator watches, for anyone who reads the tenant: `GET /v1/workers` (the
//! workers heard from in the last day, with their jobs in hand) and `GET /v1/stats` (jobs
//! by kind and state, the last hour's throughput and failure rate, paused kinds,
//! connected workers).

use axum::extract::State;
use ferry_core::observe::{Stats, WorkerList};

use super::routes::{Access, Routes};
use super::{ApiError, AppState, Json, Principal};

pub fn routes(r: Routes) -> Routes {
    r.get("/v1/workers", Access::Read, workers, |op| {
        op.id("listWorkers")
            .summary("Workers")
            .description("Workers seen lately: kinds, jobs in hand, last heartbeat.")
    })
    .get("/v1/stats", Access::Read, stats, |op| {
        op.id("getStats")
            .summary("Counts")
            .description("Jobs by kind and state, the oldest pending job's age, paused kinds.")
    })
}

async fn workers(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<WorkerList>, ApiError> {
    let workers = queue.workers(&principal).await?;
    Ok(Json(WorkerList { workers }))
}

async fn stats(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<Stats>, ApiError> {
    Ok(Json(queue.stats_summary(&principal).await?))
}
