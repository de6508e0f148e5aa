//! The dead letters page: failed jobs grouped by kind and error code, each group linked to
//! its jobs, and retried as a whole by editors and admins.

use axum::{
    Form,
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use maud::html;
use serde::Deserialize;

use super::jobs::{may_change, time};
use super::layout::{error_page, page};
use super::session::PageUser;
use crate::http::AppState;

pub async fn groups(State(queue): State<AppState>, user: PageUser) -> Response {
    let groups = match queue.dead_letters().groups(&user.principal).await {
        Ok(groups) => groups,
        Err(e) => return error_page(&e).into_response(),
    };
    page(
        "Dead letters",
        Some(&user),
        html! {
            h1 { "Dead letters" }
            p { "Jobs that failed for good, by kind and error." }
            @if groups.is_empty() {
                p.empty { "No failed jobs." }
            } @else {
                table.jobs.dead {
                    thead { tr { th { "Kind" } th { "Error" } th { "Jobs" } th { "Last failed" } th {} } }
                    tbody {
                        @for g in &groups {
                            @let link = form_urlencoded::Serializer::new(String::new())
                                .append_pair("state", "failed")
                                .append_pair("kind", &g.kind)
                                .finish();
                            tr {
                                td { (g.kind) }
                                td { code { @if g.code.is_empty() { "—" } @else { (g.code) } } }
                                td { a href={ "/jobs?" (link) } { (g.count) } }
                                td { (time(g.last_failed_at)) }
                                td {
                                    @if may_change(&user) {
                                        form.inline method="post" action="/dead/retry" {
                                            input type="hidden" name="csrf" value=(user.csrf);
                                            input type="hidden" name="kind" value=(g.kind);
                                            input type="hidden" name="code" value=(g.code);
                                            button type="submit" name="retry-group" { "Retry all" }
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
pub struct RetryGroup {
    #[serde(default)]
    csrf: String,
    kind: String,
    #[serde(default)]
    code: String,
}

pub async fn retry(
    State(queue): State<AppState>,
    user: PageUser,
    Form(form): Form<RetryGroup>,
) -> Response {
    if let Some(refused) = user.refusal(&queue, &form.csrf, "retry jobs") {
        return refused;
    }
    match queue
        .dead_letters()
        .retry(&user.principal, &form.kind, &form.code)
        .await
    {
        Ok(_) => Redirect::to("/dead").into_response(),
        Err(e) => error_page(&e).into_response(),
    }
}
