//! What a run reports to and asks of whoever runs it ([`Host`]), and [`Collect`], a
//! host that keeps everything in memory.

use std::collections::HashMap;

use ferry_core::{BoundSecret, egress::EgressPolicy};
use serde_json::Value;

use crate::error::BrowserError;

/// What a run reports to and asks of whoever runs it: the worker streams rows as partial
/// results, keeps sessions and artifacts on the server.
#[async_trait::async_trait]
pub trait Host: Send + Sync {
    /// Extracted rows, as they are found.
    async fn rows(&mut self, rows: Vec<Value>);
    /// The session named by the recipe's `use_session` (`None`: nothing saved yet).
    async fn load_session(&mut self, name: &str) -> Result<Option<Value>, BrowserError>;
    /// A `save_session` step's capture.
    async fn save_session(&mut self, name: &str, state: Value) -> Result<(), BrowserError>;
    /// A file the run made (a `screenshot` step, or what a failure left).
    async fn artifact(&mut self, name: &str, content_type: &str, bytes: Vec<u8>);
    /// `{{secret.NAME}}` and where it may go: by default this process's
    /// `FERRY_SECRET_NAME`, bound by `FERRY_SECRET_DOMAINS_NAME`.
    fn secret(&self, name: &str) -> Option<BoundSecret> {
        env_secret(name)
    }
    /// Where the run's requests may go: every request of its pages passes a proxy that
    /// holds to this.
    fn egress(&self) -> EgressPolicy;
}

/// A host that keeps everything in memory, for callers that run recipes without a server
/// (tests, `ferry bench browser`). Its egress policy allows internal addresses (their sites
/// are local) unless set otherwise.
#[derive(Debug)]
pub struct Collect {
    pub rows: Vec<Value>,
    pub sessions: HashMap<String, Value>,
    /// `(name, content type, bytes)`.
    pub artifacts: Vec<(String, String, Vec<u8>)>,
    /// Secrets by name, before the environment's `FERRY_SECRET_*`.
    pub secrets: HashMap<String, BoundSecret>,
    pub egress: EgressPolicy,
}

impl Default for Collect {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            sessions: HashMap::new(),
            artifacts: Vec::new(),
            secrets: HashMap::new(),
            egress: EgressPolicy::allowing_private(),
        }
    }
}

#[async_trait::async_trait]
impl Host for Collect {
    async fn rows(&mut self, rows: Vec<Value>) {
        self.rows.extend(rows);
    }

    async fn load_session(&mut self, name: &str) -> Result<Option<Value>, BrowserError> {
        Ok(self.sessions.get(name).cloned())
    }

    async fn save_session(&mut self, name: &str, state: Value) -> Result<(), BrowserError> {
        self.sessions.insert(name.to_owned(), state);
        Ok(())
    }

    async fn artifact(&mut self, name: &str, content_type: &str, bytes: Vec<u8>) {
        self.artifacts
            .push((name.to_owned(), content_type.to_owned(), bytes));
    }

    fn secret(&self, name: &str) -> Option<BoundSecret> {
        self.secrets.get(name).cloned().or_else(|| env_secret(name))
    }

    fn egress(&self) -> EgressPolicy {
        self.egress.clone()
    }
}

pub use ferry_worker::env_secret;
