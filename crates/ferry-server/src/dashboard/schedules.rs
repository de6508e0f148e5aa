//! The schedules page: every cron schedule of the tenant with its kind, expression and
//! time zone, the next and last ticks, and whether it is paused; editors and admins pause
//! and resume them (the same service, audited, as `POST /v1/schedules/{name}/pause`) and
//! run one now (its job submitted as theirs, `POST /v1/schedules/{name}/run`, and opened).

use axum::{
    Form,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use maud::html;
use serde::Deserialize;

use super::jobs::{may_change, time};
use super::layout::{error_page, page};
use super::session::PageUser;
use crate::http::AppState;

pub async fn list(State(queue): State<AppState>, user: PageUser) -> Response {
    let schedules = match queue.schedules().list(&user.principal).await {
        Ok(schedules) => schedules,
        Err(e) => return error_page(&e).into_response(),
    };
    page(
        "Schedules",
        Some(&user),
        html! {
            h1 { "Schedules" }
            p { "Cron schedules: each tick submits one job." }
            @if schedules.is_empty() {
                p.empty { "No schedules. Create one with "
                    code { "ferry schedule add" } " or " code { "POST /v1/schedules" } "." }
            } @else {
                table.jobs.schedules {
                    thead { tr {
                        th { "Name" } th { "Kind" } th { "Cron" } th { "Next run" }
                        th { "Last run" } th { "Time zone" } th { "Status" } th {}
                    } }
                    tbody {
                        @for s in &schedules {
                            @let link = form_urlencoded::Serializer::new(String::new())
                                .append_pair("kind", &s.job.kind)
                                .finish();
                            tr {
                                td { code { (s.name) } }
                                td { a href={ "/jobs?" (link) } { (s.job.kind) } }
                                td { code { (s.cron) } }
                                td { @if s.paused { "—" } @else { (time(s.next_at)) } }
                                td { (s.last_at.map(time).unwrap_or_else(|| "never".to_owned())) }
                                td { (s.timezone) }
                                td { @if s.paused { span.state.cancelled { "paused" } } @else { span.state.completed { "active" } } }
                                td {
                                    @if may_change(&user) {
                                        form.inline method="post" action={ "/schedules/" (s.name) "/" (if s.paused { "resume" } else { "pause" }) } {
                                            input type="hidden" name="csrf" value=(user.csrf);
                                            button type="submit" { @if s.paused { "Resume" } @else { "Pause" } }
                                        }
                                        " "
                                        form.inline method="post" action={ "/schedules/" (s.name) "/run" } {
                                            input type="hidden" name="csrf" value=(user.csrf);
                                            button type="submit" title="Submit its job now; the ticks go on" { "Run now" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct Action {
    #[serde(default)]
    csrf: String,
}

pub async fn pause(
    State(queue): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    Form(form): Form<Action>,
) -> Response {
    set_paused(&queue, &user, &name, &form.csrf, true).await
}

pub async fn resume(
    State(queue): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    Form(form): Form<Action>,
) -> Response {
    set_paused(&queue, &user, &name, &form.csrf, false).await
}

/// Submits the schedule's job now and opens it.
pub async fn run(
    State(queue): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    Form(form): Form<Action>,
) -> Response {
    if let Some(refused) = user.refusal(&queue, &form.csrf, "run schedules") {
        return refused;
    }
    match queue.schedules().run_now(&user.principal, &name).await {
        Ok(job) => Redirect::to(&format!("/jobs/{}", job.id)).into_response(),
        Err(e) => error_page(&e).into_response(),
    }
}

async fn set_paused(
    queue: &AppState,
    user: &PageUser,
    name: &str,
    csrf: &str,
    paused: bool,
) -> Response {
    if let Some(refused) = user.refusal(queue, csrf, "change schedules") {
        return refused;
    }
    match queue
        .schedules()
        .set_paused(&user.principal, name, paused)
        .await
    {
        Ok(_) => Redirect::to("/schedules").into_response(),
        Err(e) => error_page(&e).into_response(),
    }
}
