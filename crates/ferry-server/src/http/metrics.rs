//! `GET /metrics`: Prometheus' text format, for a scraper holding the metrics token (or,
//! when none is set, the configured API token). Outside the route table: it serves the
//! operator, not a tenant. And the middleware that counts every request by route template.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use ferry_core::ErrorCode;

use super::{ApiError, AppState};

/// The content type of Prometheus' text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub async fn scrape(State(queue): State<AppState>, request: Request) -> Response {
    let config = queue.config();
    let token = config
        .metrics_token
        .as_ref()
        .or(config.configured_tokens.then_some(&config.api_token));
    let Some(token) = token else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "metrics are off: set metrics_token (FERRY_METRICS_TOKEN) to serve them",
        )
        .into_response();
    };
    if !super::auth::bearer(&request).is_some_and(|given| super::auth::same(given, token)) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "send Authorization: Bearer <metrics token>",
        )
        .into_response();
    }
    match queue.metrics_text().await {
        Ok(text) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Middleware: counts the request and times its answer, by method, route template (never
/// the path itself: ids would make every job its own series) and status; and writes the
/// access log line (target `ferry::access`, with the caller the auth gate found).
pub async fn count_requests(
    State(queue): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    queue
        .metrics()
        .http_request(method.as_str(), &route, status, took);
    // The access log: one line per request, off unless asked for (`ferry::access=info`).
    let caller = response.extensions().get::<super::auth::Caller>();
    tracing::info!(
        target: "ferry::access",
        method = %method,
        route = %route,
        status,
        ms = took.as_secs_f64() * 1000.0,
        actor = caller.map_or("-", |c| c.actor.as_str()),
        tenant = caller.map_or("-", |c| c.tenant.as_str()),
        "request"
    );
    response
}
