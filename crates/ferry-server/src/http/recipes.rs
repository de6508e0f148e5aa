//! `GET /v1/recipes/schema`: the JSON Schema of a `browser.run` recipe, for editors and
//! client-side checks. The server's own check at submit goes further (see `INVALID_RECIPE`).

use serde_json::Value;

use super::Json;
use super::routes::{Access, Routes};

pub fn routes(r: Routes) -> Routes {
    r.get("/v1/recipes/schema", Access::Read, schema, |op| {
        op.id("getRecipeSchema")
            .summary("The recipe schema")
            .description("The JSON Schema of a `browser.run` job's payload.")
    })
}

async fn schema() -> Json<Value> {
    Json(ferry_core::recipe::schema())
}
