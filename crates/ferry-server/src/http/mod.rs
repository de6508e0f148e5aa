//! The HTTP API. Each resource module declares its routes with the access each needs
//! ([`routes`]); [`app`] builds the router from them, every route behind the auth gate,
//! with body limits and JSON errors for everything (unknown routes included).

mod artifacts;
mod audit;
mod auth;
mod batches;
mod context;
mod datasets;
mod error;
mod events;
mod health;
mod jobs;
mod keys;
mod kinds;
mod metrics;
mod observe;
mod openapi;
mod query;
mod recipes;
mod routes;
mod schedules;
mod sessions;
mod tenant;
mod users;
mod vault;
mod webhooks;
mod worker;

use std::sync::Arc;

use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRequestParts},
    http::{StatusCode, request::Parts},
    middleware,
    response::IntoResponse,
};
use ferry_core::{ErrorCode, JobId};
use tower_http::trace::TraceLayer;

pub use artifacts::LEASE_HEADER;
pub use auth::session_cookie;
pub use context::{Leased, Principal, Role, Traced};
pub use error::{ApiError, Json};
use routes::Routes;
pub use routes::{Access, RouteSpec};

use crate::Queue;

pub type AppState = Arc<Queue>;

/// Every route of the API with its access, in the order declared.
fn routes(max_artifact_bytes: usize) -> Routes {
    let r = health::routes(Routes::default());
    let r = openapi::routes(r);
    let r = jobs::routes(r);
    let r = kinds::routes(r);
    let r = batches::routes(r);
    let r = sessions::routes(r);
    let r = vault::routes(r);
    let r = artifacts::routes(r, max_artifact_bytes);
    let r = recipes::routes(r);
    let r = events::routes(r);
    let r = webhooks::routes(r);
    let r = schedules::routes(r);
    let r = datasets::routes(r);
    let r = keys::routes(r);
    let r = audit::routes(r);
    let r = tenant::routes(r);
    let r = users::routes(r);
    let r = observe::routes(r);
    worker::routes(r)
}

/// The API's OpenAPI 3.1 document, as `GET /v1/openapi.json` serves it (or why it could
/// not be made).
pub fn api_document() -> Result<&'static str, &'static str> {
    openapi::document_text()
}

/// The document, and what its generator reported (for the tests).
pub fn api_document_problems() -> Vec<String> {
    openapi::build_document().1
}

/// The route table: what the router serves, with the access each route needs.
pub fn route_table() -> Vec<RouteSpec> {
    let specs = routes(0).specs();
    // Declaring the routes described them in this thread's generator: drop that.
    aide::generate::reset_context();
    specs
}

/// The whole API as one router; the test seam.
pub fn app(queue: AppState) -> Router {
    let config = queue.config().clone();
    routes(config.max_artifact_bytes)
        .into_router(&queue)
        .merge(crate::dashboard::router())
        .route("/metrics", axum::routing::get(metrics::scrape))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such route")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn(refuse_nul_in_uri))
        .layer(middleware::from_fn_with_state(
            queue.clone(),
            ring_after_writes,
        ))
        .layer(middleware::from_fn_with_state(
            queue.clone(),
            metrics::count_requests,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(queue)
}

/// A request that changed something (committed before it is answered) may have written
/// events: wake the event streams here and on the other instances. Heartbeats and session
/// loads, the frequent writes that record no event, do not.
async fn ring_after_writes(
    axum::extract::State(queue): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path();
    let writes = !matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    ) && !path.ends_with("/heartbeat")
        && !path.ends_with("/session/load");
    let response = next.run(request).await;
    if writes && response.status().is_success() {
        queue.ring_events();
    }
    response
}

/// A path or query with U+0000 (`%00`) is refused before any route sees it, as
/// [`Json`] refuses it in a body: PostgreSQL cannot store or compare such text.
async fn refuse_nul_in_uri(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    match error::nul_in_uri(request.uri()) {
        Some(field) => ApiError::validation(vec![field]).into_response(),
        None => next.run(request).await,
    }
}

/// The address a request came from (`None` when the router is served without one, e.g.
/// in-process tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// The id (`{id}`) from the path, a job's unless said otherwise; a malformed one is a
/// `400`, not a `404`.
#[derive(Debug, Clone, Copy)]
pub struct PathId<T = JobId>(pub T);

impl<T, S> FromRequestParts<S> for PathId<T>
where
    T: std::str::FromStr<Err = ferry_core::id::ParseIdError> + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        context::path_id(parts, state).await.map(PathId)
    }
}
