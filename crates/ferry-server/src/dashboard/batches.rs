//! The batches pages: the tenant's batches newest first, each with its progress (a bar of
//! completed, failed, cancelled, running and waiting items), paged by `before`; and one
//! batch with its counts, labels and the items that finished, in the order they did
//! (`GET /v1/batches/{id}/results`), linked to their jobs. A running batch's page follows
//! its kind's event stream and redraws itself; editors and admins cancel it.

use axum::{
    Form,
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
};
use ferry_core::{
    BatchId,
    api::{Batch, BatchProgress, BatchState},
};
use maud::{Markup, html};
use serde::Deserialize;

use super::jobs::{may_change, time};
use super::layout::{error_page, live_page, page};
use super::session::PageUser;
use crate::{app::AppError, http::AppState};

/// Batches per page.
const PAGE: u32 = 25;
/// Finished items shown on a batch's page.
const RESULTS: u32 = 100;

fn state(s: BatchState) -> Markup {
    let name = match s {
        BatchState::Running => "running",
        BatchState::Completed => "completed",
        BatchState::Failed => "failed",
        BatchState::Cancelled => "cancelled",
    };
    html! { span class={ "state " (name) } { (name) } }
}

/// A bar of the items by state, and the counts in words (for readers without the bar).
fn bar(p: &BatchProgress) -> Markup {
    let total = p.total.max(1) as f64;
    let part = |n: u64| format!("width: {:.2}%", n as f64 * 100.0 / total);
    html! {
        div.bar role="img" aria-label={ (p.completed) " completed, " (p.failed) " failed of " (p.total) } {
            span.completed style=(part(p.completed)) {}
            span.failed style=(part(p.failed)) {}
            span.cancelled style=(part(p.cancelled)) {}
            span.running style=(part(p.running)) {}
        }
        small.muted {
            (p.completed) " completed · " (p.failed) " failed · " (p.cancelled) " cancelled · "
            (p.running) " running · " (p.pending) " waiting · " (p.total) " in all"
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    before: Option<String>,
}

pub async fn list(
    State(queue): State<AppState>,
    user: PageUser,
    Query(q): Query<ListQuery>,
) -> Response {
    let before = match q.before.as_deref().map(str::parse::<BatchId>) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            return error_page(&AppError::field("before", "not a batch id")).into_response();
        }
    };
    let batches = match queue.batches(&user.principal.tenant, before, PAGE).await {
        Ok(batches) => batches,
        Err(e) => return error_page(&AppError::from(e)).into_response(),
    };
    let older = (batches.len() == PAGE as usize)
        .then(|| batches.last().map(|b| b.id))
        .flatten();
    page(
        "Batches",
        Some(&user),
        html! {
            h1 { "Batches" }
            p { "Jobs submitted together (" code { "POST /v1/batches" } "), newest first." }
            @if batches.is_empty() {
                p.empty { "No batches yet." }
            } @else {
                table.jobs.batches {
                    thead { tr { th { "Batch" } th { "Kind" } th { "State" } th { "Progress" } th { "Created" } } }
                    tbody {
                        @for b in &batches {
                            tr {
                                td { a href={ "/batches/" (b.id) } { code { (b.id) } } }
                                td { (b.kind) }
                                td { (state(b.status)) }
                                td { (bar(&b.progress)) }
                                td { (time(b.created_at)) }
                            }
                        }
                    }
                }
            }
            @if let Some(id) = older {
                p { a rel="next" href={ "/batches?before=" (id) } { "Older batches →" } }
            }
        },
    )
    .into_response()
}

pub async fn show(
    State(queue): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> Response {
    let not_found = || error_page(&AppError::NotFound("batch")).into_response();
    let Ok(id) = id.parse::<BatchId>() else {
        return not_found();
    };
    let tenant = &user.principal.tenant;
    let batch: Batch = match queue.batch(tenant, id).await {
        Ok(batch) => batch,
        Err(ferry_store::StoreError::NotFound(_)) => return not_found(),
        Err(e) => return error_page(&AppError::from(e)).into_response(),
    };
    let results = match queue.batch_results(tenant, id, None, RESULTS).await {
        Ok(results) => results,
        Err(e) => return error_page(&AppError::from(e)).into_response(),
    };
    let running = batch.status == BatchState::Running;
    let live = format!(
        "/v1/events?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("kind", &batch.kind)
            .finish()
    );
    live_page(
        "Batch",
        Some(&user),
        running.then_some(live.as_str()),
        html! {
            h1 { "Batch " code { (batch.id) } }
            dl.facts {
                dt { "Kind" } dd { (batch.kind) }
                dt { "State" } dd { (state(batch.status)) }
                dt { "Created" } dd { (time(batch.created_at)) }
                @if let Some(at) = batch.cancelled_at { dt { "Cancelled" } dd { (time(at)) } }
                @if !batch.labels.is_empty() {
                    dt { "Labels" } dd {
                        @for (k, v) in &batch.labels { code { (k) "=" (v) } " " }
                    }
                }
            }
            section { h2 { "Progress" } (bar(&batch.progress)) }
            @if running && may_change(&user) {
                form method="post" action={ "/batches/" (batch.id) "/cancel" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    button type="submit" { "Cancel the unfinished items" }
                }
            }
            section {
                h2 { "Finished items" }
                @if results.is_empty() {
                    p.empty { "None finished yet." }
                } @else {
                    table.jobs.results {
                        thead { tr { th { "Item" } th { "Job" } th { "State" } th { "Result or error" } th { "Finished" } } }
                        tbody {
                            @for (_, r) in &results {
                                tr {
                                    td { (r.index) }
                                    td { a href={ "/jobs/" (r.job_id) } { code { (r.job_id) } } }
                                    td { span class={ "state " (r.status.as_str()) } { (r.status.as_str()) } }
                                    td { code { (summary(r)) } }
                                    td { (time(r.finished_at)) }
                                }
                            }
                        }
                    }
                    @if results.len() == RESULTS as usize {
                        p.muted { "The first " (RESULTS) " to finish; all of them: "
                            code { "GET /v1/batches/" (batch.id) "/results" } "." }
                    }
                }
            }
        },
    )
    .into_response()
}

/// A result or an error, cut to a line.
fn summary(r: &ferry_core::api::BatchResult) -> String {
    let text = match (&r.error, &r.result) {
        (Some(e), _) => format!("{}: {}", e.code, e.message),
        (None, Some(v)) => v.to_string(),
        (None, None) => String::new(),
    };
    match text.char_indices().nth(120) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[derive(Deserialize)]
pub struct Action {
    #[serde(default)]
    csrf: String,
}

pub async fn cancel(
    State(queue): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
    Form(form): Form<Action>,
) -> Response {
    if let Some(refused) = user.refusal(&queue, &form.csrf, "cancel batches") {
        return refused;
    }
    let Ok(id) = id.parse::<BatchId>() else {
        return error_page(&AppError::NotFound("batch")).into_response();
    };
    match queue.cancel_batch(&user.principal, id).await {
        Ok(_) => Redirect::to(&format!("/batches/{id}")).into_response(),
        Err(ferry_store::StoreError::NotFound(_)) => {
            error_page(&AppError::NotFound("batch")).into_response()
        }
        Err(e) => error_page(&AppError::from(e)).into_response(),
    }
}
