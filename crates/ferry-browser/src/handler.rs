//! [`BrowserRun`], the `browser.run` handler of the worker runtime: one Chromium per
//! worker, recycled after so many jobs or so much memory.

use std::{collections::HashMap, sync::Arc};

use serde_json::Value;

use crate::{
    chromium::{Chromium, ChromiumConfig},
    error::BrowserError,
    host::{Host, env_secret},
};

/// When a worker replaces its Chromium with a fresh one (long-lived browsers grow).
#[derive(Debug, Clone, Copy)]
pub struct Recycle {
    /// After this many jobs (default 200).
    pub after_jobs: u32,
    /// When the browser and its helpers use more than this much memory (default 2 GiB).
    pub above_bytes: u64,
}

impl Default for Recycle {
    fn default() -> Self {
        Self {
            after_jobs: 200,
            above_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// The `browser.run` handler: one Chromium per worker process, started with the first
/// browser job, a fresh context per job. A browser that fails is replaced for the next job,
/// and one past its [`Recycle`] limits is retired: new jobs get a fresh browser, and the
/// old one closes when its last job ends.
pub struct BrowserRun {
    config: ChromiumConfig,
    recycle: Recycle,
    secrets: Arc<HashMap<String, ferry_core::BoundSecret>>,
    chromium: tokio::sync::Mutex<Option<Arc<Chromium>>>,
    metrics: Option<crate::BrowserMetrics>,
}

impl BrowserRun {
    /// Uses `chromium` (already started).
    pub fn new(chromium: Arc<Chromium>) -> Self {
        Self {
            config: ChromiumConfig::default(),
            recycle: Recycle::default(),
            secrets: Arc::default(),
            chromium: tokio::sync::Mutex::new(Some(chromium)),
            metrics: None,
        }
    }

    /// Starts Chromium from `config` when the first browser job arrives.
    pub fn lazy(config: ChromiumConfig) -> Self {
        Self {
            config,
            recycle: Recycle::default(),
            secrets: Arc::default(),
            chromium: tokio::sync::Mutex::new(None),
            metrics: None,
        }
    }

    /// Secrets for `{{secret.NAME}}`, before this process's `FERRY_SECRET_*` variables.
    pub fn with_secrets(mut self, secrets: HashMap<String, ferry_core::BoundSecret>) -> Self {
        self.secrets = Arc::new(secrets);
        self
    }

    /// Counts pages, Chromium's memory, launches and step durations in the worker's
    /// `metrics` (for browsers this handler launches).
    pub fn with_metrics(mut self, metrics: &ferry_worker::WorkerMetrics) -> Self {
        match crate::BrowserMetrics::register(metrics) {
            Ok(m) => self.metrics = Some(m),
            Err(e) => tracing::warn!(error = %e, "browser metrics are off"),
        }
        self
    }

    pub fn with_recycle(mut self, recycle: Recycle) -> Self {
        self.recycle = recycle;
        self
    }

    async fn browser(&self) -> Result<Arc<Chromium>, BrowserError> {
        let mut slot = self.chromium.lock().await;
        if let Some(chromium) = slot.as_ref() {
            return Ok(chromium.clone());
        }
        let mut launched = Chromium::launch(&self.config).await?;
        if let Some(metrics) = &self.metrics {
            metrics.launched(launched.pid());
            launched.metrics = Some(metrics.clone());
        }
        let chromium = Arc::new(launched);
        *slot = Some(chromium.clone());
        Ok(chromium)
    }

    /// Drops a browser from the slot (it failed, or is retired), so the next job starts a
    /// new one.
    async fn forget(&self, failed: &Arc<Chromium>) {
        let mut slot = self.chromium.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, failed)) {
            *slot = None;
        }
    }

    /// After a job: retire the browser past its limits; the last job of a retired browser
    /// closes it (and waits for its processes).
    async fn after_job(&self, chromium: Arc<Chromium>) {
        if chromium.jobs_run() >= self.recycle.after_jobs
            || chromium.memory_bytes() > self.recycle.above_bytes
        {
            tracing::info!(
                jobs = chromium.jobs_run(),
                memory_mb = chromium.memory_bytes() / (1024 * 1024),
                "recycling Chromium"
            );
            self.forget(&chromium).await;
        }
        let current = self
            .chromium
            .lock()
            .await
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &chromium));
        if !current && let Ok(retired) = Arc::try_unwrap(chromium) {
            retired.close().await;
        }
    }

    /// The browser serving jobs now, if one is started.
    pub async fn current(&self) -> Option<Arc<Chromium>> {
        self.chromium.lock().await.clone()
    }
}

/// The worker's side of a run: rows stream as partial results; sessions and artifacts go
/// to the server under the job's lease. Artifacts are named per attempt.
/// Secrets come from the tenant's vault (those the job names), then the worker's own.
pub(crate) struct WorkerHost<'a>(
    &'a ferry_worker::JobContext,
    &'a HashMap<String, ferry_core::BoundSecret>,
    HashMap<String, ferry_core::BoundSecret>,
);

pub(crate) fn host_error(e: ferry_worker::HandlerError) -> BrowserError {
    BrowserError::Host {
        code: e.code,
        message: e.message,
        retryable: e.retryable,
    }
}

#[async_trait::async_trait]
impl Host for WorkerHost<'_> {
    async fn rows(&mut self, rows: Vec<Value>) {
        self.0.push_items(rows).await;
    }

    async fn load_session(&mut self, _name: &str) -> Result<Option<Value>, BrowserError> {
        self.0.load_session().await.map_err(host_error)
    }

    async fn save_session(&mut self, name: &str, state: Value) -> Result<(), BrowserError> {
        self.0.save_session(name, state).await.map_err(host_error)
    }

    async fn artifact(&mut self, name: &str, content_type: &str, bytes: Vec<u8>) {
        let name = if name.starts_with("failure") {
            format!("attempt-{}-{name}", self.0.attempt)
        } else {
            name.to_owned()
        };
        if let Err(e) = self.0.upload_artifact(&name, content_type, bytes).await {
            tracing::warn!(job_id = %self.0.id, artifact = %name, error = %e, "artifact upload failed");
        }
    }

    fn secret(&self, name: &str) -> Option<ferry_core::BoundSecret> {
        let secret = self
            .2
            .get(name)
            .or_else(|| self.1.get(name))
            .cloned()
            .or_else(|| env_secret(name))?;
        // Whatever the run does with it, the value leaves in nothing it reports.
        self.0.redact(secret.value.expose());
        Some(secret)
    }

    fn egress(&self) -> ferry_core::egress::EgressPolicy {
        self.0.egress.clone()
    }
}

#[async_trait::async_trait]
impl ferry_worker::Handler for BrowserRun {
    async fn run(
        &self,
        ctx: ferry_worker::JobContext,
    ) -> Result<Value, ferry_worker::HandlerError> {
        let recipe = ferry_core::recipe::validate(&ctx.payload, "payload").map_err(|errors| {
            let first = errors
                .first()
                .map(|e| format!("{}: {}", e.field, e.message))
                .unwrap_or_default();
            ferry_worker::HandlerError::fatal("INVALID_RECIPE", first)
        })?;
        let to_handler_error = |e: BrowserError| {
            let error = if e.retryable() {
                ferry_worker::HandlerError::retryable(e.code(), e.to_string())
            } else {
                ferry_worker::HandlerError::fatal(e.code(), e.to_string())
            };
            match e.retry_after() {
                Some(after) => error.with_retry_after(after),
                None => error,
            }
        };
        let chromium = self.browser().await.map_err(to_handler_error)?;
        let vault = ctx.vault_secrets().await?;
        let mut host = WorkerHost(&ctx, &self.secrets, vault);
        let outcome = chromium.run(&recipe, &mut host).await;
        // A browser that failed, or stopped answering a command for 30 s, is replaced for
        // the next job (jobs still running on it keep it until they end).
        if let Err(BrowserError::Crashed(_) | BrowserError::Timeout { .. }) =
            outcome.as_ref().map_err(BrowserError::root)
        {
            self.forget(&chromium).await;
        }
        self.after_job(chromium).await;
        outcome.map_err(to_handler_error)
    }
}

/// Adds `browser.run` to `registry` when Chromium is installed (it starts with the first
/// browser job); answers whether it did.
pub fn register(registry: &mut ferry_worker::Registry, run: BrowserRun) -> bool {
    if !run.config.executable.exists() {
        tracing::warn!(
            path = %run.config.executable.display(),
            "Chromium not found: this worker takes no browser.run jobs (apt-get install chromium, or set FERRY_CHROMIUM)"
        );
        return false;
    }
    registry
        .register(ferry_core::recipe::BROWSER_RUN, run)
        .is_ok()
}
