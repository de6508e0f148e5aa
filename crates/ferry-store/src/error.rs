//! What store methods answer when they cannot do what was asked.

use ferry_core::JobState;

/// What kind of record a [`StoreError::NotFound`] was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Job,
    Batch,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Job => "job",
            Entity::Batch => "batch",
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A store failure. The first variants are answers about the data (the HTTP layer
/// maps them to 4xx); `Unavailable` and `Database` are about the database itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such record (in the caller's tenant).
    #[error("{0} not found")]
    NotFound(Entity),
    /// The lease token does not belong to the job's running attempt.
    #[error("the lease is no longer valid (job status: {status})")]
    LeaseLost { status: JobState },
    /// The job's state does not allow the operation.
    #[error("cannot {op} a job that is {status}")]
    InvalidState { op: &'static str, status: JobState },
    /// A reported item cannot go where the job's `output` sends it (`index` within the report).
    #[error("items[{index}]: {message}")]
    InvalidItem { index: usize, message: String },
    /// The database cannot be reached or is overloaded; worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database cannot write: its disk is full, it or its directory is read-only, or
    /// the file system failed (SQLite `FULL`, `READONLY`, `IOERR`, `CANTOPEN`; PostgreSQL
    /// `53100`, `58030`). Nothing was applied; worth retrying once space is back.
    #[error("database cannot write: {0}")]
    Storage(#[source] sqlx::Error),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// A stored value did not decode (e.g. bad JSON in a column).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e)
            }
            sqlx::Error::Database(db) if db.message().contains("database is locked") => {
                StoreError::Unavailable(e)
            }
            // PostgreSQL: connection exceptions (08…), the server shutting down or not yet
            // accepting connections (57P…), too many connections (53300), and any FATAL
            // error (the session could not be had, e.g. the database refuses connections).
            sqlx::Error::Database(db) if pg_unavailable(db.as_ref()) => StoreError::Unavailable(e),
            sqlx::Error::Database(db) if cannot_write(db.as_ref()) => StoreError::Storage(e),
            _ => StoreError::Database(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

fn pg_unavailable(db: &dyn sqlx::error::DatabaseError) -> bool {
    use sqlx::postgres::{PgDatabaseError, PgSeverity};
    let by_code = db
        .code()
        .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300");
    let fatal = db
        .try_downcast_ref::<PgDatabaseError>()
        .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic));
    by_code || fatal
}

/// Whether `db` says the database cannot write (see [`StoreError::Storage`]).
fn cannot_write(db: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLite answers extended codes; the primary one is the low byte.
        const READONLY: i64 = 8;
        const IOERR: i64 = 10;
        const FULL: i64 = 13;
        const CANTOPEN: i64 = 14;
        return code
            .parse::<i64>()
            .is_ok_and(|c| matches!(c & 0xff, READONLY | IOERR | FULL | CANTOPEN));
    }
    // PostgreSQL: disk_full, io_error.
    matches!(code.as_ref(), "53100" | "58030")
}
