//! The sessions page: the browser sessions the tenant's recipes saved (`save_session`) —
//! each one's name, size, when it was saved and by which job — never their contents;
//! editors and admins delete one (audited as `session.delete`, as through the API).

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
    let sessions = match queue.sessions().list(&user.principal).await {
        Ok(sessions) => sessions,
        Err(e) => return error_page(&e).into_response(),
    };
    page(
        "Sessions",
        Some(&user),
        html! {
            h1 { "Sessions" }
            p { "Logins and other browser state recipes saved, sealed on the server; their contents are never shown." }
            @if sessions.is_empty() {
                p.empty { "No saved sessions. A recipe's " code { "save_session" } " step saves one." }
            } @else {
                table.jobs.sessions {
                    thead { tr { th { "Name" } th { "Size" } th { "Saved" } th { "By job" } th {} } }
                    tbody {
                        @for s in &sessions {
                            tr {
                                td { code { (s.name) } }
                                td { (kib(s.size_bytes)) }
                                td { (time(s.updated_at)) }
                                td { @match s.saved_by_job {
                                    Some(job) => { a href={ "/jobs/" (job) } { code { (job) } } }
                                    None => { "—" }
                                } }
                                td {
                                    @if may_change(&user) {
                                        form.inline method="post" action={ "/sessions/" (s.name) "/delete" } {
                                            input type="hidden" name="csrf" value=(user.csrf);
                                            button type="submit" { "Delete" }
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

fn kib(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

#[derive(Deserialize)]
pub struct Action {
    #[serde(default)]
    csrf: String,
}

pub async fn delete(
    State(queue): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
    Form(form): Form<Action>,
) -> Response {
    if let Some(refused) = user.refusal(&queue, &form.csrf, "delete sessions") {
        return refused;
    }
    match queue.sessions().delete(&user.principal, &name).await {
        Ok(()) => Redirect::to("/sessions").into_response(),
        Err(e) => error_page(&e).into_response(),
    }
}
