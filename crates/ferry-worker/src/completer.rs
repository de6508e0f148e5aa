//! Coalesces completions: results of jobs that finish close together go to the
//! server in one `POST /v1/worker/complete` (one transaction there). Each batch is sent
//! by its own task (a few at once), so one that is refused or retried never holds up
//! the others; a batch the server keeps refusing is split until the refused completion
//! stands alone, and a completion the server refuses outright (`4xx`: a result it cannot
//! store) fails its job with `RESULT_REFUSED` instead of leaving it to its lease. Sends
//! are retried while the server is unreachable; the lease token makes a repeat harmless.

use std::{sync::Arc, time::Duration};

use ferry_client::Client;
use ferry_core::{
    JobId,
    api::{BatchCompleteEntry, FailError},
    error::job_codes,
};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc, oneshot};

enum Msg {
    Complete(BatchCompleteEntry),
    Flush(oneshot::Sender<()>),
}

#[derive(Debug, Clone)]
pub(crate) struct Completer {
    tx: mpsc::UnboundedSender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl Completer {
    pub(crate) fn spawn(client: Client, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(client, rx, max_batch.max(1)));
        Self { tx }
    }

    pub(crate) fn complete(&self, id: JobId, lease: String, result: Value) {
        let _ = self
            .tx
            .send(Msg::Complete(BatchCompleteEntry { id, lease, result }));
    }

    /// Waits until everything queued so far was sent.
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// Batches sent at once; more wait for a free slot.
const IN_FLIGHT: u32 = 4;
/// How long one completion keeps being retried while the server cannot take it (about
/// a lease: past it the job is retried anyway).
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

async fn run(client: Client, mut rx: mpsc::UnboundedReceiver<Msg>, max_batch: usize) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT as usize));
    let mut batch = Vec::with_capacity(max_batch);
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        // A free slot first, then the batch: what queues while every slot is busy goes
        // out in one batch instead of one each.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut next = Some(first);
        // Take whatever else is already queued, up to a batch.
        while let Some(msg) = next {
            match msg {
                Msg::Complete(entry) => batch.push(entry),
                Msg::Flush(done) => flushes.push(done),
            }
            next = if batch.len() < max_batch {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if !batch.is_empty() {
            let client = client.clone();
            let batch = std::mem::take(&mut batch);
            tokio::spawn(async move {
                send(&client, batch).await;
                drop(slot);
            });
        }
        for done in flushes.drain(..) {
            // Every slot free: everything queued before the flush was sent.
            let slots = slots.clone();
            tokio::spawn(async move {
                let _all = slots.acquire_many(IN_FLIGHT).await;
                let _ = done.send(());
            });
        }
    }
}

/// What became of one try.
enum Sent {
    Done,
    /// Worth another try later.
    Transient(ferry_client::ClientError),
    /// Refused as a whole (`4xx`).
    Refused(ferry_client::ClientError),
}

async fn try_send(client: &Client, batch: &[BatchCompleteEntry]) -> Sent {
    match client.complete_batch(batch.to_vec()).await {
        Ok(answer) => {
            for r in answer.results.iter().filter(|r| !r.ok) {
                let why = r.error.as_ref().map(|e| e.message.as_str()).unwrap_or("");
                tracing::warn!(job_id = %r.id, why, "completion not applied");
            }
            Sent::Done
        }
        Err(e) if e.is_transient() => Sent::Transient(e),
        Err(e) => Sent::Refused(e),
    }
}

/// Sends `batch`; a part the server will not take is split off until each refused
/// completion is on its own.
async fn send(client: &Client, batch: Vec<BatchCompleteEntry>) {
    send_part(client, batch, tokio::time::Instant::now() + GIVE_UP_AFTER).await;
}

/// Sends one part; when it is split, both halves go on at once, so a completion that is
/// retried never delays the ones split away from it.
fn send_part(
    client: &Client,
    part: Vec<BatchCompleteEntry>,
    give_up: tokio::time::Instant,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
    Box::pin(async move {
        let mut delay = Duration::from_millis(100);
        let mut tries = 0;
        loop {
            tries += 1;
            let outcome = try_send(client, &part).await;
            match outcome {
                Sent::Done => return,
                // A batch that keeps failing may hold one completion the server chokes
                // on: halves go on alone.
                Sent::Refused(_) | Sent::Transient(_)
                    if part.len() > 1 && (tries >= 2 || matches!(outcome, Sent::Refused(_))) =>
                {
                    let mut first = part;
                    let second = first.split_off(first.len() / 2);
                    tokio::join!(
                        send_part(client, first, give_up),
                        send_part(client, second, give_up)
                    );
                    return;
                }
                Sent::Refused(e) => {
                    if let Some(entry) = part.first() {
                        refused(client, entry, &e).await;
                    }
                    return;
                }
                Sent::Transient(e) if tokio::time::Instant::now() >= give_up => {
                    tracing::error!(error = %e, n = part.len(), "completions not delivered; the lease rescuer will retry these jobs");
                    return;
                }
                Sent::Transient(e) => {
                    tracing::warn!(error = %e, n = part.len(), "cannot send completions; retrying");
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    })
}

/// The server refused a completion outright (it cannot store the result, say): the job
/// fails with the server's reason rather than waiting for its lease to run out, again
/// and again.
async fn refused(client: &Client, entry: &BatchCompleteEntry, e: &ferry_client::ClientError) {
    tracing::error!(job_id = %entry.id, error = %e, "completion refused; failing the job");
    let error = FailError {
        code: job_codes::RESULT_REFUSED.to_owned(),
        message: format!("the server refused the result: {e}"),
        retryable: false,
        retry_after_ms: None,
    };
    if let Err(e) = client.fail(entry.id, &entry.lease, error).await {
        tracing::warn!(job_id = %entry.id, error = %e, "cannot fail the job whose result was refused");
    }
}
