//! What an application service answers when it cannot do what was asked. Each variant is
//! one outcome a client can act on; the HTTP layer maps it to a status and a stable code.

use ferry_core::FieldError;
use ferry_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The named resource does not exist in the principal's tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the resource's state or a limit (a name taken, too many).
    #[error("{0}")]
    Conflict(String),
    /// Named fields are not acceptable (`jobs[i].…` in a batch).
    #[error("{}", fields_text(.0))]
    Invalid(Vec<FieldError>),
    /// The lease a worker gave no longer holds the job.
    #[error("this lease no longer holds the job; stop working on it")]
    LeaseLost,
    /// A worker asked for a session its job's recipe does not name.
    #[error("{0}")]
    SessionNotNamed(String),
    /// The server was started without an artifact store.
    #[error("this server keeps no artifacts (start it with a data dir)")]
    ArtifactsDisabled,
    /// The artifact store failed (logged; the client is told to retry).
    #[error("the artifact store is unavailable: {0}")]
    ArtifactStore(#[source] object_store::Error),
    /// Stored data that cannot be read back (logged with its detail; a 500).
    #[error("{0}")]
    Internal(String),
    /// No credentials, or ones that are not a key or token of this server.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The key was right but has expired.
    #[error("this key expired; make a new one")]
    KeyExpired,
    /// The key was right but has been revoked.
    #[error("this key was revoked")]
    KeyRevoked,
    /// The credential's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The credential is limited to kinds that do not include this one.
    #[error("{0}")]
    KindNotAllowed(String),
    /// A change asked for with a session cookie without the session's CSRF token.
    #[error(
        "a change asked for with the session cookie needs the X-CSRF-Token header the login answered"
    )]
    Csrf,
    /// The tenant is at a quota; the client may try again after `retry_after`.
    #[error("{message}")]
    QuotaExceeded {
        message: String,
        retry_after: std::time::Duration,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppError {
    /// One invalid field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// Each bad field and why, in one line (`password: 10 characters at least`).
fn fields_text(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}
