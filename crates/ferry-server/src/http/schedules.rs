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
    r.post("/v1/schedules", Access::Write, create, |op| {
        op.id("createSchedule")
            .summary("Add a schedule")
            .description("Submits its job at each tick of its cron expression, in its time zone.")
            .response_with::<201, Json<Schedule>, _>(|r| r.description("Added."))
            .with(|op| {
                super::openapi::links(
                    op,
                    201,
                    "name",
                    "$response.body#/name",
                    &[
                        "getSchedule",
                        "pauseSchedule",
                        "resumeSchedule",
                        "runSchedule",
                        "deleteSchedule",
                    ],
                )
            })
    })
    .get("/v1/schedules", Access::Read, list, |op| {
        op.id("listSchedules").summary("Schedules")
    })
    .get("/v1/schedules/{name}", Access::Read, one, |op| {
        op.id("getSchedule").summary("A schedule")
    })
    .delete("/v1/schedules/{name}", Access::Write, remove, |op| {
        op.id("deleteSchedule")
            .summary("Delete a schedule")
            .response_with::<204, (), _>(|r| r.description("Deleted."))
    })
    .post("/v1/schedules/{name}/pause", Access::Write, pause, |op| {
        op.id("pauseSchedule").summary("Pause a schedule")
    })
    .post("/v1/schedules/{name}/resume", Access::Write, resume, |op| {
        op.id("resumeSchedule").summary("Resume a schedule")
    })
    .post("/v1/schedules/{name}/run", Access::Write, run, |op| {
        op.id("runSchedule")
            .summary("Run a schedule now")
            .description("Submits its job once now (labelled `run=manual`); the ticks go on.")
            .response_with::<202, Json<ferry_core::Job>, _>(|r| r.description("Submitted."))
    })
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
