//! `ferry.noop`: completes at once with `{}`. Payload options for tests and
//! benchmarks: `sleep_ms` (wait first, stopping early when cancelled), `fail` (fail
//! with this code), `items` (stream this many partial items first).

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Handler, HandlerError, JobContext};

#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoopPayload {
    #[serde(default)]
    sleep_ms: u64,
    #[serde(default)]
    fail: Option<String>,
    #[serde(default)]
    items: u32,
}

#[async_trait::async_trait]
impl Handler for Noop {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        let payload: NoopPayload = if ctx.payload.as_object().is_some_and(|o| o.is_empty()) {
            NoopPayload::default()
        } else {
            ctx.payload_as()?
        };
        if payload.items > 0 {
            let items = (0..payload.items).map(|i| json!({"i": i})).collect();
            ctx.push_items(items).await;
        }
        if payload.sleep_ms > 0 {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(payload.sleep_ms)) => {}
                _ = ctx.cancelled() => return Err(HandlerError::retryable("STOPPED", "stopped while sleeping")),
            }
        }
        if let Some(code) = payload.fail {
            return Err(HandlerError::retryable(&code, "asked to fail"));
        }
        Ok(json!({}))
    }
}
