//! The worker's main loop: an explicit loop over a closed [`Event`] enum. It keeps at
//! most `concurrency` jobs running, claims more (one long-poll at a time) when slots
//! are free, backs off while the server is unreachable, and on shutdown stops
//! claiming, lets running jobs finish within the grace period, then stops them so
//! they are reported as retryable `WORKER_SHUTDOWN`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use ferry_client::{Client, ClientError};
use ferry_core::{
    JobId,
    api::{ClaimRequest, ClaimedJob},
    kind::KindPattern,
};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    Registry,
    completer::Completer,
    handler::{Stop, StopReason},
    job::run_job,
};

/// Longest a free slot waits for more to free up before a claim is sent for it.
const CLAIM_COOLDOWN: Duration = Duration::from_millis(5);

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Shown in the server's records (`worker_id`); default `hostname-pid`.
    pub worker_id: String,
    /// Jobs run at once (default 4).
    pub concurrency: usize,
    /// Kind patterns to claim; default: every pattern the registry serves. Narrowed to the
    /// registry's patterns, so a worker never claims a kind it has no handler for.
    pub kinds: Option<Vec<String>>,
    /// Lease asked for; default: the server's.
    pub lease_ms: Option<u64>,
    /// How long one claim long-polls (default 20 s).
    pub claim_wait: Duration,
    /// How long running jobs may finish after shutdown is asked (default 30 s).
    pub shutdown_grace: Duration,
    /// How long a handler may take to stop once told to (default 5 s).
    pub stop_grace: Duration,
    /// Most completions sent in one request (default 100).
    pub complete_batch: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            worker_id: default_worker_id(),
            concurrency: 4,
            kinds: None,
            lease_ms: None,
            claim_wait: Duration::from_secs(20),
            shutdown_grace: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            complete_batch: 100,
        }
    }
}

/// `hostname-pid`.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Why a worker stopped other than by being asked to.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the server refused the worker's claims: {0}")]
    Refused(#[source] ClientError),
    #[error("the worker has no handlers to run")]
    NoHandlers,
    #[error(
        "this worker has no handler for the kinds it was asked to claim ({asked}); it handles {served}"
    )]
    NoHandlerForKinds { asked: String, served: String },
}

/// The patterns a worker claims: each of `asked` narrowed to the patterns of `served` (its
/// registry's), so a job of a kind without a handler is left for a worker that has one.
/// `post.*` with handlers for `post.generate` and `http.request` claims `post.generate`.
/// A pattern that does not parse is kept for the server to refuse by name.
pub fn claim_patterns(asked: &[String], served: &[String]) -> Vec<String> {
    let served: Vec<KindPattern> = served.iter().filter_map(|p| p.parse().ok()).collect();
    let mut claim: Vec<String> = Vec::new();
    for text in asked {
        let narrowed: Vec<String> = match text.parse::<KindPattern>() {
            Ok(asked) => served
                .iter()
                .filter_map(|s| intersect(&asked, s))
                .map(|p| p.to_string())
                .collect(),
            Err(_) => vec![text.clone()],
        };
        for pattern in narrowed {
            if !claim.contains(&pattern) {
                claim.push(pattern);
            }
        }
    }
    claim
}

/// The kinds both patterns match, as one pattern (none when they share no kind).
fn intersect(a: &KindPattern, b: &KindPattern) -> Option<KindPattern> {
    use KindPattern::{Any, Exact, Prefix};
    match (a, b) {
        (Any, other) | (other, Any) => Some(other.clone()),
        (Exact(kind), other) | (other, Exact(kind)) => {
            other.matches(kind.as_str()).then(|| Exact(kind.clone()))
        }
        (Prefix(p), Prefix(q)) if p.starts_with(q.as_str()) => Some(Prefix(p.clone())),
        (Prefix(p), Prefix(q)) if q.starts_with(p.as_str()) => Some(Prefix(q.clone())),
        (Prefix(_), Prefix(_)) => None,
    }
}

/// What the main loop reacts to.
enum Event {
    /// A claim came back.
    Claimed(Result<Vec<ClaimedJob>, ClientError>),
    /// A job's task ended (its report is sent or queued).
    Finished(JobId),
}

/// A worker: a client with the worker token, handlers, and settings.
#[derive(Debug, Clone)]
pub struct Worker {
    client: Client,
    registry: Arc<Registry>,
    config: WorkerConfig,
    metrics: Option<crate::WorkerMetrics>,
}

impl Worker {
    pub fn new(client: Client, registry: Registry, config: WorkerConfig) -> Self {
        Self {
            client,
            registry: Arc::new(registry),
            config,
            metrics: None,
        }
    }

    /// Counts this worker's attempts in `metrics` (`ferry worker --metrics-listen`).
    pub fn with_metrics(mut self, metrics: crate::WorkerMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs until `shutdown` is cancelled and running jobs are drained.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let served = self.registry.patterns();
        if served.is_empty() {
            return Err(WorkerError::NoHandlers);
        }
        let kinds = match &self.config.kinds {
            Some(asked) => {
                let kinds = claim_patterns(asked, &served);
                if kinds.is_empty() {
                    return Err(WorkerError::NoHandlerForKinds {
                        asked: asked.join(", "),
                        served: served.join(", "),
                    });
                }
                kinds
            }
            None => served,
        };
        let concurrency = self.config.concurrency.max(1);
        let (events, mut inbox) = mpsc::unbounded_channel::<Event>();
        let completer = Completer::spawn(self.client.clone(), self.config.complete_batch);
        let mut running: HashMap<JobId, Stop> = HashMap::new();
        let mut claiming: Option<CancellationToken> = None;
        let mut retry_at: Option<Instant> = None;
        let mut failures = 0u32;
        let mut draining_until: Option<Instant> = None;
        // A claim in flight when shutdown came may already hold jobs on the server: its
        // answer is awaited until then (a long-poll with nothing to hand out is dropped).
        let mut claim_cutoff: Option<Instant> = None;
        // The grace period is over: whatever still arrives is handed back at once.
        let mut grace_over = false;
        let mut outcome = Ok(());
        let mut last_claim = Instant::now() - CLAIM_COOLDOWN;
        tracing::info!(worker_id = %self.config.worker_id, ?kinds, concurrency, "worker started");

        loop {
            // Claim in batches: when a quarter of the slots are free, or a few ms after
            // the last claim for fewer, so fast jobs do not turn into claims of one.
            let free = concurrency - running.len();
            let batch_ready =
                free >= concurrency.div_ceil(4) || last_claim.elapsed() >= CLAIM_COOLDOWN;
            let may_claim = draining_until.is_none()
                && claiming.is_none()
                && free > 0
                && retry_at.is_none_or(|at| Instant::now() >= at);
            let nudge = (may_claim && !batch_ready).then(|| last_claim + CLAIM_COOLDOWN);
            if may_claim && batch_ready {
                retry_at = None;
                let cancel = CancellationToken::new();
                claiming = Some(cancel.clone());
                let req = ClaimRequest {
                    worker_id: self.config.worker_id.clone(),
                    kinds: kinds.clone(),
                    max_jobs: Some((concurrency - running.len()) as u32),
                    wait_ms: Some(self.config.claim_wait.as_millis() as u64),
                    lease_ms: self.config.lease_ms,
                };
                let client = self.client.clone();
                let events = events.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        answer = client.claim(&req) => {
                            let _ = events.send(Event::Claimed(answer.map(|r| r.jobs)));
                        }
                        _ = cancel.cancelled() => {}
                    }
                });
            }
            if draining_until.is_some() && running.is_empty() && claiming.is_none() {
                break;
            }

            let event = tokio::select! {
                event = inbox.recv() => event,
                _ = shutdown.cancelled(), if draining_until.is_none() => {
                    tracing::info!(running = running.len(), "shutting down: no new claims, draining running jobs");
                    draining_until = Some(Instant::now() + self.config.shutdown_grace);
                    claim_cutoff = Some(Instant::now() + CLAIM_ANSWER_WAIT.min(self.config.shutdown_grace));
                    continue;
                }
                _ = sleep_until_opt(claim_cutoff), if claiming.is_some() => {
                    if let Some(c) = claiming.take() {
                        c.cancel();
                    }
                    claim_cutoff = None;
                    continue;
                }
                _ = sleep_until_opt(draining_until), if !running.is_empty() => {
                    tracing::warn!(running = running.len(), "grace period over; stopping running jobs");
                    for stop in running.values() {
                        stop.stop(StopReason::Shutdown);
                    }
                    grace_over = true;
                    draining_until = Some(Instant::now() + self.config.stop_grace * 2);
                    continue;
                }
                _ = sleep_until_opt(retry_at) => continue,
                _ = sleep_until_opt(nudge) => continue,
            };
            let Some(event) = event else { break };
            // Handle everything already queued before deciding whether to claim again.
            let mut next = Some(event);
            while let Some(event) = next.take() {
                match event {
                    Event::Claimed(Ok(jobs)) => {
                        claiming = None;
                        last_claim = Instant::now();
                        failures = 0;
                        for job in jobs {
                            let stop = Stop::default();
                            if grace_over {
                                // Claimed after the grace period: hand it back at once.
                                // (Claimed while draining, it runs within the grace.)
                                stop.stop(StopReason::Shutdown);
                            }
                            running.insert(job.id, stop.clone());
                            // One lookup: the handler, and (for the metrics) the pattern
                            // it serves, a label bounded whatever kinds come.
                            let entry = self.registry.entry(&job.kind);
                            let handler = entry.map(|(_, h)| h.clone());
                            let label = match (&self.metrics, entry) {
                                (None, _) => String::new(),
                                (Some(_), Some((pattern, _))) => pattern.to_string(),
                                (Some(_), None) => "(none)".to_owned(),
                            };
                            let client = self.client.clone();
                            let completer = completer.clone();
                            let events = events.clone();
                            let stop_grace = self.config.stop_grace;
                            // Every line logged while the job runs (the handler's, the
                            // browser's) names it.
                            // With traces exported, it is the attempt's span in the
                            // job's trace (under the server's submit span).
                            let span = tracing::info_span!(
                                "job",
                                job_id = %job.id,
                                kind = %job.kind,
                                attempt = job.attempt,
                                tenant = %job.tenant,
                                trace_id = job.traceparent.as_ref().map(|t| t.trace_id())
                            );
                            ferry_telemetry::continue_trace(&span, job.traceparent.as_ref());
                            let metrics = self.metrics.clone();
                            tokio::spawn(
                                async move {
                                    let id = job.id;
                                    let started = Instant::now();
                                    if let Some(m) = &metrics {
                                        m.started(&label);
                                    }
                                    let ended =
                                        run_job(client, handler, job, stop, completer, stop_grace)
                                            .await;
                                    if let Some(m) = &metrics {
                                        m.ended(&label, ended, started.elapsed());
                                    }
                                    let _ = events.send(Event::Finished(id));
                                }
                                .instrument(span),
                            );
                        }
                    }
                    Event::Claimed(Err(e)) => {
                        claiming = None;
                        if !e.is_transient() {
                            tracing::error!(error = %e, "claim refused; stopping the worker");
                            outcome = Err(WorkerError::Refused(e));
                            shutdown.cancel();
                            continue;
                        }
                        failures += 1;
                        let delay = reconnect_delay(failures);
                        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot claim; retrying");
                        retry_at = Some(Instant::now() + delay);
                    }
                    Event::Finished(id) => {
                        running.remove(&id);
                    }
                }
                next = inbox.try_recv().ok();
            }
        }
        if let Some(c) = claiming.take() {
            c.cancel();
        }
        completer.flush().await;
        tracing::info!(worker_id = %self.config.worker_id, "worker stopped");
        outcome
    }
}

/// How long shutdown waits for the answer of a claim already sent (it may hold jobs the
/// server has handed out; dropped, they would wait for their leases to run out).
const CLAIM_ANSWER_WAIT: Duration = Duration::from_secs(1);

/// 250 ms doubling to 10 s, with jitter.
fn reconnect_delay(failures: u32) -> Duration {
    let base = 250u64.saturating_mul(1 << failures.min(6)).min(10_000);
    Duration::from_millis(base / 2 + (base as f64 / 2.0 * ferry_core::retry::jitter_unit()) as u64)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::claim_patterns;

    fn check(asked: &[&str], served: &[&str], expected: &[&str]) {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            claim_patterns(&strings(asked), &strings(served)),
            strings(expected),
            "{asked:?} with handlers for {served:?}"
        );
    }

    #[test]
    fn a_worker_claims_only_kinds_it_has_handlers_for() {
        let builtin = ["http.request", "ferry.noop", "browser.run"];
        check(&["*"], &builtin, &builtin);
        check(&["post.*"], &builtin, &[]);
        check(&["post.*", "ferry.noop"], &builtin, &["ferry.noop"]);
        check(&["ferry.*"], &builtin, &["ferry.noop"]);
        check(&["post.generate"], &["post.*"], &["post.generate"]);
        check(&["post.*"], &["post.*", "*"], &["post.*"]);
        check(&["post.draft.*"], &["post.*"], &["post.draft.*"]);
        check(
            &["post.*"],
            &["post.draft.*", "http.request"],
            &["post.draft.*"],
        );
        check(&["postal.*"], &["post.*"], &[]);
        check(&["ferry.noop", "ferry.*"], &builtin, &["ferry.noop"]);
        // Left for the server to refuse by name.
        check(&["bad pattern"], &builtin, &["bad pattern"]);
    }
}
