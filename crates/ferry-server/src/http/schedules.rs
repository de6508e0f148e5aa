//! Cron schedules: `POST/GET /v1/schedules`, `GET/DELETE /v1/schedules/{name}`,
//! `POST /v1/schedules/{name}/pause|resume`, `POST /v1/schedules/{name}/run` (its job now).
//! `services::CronService` fires them.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use ferry_core::schedule::{Schedule, ScheduleList, ScheduleSpec};

use super::routes::{Access, Routes};
use super::{ApiError, AppState, Json, Principal};

pub fn routes(r: Routes) -> Routes {
    r.post("/v1/schedules", Access::Write, create)
        .get("/v1/schedules", Access::Read, list)
        .get("/v1/schedules/{name}", Access::Read, one)
        .delete("/v1/schedules/{name}", Access::Write, remove)
        .post("/v1/schedules/{name}/pause", Access::Write, pause)
        .post("/v1/schedules/{name}/resume", Access::Write, resume)
        .post("/v1/schedules/{name}/run", Access::Write, run)
}

/// `202` and the job it enqueued, as a submit answers.
async fn run(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<ferry_core::Job>), ApiError> {
    let job = queue.schedules().run_now(&principal, &name).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

async fn create(
    State(queue): State<AppState>,
    principal: Principal,
    Json(spec): Json<ScheduleSpec>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    let schedule = queue.schedules().create(&principal, spec).await?;
    Ok((StatusCode::CREATED, Json(schedule)))
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<ScheduleList>, ApiError> {
    Ok(Json(ScheduleList {
        schedules: queue.schedules().list(&principal).await?,
    }))
}

async fn one(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(queue.schedules().get(&principal, &name).await?))
}

async fn remove(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    queue.schedules().delete(&principal, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pause(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(
        queue
            .schedules()
            .set_paused(&principal, &name, true)
            .await?,
    ))
}

async fn resume(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(
        queue
            .schedules()
            .set_paused(&principal, &name, false)
            .await?,
    ))
}
