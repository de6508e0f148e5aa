//! `GET /healthz`: up, and the database answers.

use axum::{Router, extract::State, routing::get};
use ferry_core::api::Health;

use super::{ApiError, AppState, Json};

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(health))
}

async fn health(State(queue): State<AppState>) -> Result<Json<Health>, ApiError> {
    queue.ping().await?;
    Ok(Json(Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }))
}
