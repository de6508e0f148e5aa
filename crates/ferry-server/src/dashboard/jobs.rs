//! The jobs pages: a list filtered by state, kind, labels and time (made at or before), a
//! page at a time (keyset, newest first), with a job id to jump to and, for those whose role
//! may, a selection to retry or cancel together (`bulk.rs`); and one job with its error,
//! result, payload and progress, with retry and cancel.

use axum::{
    Form,
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Utc};
use ferry_core::{Job, JobId, JobItem, JobState, KindPattern, Role, api::ArtifactInfo};
use ferry_store::ListParams;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{error_page, live_page, page};
use super::session::PageUser;
use crate::app::AppError;
use crate::http::AppState;

const PAGE: u32 = 50;

const STATES: [JobState; 6] = JobState::ALL;

#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    state: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    before: String,
    /// `KEY=VALUE`, several separated by commas.
    #[serde(default)]
    label: String,
    /// Made at or before this time (`2026-12-06T19:30`, UTC).
    #[serde(default)]
    until: String,
    /// A job id to open, or text to find in kinds and dedupe keys.
    #[serde(default)]
    q: String,
}

pub(super) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub(super) fn badge(state: JobState) -> Markup {
    html! { span class={ "state " (state.as_str()) } { (state.as_str()) } }
}

/// The filters as given, or what is wrong with them.
fn params(user: &PageUser, f: &Filters) -> Result<ListParams, String> {
    let status = match f.state.as_str() {
        "" => None,
        s => Some(
            STATES
                .into_iter()
                .find(|st| st.as_str() == s)
                .ok_or_else(|| format!("{s:?} is not a state"))?,
        ),
    };
    let kind = match f.kind.trim() {
        "" => None,
        k => Some(
            k.parse::<KindPattern>()
                .map_err(|e| format!("kind {k:?}: {e}"))?,
        ),
    };
    let before = match f.before.as_str() {
        "" => None,
        b => Some(
            b.parse::<JobId>()
                .map_err(|_| format!("{b:?} is not a job id"))?,
        ),
    };
    // Ids are time-ordered: "made at or before" is a bound on the id.
    let until = match f.until.trim() {
        "" => None,
        // To the minute, the whole minute counts; to the second, the whole second.
        t => Some(
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M")
                .map(|m| m + chrono::Duration::minutes(1))
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
                        .map(|s| s + chrono::Duration::seconds(1))
                })
                .map_err(|_| format!("{t:?} is not a time such as 2026-12-06T19:30"))?
                .and_utc(),
        ),
    };
    let until = until.map(JobId::first_at);
    let before = match (before, until) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut labels = Vec::new();
    for pair in f.label.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("label {pair:?}: write KEY=VALUE"))?;
        labels.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    let search = match f.q.trim() {
        "" => None,
        q if q.chars().count() > 200 => return Err("search for at most 200 characters".into()),
        q => Some(q.to_owned()),
    };
    Ok(ListParams {
        tenant_id: user.principal.tenant.to_string(),
        status,
        kind,
        labels,
        before,
        parent: None,
        search,
        limit: PAGE,
    })
}

pub async fn list(
    State(queue): State<AppState>,
    user: PageUser,
    Query(f): Query<Filters>,
) -> Response {
    if let Ok(id) = f.q.trim().parse::<JobId>() {
        return Redirect::to(&format!("/jobs/{id}")).into_response();
    }
    let (jobs, problem) = match params(&user, &f) {
        Ok(p) => match queue.list(&p).await {
            Ok(jobs) => (jobs, None),
            Err(e) => return error_page(&AppError::from(e)).into_response(),
        },
        Err(problem) => (Vec::new(), Some(problem)),
    };
    let next = (jobs.len() == PAGE as usize)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    let next_link = next.map(|id| {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("state", &f.state)
            .append_pair("kind", &f.kind)
            .append_pair("label", &f.label)
            .append_pair("until", &f.until)
            .append_pair("q", &f.q)
            .append_pair("before", &id.to_string())
            .finish()
    });
    page(
        "Jobs",
        Some(&user),
        html! {
            h1 { "Jobs" }
            form.filters method="get" action="/jobs" {
                label { "State "
                    select name="state" {
                        option value="" selected[f.state.is_empty()] { "any" }
                        @for s in STATES {
                            option value=(s.as_str()) selected[f.state == s.as_str()] { (s.as_str()) }
                        }
                    }
                }
                label { "Kind " input type="text" name="kind" value=(f.kind) placeholder="e.g. shop.* or shop.sync"; }
                label { "Label " input type="text" name="label" value=(f.label) placeholder="e.g. schedule=nightly"; }
                label { "Made by " input type="datetime-local" name="until" value=(f.until) title="UTC"; }
                label { "Search " input type="search" name="q" value=(f.q) placeholder="a job id, or text in kinds and dedupe keys"; }
                button type="submit" { "Filter" }
            }
            @if let Some(problem) = problem {
                p.error role="alert" { (problem) }
            }
            @if jobs.is_empty() {
                p.empty { "No jobs match." }
            } @else {
                @let select = may_change(&user);
                form.bulk method="post" action="/jobs/bulk" {
                input type="hidden" name="csrf" value=(user.csrf);
                table.jobs.list {
                    thead { tr {
                        @if select { th { span.visually-hidden { "Select" } } }
                        th { "Job" } th { "Kind" } th { "State" } th { "Attempt" } th { "Created" } th { "Updated" }
                    } }
                    tbody {
                        @for job in &jobs {
                            tr {
                                @if select {
                                    td { input type="checkbox" name="id" value=(job.id) aria-label={ "Select job " (job.id) }; }
                                }
                                td { a href={ "/jobs/" (job.id) } { code { (short(job.id)) } } }
                                td { (job.kind) }
                                td { (badge(job.status)) }
                                td { (job.attempt) " / " (job.max_attempts) }
                                td { (time(job.created_at)) }
                                td { (time(job.updated_at)) }
                            }
                        }
                    }
                }
                @if select {
                    p.actions {
                        "Selected: "
                        button type="submit" name="action" value="retry" { "Retry" } " "
                        button type="submit" name="action" value="cancel" { "Cancel" }
                    }
                }
                }
            }
            @if let Some(link) = next_link {
                p { a rel="next" href={ "/jobs?" (link) } { "Older jobs →" } }
            }
        },
    )
    .into_response()
}

/// The end of an id, enough to tell jobs apart in a list.
pub(super) fn short(id: JobId) -> String {
    let text = id.to_string();
    text[text.len().saturating_sub(12)..].to_owned()
}

fn json(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

pub(super) fn may_change(user: &PageUser) -> bool {
    matches!(user.principal.role, Role::Editor | Role::Admin)
}

/// A job's artifacts: images shown, HTML in a sandboxed frame, the rest as links (each
/// served by the API's download route, which the session cookie opens).
fn artifacts(job: JobId, list: &[ArtifactInfo]) -> Markup {
    html! {
        @if !list.is_empty() {
            section.artifacts {
                h2 { "Artifacts" }
                @for a in list {
                    @let src = format!("/v1/jobs/{job}/artifacts/{}", a.name);
                    @let caption = format!("{} · attempt {} · {} bytes", a.name, a.attempt, a.size_bytes);
                    @if a.content_type.starts_with("image/") {
                        figure {
                            a href=(src) { img src=(src) alt=(a.name) loading="lazy"; }
                            figcaption { (caption) }
                        }
                    } @else if a.content_type.starts_with("text/html") {
                        details {
                            summary { (caption) }
                            iframe sandbox="" src=(src) title=(a.name) {}
                        }
                    } @else {
                        p { a href=(src) { (caption) } }
                    }
                }
            }
        }
    }
}

/// How many of a job's items its page shows.
const ITEMS_SHOWN: u32 = 50;

/// The first items a job gave, as a table by field (the fields of the first rows).
fn items_table(items: &[JobItem]) -> Markup {
    let mut fields: Vec<&str> = Vec::new();
    for item in items.iter().take(10) {
        if let Some(object) = item.data.as_object() {
            for key in object.keys() {
                if !fields.contains(&key.as_str()) {
                    fields.push(key);
                }
            }
        }
    }
    html! {
        @if !items.is_empty() {
            section.items {
                h2 { "Items" @if items.len() as u32 >= ITEMS_SHOWN { " (the first " (ITEMS_SHOWN) ")" } }
                table.jobs {
                    thead { tr { th { "#" } th { "Attempt" } @for f in &fields { th { (f) } } } }
                    tbody {
                        @for item in items {
                            tr {
                                td { (item.seq) }
                                td { (item.attempt) }
                                @if fields.is_empty() {
                                    td { code { (item.data) } }
                                }
                                @for f in &fields {
                                    td { (super::datasets::cell(item.data.get(*f))) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a job's page shows beside the job.
struct Seen<'a> {
    files: &'a [ArtifactInfo],
    items: &'a [JobItem],
    events: &'a [ferry_core::api::Event],
    children: &'a [Job],
}

fn detail_page(user: &PageUser, job: &Job, seen: &Seen<'_>) -> Markup {
    let Seen {
        files,
        items,
        events,
        children,
    } = seen;
    let retryable = matches!(job.status, JobState::Failed | JobState::Cancelled);
    let cancellable = matches!(
        job.status,
        JobState::Scheduled | JobState::Pending | JobState::Running
    ) && !job.cancel_requested;
    let live = format!("/v1/jobs/{}/events", job.id);
    live_page(
        &format!("Job {}", short(job.id)),
        Some(user),
        (!job.status.is_final()).then_some(live.as_str()),
        html! {
            p { a href="/jobs" { "← Jobs" } }
            h1 { (job.kind) " " (badge(job.status)) }
            @if may_change(user) && (retryable || cancellable) {
                div.actions {
                    @if retryable {
                        form.inline method="post" action={ "/jobs/" (job.id) "/retry" } {
                            input type="hidden" name="csrf" value=(user.csrf);
                            button type="submit" name="retry" { "Retry" }
                        }
                    }
                    @if cancellable {
                        form.inline method="post" action={ "/jobs/" (job.id) "/cancel" } {
                            input type="hidden" name="csrf" value=(user.csrf);
                            button type="submit" name="cancel" { "Cancel" }
                        }
                    }
                }
            }
            @if let Some(error) = &job.error {
                section.error {
                    h2 { "Error " code { (error.code) } }
                    p { (error.message) }
                    @if !error.retryable { p { small { "Not retried automatically." } } }
                }
            }
            dl.facts {
                dt { "Id" } dd { code { (job.id) } }
                dt { "Attempt" } dd { (job.attempt) " of " (job.max_attempts) }
                dt { "Created" } dd { (time(job.created_at)) }
                dt { "Updated" } dd { (time(job.updated_at)) }
                @if let Some(t) = job.started_at { dt { "Started" } dd { (time(t)) } }
                @if let Some(t) = job.finished_at { dt { "Finished" } dd { (time(t)) } }
                @if let Some(w) = &job.worker_id { dt { "Worker" } dd { (w) } }
                @if let Some(p) = &job.parent_id { dt { "Enqueued by" } dd { a href={ "/jobs/" (p) } { code { (p) } } } }
                @if job.cancel_requested { dt { "Cancel" } dd { "asked; the worker stops at its next report" } }
            }
            @if let Some(progress) = &job.progress {
                section { h2 { "Progress" } pre { (json(&serde_json::to_value(progress).unwrap_or_default())) } }
            }
            (super::attempts::history(events))
            (super::steps::table(job))
            (artifacts(job.id, files))
            (items_table(items))
            (super::attempts::children(children))
            @if let Some(result) = &job.result {
                section { h2 { "Result" } pre.result { (json(result)) } }
            }
            section { h2 { "Payload" } pre { (json(&job.payload)) } }
        },
    )
}

pub async fn detail(
    State(queue): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<JobId>() else {
        return error_page(&AppError::NotFound("job")).into_response();
    };
    let job = match queue.get(&user.principal.tenant, id).await {
        Ok(job) => job,
        Err(e) => return error_page(&AppError::from(e)).into_response(),
    };
    let items = match queue
        .items(&user.principal.tenant, id, 0, ITEMS_SHOWN)
        .await
    {
        Ok(items) => items,
        Err(e) => return error_page(&AppError::from(e)).into_response(),
    };
    let tenant = user.principal.tenant.as_str();
    let events = match queue.job_events(tenant, id, 200).await {
        Ok(events) => events,
        Err(e) => return error_page(&AppError::from(e)).into_response(),
    };
    let children = ListParams {
        tenant_id: tenant.to_owned(),
        parent: Some(id),
        limit: 50,
        ..ListParams::default()
    };
    let children = match queue.list(&children).await {
        Ok(jobs) => jobs,
        Err(e) => return error_page(&AppError::from(e)).into_response(),
    };
    match queue.artifacts().list(&user.principal, id).await {
        Ok(files) => {
            let seen = Seen {
                files: &files,
                items: &items,
                events: &events,
                children: &children,
            };
            detail_page(&user, &job, &seen).into_response()
        }
        Err(e) => error_page(&e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct Action {
    #[serde(default)]
    csrf: String,
}

/// Retries or cancels, then shows the job again.
async fn act(queue: &AppState, user: &PageUser, id: &str, csrf: &str, retry: bool) -> Response {
    if let Some(refused) = user.refusal(queue, csrf, "change jobs") {
        return refused;
    }
    let Ok(id) = id.parse::<JobId>() else {
        return error_page(&AppError::NotFound("job")).into_response();
    };
    let done = if retry {
        queue.retry(&user.principal, id).await
    } else {
        queue.cancel(&user.principal, id).await
    };
    match done {
        Ok(_) => Redirect::to(&format!("/jobs/{id}")).into_response(),
        Err(e) => error_page(&AppError::from(e)).into_response(),
    }
}

pub async fn retry(
    State(queue): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
    Form(form): Form<Action>,
) -> Response {
    act(&queue, &user, &id, &form.csrf, true).await
}

pub async fn cancel(
    State(queue): State<AppState>,
    user: PageUser,
    Path(id): Path<String>,
    Form(form): Form<Action>,
) -> Response {
    act(&queue, &user, &id, &form.csrf, false).await
}
