//! Cron schedules: `POST/GET /v1/schedules`, `GET/DELETE /v1/schedules/{name}`,
//! `POST /v1/schedules/{name}/pause|resume`. `services::CronService` fires them.

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post},
};
use ferry_core::{
    ErrorCode, FieldError, JobId, TenantId,
    schedule::{self, CronTz, Schedule, ScheduleList, ScheduleSpec},
};

use super::{ApiError, AppState, Json, Principal};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/schedules", post(create).get(list))
        .route("/v1/schedules/{name}", get(one).delete(remove))
        .route("/v1/schedules/{name}/pause", post(pause))
        .route("/v1/schedules/{name}/resume", post(resume))
}

/// The most schedules a tenant keeps (the scheduler reads them all on every pass).
pub const MAX_SCHEDULES: usize = 1_000;

async fn create(
    State(queue): State<AppState>,
    principal: Principal,
    Json(spec): Json<ScheduleSpec>,
) -> Result<(StatusCode, Json<Schedule>), ApiError> {
    let mut errors = Vec::new();
    let cron = schedule::validate(&spec).map_err(|e| errors.extend(e)).ok();
    // The job is checked as a submitted one would be, its problems under `job.`.
    if let Err(job_errors) = queue
        .validate(&principal.tenant, vec![spec.job.clone()], false)
        .await
    {
        errors.extend(job_errors.into_iter().map(|e| FieldError {
            field: format!("job.{}", e.field),
            ..e
        }));
    }
    let Some(cron) = cron.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    queue
        .check_output_keys(
            &principal.tenant,
            spec.job
                .output
                .as_ref()
                .map(|o| ("job.output.key".to_owned(), o))
                .into_iter()
                .collect(),
        )
        .await?;
    let now = queue.now();
    let next_at = cron
        .next_after(now)
        .ok_or_else(|| ApiError::field("cron", "never fires"))?;
    let schedule = Schedule {
        id: JobId::new(),
        name: spec.name,
        cron: spec.cron.trim().to_owned(),
        timezone: spec.timezone,
        job: spec.job,
        catch_up: spec.catch_up,
        paused: false,
        next_at,
        last_at: None,
        created_at: now,
    };
    if all(&queue, &principal.tenant).await?.len() >= MAX_SCHEDULES {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidState,
            format!("at most {MAX_SCHEDULES} schedules; delete one first"),
        ));
    }
    if !queue
        .store()
        .schedule_insert(&principal.tenant, &schedule)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidState,
            format!("a schedule named {:?} exists", schedule.name),
        ));
    }
    Ok((StatusCode::CREATED, Json(schedule)))
}

async fn all(queue: &AppState, tenant: &TenantId) -> Result<Vec<Schedule>, ApiError> {
    Ok(queue
        .store()
        .schedule_list(Some(tenant))
        .await?
        .into_iter()
        .map(|(_, s)| s)
        .collect())
}

async fn find(queue: &AppState, tenant: &TenantId, name: &str) -> Result<Schedule, ApiError> {
    all(queue, tenant)
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::not_found("schedule"))
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<ScheduleList>, ApiError> {
    Ok(Json(ScheduleList {
        schedules: all(&queue, &principal.tenant).await?,
    }))
}

async fn one(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(find(&queue, &principal.tenant, &name).await?))
}

async fn remove(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if queue
        .store()
        .schedule_delete(&principal.tenant, &name)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("schedule"))
    }
}

async fn set_paused(
    queue: &AppState,
    tenant: &TenantId,
    name: &str,
    paused: bool,
) -> Result<Schedule, ApiError> {
    let current = find(queue, tenant, name).await?;
    // Resuming starts from the next tick after now: no burst of what was paused.
    let next_at = CronTz::parse(&current.cron, &current.timezone)
        .ok()
        .and_then(|c| c.next_after(queue.now()))
        .unwrap_or(current.next_at);
    queue
        .store()
        .schedule_pause(tenant, name, paused, next_at)
        .await?;
    find(queue, tenant, name).await
}

async fn pause(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(
        set_paused(&queue, &principal.tenant, &name, true).await?,
    ))
}

async fn resume(
    State(queue): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    Ok(Json(
        set_paused(&queue, &principal.tenant, &name, false).await?,
    ))
}
