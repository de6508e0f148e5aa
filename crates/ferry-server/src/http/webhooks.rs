//! Webhooks: `POST/GET /v1/webhooks`, `DELETE /v1/webhooks/{id}`, the delivery log
//! `GET /v1/webhooks/{id}/deliveries` and `POST …/deliveries/{delivery}/replay`. The secret
//! is sealed at rest and never answered back. Deliveries are made by
//! `services::WebhookSender` from the event record.

use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::StatusCode,
    routing::{delete, get, post},
};
use ferry_core::{
    ErrorCode, FieldError, JobId, KindPattern,
    api::{DeliveryList, WebhookInfo, WebhookList, WebhookSpec},
};
use ferry_store::WebhookRow;

use super::{
    ApiError, AppState, Json, PathId, Principal, events::EVENT_TYPES, jobs::parse_num,
    jobs::query_pairs,
};
use crate::services::webhooks_secret_context;

const MAX_WEBHOOKS: usize = 100;
/// The most kind patterns one webhook filters on (each is a condition when its events
/// are read; thousands made the query too deep to run).
pub const MAX_WEBHOOK_KINDS: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks", post(create).get(list))
        .route("/v1/webhooks/{id}", delete(remove))
        .route("/v1/webhooks/{id}/deliveries", get(deliveries))
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery}/replay",
            post(replay),
        )
}

fn info(row: &WebhookRow) -> WebhookInfo {
    WebhookInfo {
        id: row.id,
        url: row.url.clone(),
        events: row.events.clone(),
        kinds: row.kinds.clone(),
        created_at: row.created_at,
    }
}

fn check(spec: &WebhookSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let url = spec.url.trim();
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok
        || url.len() > 2048
        || url.contains(char::is_whitespace)
        || url.split("://").nth(1).is_none_or(|rest| rest.is_empty())
    {
        errors.push(FieldError::new("url", "an http(s) URL"));
    }
    if spec.events.is_empty() {
        errors.push(FieldError::new(
            "events",
            format!("at least one of {}", EVENT_TYPES.join(", ")),
        ));
    }
    for (i, e) in spec.events.iter().enumerate() {
        if !EVENT_TYPES.contains(&e.as_str()) {
            errors.push(FieldError::new(
                format!("events[{i}]"),
                format!(
                    "{e:?} is not an event type; known: {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    if spec.kinds.len() > MAX_WEBHOOK_KINDS {
        errors.push(FieldError::new(
            "kinds",
            format!("at most {MAX_WEBHOOK_KINDS} kind patterns"),
        ));
    }
    for (i, k) in spec.kinds.iter().enumerate().take(MAX_WEBHOOK_KINDS) {
        if let Err(e) = k.parse::<KindPattern>() {
            errors.push(FieldError::new(format!("kinds[{i}]"), e.to_string()));
        }
    }
    if !(16..=256).contains(&spec.secret.len()) {
        errors.push(FieldError::new("secret", "16 to 256 bytes"));
    }
    errors
}

async fn create(
    State(queue): State<AppState>,
    principal: Principal,
    Json(spec): Json<WebhookSpec>,
) -> Result<(StatusCode, Json<WebhookInfo>), ApiError> {
    let errors = check(&spec);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let store = queue.store();
    if store
        .webhook_list(Some(principal.tenant.as_str()))
        .await?
        .len()
        >= MAX_WEBHOOKS
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidState,
            format!("at most {MAX_WEBHOOKS} webhooks"),
        ));
    }
    let id = JobId::new();
    let row = WebhookRow {
        id,
        tenant_id: principal.tenant.to_string(),
        url: spec.url.trim().to_owned(),
        sealed_secret: queue.config().sealing_key.seal(
            &webhooks_secret_context(&principal.tenant, id),
            spec.secret.as_bytes(),
        ),
        events: spec.events,
        kinds: spec.kinds,
        // Events from now on.
        cursor: store.events_head().await?,
        created_at: queue.now(),
    };
    store.webhook_insert(&row).await?;
    Ok((StatusCode::CREATED, Json(info(&row))))
}

async fn list(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<WebhookList>, ApiError> {
    let rows = queue
        .store()
        .webhook_list(Some(principal.tenant.as_str()))
        .await?;
    Ok(Json(WebhookList {
        webhooks: rows.iter().map(info).collect(),
    }))
}

async fn remove(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    if queue.store().webhook_delete(&principal.tenant, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("webhook"))
    }
}

async fn deliveries(
    State(queue): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> Result<Json<DeliveryList>, ApiError> {
    let mut limit = 100u32;
    for (key, value) in query_pairs(raw, &["limit"])? {
        limit = parse_num(&key, &value, "a whole number")?;
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::field("limit", "a whole number from 1 to 1000"));
        }
    }
    let deliveries = queue
        .store()
        .delivery_list(&principal.tenant, id, limit)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    Ok(Json(DeliveryList { deliveries }))
}

async fn replay(
    State(queue): State<AppState>,
    principal: Principal,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let parse = |raw: &str| {
        raw.parse::<JobId>()
            .map_err(|e| ApiError::bad_request(format!("{raw:?}: {e}")))
    };
    let (id, delivery) = (parse(&id)?, parse(&delivery)?);
    let store = queue.store();
    if store
        .delivery_replay(&principal.tenant, id, delivery, queue.now())
        .await?
    {
        return Ok(StatusCode::ACCEPTED);
    }
    let known = store
        .delivery_list(&principal.tenant, id, 1000)
        .await?
        .is_some_and(|all| all.iter().any(|d| d.id == delivery));
    if known {
        Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::InvalidState,
            "only a dead delivery can be replayed",
        ))
    } else {
        Err(ApiError::not_found("delivery"))
    }
}
