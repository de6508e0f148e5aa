//! `GET /v1/recipes/schema`: the JSON Schema of a `browser.run` recipe, for editors and
//! client-side checks. The server's own check at submit goes further (see `INVALID_RECIPE`).

use axum::{Router, routing::get};
use serde_json::Value;

use super::{AppState, Json};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/recipes/schema", get(schema))
}

async fn schema() -> Json<Value> {
    Json(ferry_core::recipe::schema())
}
