//! A page's network log, kept while a job runs: every request with its status, type, size
//! and timing, as a HAR-like JSON artifact when the job fails; and the main document's
//! answer headers (for `Retry-After`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chromiumoxide::{
    Page,
    cdp::browser_protocol::network::{
        EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent, EventResponseReceived,
    },
};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// The most requests one log keeps (a page polling forever must not grow it without bound).
const MAX_ENTRIES: usize = 2_000;

/// One request as the log keeps it.
#[derive(Debug, Default)]
struct Entry {
    url: String,
    method: String,
    kind: String,
    started: f64,
    status: Option<i64>,
    mime_type: Option<String>,
    /// `Retry-After`, kept only for document answers.
    retry_after: Option<String>,
    size: Option<f64>,
    finished: Option<f64>,
    error: Option<String>,
}

#[derive(Debug, Default)]
struct Log {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
    dropped: u64,
}

impl Log {
    fn entry(&mut self, id: &str) -> Option<&mut Entry> {
        let i = *self.index.get(id)?;
        self.entries.get_mut(i)
    }
}

/// Records one page's requests until dropped.
pub(crate) struct NetworkLog {
    log: Arc<Mutex<Log>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for NetworkLog {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock(log: &Mutex<Log>) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

impl NetworkLog {
    /// Starts recording `page`'s requests (the page's Network domain is on by default).
    pub(crate) async fn start(page: &Page) -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let mut tasks = Vec::new();
        macro_rules! listen {
            ($event:ty, $apply:expr) => {
                if let Ok(mut events) = page.event_listener::<$event>().await {
                    let log = log.clone();
                    tasks.push(tokio::spawn(async move {
                        while let Some(event) = events.next().await {
                            let apply: fn(&mut Log, &$event) = $apply;
                            apply(&mut lock(&log), &event);
                        }
                    }));
                }
            };
        }
        listen!(EventRequestWillBeSent, |log, e| {
            if log.entries.len() >= MAX_ENTRIES {
                log.dropped += 1;
                return;
            }
            let i = log.entries.len();
            log.index.insert(e.request_id.inner().clone(), i);
            log.entries.push(Entry {
                url: e.request.url.clone(),
                method: e.request.method.clone(),
                kind: e
                    .r#type
                    .as_ref()
                    .map_or(String::new(), |t| t.as_ref().to_owned()),
                started: *e.timestamp.inner(),
                ..Entry::default()
            });
        });
        listen!(EventResponseReceived, |log, e| {
            if let Some(entry) = log.entry(e.request_id.inner()) {
                entry.status = Some(e.response.status);
                entry.mime_type = Some(e.response.mime_type.clone());
                entry.kind = e.r#type.as_ref().to_owned();
                if entry.kind == "Document" {
                    entry.retry_after = e.response.headers.inner().as_object().and_then(|h| {
                        h.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                            .and_then(|(_, v)| v.as_str().map(str::to_owned))
                    });
                }
            }
        });
        listen!(EventLoadingFinished, |log, e| {
            if let Some(entry) = log.entry(e.request_id.inner()) {
                entry.size = Some(e.encoded_data_length);
                entry.finished = Some(*e.timestamp.inner());
            }
        });
        listen!(EventLoadingFailed, |log, e| {
            if let Some(entry) = log.entry(e.request_id.inner()) {
                entry.error = Some(e.error_text.clone());
                entry.finished = Some(*e.timestamp.inner());
            }
        });
        Self { log, tasks }
    }

    /// Requests still waiting for their answer.
    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.log)
            .entries
            .iter()
            .filter(|e| e.finished.is_none())
            .count()
    }

    /// How many requests were seen.
    pub(crate) fn seen(&self) -> usize {
        lock(&self.log).entries.len()
    }

    /// `Retry-After` of the latest document answer with this status, in seconds.
    pub(crate) fn retry_after(&self, status: u16) -> Option<u64> {
        let log = lock(&self.log);
        log.entries
            .iter()
            .rev()
            .find(|e| e.kind == "Document" && e.status == Some(i64::from(status)))?
            .retry_after
            .as_deref()
            .and_then(|v| v.trim().parse().ok())
    }

    /// The log as JSON: `{"entries": [{url, method, type, status, mime_type, size,
    /// started_ms, duration_ms, error}], "dropped": n}`, times relative to the first request.
    pub(crate) fn to_json(&self) -> Value {
        let log = lock(&self.log);
        let origin = log.entries.first().map_or(0.0, |e| e.started);
        let entries: Vec<Value> = log
            .entries
            .iter()
            .map(|e| {
                json!({
                    "url": e.url,
                    "method": e.method,
                    "type": e.kind,
                    "status": e.status,
                    "mime_type": e.mime_type,
                    "size": e.size,
                    "started_ms": ((e.started - origin) * 1000.0).round(),
                    "duration_ms": e.finished.map(|f| ((f - e.started) * 1000.0).round()),
                    "error": e.error,
                })
            })
            .collect();
        json!({"entries": entries, "dropped": log.dropped})
    }
}
