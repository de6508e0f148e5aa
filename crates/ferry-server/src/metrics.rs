//! Prometheus metrics (`GET /metrics`, issue #18), in the text format Prometheus scrapes,
//! from a registry of this server's own (several servers in one process stay apart).
//!
//! Counters count what this instance did (claims, workers' reports, maintenance, webhook
//! deliveries, HTTP requests): sum them over instances. Gauges are read from the store at
//! each scrape (one indexed read per tenant: unfinished and failed jobs by kind, the
//! oldest waiting job; the connected workers), so every instance answers the same.
//! Labels are bounded: tenant, kind, state, error code, route template — never a job id.

use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::Queue;
use crate::app::AppResult;

/// Job and queue-wait durations, in seconds: from a fast HTTP call to an hour-long crawl.
const JOB_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Store operation durations, in seconds: an indexed read to a long transaction.
const STORE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// HTTP request durations, in seconds (long-polls and streams end in the top bucket).
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// This server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    transitions: IntCounterVec,
    job_duration: HistogramVec,
    queue_wait: HistogramVec,
    claims: IntCounterVec,
    rescued: IntCounterVec,
    webhook_deliveries: IntCounterVec,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    jobs: IntGaugeVec,
    oldest_pending: GaugeVec,
    workers_connected: IntGaugeVec,
    store_connections: IntGaugeVec,
    store_ops: HistogramVec,
    /// One scrape at a time sets the gauges.
    scraping: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new().expect("the metrics' names and labels are valid and unique")
    }
}

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<_> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<_> {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let histogram =
            |name: &str, help: &str, labels: &[&str], buckets: &[f64]| -> prometheus::Result<_> {
                let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
                let h = HistogramVec::new(opts, labels)?;
                registry.register(Box::new(h.clone()))?;
                Ok(h)
            };
        let transitions = counter(
            "ferry_job_transitions_total",
            "Attempts ended, by the state the job went to (completed, failed, cancelled, or \
             retrying when it waits for another attempt) and the attempt's error code.",
            &["tenant", "kind", "state", "error_code"],
        )?;
        let job_duration = histogram(
            "ferry_job_duration_seconds",
            "How long attempts ran, from claim to their worker's report, by the state the \
             job went to.",
            &["tenant", "kind", "state"],
            JOB_BUCKETS,
        )?;
        let queue_wait = histogram(
            "ferry_job_queue_wait_seconds",
            "How long jobs waited to be claimed once due (from their run_at to the claim), \
             by tenant and kind.",
            &["tenant", "kind"],
            JOB_BUCKETS,
        )?;
        let claims = counter("ferry_claims_total", "Jobs handed to workers.", &["tenant"])?;
        let rescued = counter(
            "ferry_leases_rescued_total",
            "Attempts ended by the server: a lease that expired (the worker went silent) or \
             a deadline that passed.",
            &["reason"],
        )?;
        let webhook_deliveries = counter(
            "ferry_webhook_deliveries_total",
            "Webhook delivery attempts, by outcome (delivered, retrying, dead).",
            &["outcome"],
        )?;
        let http_requests = counter(
            "ferry_http_requests_total",
            "HTTP requests answered, by method, route template and status.",
            &["method", "route", "status"],
        )?;
        let http_duration = histogram(
            "ferry_http_request_duration_seconds",
            "Time to answer HTTP requests (to the start of the answer), by method and route \
             template.",
            &["method", "route"],
            HTTP_BUCKETS,
        )?;
        let jobs = gauge(
            "ferry_jobs",
            "Jobs now scheduled, pending, running or failed (dead letters), by tenant and \
             kind. Completed and cancelled jobs are counted by ferry_job_transitions_total.",
            &["tenant", "kind", "state"],
        )?;
        let oldest_pending = GaugeVec::new(
            Opts::new(
                "ferry_jobs_oldest_pending_age_seconds",
                "Age of the oldest job waiting to be claimed (0 when none waits).",
            ),
            &["tenant"],
        )?;
        registry.register(Box::new(oldest_pending.clone()))?;
        let workers_connected = gauge(
            "ferry_workers_connected",
            "Workers heard from within the last 90 seconds.",
            &["tenant"],
        )?;
        let store_connections = gauge(
            "ferry_store_connections",
            "Database connections of this instance's pools, by pool and state (idle, busy).",
            &["pool", "state"],
        )?;
        let store_ops = histogram(
            "ferry_store_operation_duration_seconds",
            "How long the job path's database operations took on this instance (insert, \
             claim, heartbeat, progress, complete, fail), from call to answer.",
            &["op"],
            STORE_BUCKETS,
        )?;
        Ok(Self {
            registry,
            store_ops,
            transitions,
            job_duration,
            queue_wait,
            claims,
            rescued,
            webhook_deliveries,
            http_requests,
            http_duration,
            jobs,
            oldest_pending,
            workers_connected,
            store_connections,
            scraping: tokio::sync::Mutex::new(()),
        })
    }

    /// An attempt ended: its job went to `state` (`retrying` for another attempt).
    pub fn attempt_ended(
        &self,
        tenant: &str,
        kind: &str,
        state: &str,
        error_code: &str,
        ran: Option<Duration>,
    ) {
        self.transitions
            .with_label_values(&[tenant, kind, state, error_code])
            .inc();
        if let Some(ran) = ran {
            self.job_duration
                .with_label_values(&[tenant, kind, state])
                .observe(ran.as_secs_f64());
        }
    }

    /// Jobs handed out at `now`, each having waited since it was due.
    pub fn claimed(&self, tenant: &str, jobs: &[ferry_core::api::ClaimedJob], now: DateTime<Utc>) {
        self.claims
            .with_label_values(&[tenant])
            .inc_by(jobs.len() as u64);
        for job in jobs {
            let waited = job
                .due_at
                .and_then(|due| (now - due).to_std().ok())
                .unwrap_or_default();
            self.queue_wait
                .with_label_values(&[tenant, &job.kind])
                .observe(waited.as_secs_f64());
        }
    }

    /// Attempts the server ended (`lease` expired or `deadline` passed).
    pub fn rescued(&self, reason: &str, jobs: usize) {
        self.rescued
            .with_label_values(&[reason])
            .inc_by(jobs as u64);
    }

    /// A store operation of the job path (`op`) took `took`.
    pub fn store_op(&self, op: &str, took: Duration) {
        self.store_ops
            .with_label_values(&[op])
            .observe(took.as_secs_f64());
    }

    pub fn webhook_delivery(&self, outcome: &str) {
        self.webhook_deliveries.with_label_values(&[outcome]).inc();
    }

    pub fn http_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(took.as_secs_f64());
    }
}

/// How long an attempt that started at `started` ran until `now`.
pub fn ran(started: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Duration> {
    started.and_then(|s| (now - s).to_std().ok())
}

impl Queue {
    /// The exposition for `GET /metrics`: the gauges read from the store now, with the
    /// counters as they stand.
    pub async fn metrics_text(&self) -> AppResult<String> {
        let metrics = self.metrics();
        let _one = metrics.scraping.lock().await;
        let now = self.now();
        metrics.jobs.reset();
        metrics.oldest_pending.reset();
        for tenant in self.store().tenant_list().await? {
            // Unfinished jobs only: finished ones are counted by the transitions counter.
            let stats = self.store().job_stats(&tenant.id, None).await?;
            for k in &stats.kinds {
                metrics
                    .jobs
                    .with_label_values(&[tenant.id.as_str(), &k.kind, k.state.as_str()])
                    .set(i64::try_from(k.count).unwrap_or(i64::MAX));
            }
            let age = stats
                .oldest_pending_at
                .and_then(|at| (now - at).to_std().ok())
                .map_or(0.0, |d| d.as_secs_f64());
            metrics
                .oldest_pending
                .with_label_values(&[tenant.id.as_str()])
                .set(age);
        }
        metrics.workers_connected.reset();
        for w in self.connected_workers().await? {
            metrics
                .workers_connected
                .with_label_values(&[w.tenant.as_str()])
                .inc();
        }
        for (pool, size, idle) in self.store().connections() {
            let idle = i64::try_from(idle).unwrap_or(i64::MAX);
            let busy = i64::from(size) - idle;
            metrics
                .store_connections
                .with_label_values(&[pool, "idle"])
                .set(idle);
            metrics
                .store_connections
                .with_label_values(&[pool, "busy"])
                .set(busy.max(0));
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&metrics.registry.gather(), &mut out)
            .map_err(|e| crate::app::AppError::Internal(e.to_string()))?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}
