//! Handlers for tests: run real jobs through a real worker and check what happened.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use ferry_worker::{Handler, HandlerError, JobContext};
use serde_json::{Value, json};

/// Counts how often each job ran, and answers `{"attempt", "id"}` so a test can check that
/// the stored result is the one of the attempt that completed.
#[derive(Debug, Clone, Default)]
pub struct CountRuns {
    runs: Arc<Mutex<HashMap<String, u32>>>,
}

impl CountRuns {
    /// How many times each job (by id) ran so far.
    pub fn runs(&self) -> HashMap<String, u32> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl Handler for CountRuns {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        *self
            .runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ctx.id.to_string())
            .or_default() += 1;
        // A short pause, so jobs overlap as real ones do.
        tokio::task::yield_now().await;
        Ok(json!({"attempt": ctx.attempt, "id": ctx.id.to_string()}))
    }
}
