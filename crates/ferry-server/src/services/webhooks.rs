//! Webhook deliveries, driven by the event record. Each pass (on the leader):
//!
//! 1. **Dispatch**: for every webhook, the events after its cursor that it subscribes to
//!    become deliveries, and the cursor moves past every event read (wanted or not), in one
//!    transaction (one delivery per webhook and event, ever).
//! 2. **Send**: due deliveries are POSTed (each the first pending one of its job, so a job's
//!    events arrive in order), signed, with a timeout; a `2xx` marks one delivered, anything
//!    else schedules a retry with exponential backoff until `retry_for` has passed since it
//!    was made, then it is `dead` (and can be replayed).
//!
//! A crash at any point leaves a delivery pending, so it is sent again: at least once.
//! Receivers deduplicate with `Ferry-Id`.

use std::{sync::Arc, time::Duration};
use tracing::Instrument;

use chrono::{DateTime, Utc};
use ferry_core::KindPattern;
use ferry_store::{DeliveryOutcome, DueDelivery, EventFilter, StoreError};
use ring::hmac;

use super::Service;
use crate::Queue;

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// How often deliveries are dispatched and sent (default 250 ms).
    pub interval: Duration,
    /// The first retry's delay; each next one doubles, up to an hour (default 1 s).
    pub backoff_base: Duration,
    /// How long a delivery is retried before it is dead (default 24 h).
    pub retry_for: Duration,
    /// How long a receiver may take to answer (default 10 s).
    pub timeout: Duration,
    /// Deliveries sent at once (default 16).
    pub parallel: u32,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(250),
            backoff_base: Duration::from_secs(1),
            retry_for: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            parallel: 16,
        }
    }
}

/// `v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`, the `Ferry-Signature` header.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1={}", hex::encode(ctx.sign().as_ref()))
}

/// What seals a webhook's secret.
pub fn secret_context(tenant: &str, webhook: ferry_core::WebhookId) -> String {
    format!("{tenant}/webhook/{webhook}")
}

#[derive(Debug, Clone)]
pub struct WebhookSender {
    queue: Arc<Queue>,
    /// A client per egress policy (the tenants'), redirects not followed.
    http: Arc<ferry_egress::Clients>,
}

impl WebhookSender {
    pub fn new(queue: Arc<Queue>) -> Self {
        let timeout = queue.config().services.webhooks.timeout;
        let http = Arc::new(ferry_egress::Clients::new(
            move || {
                reqwest::Client::builder()
                    .timeout(timeout)
                    .user_agent(concat!("ferry-webhooks/", env!("CARGO_PKG_VERSION")))
            },
            false,
        ));
        Self { queue, http }
    }

    async fn dispatch(&self) -> Result<u64, StoreError> {
        let mut made = 0;
        for hook in self.queue.store().webhook_list(None).await? {
            match self.dispatch_one(&hook).await {
                Ok(n) => made += n,
                // The database is away: the next pass tries every webhook again.
                Err(e @ (StoreError::Unavailable(_) | StoreError::Storage(_))) => return Err(e),
                // One webhook the database cannot serve (a filter too large to run, say)
                // never stops the others' deliveries.
                Err(e) => {
                    tracing::error!(webhook_id = %hook.id, error = %e, "cannot dispatch this webhook's events; skipping it");
                }
            }
        }
        Ok(made)
    }

    /// Turns one webhook's new events into deliveries; answers how many.
    async fn dispatch_one(&self, hook: &ferry_store::WebhookRow) -> Result<u64, StoreError> {
        let store = self.queue.store();
        let filter = EventFilter {
            job: None,
            kinds: hook
                .kinds
                .iter()
                .filter_map(|k| k.parse::<KindPattern>().ok())
                .collect(),
            types: hook.events.clone(),
        };
        // The cursor moves past every event read, wanted or not, so a webhook that
        // rarely matches reads only what is new on each pass.
        let page = store
            .events_read(
                &hook.tenant_id,
                &filter,
                hook.cursor,
                500,
                ferry_store::EVENTS_SCAN,
            )
            .await?;
        if page.next_after == hook.cursor {
            return Ok(0);
        }
        let pairs: Vec<_> = page.events.iter().map(|e| (e.id, e.job_id)).collect();
        let made = store
            .webhook_dispatch(
                hook.id,
                hook.cursor,
                page.next_after,
                &pairs,
                self.queue.now(),
            )
            .await?;
        Ok(if made { pairs.len() as u64 } else { 0 })
    }

    async fn send(&self, d: DueDelivery) -> Result<(), StoreError> {
        let store = self.queue.store();
        let config = &self.queue.config().services.webhooks;
        let now = self.queue.now();
        let attempts = d.attempts + 1;
        let answer = match store.event_get(d.event_id).await? {
            // The event was pruned before it could be delivered.
            None => Err((None, "the event is no longer in the record".to_owned())),
            Some(event) => match self.queue.config().sealing_key.open(
                &secret_context(&d.tenant_id, d.webhook_id),
                &d.sealed_secret,
            ) {
                Err(e) => Err((None, e.to_string())),
                Ok(secret) => {
                    let policy = self.queue.egress_of(&d.tenant_id).await?;
                    let body = serde_json::to_vec(&event).unwrap_or_default();
                    let timestamp = now.timestamp();
                    let client = self.http.get(&policy).map_err(|e| (None, e.to_string()));
                    let url = reqwest::Url::parse(&d.url).map_err(|e| (None, e.to_string()));
                    let checked = url.and_then(|u| {
                        ferry_egress::check_url(&policy, &u)
                            .map(|()| u)
                            .map_err(|denied| (None, denied.to_string()))
                    });
                    let (client, url) = match (client, checked) {
                        (Ok(c), Ok(u)) => (c, u),
                        (Err(e), _) | (_, Err(e)) => {
                            return self.record(d, attempts, now, Err(e)).await;
                        }
                    };
                    let span = self.delivery_span(&d, &event, attempts).await;
                    let sent = client
                        .post(url)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .header("Ferry-Id", d.id.to_string())
                        .header("Ferry-Timestamp", timestamp.to_string())
                        .header("Ferry-Signature", sign(&secret, timestamp, &body))
                        .body(body)
                        .send()
                        .instrument(span.clone())
                        .await;
                    if let Ok(r) = &sent {
                        span.record("status", r.status().as_u16());
                    }
                    match sent {
                        Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
                        Ok(r) => Err((Some(r.status().as_u16()), format!("HTTP {}", r.status()))),
                        Err(e) if e.is_timeout() => Err((
                            None,
                            format!("no answer within {} ms", config.timeout.as_millis()),
                        )),
                        Err(e) => Err((
                            None,
                            ferry_egress::denial_of(&e)
                                .map_or_else(|| e.to_string(), |denied| denied.to_string()),
                        )),
                    }
                }
            },
        };
        self.record(d, attempts, now, answer).await
    }

    /// The span of one delivery attempt: in the trace of the event's job when traces are
    /// exported (its trace read from the job only then).
    async fn delivery_span(
        &self,
        d: &DueDelivery,
        event: &ferry_core::api::Event,
        attempt: u32,
    ) -> tracing::Span {
        let span = tracing::info_span!(
            "webhook",
            delivery = %d.id,
            webhook_id = %d.webhook_id,
            event_type = %event.event_type,
            job_id = tracing::field::Empty,
            attempt,
            status = tracing::field::Empty
        );
        if let (true, Some(job)) = (ferry_telemetry::exporting(), event.job_id) {
            span.record("job_id", tracing::field::display(job));
            if let Ok(heads) = self.queue.store().job_heads(&[job]).await {
                let trace = heads.into_iter().next().and_then(|h| h.traceparent);
                ferry_telemetry::continue_trace(&span, trace.as_ref());
            }
        }
        span
    }

    /// Records one delivery attempt's answer.
    async fn record(
        &self,
        d: DueDelivery,
        attempts: u32,
        now: chrono::DateTime<chrono::Utc>,
        answer: Result<u16, (Option<u16>, String)>,
    ) -> Result<(), StoreError> {
        let store = self.queue.store();
        let config = &self.queue.config().services.webhooks;
        let outcome = match answer {
            Ok(status) => DeliveryOutcome {
                status: "delivered",
                attempts,
                next_at: now,
                last_status: Some(status),
                last_error: None,
                delivered_at: Some(now),
            },
            Err((status, error)) => {
                let next_at = now + backoff(config.backoff_base, attempts);
                let give_up = d.created_at
                    + chrono::Duration::from_std(config.retry_for).unwrap_or(chrono::Duration::MAX);
                tracing::info!(delivery = %d.id, url = %d.url, attempts, error = %error, "webhook delivery failed");
                DeliveryOutcome {
                    status: if next_at > give_up { "dead" } else { "pending" },
                    attempts,
                    next_at,
                    last_status: status,
                    last_error: Some(error),
                    delivered_at: None,
                }
            }
        };
        self.queue.metrics().webhook_delivery(match outcome.status {
            "pending" => "retrying",
            other => other,
        });
        store.delivery_record(d.id, &outcome).await
    }
}

/// `base · 2^(attempts−1)`, at most an hour.
fn backoff(base: Duration, attempts: u32) -> chrono::Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    let delay = base.saturating_mul(factor).min(Duration::from_secs(3600));
    chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1))
}

impl Service for WebhookSender {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    fn queue(&self) -> &Queue {
        &self.queue
    }

    fn interval(&self) -> Duration {
        self.queue.config().services.webhooks.interval
    }

    async fn run_once(&self) -> Result<u64, StoreError> {
        self.dispatch().await?;
        let now: DateTime<Utc> = self.queue.now();
        let parallel = self.queue.config().services.webhooks.parallel;
        let due = self.queue.store().deliveries_due(now, parallel).await?;
        let n = due.len() as u64;
        let results = futures_util::future::join_all(due.into_iter().map(|d| self.send(d))).await;
        for r in results {
            r?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // Known answer: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, b"key"),
                b"The quick brown fox jumps over the lazy dog"
            )
            .as_ref(),
            hex::decode("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
                .expect("hex")
                .as_slice()
        );
        let a = sign(b"secret", 1_700_000_000, b"{}");
        assert!(a.starts_with("v1=") && a.len() == 3 + 64);
        assert_ne!(a, sign(b"secret", 1_700_000_001, b"{}"));
        assert_eq!(
            backoff(Duration::from_secs(1), 1),
            chrono::Duration::seconds(1)
        );
        assert_eq!(
            backoff(Duration::from_secs(1), 4),
            chrono::Duration::seconds(8)
        );
        assert_eq!(
            backoff(Duration::from_secs(1), 40),
            chrono::Duration::hours(1)
        );
    }
}
