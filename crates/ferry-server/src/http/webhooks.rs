//! Webhooks: `POST/GET /v1/webhooks`, `DELETE /v1/webhooks/{id}`, the delivery log
//! `GET /v1/webhooks/{id}/deliveries` and `POST …/deliveries/{delivery}/replay`.
//! `app::Webhooks` keeps the rules; `services::WebhookSender` makes the deliveries.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use ferry_core::{
    DeliveryId, WebhookId,
    api::{DeliveryList, WebhookInfo, WebhookList, WebhookSpec},
};

use super::routes::{Access, Routes};
use super::{
    ApiError, AppState, Json, PathId, Principal,
    query::{Limit, Query},
};

pub fn routes(r: Routes) -> Routes {
    r.post("/v1/webhooks", Access::Write, create, |op| {
        op.id("createWebhook")
            .summary("Add a webhook")
            .description(
                "Events of the chosen types are POSTed to the URL, signed with the secret \
                 (`Ferry-Signature`), retried with backoff.",
            )
            .response_with::<201, Json<WebhookInfo>, _>(|r| r.description("Added."))
            .with(|op| {
                super::openapi::links(
                    op,
                    201,
                    "id",
                    "$response.body#/id",
                    &["listDeliveries", "deleteWebhook"],
                )
            })
    })
    .get("/v1/webhooks", Access::Read, list, |op| {
        op.id("listWebhooks").summary("Webhooks")
    })
    .delete("/v1/webhooks/{id}", Access::Write, remove, |op| {
        op.id("deleteWebhook")
            .summary("Delete a webhook")
            .response_with::<204, (), _>(|r| r.description("Deleted."))
    })
    .get(
        "/v1/webhooks/{id}/deliveries",
        Access::Read,
        deliveries,
        |op| {
            op.id("listDeliveries")
                .summary("A webhook's deliveries")
                .description("Newest first: each one's event, attempts, last status and next try.")
        },
    )
    .post(
        "/v1/webhooks/{id}/deliveries/{delivery}/replay",
        Access::Write,
        replay,
        |op| {
            op.id("replayDelivery")
                .summary("Deliver again")
                .with(|op| super::openapi::uuid_in_path(op, "delivery", "The delivery's id."))
                .response_with::<202, (), _>(|r| r.description("Queued for delivery."))
        },
    )
}

async fn create(
    State(queue): State<AppState>,
    principal: Principal,
    Json(spec): Json<WebhookSpec>,
) -> Result<(StatusCode, Json<WebhookInfo>), ApiError> {
    let info = queue.webhooks().create(&principal, spec).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<WebhookList>, ApiError> {
    Ok(Json(WebhookList {
        webhooks: queue.webhooks().list(&principal).await?,
    }))
}

async fn remove(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId<WebhookId>,
) -> Result<StatusCode, ApiError> {
    queue.webhooks().delete(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn deliveries(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId<WebhookId>,
    Query(Limit(limit)): Query<Limit<100, 1000>>,
) -> Result<Json<DeliveryList>, ApiError> {
    Ok(Json(DeliveryList {
        deliveries: queue.webhooks().deliveries(&principal, id, limit).await?,
    }))
}

async fn replay(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId<WebhookId>,
    Path((_, delivery)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let delivery: DeliveryId = delivery
        .parse()
        .map_err(|e| ApiError::bad_request(format!("{delivery:?}: {e}")))?;
    queue.webhooks().replay(&principal, id, delivery).await?;
    Ok(StatusCode::ACCEPTED)
}
