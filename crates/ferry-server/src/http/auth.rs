//! Bearer-token checks: the client API and the worker API each have their own token,
//! compared in constant time. A request that passes carries its [`Principal`] on.

use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::Response,
};
use ferry_core::{ErrorCode, Secret};
use subtle::ConstantTimeEq;

use super::{ApiError, Principal};

/// A token and whom it stands for.
#[derive(Debug, Clone)]
pub struct Token {
    pub secret: Secret,
    pub principal: Principal,
}

fn bearer(req: &Request) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Middleware: lets the request through only with `Authorization: Bearer <token>`, as the
/// token's principal.
pub async fn require(
    State(token): State<Token>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let ok = bearer(&req)
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.secret.expose().as_bytes())));
    if !ok {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "missing or wrong token: send Authorization: Bearer <token>",
        ));
    }
    req.extensions_mut().insert(token.principal);
    Ok(next.run(req).await)
}
