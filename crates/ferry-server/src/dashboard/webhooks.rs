//! The webhooks pages: every webhook of the tenant (where it posts, which events and
//! kinds), and one webhook's last deliveries with their status, attempts and last answer
//! (never its secret); editors and admins replay a dead delivery (audited as
//! `webhook.replay`, as through the API).

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
use crate::app::AppError;
use crate::http::AppState;

/// Deliveries shown on a webhook's page.
const DELIVERIES_SHOWN: u32 = 50;

pub async fn list(State(queue): State<AppState>, user: PageUser) -> Response {
    let hooks = match queue.webhooks().list(&user.principal).await {
        Ok(hooks) => hooks,
        Err(e) => return error_page(&e).into_response(),
    };
    page(
        "Webhooks",
        Some(&user),
        html! {
            h1 { "Webhooks" }
            p { "Signed POSTs of the event record's events to your endpoints." }
            @if hooks.is_empty() {
                p.empty { "No webhooks. Add one with " code { "POST /v1/webhooks" } "." }
            } @else {
                table.jobs.webhooks {
                    thead { tr { th { "URL" } th { "Events" } th { "Kinds" } th { "Created" } } }
                    tbody {
                        @for h in &hooks {
                            tr {
                                td { a href={ "/webhooks/" (h.id) } { (h.url) } }
                                td { (h.events.join(", ")) }
                                td { @if h.kinds.is_empty() { "all" } @else { (h.kinds.join(", ")) } }
                                td { (time(h.created_at)) }
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
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<ferry_core::WebhookId>() else {
        return error_page(&AppError::NotFound("webhook")).into_response();
    };
    let webhooks = queue.webhooks();
    let hook = match webhooks.list(&user.principal).await {
        Ok(hooks) => hooks.into_iter().find(|h| h.id == id),
        Err(e) => return error_page(&e).into_response(),
    };
    let Some(hook) = hook else {
        return error_page(&AppError::NotFound("webhook")).into_response();
    };
    let deliveries = match webhooks
        .deliveries(&user.principal, id, DELIVERIES_SHOWN)
        .await
    {
        Ok(deliveries) => deliveries,
        Err(e) => return error_page(&e).into_response(),
    };
    page(
        "Webhook",
        Some(&user),
        html! {
            p { a href="/webhooks" { "← Webhooks" } }
            h1 { "Webhook" }
            p { code { (hook.url) } " · " (hook.events.join(", ")) }
            h2 { "Deliveries" }
            @if deliveries.is_empty() {
                p.empty { "Nothing delivered yet." }
            } @else {
                table.jobs.deliveries {
                    thead { tr {
                        th { "Created" } th { "Status" } th { "Attempts" } th { "Answer" }
                        th { "Delivered" } th { "Next try" } th {}
                    } }
                    tbody {
                        @for d in &deliveries {
                            tr {
                                td { (time(d.created_at)) }
                                td { span class={ "state " (delivery_class(&d.status)) } { (d.status) } }
                                td { (d.attempts) }
                                td {
                                    @if let Some(status) = d.last_status { "HTTP " (status) " " }
                                    @if let Some(error) = &d.last_error { (error) }
                                }
                                td { (d.delivered_at.map(time).unwrap_or_default()) }
                                td { @if d.status == "pending" { (time(d.next_at)) } }
                                td {
                                    @if d.status == "dead" && may_change(&user) {
                                        form.inline method="post" action={ "/webhooks/" (hook.id) "/deliveries/" (d.id) "/replay" } {
                                            input type="hidden" name="csrf" value=(user.csrf);
                                            button type="submit" { "Replay" }
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

/// A delivery's status in the colours of job states.
fn delivery_class(status: &str) -> &'static str {
    match status {
        "delivered" => "completed",
        "dead" => "failed",
        _ => "pending",
    }
}

#[derive(Deserialize)]
pub struct Action {
    #[serde(default)]
    csrf: String,
}

/// Sends a dead delivery again, then shows the webhook's deliveries.
pub async fn replay(
    State(queue): State<AppState>,
    user: PageUser,
    Path((id, delivery)): Path<(String, String)>,
    Form(form): Form<Action>,
) -> Response {
    if let Some(refused) = user.refusal(&queue, &form.csrf, "replay deliveries") {
        return refused;
    }
    let (Ok(id), Ok(delivery)) = (
        id.parse::<ferry_core::WebhookId>(),
        delivery.parse::<ferry_core::DeliveryId>(),
    ) else {
        return error_page(&AppError::NotFound("delivery")).into_response();
    };
    match queue.webhooks().replay(&user.principal, id, delivery).await {
        Ok(()) => Redirect::to(&format!("/webhooks/{id}")).into_response(),
        Err(e) => error_page(&e).into_response(),
    }
}
