//! Who is asking: every route but the public ones passes [`gate`], which turns the
//! request's bearer credential into a [`Principal`] and checks the route's [`Access`].
//! A credential is one of the configured tokens (the API token: admin of the configured
//! tenant; the worker token: a worker of it, every kind), compared in constant time, or an
//! API key / worker token made for a tenant (`app::Keys`). Wrong credentials are counted
//! per client address (see `auth_failures`).

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

const NO_CREDENTIALS: &str = "this route needs credentials: send Authorization: Bearer <key>";

fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn same(given: &str, token: &ferry_core::Secret) -> bool {
    bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
}

/// The principal `given` stands for.
async fn principal(queue: &AppState, given: &str) -> Result<Principal, AppError> {
    let config = queue.config();
    if same(given, &config.api_token) {
        return Ok(Principal::new(
            config.tenant.clone(),
            Role::Admin,
            "token:api",
        ));
    }
    if same(given, &config.worker_token) {
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

/// Middleware: lets the request through only with credentials whose role the route's
/// access allows, carrying their [`Principal`] on.
pub async fn gate(
    State((queue, access)): State<(AppState, Access)>,
    ClientAddr(addr): ClientAddr,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(given) = bearer(&req) else {
        return ApiError::from(AppError::Unauthorized(NO_CREDENTIALS)).into_response();
    };
    if let Some(wait) = queue.auth_failures().blocked(addr) {
        let secs = wait.as_secs().max(1);
        return ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyAuthFailures,
            format!("too many wrong credentials from this address; retry in {secs} s"),
        )
        .retry_after(secs)
        .into_response();
    }
    let principal = match principal(&queue, given).await {
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
    req.extensions_mut().insert(principal);
    next.run(req).await
}
