//! The request context: who is asking ([`Principal`], set by the auth middleware from the
//! request's credentials), on worker routes which lease they act under ([`Leased`]), and on
//! submits the trace the caller is in ([`Traced`]). Handlers take them as extractors;
//! nothing below the handlers chooses a tenant.

use axum::{
    extract::{FromRequest, FromRequestParts, RawPathParams, Request},
    http::{StatusCode, request::Parts},
};
use ferry_core::{
    ErrorCode,
    api::{
        CompleteRequest, FailRequest, HeartbeatRequest, ProgressRequest, SessionLoadRequest,
        SessionSaveRequest,
    },
};
use serde::de::DeserializeOwned;

use super::{ApiError, Json};
pub use crate::app::{Lease, Principal, Role};

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

/// The caller's W3C trace context: its `traceparent` header, when it is a valid one (an
/// invalid one is ignored, as the specification asks: the job starts a trace of its own).
#[derive(Debug, Clone, Default)]
pub struct Traced(pub Option<ferry_core::TraceParent>);

impl<S: Send + Sync> FromRequestParts<S> for Traced {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .and_then(ferry_core::TraceParent::parse),
        ))
    }
}

/// The `{id}` of the route's path as an id of type `T`; a malformed one is a `400`, not a
/// `404`.
pub(super) async fn path_id<T, S>(parts: &mut Parts, state: &S) -> Result<T, ApiError>
where
    T: std::str::FromStr<Err = ferry_core::id::ParseIdError>,
    S: Send + Sync,
{
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    let raw = params
        .iter()
        .find_map(|(key, value)| (key == "id").then_some(value))
        .ok_or_else(|| ApiError::bad_request("this route has no job id"))?;
    raw.parse()
        .map_err(|e: ferry_core::id::ParseIdError| ApiError::bad_request(format!("{raw:?}: {e}")))
}

/// A worker request body that carries the lease of the job it is about.
pub trait LeaseBody {
    fn lease(&self) -> &str;
}

macro_rules! lease_body {
    ($($t:ty),*) => {$(
        impl LeaseBody for $t {
            fn lease(&self) -> &str {
                &self.lease
            }
        }
    )*};
}
lease_body!(
    HeartbeatRequest,
    ProgressRequest,
    CompleteRequest,
    FailRequest,
    SessionLoadRequest,
    SessionSaveRequest,
    ferry_core::vault::WorkerSecretsRequest
);

/// A worker call about one job, under the lease the body names: the job from the path
/// (`{id}`), the lease and the rest of the body. The lease is checked where it is used
/// (in the same statement as the write it fences, or by `Queue::leased`).
#[derive(Debug)]
pub struct Leased<T> {
    pub lease: Lease,
    pub body: T,
}

impl<T: DeserializeOwned + LeaseBody, S: Send + Sync> FromRequest<S> for Leased<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let job = path_id(&mut parts, state).await?;
        let Json(body) = Json::<T>::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Leased {
            lease: Lease {
                job,
                token: body.lease().to_owned(),
            },
            body,
        })
    }
}
