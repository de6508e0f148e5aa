//! The request context: who is asking, and in which tenant. The auth middleware builds a
//! [`Principal`] from the request's credentials (today the two tokens, later API keys and
//! users) and handlers take it as an extractor; nothing below the handlers chooses a
//! tenant.

use axum::{
    extract::FromRequestParts,
    http::{StatusCode, request::Parts},
};
use ferry_core::{ErrorCode, TenantId};

use super::ApiError;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The client API: everything in its tenant (the API token).
    Admin,
    /// The worker protocol: claim, report and finish jobs (the worker token).
    Worker,
}

/// Who is asking, in which tenant.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: TenantId,
    pub role: Role,
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Set by `auth::require` on every authenticated route; a route without it is
        // served to nobody.
        parts.extensions.get::<Principal>().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "this route needs credentials",
            )
        })
    }
}
