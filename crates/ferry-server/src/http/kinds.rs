//! Pausing and resuming kinds: `POST /v1/kinds/{pattern}/pause|resume`, and
//! `GET /v1/kinds/paused`. A paused pattern's jobs are not claimed; running ones finish.

use axum::extract::{Path, State};
use ferry_core::{KindPattern, api::PausedKinds};

use super::routes::{Access, Routes};
use super::{ApiError, AppState, Json, Principal};

pub fn routes(r: Routes) -> Routes {
    r.get("/v1/kinds/paused", Access::Read, paused, |op| {
        op.id("listPausedKinds").summary("Paused kinds")
    })
    .post("/v1/kinds/{pattern}/pause", Access::Write, pause, |op| {
        op.id("pauseKind").summary("Pause a kind").description(
            "No job of a kind the pattern (`reviews.sync`, `reviews.*`) covers starts until \
             it is resumed; running ones go on.",
        )
    })
    .post("/v1/kinds/{pattern}/resume", Access::Write, resume, |op| {
        op.id("resumeKind").summary("Resume a kind")
    })
}

fn pattern(raw: &str) -> Result<KindPattern, ApiError> {
    raw.parse()
        .map_err(|e: ferry_core::kind::KindError| ApiError::field("pattern", e.to_string()))
}

async fn paused(
    State(queue): State<AppState>,
    principal: Principal,
) -> Result<Json<PausedKinds>, ApiError> {
    Ok(Json(PausedKinds {
        paused: queue.paused(&principal.tenant).await?,
    }))
}

async fn pause(
    State(queue): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Json<PausedKinds>, ApiError> {
    let paused = queue.pause(&principal, &pattern(&raw)?).await?;
    Ok(Json(PausedKinds { paused }))
}

async fn resume(
    State(queue): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Json<PausedKinds>, ApiError> {
    let paused = queue.resume(&principal, &pattern(&raw)?).await?;
    Ok(Json(PausedKinds { paused }))
}
