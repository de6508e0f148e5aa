//! What can go wrong running a recipe, and the job error code each is.

use std::time::Duration;

use crate::CDP_TIMEOUT;

/// What went wrong running a recipe. `code()` is the job error code a user sees.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(
        "cannot start Chromium at {path}: {message} (install Debian's `chromium` package, or set FERRY_CHROMIUM)"
    )]
    Launch { path: String, message: String },
    #[error("step {step} ({action}): nothing matched `{selector}` within {timeout_ms} ms")]
    SelectorTimeout {
        step: usize,
        action: &'static str,
        selector: String,
        timeout_ms: u64,
    },
    #[error("step {step} (select): `{selector}` has no option `{value}`")]
    NoSuchOption {
        step: usize,
        selector: String,
        value: String,
    },
    #[error("step {step} (goto): {url} answered HTTP {status}{}", retry_after.map(|s| format!(" (Retry-After: {s} s)")).unwrap_or_default())]
    HttpStatus {
        step: usize,
        url: String,
        status: u16,
        /// The answer's `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    #[error("step {step} ({action}): {message}")]
    BadTemplate {
        step: usize,
        action: &'static str,
        message: String,
    },
    #[error("step {step} (switch_tab): no tab {index} within {timeout_ms} ms ({open} open)")]
    NoSuchTab {
        step: usize,
        index: i32,
        open: usize,
        timeout_ms: u64,
    },
    /// The server refused or could not serve a session or artifact call.
    #[error("{message}")]
    Host {
        code: String,
        message: String,
        retryable: bool,
    },
    #[error("step {step} (goto): {url} did not load within {timeout_ms} ms")]
    NavigationTimeout {
        step: usize,
        url: String,
        timeout_ms: u64,
    },
    #[error("step {step} (goto): could not load {url}: {message}")]
    Navigation {
        step: usize,
        url: String,
        message: String,
    },
    #[error("step {step} ({action}): {message}")]
    SecretRefused {
        step: usize,
        action: &'static str,
        message: String,
    },
    #[error("step {step} (goto): {url}: {message}")]
    EgressDenied {
        step: usize,
        url: String,
        message: String,
    },
    #[error("step {step} (extract): row {row} has no `{field}`, which is required")]
    ExtractMissing {
        step: usize,
        row: usize,
        field: String,
    },
    #[error(
        "step {step} (extract): `{list}` matched {found} rows, fewer than the {min_rows} expected (set min_rows: 0 if the page may be empty)"
    )]
    ExtractEmpty {
        step: usize,
        list: String,
        found: usize,
        min_rows: u32,
    },
    #[error(
        "step {step} (frame): the frame {frame} is there but its document cannot be reached: a recipe enters same-origin frames only (open a cross-origin frame's URL with goto instead)"
    )]
    FrameUnreachable { step: usize, frame: String },
    #[error("step {step} (follow), at {url}: {error}")]
    Follow {
        step: usize,
        url: String,
        error: Box<BrowserError>,
    },
    #[error("step {step} ({action}): the browser did not answer within {}s", CDP_TIMEOUT.as_secs())]
    Timeout { step: usize, action: &'static str },
    #[error("the browser failed: {0}")]
    Crashed(String),
}

impl BrowserError {
    pub fn code(&self) -> &str {
        match self {
            BrowserError::Launch { .. } | BrowserError::Crashed(_) => "BROWSER_CRASHED",
            BrowserError::SelectorTimeout { .. }
            | BrowserError::NoSuchOption { .. }
            | BrowserError::NoSuchTab { .. } => "SELECTOR_TIMEOUT",
            BrowserError::HttpStatus { .. } => "HTTP_STATUS",
            BrowserError::BadTemplate { .. } => "INVALID_RECIPE",
            BrowserError::Host { code, .. } => code,
            BrowserError::Navigation { .. } => "NAVIGATION_ERROR",
            BrowserError::NavigationTimeout { .. } => "NAVIGATION_TIMEOUT",
            BrowserError::EgressDenied { .. } => "EGRESS_DENIED",
            BrowserError::SecretRefused { .. } => "SECRET_REFUSED",
            BrowserError::ExtractMissing { .. } => "EXTRACT_MISSING",
            BrowserError::ExtractEmpty { .. } => "EXTRACT_EMPTY",
            BrowserError::Timeout { .. } => "TIMEOUT",
            BrowserError::FrameUnreachable { .. } => "FRAME_UNREACHABLE",
            BrowserError::Follow { error, .. } => error.code(),
        }
    }

    /// What failed: a link's step's error for a `follow`, this one otherwise.
    pub fn root(&self) -> &BrowserError {
        match self {
            BrowserError::Follow { error, .. } => error.root(),
            other => other,
        }
    }

    /// Whether the step failed because what it looked for was not there (in time): what
    /// an optional step is skipped for. Crashes, refusals and navigation failures are not.
    pub fn found_nothing(&self) -> bool {
        matches!(
            self,
            BrowserError::SelectorTimeout { .. }
                | BrowserError::ExtractEmpty { .. }
                | BrowserError::ExtractMissing { .. }
                | BrowserError::NoSuchOption { .. }
                | BrowserError::NoSuchTab { .. }
        )
    }

    /// Whether another attempt may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            BrowserError::HttpStatus { status, .. } => matches!(status, 429 | 503),
            BrowserError::Crashed(_)
            | BrowserError::Launch { .. }
            | BrowserError::Timeout { .. }
            | BrowserError::Navigation { .. }
            | BrowserError::NavigationTimeout { .. } => true,
            BrowserError::Host { retryable, .. } => *retryable,
            BrowserError::Follow { error, .. } => error.retryable(),
            BrowserError::SelectorTimeout { .. }
            | BrowserError::NoSuchOption { .. }
            | BrowserError::NoSuchTab { .. }
            | BrowserError::BadTemplate { .. }
            | BrowserError::EgressDenied { .. }
            | BrowserError::SecretRefused { .. }
            | BrowserError::ExtractMissing { .. }
            | BrowserError::ExtractEmpty { .. }
            | BrowserError::FrameUnreachable { .. } => false,
        }
    }

    /// How long to wait before another attempt, when the site said (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BrowserError::Follow { error, .. } => error.retry_after(),
            BrowserError::HttpStatus {
                retry_after: Some(s),
                ..
            } => Some(Duration::from_secs(*s)),
            _ => None,
        }
    }
}

pub(crate) fn crashed(e: impl std::fmt::Display) -> BrowserError {
    BrowserError::Crashed(e.to_string())
}
