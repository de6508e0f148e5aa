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

#[derive(Debug, Default)]
struct Log {
    entries: Vec<Value>,
    index: HashMap<String, usize>,
    dropped: u64,
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

fn id_of(event: &Value) -> String {
    event["requestId"].as_str().unwrap_or_default().to_owned()
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
                            let event = serde_json::to_value(&*event).unwrap_or(Value::Null);
                            let apply: fn(&mut Log, Value) = $apply;
                            apply(&mut lock(&log), event);
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
            let id = id_of(&e);
            log.index.insert(id, log.entries.len());
            log.entries.push(json!({
                "url": e["request"]["url"],
                "method": e["request"]["method"],
                "type": e["type"],
                "started": e["timestamp"],
                "status": null,
            }));
        });
        listen!(EventResponseReceived, |log, e| {
            if let Some(&i) = log.index.get(&id_of(&e)) {
                let entry = &mut log.entries[i];
                entry["status"] = e["response"]["status"].clone();
                entry["mime_type"] = e["response"]["mimeType"].clone();
                entry["headers"] = e["response"]["headers"].clone();
                entry["type"] = e["type"].clone();
            }
        });
        listen!(EventLoadingFinished, |log, e| {
            if let Some(&i) = log.index.get(&id_of(&e)) {
                let entry = &mut log.entries[i];
                entry["size"] = e["encodedDataLength"].clone();
                entry["finished"] = e["timestamp"].clone();
            }
        });
        listen!(EventLoadingFailed, |log, e| {
            if let Some(&i) = log.index.get(&id_of(&e)) {
                let entry = &mut log.entries[i];
                entry["error"] = e["errorText"].clone();
                entry["finished"] = e["timestamp"].clone();
            }
        });
        Self { log, tasks }
    }

    /// Requests still waiting for their answer.
    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.log)
            .entries
            .iter()
            .filter(|e| e.get("finished").is_none())
            .count()
    }

    /// How many requests were seen.
    pub(crate) fn seen(&self) -> usize {
        lock(&self.log).entries.len()
    }

    /// `Retry-After` of the latest document answer with this status, in seconds.
    pub(crate) fn retry_after(&self, status: u16) -> Option<u64> {
        let log = lock(&self.log);
        let entry =
            log.entries.iter().rev().find(|e| {
                e["type"] == "Document" && e["status"].as_u64() == Some(u64::from(status))
            })?;
        let headers = entry["headers"].as_object()?;
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| v.as_str())
            .and_then(|v| v.trim().parse().ok())
    }

    /// The log as JSON: `{"entries": [{url, method, type, status, mime_type, size,
    /// duration_ms, error}], "dropped": n}`, timings relative to the first request.
    pub(crate) fn to_json(&self) -> Value {
        let log = lock(&self.log);
        let origin = log
            .entries
            .first()
            .and_then(|e| e["started"].as_f64())
            .unwrap_or(0.0);
        let entries: Vec<Value> = log
            .entries
            .iter()
            .map(|e| {
                let started = e["started"].as_f64().unwrap_or(origin);
                let duration = e["finished"]
                    .as_f64()
                    .map(|f| ((f - started) * 1000.0).round());
                json!({
                    "url": e["url"],
                    "method": e["method"],
                    "type": e["type"],
                    "status": e["status"],
                    "mime_type": e.get("mime_type").cloned().unwrap_or(Value::Null),
                    "size": e.get("size").cloned().unwrap_or(Value::Null),
                    "started_ms": ((started - origin) * 1000.0).round(),
                    "duration_ms": duration,
                    "error": e.get("error").cloned().unwrap_or(Value::Null),
                })
            })
            .collect();
        json!({"entries": entries, "dropped": log.dropped})
    }
}
