//! The workers page: every worker of the tenant heard from in the last day, whether it is
//! connected, the kinds it claims, its jobs in hand (linked to them), when it was last heard
//! from, its address and version.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use maud::html;

use super::jobs::time;
use super::layout::{error_page, page};
use super::session::PageUser;
use crate::http::AppState;

pub async fn list(State(queue): State<AppState>, user: PageUser) -> Response {
    let workers = match queue.workers(&user.principal).await {
        Ok(workers) => workers,
        Err(e) => return error_page(&e).into_response(),
    };
    let connected = workers.iter().filter(|w| w.connected).count();
    page(
        "Workers",
        Some(&user),
        html! {
            h1 { "Workers" }
            p { (connected) " connected; every worker that claimed in the last day is listed." }
            @if workers.is_empty() {
                p.empty { "No worker has claimed in the last day. Start one with "
                    code { "ferry worker --server URL" } " and a worker token." }
            } @else {
                table.jobs.workers {
                    thead { tr {
                        th { "Worker" } th { "Status" } th { "Kinds" } th { "Jobs in hand" }
                        th { "Last seen" } th { "Address" } th { "Version" }
                    } }
                    tbody {
                        @for w in &workers {
                            tr {
                                td { code { (w.id) } }
                                td { @if w.connected { span.state.completed { "connected" } } @else { span.state.cancelled { "gone" } } }
                                td { @for (i, k) in w.kinds.iter().enumerate() { @if i > 0 { " " } code { (k) } } }
                                td { (w.jobs_in_hand) }
                                td { (time(w.last_seen_at)) }
                                td { (w.address.as_deref().unwrap_or("—")) }
                                td { (w.agent.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}
