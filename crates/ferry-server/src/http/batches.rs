//! Batches: `POST /v1/batches` creates one job per item; `GET /v1/batches` lists the
//! tenant's, newest first (paged by `before`); `GET /v1/batches/{id}` answers
//! live progress; `GET /v1/batches/{id}/results?after=` pages through item results in the
//! order they finish; `POST /v1/batches/{id}/cancel` cancels the unfinished items.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use ferry_core::{
    BatchId, FieldError, JobId,
    api::{Batch, BatchList, BatchResultPage, CreateBatch},
};

use super::routes::{Access, Routes};
use super::{
    ApiError, AppState, Json, PathId, Principal, Traced,
    query::{FromQuery, Param, ParamType, Query, limit_param, page_size},
};

pub fn routes(r: Routes) -> Routes {
    r.post("/v1/batches", Access::Write, create, |op| {
        op.id("createBatch")
            .summary("Submit a batch")
            .description(
                "Many jobs of one kind as one: its progress, results and a `batch.finished` \
                 event when all are final.",
            )
            .response_with::<202, Json<ferry_core::api::BatchCreated>, _>(|r| {
                r.description("Stored.")
            })
            .with(|op| {
                super::openapi::links(
                    op,
                    202,
                    "id",
                    "$response.body#/batch_id",
                    &["getBatch", "listBatchResults", "cancelBatch"],
                )
            })
    })
    .get("/v1/batches", Access::Read, list, |op| {
        op.id("listBatches")
            .summary("List batches")
            .description("Newest first; pages by `before`.")
    })
    .get("/v1/batches/{id}", Access::Read, get_batch, |op| {
        op.id("getBatch").summary("A batch and its progress")
    })
    .get("/v1/batches/{id}/results", Access::Read, results, |op| {
        op.id("listBatchResults")
            .summary("A batch's results")
            .description("Each finished item's result or error, in the order they finished.")
    })
    .post("/v1/batches/{id}/cancel", Access::Write, cancel, |op| {
        op.id("cancelBatch")
            .summary("Cancel a batch")
            .description("Its unfinished items are cancelled; finished ones stay.")
    })
}

const MAX_RESULTS_PAGE: u32 = 1_000;
const MAX_LIST_PAGE: u32 = 100;

/// `GET /v1/batches?before=ID&limit=N`.
#[derive(Debug)]
struct ListQuery {
    before: Option<BatchId>,
    limit: u32,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            before: None,
            limit: 20,
        }
    }
}

impl FromQuery for ListQuery {
    const PARAMS: &'static [Param] = &[
        Param::new(
            "before",
            ParamType::Uuid,
            "Batches made before this one (`next_before` of the page before).",
        ),
        limit_param(MAX_LIST_PAGE),
    ];

    fn set(&mut self, key: &str, value: &str) -> Result<(), FieldError> {
        match key {
            "before" => {
                self.before = Some(
                    value
                        .parse()
                        .map_err(|_| FieldError::new(key, "a batch id from a previous page"))?,
                )
            }
            _ => self.limit = page_size(key, value, MAX_LIST_PAGE)?,
        }
        Ok(())
    }
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
    Query(ListQuery { before, limit }): Query<ListQuery>,
) -> Result<Json<BatchList>, ApiError> {
    let batches = queue.batches(&principal.tenant, before, limit).await?;
    let next_before = (batches.len() == limit as usize)
        .then(|| batches.last().map(|b| b.id))
        .flatten();
    Ok(Json(BatchList {
        batches,
        next_before,
    }))
}

async fn create(
    State(queue): State<AppState>,
    principal: Principal,
    Traced(trace): Traced,
    Json(req): Json<CreateBatch>,
) -> Result<Response, ApiError> {
    let max = queue.config().max_batch_items;
    if req.items.is_empty() || req.items.len() > max {
        return Err(ApiError::field("items", format!("give 1-{max} items")));
    }
    if req
        .options
        .output
        .as_ref()
        .is_some_and(|o| o.mode != ferry_core::dataset::OutputMode::Merge)
    {
        return Err(ApiError::field(
            "options.output.mode",
            "each item writes part of the dataset: use \"merge\" (a snapshot would mark the other items' rows gone)",
        ));
    }
    principal.check_kind(&req.kind)?;
    let mut specs: Vec<_> = (0..req.items.len()).map(|i| req.item_spec(i)).collect();
    queue.polite(&principal.tenant, &mut specs).await?;
    // Items share kind and options (a problem with those is named once); an item's own
    // problems (a recipe's) are named by its index.
    let jobs = queue
        .validate(&principal.tenant, specs, true)
        .await
        .map_err(|errors| {
            let fields = errors
                .into_iter()
                .map(|e| {
                    let (item, rest) = e
                        .field
                        .strip_prefix("jobs[")
                        .and_then(|r| r.split_once("]."))
                        .map_or(("", e.field.as_str()), |(i, rest)| (i, rest));
                    let field = if rest == "kind" {
                        rest.to_owned()
                    } else if let Some(path) = rest.strip_prefix("payload") {
                        format!("items[{item}]{path}")
                    } else {
                        format!("options.{rest}")
                    };
                    ferry_core::FieldError { field, ..e }
                })
                .collect::<Vec<_>>();
            let mut seen = std::collections::HashSet::new();
            ApiError::validation(
                fields
                    .into_iter()
                    .filter(|f| seen.insert(f.field.clone()))
                    .collect(),
            )
        })?;
    queue
        .check_output_keys(
            &principal.tenant,
            req.options
                .output
                .as_ref()
                .map(|o| ("options.output.key".to_owned(), o))
                .into_iter()
                .collect(),
        )
        .await?;
    let labels = req.options.labels.clone().unwrap_or_default();
    let created = queue
        .create_batch(&principal, &req.kind, labels, jobs, trace.as_ref())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(created)).into_response())
}

async fn get_batch(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId<BatchId>,
) -> Result<Json<Batch>, ApiError> {
    Ok(Json(
        queue
            .batch(&principal.tenant, id)
            .await
            .map_err(not_found)?,
    ))
}

fn not_found(e: ferry_store::StoreError) -> ApiError {
    match e {
        ferry_store::StoreError::NotFound(_) => ApiError::not_found("batch"),
        other => other.into(),
    }
}

fn parse_cursor(raw: &str) -> Option<(i64, JobId)> {
    let (pos, id) = raw.split_once('_')?;
    Some((pos.parse().ok()?, id.parse().ok()?))
}

/// `GET /v1/batches/{id}/results`: the cursor of the page before, and the page size.
#[derive(Debug)]
struct ResultsQuery {
    after: Option<(i64, JobId)>,
    limit: u32,
}

impl Default for ResultsQuery {
    fn default() -> Self {
        Self {
            after: None,
            limit: 100,
        }
    }
}

impl FromQuery for ResultsQuery {
    const PARAMS: &'static [Param] = &[
        Param::text("after", "The cursor of the page before (`next_after`)."),
        limit_param(MAX_RESULTS_PAGE),
    ];

    fn set(&mut self, key: &str, value: &str) -> Result<(), FieldError> {
        match key {
            "after" => {
                self.after = Some(
                    parse_cursor(value)
                        .ok_or_else(|| FieldError::new(key, "not a cursor from a previous page"))?,
                )
            }
            _ => self.limit = page_size(key, value, MAX_RESULTS_PAGE)?,
        }
        Ok(())
    }
}

async fn results(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId<BatchId>,
    Query(ResultsQuery { after, limit }): Query<ResultsQuery>,
) -> Result<Json<BatchResultPage>, ApiError> {
    let results = queue
        .batch_results(&principal.tenant, id, after, limit)
        .await
        .map_err(not_found)?;
    let next_after = match results.last() {
        Some((pos, last)) => Some(format!("{pos}_{}", last.job_id)),
        None => after.map(|(pos, id)| format!("{pos}_{id}")),
    };
    Ok(Json(BatchResultPage {
        results: results.into_iter().map(|(_, r)| r).collect(),
        next_after,
    }))
}

async fn cancel(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId<BatchId>,
) -> Result<Json<Batch>, ApiError> {
    Ok(Json(
        queue
            .cancel_batch(&principal, id)
            .await
            .map_err(not_found)?,
    ))
}
