//! The datasets pages: every dataset of the tenant (its key, rows, gone rows, last run),
//! and one dataset's rows (the first page), its last runs with what each found new,
//! changed, unchanged and gone, and links to download it as CSV, JSON Lines or JSON (the
//! API's export route, which the session cookie opens).

use axum::{
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use maud::html;

use super::jobs::time;
use super::layout::{error_page, page};
use super::session::PageUser;
use crate::http::AppState;

/// Rows shown on a dataset's page (the export has all of them).
const ROWS_SHOWN: u32 = 50;
/// Runs shown on a dataset's page.
const RUNS_SHOWN: u32 = 20;

pub async fn list(State(queue): State<AppState>, user: PageUser) -> Response {
    let datasets = match queue.datasets().list(&user.principal).await {
        Ok(datasets) => datasets,
        Err(e) => return error_page(&e).into_response(),
    };
    page(
        "Datasets",
        Some(&user),
        html! {
            h1 { "Datasets" }
            p { "Rows collected by jobs with an " code { "output" } ", kept by key with what changed." }
            @if datasets.is_empty() {
                p.empty { "No datasets. A job with " code { "\"output\": {\"dataset\": …, \"key\": …}" } " makes one." }
            } @else {
                table.jobs.datasets {
                    thead { tr {
                        th { "Name" } th { "Rows" } th { "Key" } th { "Gone" }
                        th { "Last run" } th { "Updated" }
                    } }
                    tbody {
                        @for d in &datasets {
                            tr {
                                td { a href={ "/datasets/" (d.name) } { (d.name) } }
                                td { (d.items) }
                                td { code { (d.key) } }
                                td { (d.gone) }
                                td { @match &d.last_run {
                                    Some(run) => { "+" (run.new) " ~" (run.changed) " −" (run.gone) }
                                    None => { "—" }
                                } }
                                td { (time(d.updated_at)) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

pub async fn show(
    State(queue): State<AppState>,
    user: PageUser,
    Path(name): Path<String>,
) -> Response {
    let datasets = queue.datasets();
    let info = match datasets.get(&user.principal, &name).await {
        Ok(info) => info,
        Err(e) => return error_page(&e).into_response(),
    };
    let rows = match datasets
        .items(&user.principal, &name, 0, ROWS_SHOWN, false)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return error_page(&e).into_response(),
    };
    let runs = match datasets.runs(&user.principal, &name, RUNS_SHOWN).await {
        Ok(runs) => runs,
        Err(e) => return error_page(&e).into_response(),
    };
    let export = |format: &str| format!("/v1/datasets/{}/export?format={format}", info.name);
    page(
        &info.name,
        Some(&user),
        html! {
            p { a href="/datasets" { "← Datasets" } }
            h1 { (info.name) }
            p {
                (info.items) " rows by " code { (info.key) } ", " (info.gone) " gone. Download: "
                a href=(export("csv")) { "CSV" } " · "
                a href=(export("jsonl")) { "JSON Lines" } " · "
                a href=(export("json")) { "JSON" }
            }
            h2 { "Rows" }
            @if rows.is_empty() {
                p.empty { "No rows yet." }
            } @else {
                table.jobs.rows {
                    thead { tr {
                        th { "Key" }
                        @for field in &info.fields { th { (field) } }
                        th { "Changed" }
                    } }
                    tbody {
                        @for row in &rows {
                            tr {
                                td { code { (row.key) } }
                                @for field in &info.fields {
                                    td { (cell(row.data.get(field))) }
                                }
                                td { (time(row.changed_at)) }
                            }
                        }
                    }
                }
                @if info.items > rows.len() as u64 {
                    p { "The first " (rows.len()) " rows; download the dataset for all of them." }
                }
            }
            h2 { "Runs" }
            @if runs.is_empty() {
                p.empty { "No runs yet." }
            } @else {
                table.jobs.runs {
                    thead { tr {
                        th { "When" } th { "Job" } th { "Mode" } th { "New" } th { "Changed" }
                        th { "Unchanged" } th { "Gone" }
                    } }
                    tbody {
                        @for run in &runs {
                            tr {
                                td { (time(run.at)) }
                                td { a href={ "/jobs/" (run.job_id) } { code { (run.job_id) } } }
                                td { (format!("{:?}", run.mode).to_lowercase()) }
                                td { (run.new) } td { (run.changed) } td { (run.unchanged) } td { (run.gone) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

/// A row's value as text: strings as they are, anything else as JSON.
pub(super) fn cell(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
