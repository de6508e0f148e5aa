//! The server's spans in a job's trace (issue #18). A submit runs in a `submit` span that
//! continues the caller's W3C `traceparent`; its context is stored with the job (the
//! caller's own, when traces are not exported here), so the claim, the worker's attempt
//! and the attempt's end all hang under it, on whichever instance they happen. The claim
//! and the end of an attempt are marks: spans of no length, made only for jobs with a
//! trace.

use ferry_core::{TraceParent, api::ClaimedJob};
use ferry_store::JobHead;
use tracing::Span;

/// The span a submit of `jobs` runs in, continuing the caller's trace, and the
/// `traceparent` its jobs keep: the span's, or without an exporter the caller's.
pub(crate) fn submit_span(
    tenant: &str,
    jobs: usize,
    caller: Option<&TraceParent>,
) -> (Span, Option<TraceParent>) {
    let span = tracing::info_span!(
        "submit",
        tenant = %tenant,
        jobs,
        job_id = tracing::field::Empty
    );
    ferry_telemetry::continue_trace(&span, caller);
    let kept = ferry_telemetry::traceparent_of(&span).or_else(|| caller.cloned());
    (span, kept)
}

/// Marks the claim of each job with a trace.
pub(crate) fn claimed(jobs: &[ClaimedJob], tenant: &str, worker: &str) {
    for job in jobs {
        let Some(trace) = &job.traceparent else {
            continue;
        };
        let span = tracing::info_span!(
            "claim",
            job_id = %job.id,
            kind = %job.kind,
            attempt = job.attempt,
            tenant = %tenant,
            worker = %worker
        );
        ferry_telemetry::continue_trace(&span, Some(trace));
    }
}

/// Marks the end of an attempt the server ended (a silent worker's lease, a passed
/// deadline), with the error code it recorded.
pub(crate) fn rescued(t: &ferry_store::Transition, code: &str) {
    let Some(trace) = &t.traceparent else {
        return;
    };
    let span = tracing::info_span!(
        "rescue",
        job_id = %t.id,
        kind = %t.kind,
        attempt = t.attempt,
        tenant = %t.tenant_id,
        to = %t.to,
        error_code = %code,
        otel.status_code = "ERROR"
    );
    ferry_telemetry::continue_trace(&span, Some(trace));
}

/// Marks the end of a job's attempt as its worker reported it: `completed`, or the state
/// a failure left it in (`retrying`, `failed`, `cancelled`) with the error's code.
pub(crate) fn attempt_ended(head: &JobHead, outcome: &str, code: &str) {
    let Some(trace) = &head.traceparent else {
        return;
    };
    let span = if outcome == "completed" {
        tracing::info_span!("complete", job_id = %head.id, kind = %head.kind, tenant = %head.tenant_id)
    } else {
        tracing::info_span!(
            "fail",
            job_id = %head.id,
            kind = %head.kind,
            tenant = %head.tenant_id,
            outcome = %outcome,
            error_code = %code,
            otel.status_code = "ERROR"
        )
    };
    ferry_telemetry::continue_trace(&span, Some(trace));
}
