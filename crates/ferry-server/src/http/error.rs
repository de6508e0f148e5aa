//! One error type for the whole HTTP layer, answered as
//! `{"error": {"code", "message", "fields"?}}`. 5xx details are logged, never sent.

use axum::{
    body::{Body, Bytes},
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use ferry_core::{
    ErrorCode, FieldError,
    api::{ApiErrorBody, ApiErrorDetail},
};
use ferry_store::StoreError;

use crate::app::AppError;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub fields: Vec<FieldError>,
    /// Seconds for `Retry-After` (a `429`/`503` without it gets the code's default).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            retry_after: None,
        }
    }

    /// The error with `Retry-After: secs` (at least 1).
    pub fn retry_after(self, secs: u64) -> Self {
        Self {
            retry_after: Some(secs.max(1)),
            ..self
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    pub fn validation(fields: Vec<FieldError>) -> Self {
        let message = match fields.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid; see fields", many.len()),
        };
        // Problems that all share their own code (a bad recipe) answer with it.
        let code = match fields.first().and_then(|f| f.code) {
            Some(code) if fields.iter().all(|f| f.code == Some(code)) => code,
            _ => ErrorCode::ValidationFailed,
        };
        Self {
            fields,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
        }
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("{what} not found"),
        )
    }

    pub fn detail(&self) -> ApiErrorDetail {
        ApiErrorDetail {
            code: self.code,
            message: self.message.clone(),
            fields: self.fields.clone(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(entity) => ApiError::not_found(entity.as_str()),
            StoreError::LeaseLost { status } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::LeaseLost,
                format!(
                    "this lease no longer holds the job (it is {status}); the report was not applied — stop working on it"
                ),
            ),
            StoreError::InvalidState { op, status } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::InvalidState,
                format!("cannot {op} a job that is {status}"),
            ),
            StoreError::InvalidItem { index, message } => {
                ApiError::field(&format!("items[{index}]"), message)
            }
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "the database is unavailable; retry shortly",
                )
            }
            StoreError::Storage(source) => {
                tracing::error!(error = %source, "database cannot write");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::StorageUnavailable,
                    "the database cannot write (disk full, read-only or failing); nothing was applied; retry later",
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Internal,
                    "internal error; see the server log",
                )
            }
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound(what) => ApiError::not_found(what),
            AppError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::InvalidState, message)
            }
            AppError::Invalid(fields) => ApiError::validation(fields),
            AppError::LeaseLost => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::LeaseLost,
                "this lease no longer holds the job; stop working on it",
            ),
            AppError::SessionNotNamed(message) => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::SessionNotNamed, message)
            }
            AppError::ArtifactsDisabled => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ArtifactsDisabled,
                "this server keeps no artifacts (start it with a data dir)",
            ),
            AppError::ArtifactStore(e) => {
                tracing::error!(error = %e, "artifact store failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "the artifact store is unavailable; retry shortly",
                )
            }
            AppError::Internal(message) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                message,
            ),
            AppError::Unauthorized(message) => {
                ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
            }
            AppError::KeyExpired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::KeyExpired,
                "this key expired; ask an admin of the tenant for a new one",
            ),
            AppError::KeyRevoked => ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::KeyRevoked,
                "this key was revoked; ask an admin of the tenant for a new one",
            ),
            AppError::Forbidden(message) => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
            }
            AppError::KindNotAllowed(message) => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::KindNotAllowed, message)
            }
            AppError::Csrf => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::CsrfFailed,
                AppError::Csrf.to_string(),
            ),
            AppError::QuotaExceeded {
                message,
                retry_after,
            } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::QuotaExceeded,
                message,
            )
            .retry_after(retry_after.as_secs_f64().ceil() as u64),
            AppError::Store(e) => e.into(),
        }
    }
}

impl From<crate::stream_slots::StreamsFull> for ApiError {
    fn from(e: crate::stream_slots::StreamsFull) -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyStreams,
            format!("{e}; close a stream first (one stream with a filter can follow many jobs)"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = matches!(
            self.status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        );
        let mut response = (
            self.status,
            axum::Json(ApiErrorBody {
                error: self.detail(),
            }),
        )
            .into_response();
        if retry {
            // Space does not come back within a second; a database connection may.
            let after = self.retry_after.unwrap_or(match self.code {
                ErrorCode::StorageUnavailable | ErrorCode::TooManyStreams => 5,
                _ => 1,
            });
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after));
        }
        response
    }
}

/// `axum::Json`, but a body that does not parse is answered with an [`ApiError`], and so is
/// one with U+0000 in any string (see [`nul_fields`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|e| json_rejection(e.into()))?;
        // Deeper than a worker could decode inside a claim's answer: refused here, for
        // every body, so a poison job never gets in.
        if let Some(key) = ferry_core::json::too_deep(&bytes, ferry_core::json::MAX_DEPTH) {
            return Err(ApiError::field(
                if key.is_empty() { "body" } else { key.as_str() },
                format!(
                    "nested deeper than {} levels of objects and arrays",
                    ferry_core::json::MAX_DEPTH
                ),
            ));
        }
        let again = Request::from_parts(parts, Body::from(bytes.clone()));
        let value = match axum::Json::<T>::from_request(again, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        // JSON carries U+0000 only as the escape `\u0000`, so a body without one needs no walk.
        if bytes.windows(6).any(|w| w == br"\u0000") {
            let fields = serde_json::from_slice::<Value>(&bytes)
                .map(|v| nul_fields(&v))
                .unwrap_or_default();
            if !fields.is_empty() {
                return Err(ApiError::validation(fields));
            }
        }
        Ok(Json(value))
    }
}

/// Where `value` holds U+0000, named by JSON path (`jobs[1].payload.text`; a key holding it
/// names its object), at most 20. PostgreSQL cannot store U+0000 in text or `jsonb`, so Ferry
/// takes no string with it on either backend: the one rule for every JSON body, client's and
/// worker's alike (the URL's counterpart is [`nul_in_uri`]).
pub fn nul_fields(value: &Value) -> Vec<FieldError> {
    fn walk(value: &Value, path: &mut String, out: &mut Vec<FieldError>) {
        if out.len() >= 20 {
            return;
        }
        match value {
            Value::String(s) if s.contains('\0') => out.push(FieldError::new(
                path.as_str(),
                "contains U+0000 (NUL), which Ferry does not store",
            )),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path, out);
                    path.truncate(len);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    if key.contains('\0') && out.len() < 20 {
                        out.push(FieldError::new(
                            path.as_str(),
                            "a key contains U+0000 (NUL), which Ferry does not store",
                        ));
                        continue;
                    }
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    walk(item, path, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut String::new(), &mut out);
    out
}

/// The field of a URL with U+0000 (`%00`): the query parameter that holds it, or `path`.
pub fn nul_in_uri(uri: &axum::http::Uri) -> Option<FieldError> {
    const WHY: &str = "contains U+0000 (%00), which Ferry does not store";
    if uri.path().contains("%00") {
        return Some(FieldError::new("path", WHY));
    }
    let query = uri.query()?;
    query
        .split('&')
        .find(|pair| pair.contains("%00"))
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            FieldError::new(if name.contains("%00") { "query" } else { name }, WHY)
        })
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    match rejection {
        JsonRejection::JsonDataError(e) => {
            ApiError::bad_request(format!("the body does not fit: {}", e.body_text()))
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(format!("the body is not valid JSON: {}", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json",
        ),
        other if status == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            ErrorCode::PayloadTooLarge,
            format!("the body is too large: {}", other.body_text()),
        ),
        other => ApiError::bad_request(other.body_text()),
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
