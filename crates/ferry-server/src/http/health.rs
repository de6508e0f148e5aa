//! `GET /healthz`: up, and the database answers.

use axum::extract::State;
use ferry_core::api::Health;

use super::routes::{Access, Routes};
use super::{ApiError, AppState, Json};

pub fn routes(r: Routes) -> Routes {
    r.get("/healthz", Access::Public, health, |op| {
        op.id("health")
            .summary("Health")
            .description("Whether the server is up and its database answers.")
    })
}

async fn health(State(queue): State<AppState>) -> Result<Json<Health>, ApiError> {
    queue.ping().await?;
    Ok(Json(Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }))
}
