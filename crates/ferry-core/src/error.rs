//! Stable, machine-readable error codes of the public API, and the per-field detail
//! attached to validation errors.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every error the HTTP API answers carries one of these codes. They are part of the
/// public contract: add new ones, never rename or reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The body is not JSON, or not of the expected shape.
    BadRequest,
    /// The body parsed but a field's value is not acceptable; see `fields`.
    ValidationFailed,
    /// Missing or wrong bearer token.
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// The job is in a state that does not allow the operation.
    InvalidState,
    /// The caller's lease on the job is no longer valid; its report was not applied.
    LeaseLost,
    /// The server cannot serve now (e.g. the database is away); retry later.
    Unavailable,
    Internal,
    /// A `browser.run` job's recipe is not valid; `fields` names each problem by path.
    InvalidRecipe,
    /// This server keeps no artifacts (no artifact store is configured).
    ArtifactsDisabled,
    /// The job does not name this session (its recipe, or its payload's `use_session` /
    /// `save_session`), so its worker may not read or write it.
    SessionNotNamed,
    /// The database cannot write (disk full, read-only or an I/O error); nothing was
    /// applied. Retry later.
    StorageUnavailable,
    /// The client (or the server) holds as many event streams open as it may; close one,
    /// or retry after `Retry-After`.
    TooManyStreams,
    /// The credential is valid but its role may not do this (a viewer key that writes, a
    /// worker token on the client API, an editor managing keys).
    Forbidden,
    /// The key or worker token is limited to kind patterns that do not include this kind.
    KindNotAllowed,
    /// The key or worker token has expired; make a new one.
    KeyExpired,
    /// The key or worker token was revoked.
    KeyRevoked,
    /// This client address sent too many wrong credentials; retry after `Retry-After`.
    TooManyAuthFailures,
    /// The tenant is at one of its quotas (submissions per second, unfinished jobs); retry
    /// after `Retry-After`.
    QuotaExceeded,
    /// A change asked for with a session cookie lacks the session's `X-CSRF-Token`.
    CsrfFailed,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::ValidationFailed => "VALIDATION_FAILED",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::InvalidState => "INVALID_STATE",
            ErrorCode::LeaseLost => "LEASE_LOST",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::InvalidRecipe => "INVALID_RECIPE",
            ErrorCode::ArtifactsDisabled => "ARTIFACTS_DISABLED",
            ErrorCode::SessionNotNamed => "SESSION_NOT_NAMED",
            ErrorCode::StorageUnavailable => "STORAGE_UNAVAILABLE",
            ErrorCode::TooManyStreams => "TOO_MANY_STREAMS",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::KindNotAllowed => "KIND_NOT_ALLOWED",
            ErrorCode::KeyExpired => "KEY_EXPIRED",
            ErrorCode::KeyRevoked => "KEY_REVOKED",
            ErrorCode::TooManyAuthFailures => "TOO_MANY_AUTH_FAILURES",
            ErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorCode::CsrfFailed => "CSRF_FAILED",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one field of a request, by its JSON path (`jobs[2].kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    /// Set when the problem has its own error code (a recipe's: `INVALID_RECIPE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            code: None,
        }
    }

    pub fn with_code(mut self, code: ErrorCode) -> Self {
        self.code = Some(code);
        self
    }
}

/// Well-known codes of a job's own `error` (what a handler or the server recorded
/// when an attempt failed). Handlers may use their own codes too.
pub mod job_codes {
    /// The lease ran out: the worker died or lost its connection.
    pub const LEASE_EXPIRED: &str = "LEASE_EXPIRED";
    /// The attempt ran past its `timeout_ms`.
    pub const TIMEOUT: &str = "TIMEOUT";
    /// The worker shut down before the job finished.
    pub const WORKER_SHUTDOWN: &str = "WORKER_SHUTDOWN";
    /// The job was cancelled while it ran.
    pub const CANCELLED: &str = "CANCELLED";
    /// No handler on the worker for this kind.
    pub const NO_HANDLER: &str = "NO_HANDLER";
    /// The payload did not fit the handler.
    pub const INVALID_PAYLOAD: &str = "INVALID_PAYLOAD";
    /// A handler failed without a more specific code.
    pub const HANDLER_ERROR: &str = "HANDLER_ERROR";
    /// A handler panicked.
    pub const HANDLER_PANIC: &str = "HANDLER_PANIC";
    /// An upstream answered with an HTTP error status.
    pub const HTTP_STATUS: &str = "HTTP_STATUS";
    /// A network error talking to an upstream.
    pub const NETWORK_ERROR: &str = "NETWORK_ERROR";
    /// The server refused items the attempt reported (e.g. without its dataset's key).
    pub const ITEMS_REFUSED: &str = "ITEMS_REFUSED";
    /// Reported items could not reach the server (it stayed unreachable or kept answering
    /// errors): the attempt fails, retryably, instead of completing without them.
    pub const ITEMS_UNDELIVERED: &str = "ITEMS_UNDELIVERED";
    /// The server refused the attempt's result (it cannot store it: too large, U+0000):
    /// the job fails instead of running again and again.
    pub const RESULT_REFUSED: &str = "RESULT_REFUSED";
    /// A snapshot run would have marked more of its dataset's rows gone than
    /// `output.max_gone` allows: the dataset is unchanged, the items stay on the job.
    pub const DATASET_GONE_LIMIT: &str = "DATASET_GONE_LIMIT";
    /// The job's egress policy refused a connection (an internal address, a denied
    /// domain): not retried.
    pub const EGRESS_DENIED: &str = "EGRESS_DENIED";
}
