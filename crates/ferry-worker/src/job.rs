//! One claimed job from start to report: run the handler, heartbeat while it runs,
//! stop it on cancel, deadline, lost lease or shutdown, and report the outcome
//! (completions go through the coalescing completer; failures are sent directly).

use crate::metrics::Ended;
use std::{
    panic::AssertUnwindSafe,
    sync::{Arc, atomic::AtomicU64},
    time::Duration,
};

use ferry_client::Client;
use ferry_core::{
    ErrorCode,
    api::{ClaimedJob, FailError},
    error::job_codes,
};
use futures_util::FutureExt;
use serde_json::Value;

use crate::{
    Handler,
    completer::Completer,
    handler::{HandlerError, JobContext, Reporter, Stop, StopReason, is_lease_lost},
};

pub(crate) async fn run_job(
    client: Client,
    handler: Option<Arc<dyn Handler>>,
    job: ClaimedJob,
    stop: Stop,
    completer: Completer,
    stop_grace: Duration,
) -> Ended {
    let id = job.id;
    let lease = job.lease.clone();
    let Some(handler) = handler else {
        let error = HandlerError::fatal(
            job_codes::NO_HANDLER,
            format!("this worker has no handler for kind {}", job.kind),
        );
        report_failure(&client, &job, &error).await;
        return Ended::Failed;
    };
    let deadline = job.deadline;
    let redactor = crate::Redactor::default();
    let ctx = JobContext {
        id,
        kind: job.kind.clone(),
        payload: job.payload.clone(),
        labels: job.labels.clone(),
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        deadline,
        input: job.input.clone(),
        egress: job.egress.clone(),
        redactor: redactor.clone(),
        reporter: Some(Reporter {
            client: client.clone(),
            id,
            lease: lease.clone(),
            next_item: Arc::new(AtomicU64::new(0)),
            send_lock: Arc::default(),
            give_up_after: Duration::from_millis(job.lease_ms.max(5_000)),
        }),
        stop: stop.clone(),
    };
    tracing::debug!(job_id = %id, kind = %job.kind, attempt = job.attempt, "job started");
    let mut work = AssertUnwindSafe(handler.run(ctx)).catch_unwind().boxed();
    let beat_every = Duration::from_millis((job.lease_ms / 3).max(100));
    let mut beats = tokio::time::interval_at(tokio::time::Instant::now() + beat_every, beat_every);
    let until_deadline = (deadline - chrono::Utc::now()).to_std().unwrap_or_default();
    let deadline_timer = tokio::time::sleep(until_deadline);
    tokio::pin!(deadline_timer);

    // Run until the handler returns or is told to stop.
    let finished = loop {
        tokio::select! {
            out = &mut work => break Some(out),
            _ = stop.token().cancelled() => break None,
            _ = beats.tick() => heartbeat(&client, &job, &stop).await,
            _ = &mut deadline_timer => stop.stop(StopReason::Deadline),
        }
    };
    // Told to stop: give the handler a moment to wind down, then drop it.
    let finished = match finished {
        Some(out) => Some(out),
        None => tokio::time::timeout(stop_grace, &mut work).await.ok(),
    };
    let reason = stop.reason();
    if reason == Some(StopReason::LeaseLost) {
        tracing::warn!(job_id = %id, "lease lost; the job's outcome is not reported");
        return Ended::LeaseLost;
    }
    let outcome: Result<Value, HandlerError> = match finished {
        // Items were refused or lost: a result without them would be a lie, however it
        // ended.
        Some(Ok(Ok(_))) if stop.items_lost() => Err(stop
            .error()
            .unwrap_or_else(|| StopReason::ItemsUndelivered.error())),
        Some(Ok(Ok(value))) => Ok(value),
        // A handler that fails after being told to stop failed because of the stop.
        Some(Ok(Err(e))) => Err(stop.error().unwrap_or(e)),
        Some(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(HandlerError::retryable(
                job_codes::HANDLER_PANIC,
                format!("the handler panicked: {what}"),
            ))
        }
        None => Err(stop.error().unwrap_or_else(|| StopReason::Shutdown.error())),
    };
    // No secret the attempt used leaves in its result or error.
    match outcome {
        Ok(result) => {
            completer.complete(id, lease, redactor.value(result));
            Ended::Completed
        }
        Err(mut error) => {
            error.message = redactor.text(&error.message);
            report_failure(&client, &job, &error).await;
            Ended::Failed
        }
    }
}

async fn heartbeat(client: &Client, job: &ClaimedJob, stop: &Stop) {
    match client.heartbeat(job.id, &job.lease).await {
        Ok(status) if status.cancel => stop.stop(StopReason::Cancelled),
        Ok(_) => {}
        Err(e) if is_lease_lost(&e) => stop.stop(StopReason::LeaseLost),
        // The next beat tries again; the lease is long enough for a few misses.
        Err(e) => tracing::warn!(job_id = %job.id, error = %e, "heartbeat failed"),
    }
}

/// Sends `fail`, retrying while the server is unreachable (the lease token makes a
/// repeat harmless), for at most about a lease's length.
async fn report_failure(client: &Client, job: &ClaimedJob, error: &HandlerError) {
    let body = FailError {
        code: error.code.clone(),
        message: error.message.clone(),
        retryable: error.retryable,
        retry_after_ms: error.retry_after.map(|d| d.as_millis() as u64),
    };
    let give_up = tokio::time::Instant::now() + Duration::from_millis(job.lease_ms.max(5_000));
    let mut delay = Duration::from_millis(200);
    loop {
        match client.fail(job.id, &job.lease, body.clone()).await {
            Ok(after) => {
                tracing::info!(job_id = %job.id, code = %error.code, status = %after.status, "attempt failed");
                return;
            }
            Err(e) if e.code() == Some(ErrorCode::LeaseLost) => {
                tracing::warn!(job_id = %job.id, "lease lost before the failure was reported");
                return;
            }
            Err(e) if e.is_transient() && tokio::time::Instant::now() < give_up => {
                tracing::warn!(job_id = %job.id, error = %e, "cannot report failure; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e, "failure report not delivered; the lease rescuer will retry the job");
                return;
            }
        }
    }
}
