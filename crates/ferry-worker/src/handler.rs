//! What a job handler is: the [`Handler`] trait, the [`JobContext`] it gets (payload,
//! progress, partial items, cancellation), the [`HandlerError`] it may return, and the
//! [`Registry`] that maps kinds to handlers.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use ferry_client::{Client, ClientError};
use ferry_core::{ErrorCode, JobId, KindPattern, api::ProgressRequest, error::job_codes};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// A job handler. Implement it for custom kinds and register it on the worker.
///
/// Return `Ok(result)` to complete the job, or a [`HandlerError`] to fail this
/// attempt (retried with backoff when `retryable`). Long handlers should watch
/// [`JobContext::cancelled`] and stop soon after it fires.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError>;
}

/// Why an attempt failed, as a handler says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HandlerError {
    pub code: String,
    pub message: String,
    pub retryable: bool,
    /// Ask for the retry no sooner than this (e.g. an upstream's `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl HandlerError {
    /// A failure worth retrying (network trouble, an upstream's 5xx).
    pub fn retryable(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            retryable: true,
            retry_after: None,
        }
    }

    /// A failure that will not get better by retrying (bad input, a 404).
    pub fn fatal(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }
}

/// Why the runtime asked a handler to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A client cancelled the job.
    Cancelled,
    /// The worker is shutting down and the grace period is over.
    Shutdown,
    /// The attempt passed its deadline.
    Deadline,
    /// The server gave the job to someone else; nothing will be reported.
    LeaseLost,
    /// The server refused items the handler reported (say, without the key its dataset
    /// needs): completing would lose them, so the attempt fails.
    ItemsRefused,
    /// Reported items could not be delivered within the report's budget: completing
    /// would lose them, so the attempt fails (retryable).
    ItemsUndelivered,
}

impl StopReason {
    pub(crate) fn error(self) -> HandlerError {
        match self {
            StopReason::Cancelled => {
                HandlerError::fatal(job_codes::CANCELLED, "the job was cancelled")
            }
            StopReason::Shutdown => HandlerError::retryable(
                job_codes::WORKER_SHUTDOWN,
                "the worker shut down before the job finished",
            ),
            StopReason::Deadline => {
                HandlerError::retryable(job_codes::TIMEOUT, "the attempt ran past its timeout_ms")
            }
            StopReason::LeaseLost => {
                HandlerError::retryable(job_codes::LEASE_EXPIRED, "the lease was lost")
            }
            StopReason::ItemsRefused => HandlerError::fatal(
                job_codes::ITEMS_REFUSED,
                "the server refused reported items",
            ),
            StopReason::ItemsUndelivered => HandlerError::retryable(
                job_codes::ITEMS_UNDELIVERED,
                "reported items could not be delivered to the server",
            ),
        }
    }
}

/// Cancellation with a reason: the first reason given wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stop {
    token: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
    /// What the server said when it refused items (`ItemsRefused`).
    refusal: Arc<Mutex<Option<String>>>,
}

impl Stop {
    pub(crate) fn stop(&self, reason: StopReason) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        drop(slot);
        self.token.cancel();
    }

    pub(crate) fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the attempt because the server refused its items, keeping why.
    pub(crate) fn refuse(&self, message: String) {
        *self.refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
        self.stop(StopReason::ItemsRefused);
    }

    /// Stops the attempt because its items could not be delivered, keeping why.
    pub(crate) fn undelivered(&self, message: String) {
        *self.refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
        self.stop(StopReason::ItemsUndelivered);
    }

    /// Whether the attempt's items are incomplete on the server (refused or undelivered),
    /// so it must not complete.
    pub(crate) fn items_lost(&self) -> bool {
        matches!(
            self.reason(),
            Some(StopReason::ItemsRefused | StopReason::ItemsUndelivered)
        )
    }

    /// The error the stop stands for, if the attempt was stopped.
    pub(crate) fn error(&self) -> Option<HandlerError> {
        let reason = self.reason()?;
        let refusal = self
            .refusal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Some(match (reason, refusal) {
            (StopReason::ItemsRefused, Some(message)) => {
                HandlerError::fatal(job_codes::ITEMS_REFUSED, message)
            }
            (StopReason::ItemsUndelivered, Some(message)) => {
                HandlerError::retryable(job_codes::ITEMS_UNDELIVERED, message)
            }
            (reason, _) => reason.error(),
        })
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// Everything a handler knows about the job it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub id: JobId,
    pub kind: String,
    pub payload: Value,
    pub labels: BTreeMap<String, String>,
    /// 1-based.
    pub attempt: u32,
    pub max_attempts: u32,
    pub deadline: DateTime<Utc>,
    /// The result of the job whose completion enqueued this one (`then`), given beside the
    /// payload; `None` for a job that no chain enqueued.
    pub input: Option<Value>,
    /// Where the job's connections may go: handlers that connect anywhere hold to it
    /// (`http.request` and `browser.run` do, through `ferry-egress`).
    pub egress: ferry_core::egress::EgressPolicy,
    /// The secret values this attempt used, kept out of everything it reports.
    pub(crate) redactor: crate::Redactor,
    pub(crate) reporter: Option<Reporter>,
    pub(crate) stop: Stop,
}

impl JobContext {
    /// A context that reports nowhere, for unit-testing a handler.
    pub fn detached(kind: &str, payload: Value) -> Self {
        Self {
            id: JobId::new(),
            kind: kind.to_owned(),
            payload,
            labels: BTreeMap::new(),
            attempt: 1,
            max_attempts: 1,
            deadline: Utc::now() + chrono::Duration::hours(1),
            input: None,
            egress: ferry_core::egress::EgressPolicy::default(),
            redactor: crate::Redactor::default(),
            reporter: None,
            stop: Stop::default(),
        }
    }

    /// This context under another egress policy (a detached context has the default one,
    /// which denies internal addresses).
    pub fn with_egress(mut self, egress: ferry_core::egress::EgressPolicy) -> Self {
        self.egress = egress;
        self
    }

    /// Keeps a secret's `value` out of everything this attempt reports from now on (items,
    /// progress, result, error, text artifacts): call it for every secret a handler uses.
    pub fn redact(&self, value: &str) {
        self.redactor.add(value);
    }

    /// What [`JobContext::redact`] collected.
    pub fn redactor(&self) -> &crate::Redactor {
        &self.redactor
    }

    /// The payload as `T`; a mismatch is a non-retryable `INVALID_PAYLOAD`.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_value(self.payload.clone()).map_err(|e| {
            HandlerError::fatal(
                job_codes::INVALID_PAYLOAD,
                format!("the payload does not fit {}: {e}", self.kind),
            )
        })
    }

    pub fn is_cancelled(&self) -> bool {
        self.stop.token().is_cancelled()
    }

    /// Resolves when the handler should stop (cancelled, shutdown, deadline, lease lost).
    pub async fn cancelled(&self) {
        self.stop.token().cancelled().await
    }

    /// Reports progress (fields left `None` keep their value). Also renews the lease.
    pub async fn progress(
        &self,
        current: Option<u64>,
        total: Option<u64>,
        message: Option<String>,
    ) {
        if let Some(r) = &self.reporter {
            r.send(
                ProgressRequest {
                    current,
                    total,
                    message: message.map(|m| self.redactor.text(&m)),
                    ..Default::default()
                },
                Vec::new(),
                &self.stop,
            )
            .await;
        }
    }

    /// The saved session this job's recipe loads (`use_session`), as the server keeps it
    /// for the lease holder; `None` when nothing is saved under the name yet (or the
    /// context is detached).
    pub async fn load_session(&self) -> Result<Option<Value>, HandlerError> {
        let Some(r) = &self.reporter else {
            return Ok(None);
        };
        r.client
            .session_load(self.id, &r.lease)
            .await
            .map(|answer| answer.state)
            .map_err(|e| call_failed("loading the session", &e))
    }

    /// Saves a session under `name` (the recipe must name it in a `save_session` step).
    pub async fn save_session(&self, name: &str, state: Value) -> Result<(), HandlerError> {
        let Some(r) = &self.reporter else {
            return Ok(());
        };
        r.client
            .session_save(self.id, &r.lease, name, state)
            .await
            .map_err(|e| call_failed("saving the session", &e))
    }

    /// The tenant's vault secrets this job's payload (or its tenant's proxy) names
    /// (`{{secret.NAME}}`), each bound
    /// to the domains it may be sent to; their values are kept out of everything the
    /// attempt reports. Empty when the payload names none (or the context is detached).
    pub async fn vault_secrets(
        &self,
    ) -> Result<std::collections::HashMap<String, ferry_core::BoundSecret>, HandlerError> {
        let Some(r) = &self.reporter else {
            return Ok(Default::default());
        };
        let proxy_names = self.egress.proxy.as_ref().map(|p| p.secret_names());
        if ferry_core::template::secret_names(&self.payload).is_empty()
            && proxy_names.is_none_or(|names| names.is_empty())
        {
            return Ok(Default::default());
        }
        let answer = r
            .client
            .worker_secrets(self.id, &r.lease)
            .await
            .map_err(|e| call_failed("reading the job's secrets", &e))?;
        Ok(answer
            .secrets
            .into_iter()
            .map(|s| {
                self.redact(s.value.expose());
                (
                    s.name,
                    ferry_core::BoundSecret {
                        value: s.value,
                        domains: s.domains,
                    },
                )
            })
            .collect())
    }

    /// Uploads a file this attempt made (a screenshot, a page's HTML, a network log); the
    /// job's clients download it from `GET /v1/jobs/{id}/artifacts/{name}`.
    pub async fn upload_artifact(
        &self,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<(), HandlerError> {
        let Some(r) = &self.reporter else {
            return Ok(());
        };
        let bytes = self.redactor.bytes(content_type, bytes);
        r.client
            .upload_artifact(self.id, &r.lease, name, content_type, bytes)
            .await
            .map(|_| ())
            .map_err(|e| call_failed("uploading an artifact", &e))
    }

    /// Streams partial results to the server; clients read them while the job runs.
    pub async fn push_items(&self, items: Vec<Value>) {
        if items.is_empty() {
            return;
        }
        if let Some(r) = &self.reporter {
            let items = items.into_iter().map(|i| self.redactor.value(i)).collect();
            r.send(ProgressRequest::default(), items, &self.stop).await;
        }
    }
}

/// A worker-API call a handler made failed: lost leases and transient trouble are worth
/// another attempt; a refusal (the recipe does not name the session, say) is not.
fn call_failed(what: &str, e: &ClientError) -> HandlerError {
    if is_lease_lost(e) {
        HandlerError::retryable(job_codes::LEASE_EXPIRED, format!("{what}: {e}"))
    } else if e.is_transient() {
        HandlerError::retryable("SERVER_UNAVAILABLE", format!("{what}: {e}"))
    } else {
        HandlerError::fatal(
            e.code().map_or("SERVER_REFUSED", |c| c.as_str()),
            format!("{what}: {e}"),
        )
    }
}

/// Sends progress reports for one attempt, numbering items so a resent report
/// stores each item once. A report is sent until the server acknowledges it: transient
/// trouble (the server unreachable, a `5xx`, an answer lost on the way back) is retried
/// with backoff for up to `give_up_after`; items that still could not be delivered, or
/// that the server refused, stop the attempt so it fails instead of completing short.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    pub(crate) client: Client,
    pub(crate) id: JobId,
    pub(crate) lease: String,
    pub(crate) next_item: Arc<AtomicU64>,
    pub(crate) send_lock: Arc<tokio::sync::Mutex<()>>,
    /// How long one report keeps being retried (about a lease: past it, the server has
    /// given the job to someone else anyway).
    pub(crate) give_up_after: Duration,
}

impl Reporter {
    async fn send(&self, mut req: ProgressRequest, items: Vec<Value>, stop: &Stop) {
        // One report at a time keeps item offsets in order.
        let _guard = self.send_lock.lock().await;
        if stop.items_lost() {
            // An earlier report was lost: later items cannot complete the attempt either.
            return;
        }
        let n = items.len() as u64;
        if n > 0 {
            req.items_offset = Some(self.next_item.load(Ordering::SeqCst));
            req.items = Some(items);
        }
        req.lease = self.lease.clone();
        let give_up = tokio::time::Instant::now() + self.give_up_after;
        let mut delay = Duration::from_millis(100);
        loop {
            match self.client.progress(self.id, &req).await {
                Ok(status) => {
                    self.next_item.fetch_add(n, Ordering::SeqCst);
                    if status.cancel {
                        stop.stop(StopReason::Cancelled);
                    }
                    return;
                }
                Err(e) if is_lease_lost(&e) => {
                    stop.stop(StopReason::LeaseLost);
                    return;
                }
                Err(e) if e.is_transient() && tokio::time::Instant::now() < give_up => {
                    tracing::warn!(job_id = %self.id, error = %e, "progress report failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(e) if e.is_transient() && n > 0 => {
                    tracing::error!(job_id = %self.id, error = %e, "reported items not delivered");
                    stop.undelivered(format!(
                        "{n} reported items could not be delivered within {} s: {e}",
                        self.give_up_after.as_secs()
                    ));
                    return;
                }
                Err(e) if n > 0 => {
                    // Completing without these items would tell the server (and a dataset)
                    // that they do not exist: fail the attempt instead.
                    tracing::error!(job_id = %self.id, error = %e, "reported items refused");
                    stop.refuse(format!("the server refused {n} reported items: {e}"));
                    return;
                }
                Err(e) => {
                    tracing::warn!(job_id = %self.id, error = %e, "progress report not delivered");
                    return;
                }
            }
        }
    }
}

/// Kind patterns → handlers. Lookup prefers an exact kind, then the longest prefix,
/// then `*`.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<(KindPattern, Arc<dyn Handler>)>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(p, _)| p.to_string()))
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `pattern` (`http.request`, `document.*`, `*`).
    pub fn register(
        &mut self,
        pattern: &str,
        handler: impl Handler,
    ) -> Result<&mut Self, ferry_core::kind::KindError> {
        let pattern: KindPattern = pattern.parse()?;
        self.entries.retain(|(p, _)| *p != pattern);
        self.entries.push((pattern, Arc::new(handler)));
        Ok(self)
    }

    /// The patterns this registry serves, for claims.
    pub fn patterns(&self) -> Vec<String> {
        self.entries.iter().map(|(p, _)| p.to_string()).collect()
    }

    pub fn get(&self, kind: &str) -> Option<Arc<dyn Handler>> {
        self.entry(kind).map(|(_, h)| h.clone())
    }

    /// The pattern that serves `kind` (the one [`Registry::get`] picks), as registered,
    /// with its handler: the worker labels its metrics by the pattern, so their labels
    /// are as many as the registry's patterns, whatever kinds arrive.
    pub(crate) fn entry(&self, kind: &str) -> Option<&(KindPattern, Arc<dyn Handler>)> {
        let rank = |p: &KindPattern| match p {
            KindPattern::Exact(_) => usize::MAX,
            KindPattern::Prefix(prefix) => prefix.len(),
            KindPattern::Any => 0,
        };
        self.entries
            .iter()
            .filter(|(p, _)| p.matches(kind))
            .max_by_key(|(p, _)| rank(p))
    }
}

/// Errors reporting can hit, for the runtime's own use.
pub(crate) fn is_lease_lost(e: &ClientError) -> bool {
    matches!(
        e.code(),
        Some(ErrorCode::LeaseLost) | Some(ErrorCode::NotFound)
    )
}
