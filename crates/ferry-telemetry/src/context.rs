//! A job's trace between processes: a [`TraceParent`] made into the parent of a `tracing`
//! span, and a span's own context written back as one.

use ferry_core::TraceParent;
use opentelemetry::{
    Context,
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The remote span context `traceparent` names, as an OpenTelemetry parent context.
pub fn remote_context(traceparent: &TraceParent) -> Context {
    let trace_id = TraceId::from_hex(traceparent.trace_id()).unwrap_or(TraceId::INVALID);
    let span_id = SpanId::from_hex(traceparent.span_id()).unwrap_or(SpanId::INVALID);
    let flags = if traceparent.sampled() {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    Context::new().with_remote_span_context(SpanContext::new(
        trace_id,
        span_id,
        flags,
        true,
        TraceState::default(),
    ))
}

/// Makes `span` a child of the span `traceparent` names (in another process, or stored
/// with a job). Nothing happens without a trace, or when traces are not exported.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&TraceParent>) {
    if let Some(traceparent) = traceparent
        && !span.is_disabled()
    {
        // Err: traces are not exported (no OpenTelemetry layer), or the span was entered
        // already; either way there is nothing to continue.
        let _ = span.set_parent(remote_context(traceparent));
    }
}

/// `span`'s own context as a `traceparent`, for what continues its trace elsewhere; `None`
/// when traces are not exported.
pub fn traceparent_of(span: &tracing::Span) -> Option<TraceParent> {
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    let otel = cx.span();
    let sc = otel.span_context();
    if !sc.is_valid() {
        return None;
    }
    TraceParent::from_parts(
        &sc.trace_id().to_string(),
        &sc.span_id().to_string(),
        sc.is_sampled(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_becomes_a_remote_parent_with_its_ids_and_flag() {
        let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        let cx = remote_context(&tp);
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_remote());
        assert!(sc.is_sampled());
        assert_eq!(sc.trace_id().to_string(), tp.trace_id());
        assert_eq!(sc.span_id().to_string(), tp.span_id());
    }

    #[test]
    fn without_an_exporter_a_span_has_no_traceparent_and_continuing_is_harmless() {
        let span = tracing::info_span!("unexported");
        let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        continue_trace(&span, tp.as_ref());
        assert_eq!(traceparent_of(&span), None);
    }
}
