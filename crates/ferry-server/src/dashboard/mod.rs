//! The dashboard: server-rendered HTML pages at `/` for the users of a tenant (issue #16).
//! Pages read and act through the same application services as the API, as the logged-in
//! user's [`Principal`](crate::app::Principal), so roles and tenants hold here exactly as
//! there. No JavaScript is needed: forms post back and redirect (each with the session's
//! CSRF token); a small script (`ferry.js`) only redraws a live page when its event
//! stream reports a change, and checks a recipe in the builder as it is typed.
//! Everything is served by Ferry itself.
//!
//! `session.rs` turns the login cookie into the page's user (or sends the browser to the
//! login page), `layout.rs` is the page shell, `login.rs`, `overview.rs`, `jobs.rs` (with `bulk.rs`, and `attempts.rs` for a job's history and children), `dead.rs`, `workers.rs`, `batches.rs`, `schedules.rs`,
//! `recipes.rs` (the recipe builder), `datasets.rs`, `webhooks.rs`, `sessions.rs` and `security.rs` (egress and secrets) the
//! pages.

mod attempts;
mod batches;
mod bulk;
mod datasets;
mod dead;
mod jobs;
mod layout;
mod login;
mod overview;
mod recipes;
mod schedules;
mod security;
mod session;
mod sessions;
mod steps;
mod webhooks;
mod workers;

use axum::{
    Router,
    http::header,
    response::{IntoResponse, Redirect},
    routing::{get, post},
};

use crate::http::AppState;

/// The dashboard's routes (merged into the server's router).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/overview") }))
        .route("/overview", get(overview::show))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/jobs", get(jobs::list))
        .route("/jobs/bulk", post(bulk::act))
        .route("/jobs/{id}", get(jobs::detail))
        .route("/jobs/{id}/retry", post(jobs::retry))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/dead", get(dead::groups))
        .route("/dead/retry", post(dead::retry))
        .route("/workers", get(workers::list))
        .route("/batches", get(batches::list))
        .route("/batches/{id}", get(batches::show))
        .route("/batches/{id}/cancel", post(batches::cancel))
        .route("/schedules", get(schedules::list))
        .route("/schedules/{name}/pause", post(schedules::pause))
        .route("/schedules/{name}/resume", post(schedules::resume))
        .route("/schedules/{name}/run", post(schedules::run))
        .route("/recipes", get(recipes::show).post(recipes::act))
        .route("/recipes/check", post(recipes::check_live))
        .route("/datasets", get(datasets::list))
        .route("/datasets/{name}", get(datasets::show))
        .route("/webhooks", get(webhooks::list))
        .route("/webhooks/{id}", get(webhooks::show))
        .route(
            "/webhooks/{id}/deliveries/{delivery}/replay",
            post(webhooks::replay),
        )
        .route("/sessions", get(sessions::list))
        .route("/sessions/{name}/delete", post(sessions::delete))
        .route("/egress", get(security::egress).post(security::save_egress))
        .route(
            "/secrets",
            get(security::secrets).post(security::save_secret),
        )
        .route("/secrets/{name}/delete", post(security::delete_secret))
        .route("/assets/ferry.css", get(stylesheet))
        .route("/assets/ferry.js", get(script))
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("ferry.js"),
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("ferry.css"),
    )
}
