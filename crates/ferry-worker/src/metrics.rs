//! A worker's own Prometheus metrics (issue #18), served by `ferry worker --metrics-listen`
//! at `GET /metrics`: the attempts this process ran (by kind and how they ended, with their
//! durations) and what handlers add to the same registry (`browser.run`: open pages,
//! Chromium's memory, step durations). What the queue holds is the server's to say.
//! Labels are bounded: the handler's kind pattern (`browser.run`, `document.*`: as many as
//! the registry has), outcome, a step's action — never a job id.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Attempt durations, in seconds: from a fast HTTP call to an hour-long crawl.
const ATTEMPT_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

type Hook = Box<dyn Fn() + Send + Sync>;

/// This worker's metrics; clones share them.
#[derive(Clone)]
pub struct WorkerMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    running: IntGaugeVec,
    attempts: IntCounterVec,
    duration: HistogramVec,
    /// Run before each scrape, to set gauges read from elsewhere (a process's memory).
    hooks: Mutex<Vec<Hook>>,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerMetrics").finish_non_exhaustive()
    }
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::new().expect("the metrics' names and labels are valid and unique")
    }
}

/// How an attempt ended, as this worker saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The handler returned a result (sent to the server).
    Completed,
    /// The handler failed, panicked, or was stopped (a failure sent to the server).
    Failed,
    /// The lease was lost: the server had given the job to another attempt.
    LeaseLost,
}

impl Ended {
    fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::LeaseLost => "lease_lost",
        }
    }
}

impl WorkerMetrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let running = IntGaugeVec::new(
            Opts::new(
                "ferry_worker_jobs_running",
                "Attempts running in this worker now.",
            ),
            &["kind"],
        )?;
        let attempts = IntCounterVec::new(
            Opts::new(
                "ferry_worker_attempts_total",
                "Attempts this worker ran, by how they ended (completed, failed, lease_lost).",
            ),
            &["kind", "outcome"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "ferry_worker_attempt_duration_seconds",
                "How long this worker's attempts ran, start to end, by how they ended.",
            )
            .buckets(ATTEMPT_BUCKETS.to_vec()),
            &["kind", "outcome"],
        )?;
        registry.register(Box::new(running.clone()))?;
        registry.register(Box::new(attempts.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                registry,
                running,
                attempts,
                duration,
                hooks: Mutex::default(),
            }),
        })
    }

    /// The registry handlers add their own families to.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Runs `hook` before every scrape (to set a gauge read from elsewhere).
    pub fn before_scrape(&self, hook: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut hooks) = self.inner.hooks.lock() {
            hooks.push(Box::new(hook));
        }
    }

    pub(crate) fn started(&self, kind: &str) {
        self.inner.running.with_label_values(&[kind]).inc();
    }

    pub(crate) fn ended(&self, kind: &str, ended: Ended, ran: Duration) {
        let labels = [kind, ended.as_str()];
        self.inner.running.with_label_values(&[kind]).dec();
        self.inner.attempts.with_label_values(&labels).inc();
        self.inner
            .duration
            .with_label_values(&labels)
            .observe(ran.as_secs_f64());
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        if let Ok(hooks) = self.inner.hooks.lock() {
            for hook in hooks.iter() {
                hook();
            }
        }
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail on valid metrics.
        let _ = TextEncoder::new().encode(&self.inner.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Serves `GET /metrics` on `listener` until `stop`.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        stop: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<()> {
        use axum::{Router, http::header, routing::get};
        let metrics = self;
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        metrics.render(),
                    )
                }
            }),
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    }
}
