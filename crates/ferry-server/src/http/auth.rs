//! Who is asking: every route but the public ones passes [`gate`], which turns the
//! request's credential into a [`Principal`] and checks the route's [`Access`]. A
//! credential is a bearer token — one of the configured tokens (the API token: admin of
//! the configured tenant; the worker token: a worker of it, every kind), compared in
//! constant time, or an API key / worker token made for a tenant (`app::Keys`) — or, without
//! one, a user's session cookie (`app::Users`), with which every change must also carry the
//! session's CSRF token. Wrong credentials are counted per client address (see
//! `auth_failures`).

use axum::{
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use ferry_core::ErrorCode;
use subtle::ConstantTimeEq;

use super::{ApiError, AppState, ClientAddr, Principal, Role, routes::Access};
use crate::app::AppError;

const NO_CREDENTIALS: &str =
    "this route needs credentials: send Authorization: Bearer <key>, or log in";

/// The header a browser sends a session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A request's credential.
enum Credential {
    Bearer(String),
    Session(String),
}

/// The session token of the request's login cookie, if it has one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == crate::app::SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The principal of a session cookie; a change (`csrf` is `Some`: not GET/HEAD) must
/// carry the session's CSRF token.
async fn session_principal(
    queue: &AppState,
    token: &str,
    csrf: Option<&str>,
) -> Result<Principal, AppError> {
    let users = queue.users();
    let principal = users
        .session(token)
        .await?
        .ok_or(AppError::Unauthorized("unknown session: log in again"))?;
    if csrf.is_some_and(|given| !users.csrf_matches(token, given)) {
        return Err(AppError::Csrf);
    }
    Ok(principal)
}

pub(super) fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

pub(super) fn same(given: &str, token: &ferry_core::Secret) -> bool {
    bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
}

/// The principal `given` stands for.
async fn principal(queue: &AppState, given: &str) -> Result<Principal, AppError> {
    let config = queue.config();
    if config.configured_tokens && same(given, &config.api_token) {
        return Ok(Principal::new(
            config.tenant.clone(),
            Role::Admin,
            "token:api",
        ));
    }
    if config.configured_tokens && same(given, &config.worker_token) {
        return Ok(Principal::new(
            config.tenant.clone(),
            Role::Worker,
            "token:worker",
        ));
    }
    queue
        .keys()
        .authenticate(given)
        .await?
        .ok_or(AppError::Unauthorized(
            "unknown token: send Authorization: Bearer <key>",
        ))
}

/// `429 TOO_MANY_AUTH_FAILURES` when `addr` sent too many wrong credentials lately.
pub fn slowed(queue: &AppState, addr: Option<std::net::IpAddr>) -> Option<ApiError> {
    let secs = queue.auth_failures().blocked(addr)?.as_secs().max(1);
    Some(
        ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyAuthFailures,
            format!("too many wrong credentials from this address; retry in {secs} s"),
        )
        .retry_after(secs),
    )
}

/// Middleware: lets the request through only with credentials whose role the route's
/// access allows, carrying their [`Principal`] on.
pub async fn gate(
    State((queue, access)): State<(AppState, Access)>,
    ClientAddr(addr): ClientAddr,
    mut req: Request,
    next: Next,
) -> Response {
    let credential = match bearer(&req) {
        Some(given) => Credential::Bearer(given.to_owned()),
        None => {
            let Some(token) = session_cookie(req.headers()) else {
                return ApiError::from(AppError::Unauthorized(NO_CREDENTIALS)).into_response();
            };
            Credential::Session(token)
        }
    };
    // A change asked for with a cookie needs the CSRF header ("" when it is missing).
    let csrf = (!matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ))
    .then(|| {
        req.headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    });
    if let Some(slowed) = slowed(&queue, addr) {
        return slowed.into_response();
    }
    let found = match &credential {
        Credential::Bearer(given) => principal(&queue, given).await,
        Credential::Session(token) => session_principal(&queue, token, csrf.as_deref()).await,
    };
    let principal = match found {
        Ok(principal) => principal,
        Err(e) => {
            if matches!(
                e,
                AppError::Unauthorized(_) | AppError::KeyExpired | AppError::KeyRevoked
            ) {
                queue.auth_failures().record(addr);
            }
            return ApiError::from(e).into_response();
        }
    };
    if !access.allows(principal.role) {
        return ApiError::from(AppError::Forbidden(format!(
            "a {} credential may not do this; only {} may",
            principal.role,
            access.who()
        )))
        .into_response();
    }
    let caller = Caller {
        actor: principal.actor.clone(),
        tenant: principal.tenant.to_string(),
    };
    req.extensions_mut().insert(principal);
    let mut response = next.run(req).await;
    // For the access log (`metrics::count_requests`): who asked, never a secret.
    response.extensions_mut().insert(caller);
    response
}

/// Who a request came from, as the access log names them: the principal's actor
/// (`key:<prefix>`, `user:<name>`, `token:api` …) and tenant.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: String,
    pub tenant: String,
}
