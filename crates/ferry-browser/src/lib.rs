//! The only crate that speaks the DevTools protocol. [`Chromium`] launches Debian's
//! Chromium (never a downloaded one) with a fresh profile, and runs
//! [`Recipe`](ferry_core::recipe::Recipe)s, each in
//! its own browser context so cookies and storage never leak between jobs.
//! [`BrowserRun`] is the `browser.run` handler for the worker runtime.
//!
//! Every CDP call is bounded by a timeout; events the protocol crate cannot decode (it is
//! older than this Chromium) are logged and skipped, never fatal.
//!
//! Modules: `error` (what can go wrong, as job error codes), `chromium` (the process, its
//! contexts, recycling), `host` (what a run reports to), `run` (the steps), `lists` (the
//! steps that walk a list: `paginate`, load more, `infinite_scroll`), `settle` (when a
//! page is ready to read), `waits` (the one polling loop), `extract`, `network`,
//! `session`, `handler` (`browser.run`), `baseline` (the thinnest driver, for the bench).

pub mod baseline;
mod chromium;
mod dom;
mod error;
mod extract;
mod find;
mod follow;
mod handler;
mod host;
mod lists;
mod metrics;
mod network;
mod run;
mod session;
mod settle;
mod waits;

use std::time::Duration;

pub use chromium::{Chromium, ChromiumConfig};
pub use error::BrowserError;
pub use extract::clean_rows;
pub use handler::{BrowserRun, Recycle, register};
pub use host::{Collect, Host, env_secret};
pub use metrics::BrowserMetrics;

/// Where Debian installs Chromium.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// The longest any single CDP call may take.
const CDP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// How long a failed run may spend capturing its screenshot and HTML (documented in
/// `docs/recipes.md`): an attempt ends within its timeout plus this.
pub const FAILURE_CAPTURE_BUDGET: Duration = Duration::from_secs(2);
