//! The client API: submit, read, list, page items, cancel, retry.

use std::time::Duration;

use axum::{
    Router,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use ferry_core::{
    FieldError, Job, JobState, KindPattern,
    api::{ItemPage, JobPage, JobsCreated, SubmitBatch, SubmitJob},
    validate::label_key_ok,
};
use ferry_store::ListParams;

use super::{ApiError, AppState, Json, PathId, Principal};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", post(submit).get(list))
        .route("/v1/jobs/batch", post(submit_batch))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/items", get(items))
        .route("/v1/jobs/{id}/cancel", post(cancel))
        .route("/v1/jobs/{id}/retry", post(retry))
}

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;
/// A page of jobs stops growing past this many bytes of JSON (always at least one job),
/// so a list of jobs with large payloads or results cannot answer hundreds of MiB.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// The most `label` filters one list takes.
pub const MAX_LABEL_FILTERS: usize = 20;
const MAX_ITEMS_PAGE: u32 = 1_000;

/// The query string as `(key, value)` pairs, refusing keys the route does not know
/// (a typo such as `?stauts=` must not silently list everything).
pub(super) fn query_pairs(
    raw: Option<String>,
    known: &[&str],
) -> Result<Vec<(String, String)>, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let unknown: Vec<FieldError> = pairs
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, _)| {
            FieldError::new(
                k.clone(),
                format!("unknown query parameter; known: {}", known.join(", ")),
            )
        })
        .collect();
    if unknown.is_empty() {
        Ok(pairs)
    } else {
        Err(ApiError::validation(unknown))
    }
}

pub(super) fn parse_num<T: std::str::FromStr>(
    field: &str,
    value: &str,
    what: &str,
) -> Result<T, ApiError> {
    value
        .parse()
        .map_err(|_| ApiError::field(field, format!("{value:?} is not {what}")))
}

fn created(job: Job, status: StatusCode) -> Response {
    let location = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)).ok();
    let mut headers = HeaderMap::new();
    if let Some(location) = location {
        headers.insert(header::LOCATION, location);
    }
    (status, headers, Json(job)).into_response()
}

async fn submit(
    State(queue): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
    Json(spec): Json<SubmitJob>,
) -> Result<Response, ApiError> {
    let mut wait = None;
    for (key, value) in query_pairs(raw, &["wait"])? {
        let secs: f64 = parse_num(&key, &value, "a number of seconds")?;
        let max = queue.config().max_sync_wait.as_secs_f64();
        if !(0.0..=max).contains(&secs) {
            return Err(ApiError::field(
                "wait",
                format!("must be between 0 and {max} seconds"),
            ));
        }
        wait = Some(Duration::from_secs_f64(secs));
    }
    let Some(inserted) = queue
        .submit_specs(&principal.tenant, vec![spec], false)
        .await?
        .pop()
    else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ferry_core::ErrorCode::Internal,
            "a submit of one job stored none",
        ));
    };
    // A dedupe key held by an unfinished job: that job answers, with 200 (nothing created).
    if !inserted.created {
        return Ok(created(inserted.job, StatusCode::OK));
    }
    let job = inserted.job;
    let Some(wait) = wait else {
        return Ok(created(job, StatusCode::ACCEPTED));
    };
    let job = queue.wait_final(&principal.tenant, job.id, wait).await?;
    let status = if job.status.is_final() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(created(job, status))
}

async fn submit_batch(
    State(queue): State<AppState>,
    principal: Principal,
    Json(batch): Json<SubmitBatch>,
) -> Result<Response, ApiError> {
    let max = queue.config().max_batch_jobs;
    if batch.jobs.is_empty() || batch.jobs.len() > max {
        return Err(ApiError::field("jobs", format!("give 1-{max} jobs")));
    }
    let inserted = queue
        .submit_specs(&principal.tenant, batch.jobs, true)
        .await?;
    let created = inserted.iter().map(|i| i.created).collect();
    let jobs = inserted.into_iter().map(|i| i.job).collect();
    Ok((StatusCode::ACCEPTED, Json(JobsCreated { jobs, created })).into_response())
}

async fn get_job(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(queue.get(&principal.tenant, id).await?))
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Json<JobPage>, ApiError> {
    let mut params = ListParams {
        tenant_id: principal.tenant.to_string(),
        limit: DEFAULT_PAGE,
        ..Default::default()
    };
    let mut errors = Vec::new();
    for (key, value) in query_pairs(raw, &["status", "kind", "label", "limit", "cursor"])? {
        match key.as_str() {
            "status" => match value.parse::<JobState>() {
                Ok(s) => params.status = Some(s),
                Err(e) => errors.push(FieldError::new("status", e.to_string())),
            },
            "kind" => match value.parse::<KindPattern>() {
                Ok(k) => params.kind = Some(k),
                Err(e) => errors.push(FieldError::new("kind", e.to_string())),
            },
            "label" => match value.split_once(':') {
                Some((k, v)) if label_key_ok(k) => params.labels.push((k.to_owned(), v.to_owned())),
                _ => errors.push(FieldError::new(
                    "label",
                    format!("{value:?}: expected key:value, e.g. label=store_id:42"),
                )),
            },
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => params.limit = n,
                _ => errors.push(FieldError::new(
                    "limit",
                    format!("a whole number from 1 to {MAX_PAGE}"),
                )),
            },
            _ => match value.parse() {
                Ok(id) => params.before = Some(id),
                Err(_) => errors.push(FieldError::new(
                    "cursor",
                    "not a cursor from a previous page",
                )),
            },
        }
    }
    if params.labels.len() > MAX_LABEL_FILTERS {
        errors.push(FieldError::new(
            "label",
            format!("at most {MAX_LABEL_FILTERS} label filters"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let limit = params.limit as usize;
    // Read in chunks that grow while jobs are small, and stop at `limit` jobs or
    // MAX_PAGE_BYTES of JSON, whichever comes first: memory is bounded by a page, not by
    // `limit` times the largest job.
    let mut jobs = Vec::new();
    let mut bytes = 0usize;
    let mut chunk = 10usize;
    let mut more = false;
    'pages: loop {
        params.limit = (chunk.min(limit - jobs.len()) + 1) as u32;
        let mut rows = queue.list(&params).await?;
        let exhausted = rows.len() < params.limit as usize;
        rows.truncate(params.limit as usize - 1);
        let mut chunk_bytes = 0usize;
        let n_rows = rows.len();
        for (i, job) in rows.into_iter().enumerate() {
            let size = serde_json::to_vec(&job).map_or(0, |v| v.len());
            if !jobs.is_empty() && bytes + size > MAX_PAGE_BYTES {
                more = true;
                break 'pages;
            }
            bytes += size;
            chunk_bytes += size;
            params.before = Some(job.id);
            jobs.push(job);
            if jobs.len() == limit {
                more = i + 1 < n_rows || !exhausted;
                break 'pages;
            }
        }
        if exhausted {
            break;
        }
        if chunk_bytes / n_rows.max(1) < 64 * 1024 {
            chunk = (chunk * 2).min(MAX_PAGE as usize);
        }
    }
    let next_cursor = if more {
        jobs.last().map(|j| j.id.to_string())
    } else {
        None
    };
    Ok(Json(JobPage { jobs, next_cursor }))
}

async fn items(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> Result<Json<ItemPage>, ApiError> {
    let mut after = 0i64;
    let mut limit = 100u32;
    for (key, value) in query_pairs(raw, &["after", "limit"])? {
        if key == "after" {
            after = parse_num(&key, &value, "an item seq")?;
        } else {
            limit = parse_num(&key, &value, "a whole number")?;
            if !(1..=MAX_ITEMS_PAGE).contains(&limit) {
                return Err(ApiError::field(
                    "limit",
                    format!("a whole number from 1 to {MAX_ITEMS_PAGE}"),
                ));
            }
        }
    }
    let items = queue.items(&principal.tenant, id, after, limit).await?;
    let next_after = items.last().map_or(after, |i| i.seq);
    Ok(Json(ItemPage { items, next_after }))
}

async fn cancel(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(queue.cancel(&principal.tenant, id).await?))
}

async fn retry(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(queue.retry(&principal.tenant, id).await?))
}
