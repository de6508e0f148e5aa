//! Coalesces completions: results of jobs that finish close together go to the
//! server in one `POST /v1/worker/complete` (one transaction there). Sends are
//! retried while the server is unreachable; the lease token makes a repeat harmless.

use std::time::Duration;

use ferry_client::Client;
use ferry_core::{JobId, api::BatchCompleteEntry};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

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

async fn run(client: Client, mut rx: mpsc::UnboundedReceiver<Msg>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
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
            send(&client, std::mem::take(&mut batch)).await;
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn send(client: &Client, batch: Vec<BatchCompleteEntry>) {
    let mut delay = Duration::from_millis(100);
    for _ in 0..12 {
        match client.complete_batch(batch.clone()).await {
            Ok(answer) => {
                for r in answer.results.iter().filter(|r| !r.ok) {
                    let why = r.error.as_ref().map(|e| e.message.as_str()).unwrap_or("");
                    tracing::warn!(job_id = %r.id, why, "completion not applied");
                }
                return;
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, n = batch.len(), "cannot send completions; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(error = %e, n = batch.len(), "completions refused");
                return;
            }
        }
    }
    tracing::error!(
        n = batch.len(),
        "completions not delivered; the lease rescuer will retry these jobs"
    );
}
