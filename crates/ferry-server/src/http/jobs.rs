//! The client API: submit, read, list, page items, cancel, retry.

use std::time::Duration;

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use ferry_core::{
    FieldError, Job, JobState, KindPattern,
    api::{ItemPage, JobPage, JobsCreated, SubmitBatch, SubmitJob},
    validate::label_key_ok,
};
use ferry_store::ListParams;

use super::routes::{Access, Routes};
use super::{
    ApiError, AppState, Json, PathId, Principal, Traced,
    query::{FromQuery, Page, Param, ParamType, Query, limit_param, number, page_size},
};

pub fn routes(r: Routes) -> Routes {
    r.post("/v1/jobs", Access::Write, submit, |op| {
        op.id("submitJob")
            .summary("Submit a job")
            .description(
                "Stores the job and answers `202` with it (and its URL in `Location`). A \
                 `dedupe_key` held by an unfinished job answers that job with `200` instead. \
                 With `?wait=`, answers once the job is final (`200`) or the wait is over \
                 (`202`).",
            )
            .response_with::<202, Json<ferry_core::Job>, _>(|r| {
                r.description("Stored; on its way.")
            })
            .response_with::<200, Json<ferry_core::Job>, _>(|r| {
                r.description(
                    "The unfinished job holding the dedupe key, or (with `wait`) the job, \
                     final.",
                )
            })
            .response_with::<429, Json<ferry_core::api::ApiErrorBody>, _>(|r| {
                r.description("The tenant is at a quota (`QUOTA_EXCEEDED`); see `Retry-After`.")
            })
            .with(|op| {
                super::openapi::links(
                    op,
                    202,
                    "id",
                    "$response.body#/id",
                    &[
                        "getJob",
                        "listJobItems",
                        "listJobEvents",
                        "listArtifacts",
                        "cancelJob",
                        "retryJob",
                    ],
                )
            })
    })
    .get("/v1/jobs", Access::Read, list, |op| {
        op.id("listJobs").summary("List jobs").description(
            "Newest first, filtered; pages by `cursor` (`next_cursor` of the page before).",
        )
    })
    .post("/v1/jobs/batch", Access::Write, submit_batch, |op| {
        op.id("submitJobs")
            .summary("Submit several jobs")
            .description(
                "Stores all of them or none; `created[i]` says whether `jobs[i]` is new or \
                 the unfinished job holding its dedupe key.",
            )
            .response_with::<202, Json<ferry_core::api::JobsCreated>, _>(|r| {
                r.description("Stored.")
            })
    })
    .get("/v1/jobs/{id}", Access::Read, get_job, |op| {
        op.id("getJob")
            .summary("A job")
            .description("Its state, progress, result or error.")
    })
    .get("/v1/jobs/{id}/items", Access::Read, items, |op| {
        op.id("listJobItems")
            .summary("A job's items")
            .description("The rows its worker reported, in order; pages by `after`.")
    })
    .post("/v1/jobs/{id}/cancel", Access::Write, cancel, |op| {
        op.id("cancelJob").summary("Cancel a job").description(
            "An unfinished job becomes `cancelled`; a running one's worker is told at its \
             next heartbeat. A final job answers `409` (`INVALID_STATE`).",
        )
    })
    .post("/v1/jobs/{id}/retry", Access::Write, retry, |op| {
        op.id("retryJob").summary("Retry a job").description(
            "A failed or cancelled job runs again, with a fresh set of attempts. Another \
             state answers `409` (`INVALID_STATE`).",
        )
    })
}

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;
/// A page of jobs stops growing past this many bytes of JSON (always at least one job),
/// so a list of jobs with large payloads or results cannot answer hundreds of MiB.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
/// The most `label` filters one list takes.
pub const MAX_LABEL_FILTERS: usize = 20;
const MAX_ITEMS_PAGE: u32 = 1_000;

fn created(job: Job, status: StatusCode) -> Response {
    let location = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)).ok();
    let mut headers = HeaderMap::new();
    if let Some(location) = location {
        headers.insert(header::LOCATION, location);
    }
    (status, headers, Json(job)).into_response()
}

/// `POST /v1/jobs?wait=SECONDS`: answer once the job is final, or after that long.
#[derive(Debug, Default)]
struct SubmitQuery {
    /// Every `wait` given (each must be in range; the last one counts).
    waits: Vec<f64>,
}

impl FromQuery for SubmitQuery {
    const PARAMS: &'static [Param] = &[Param::new(
        "wait",
        ParamType::Number {
            min: 0.0,
            max: 60.0,
        },
        "Answer once the job is final or after this many seconds (at most 60): `200` when \
         it finished, `202` when it is still on its way.",
    )];

    fn set(&mut self, key: &str, value: &str) -> Result<(), FieldError> {
        self.waits.push(number(key, value, "a number of seconds")?);
        Ok(())
    }
}

async fn submit(
    State(queue): State<AppState>,
    principal: Principal,
    Traced(trace): Traced,
    Query(query): Query<SubmitQuery>,
    Json(spec): Json<SubmitJob>,
) -> Result<Response, ApiError> {
    let max = queue.config().max_sync_wait.as_secs_f64();
    if query.waits.iter().any(|secs| !(0.0..=max).contains(secs)) {
        return Err(ApiError::field(
            "wait",
            format!("must be between 0 and {max} seconds"),
        ));
    }
    let wait = query
        .waits
        .last()
        .map(|secs| Duration::from_secs_f64(*secs));
    let Some(inserted) = queue
        .submit_specs(&principal, vec![spec], false, trace.as_ref())
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
    Traced(trace): Traced,
    Json(batch): Json<SubmitBatch>,
) -> Result<Response, ApiError> {
    let max = queue.config().max_batch_jobs;
    if batch.jobs.is_empty() || batch.jobs.len() > max {
        return Err(ApiError::field("jobs", format!("give 1-{max} jobs")));
    }
    let inserted = queue
        .submit_specs(&principal, batch.jobs, true, trace.as_ref())
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

/// `GET /v1/jobs`: filters, page size and the cursor of the page before.
#[derive(Debug)]
struct ListQuery {
    status: Option<JobState>,
    kind: Option<KindPattern>,
    labels: Vec<(String, String)>,
    limit: u32,
    cursor: Option<ferry_core::JobId>,
    parent: Option<ferry_core::JobId>,
    search: Option<String>,
}

/// The longest text `GET /v1/jobs?search=` looks for.
const MAX_SEARCH: usize = 200;

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            status: None,
            kind: None,
            labels: Vec::new(),
            limit: DEFAULT_PAGE,
            cursor: None,
            parent: None,
            search: None,
        }
    }
}

impl FromQuery for ListQuery {
    const PARAMS: &'static [Param] = &[
        Param::new(
            "status",
            ParamType::OneOf(&[
                "scheduled",
                "pending",
                "running",
                "completed",
                "failed",
                "cancelled",
            ]),
            "Only jobs in this state.",
        ),
        Param::text(
            "kind",
            "Only jobs of this kind, or under a prefix (`reviews.*`, `*`).",
        ),
        Param::text(
            "label",
            "Only jobs with this label, as `key:value`; repeat it for more (all must match).",
        ),
        limit_param(MAX_PAGE),
        Param::new(
            "cursor",
            ParamType::Uuid,
            "Jobs older than this one: `next_cursor` of the page before.",
        ),
        Param::new(
            "parent",
            ParamType::Uuid,
            "Only the jobs this job's chain enqueued.",
        ),
        Param::text(
            "search",
            "Only jobs whose kind or dedupe key contains this text (at most 200 characters).",
        ),
    ];

    fn set(&mut self, key: &str, value: &str) -> Result<(), FieldError> {
        match key {
            "status" => {
                self.status = Some(value.parse().map_err(
                    |e: ferry_core::state::ParseJobStateError| FieldError::new(key, e.to_string()),
                )?)
            }
            "kind" => {
                self.kind = Some(value.parse().map_err(|e: ferry_core::kind::KindError| {
                    FieldError::new(key, e.to_string())
                })?)
            }
            "label" => match value.split_once(':') {
                Some((k, v)) if label_key_ok(k) => self.labels.push((k.to_owned(), v.to_owned())),
                _ => {
                    return Err(FieldError::new(
                        key,
                        format!("{value:?}: expected key:value, e.g. label=store_id:42"),
                    ));
                }
            },
            "limit" => self.limit = page_size(key, value, MAX_PAGE)?,
            "parent" => {
                self.parent = Some(
                    value
                        .parse()
                        .map_err(|_| FieldError::new(key, "not a job id"))?,
                )
            }
            "search" => {
                if value.chars().count() > MAX_SEARCH {
                    return Err(FieldError::new(
                        key,
                        format!("at most {MAX_SEARCH} characters"),
                    ));
                }
                self.search = Some(value.trim().to_owned()).filter(|v| !v.is_empty());
            }
            _ => {
                self.cursor = Some(
                    value
                        .parse()
                        .map_err(|_| FieldError::new(key, "not a cursor from a previous page"))?,
                )
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Vec<FieldError> {
        if self.labels.len() > MAX_LABEL_FILTERS {
            vec![FieldError::new(
                "label",
                format!("at most {MAX_LABEL_FILTERS} label filters"),
            )]
        } else {
            Vec::new()
        }
    }
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
    Query(query): Query<ListQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let mut params = ListParams {
        tenant_id: principal.tenant.to_string(),
        status: query.status,
        kind: query.kind,
        labels: query.labels,
        limit: query.limit,
        before: query.cursor,
        parent: query.parent,
        search: query.search,
    };
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
    Query(Page { after, limit }): Query<Page<100, MAX_ITEMS_PAGE>>,
) -> Result<Json<ItemPage>, ApiError> {
    let items = queue.items(&principal.tenant, id, after, limit).await?;
    let next_after = items.last().map_or(after, |i| i.seq);
    Ok(Json(ItemPage { items, next_after }))
}

async fn cancel(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(queue.cancel(&principal, id).await?))
}

async fn retry(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(queue.retry(&principal, id).await?))
}
