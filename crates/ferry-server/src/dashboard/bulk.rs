//! Retrying or cancelling a selection of jobs from the jobs list at once: each through the
//! same service as its own button (so each is checked and recorded alike), then a page that
//! says what happened to each.

use axum::{
    body::Bytes,
    extract::State,
    response::{IntoResponse, Response},
};
use ferry_core::JobId;
use maud::html;

use super::layout::{error_page, page};
use super::session::PageUser;
use crate::{app::AppError, http::AppState};

/// The most jobs one click changes (a page of the list holds 50).
const MAX_SELECTED: usize = 500;

pub async fn act(State(queue): State<AppState>, user: PageUser, body: Bytes) -> Response {
    let mut csrf = String::new();
    let mut action = String::new();
    let mut ids = Vec::new();
    for (key, value) in form_urlencoded::parse(&body) {
        match key.as_ref() {
            "csrf" => csrf = value.into_owned(),
            "action" => action = value.into_owned(),
            "id" => ids.push(value.into_owned()),
            _ => {}
        }
    }
    if let Some(refused) = user.refusal(&queue, &csrf, "change jobs") {
        return refused;
    }
    let retry = match action.as_str() {
        "retry" => true,
        "cancel" => false,
        _ => {
            return error_page(&AppError::field("action", "retry or cancel")).into_response();
        }
    };
    if ids.is_empty() || ids.len() > MAX_SELECTED {
        return error_page(&AppError::field(
            "id",
            format!("select 1 to {MAX_SELECTED} jobs"),
        ))
        .into_response();
    }
    let mut outcomes = Vec::with_capacity(ids.len());
    for text in ids {
        let Ok(id) = text.parse::<JobId>() else {
            outcomes.push((text, Err("not a job id".to_owned())));
            continue;
        };
        let done = if retry {
            queue.retry(&user.principal, id).await
        } else {
            queue.cancel(&user.principal, id).await
        };
        let outcome = match done {
            Ok(job) => Ok(job.status),
            Err(ferry_store::StoreError::InvalidState { op, status }) => {
                Err(format!("cannot {op} a job that is {status}"))
            }
            Err(ferry_store::StoreError::NotFound(_)) => Err("no such job".to_owned()),
            Err(other) => return error_page(&AppError::from(other)).into_response(),
        };
        outcomes.push((id.to_string(), outcome));
    }
    let changed = outcomes.iter().filter(|(_, o)| o.is_ok()).count();
    let verb = if retry { "Retried" } else { "Cancelled" };
    page(
        verb,
        Some(&user),
        html! {
            h1 { (verb) " " (changed) " of " (outcomes.len()) " jobs" }
            table.jobs.outcomes {
                thead { tr { th { "Job" } th { "Now" } } }
                tbody {
                    @for (id, outcome) in &outcomes {
                        tr {
                            td { a href={ "/jobs/" (id) } { code { (id) } } }
                            td { @match outcome {
                                Ok(state) => { span class={ "state " (state.as_str()) } { (state.as_str()) } }
                                Err(why) => { span.error { (why) } }
                            } }
                        }
                    }
                }
            }
            p { a href="/jobs" { "Back to the jobs" } }
        },
    )
    .into_response()
}
