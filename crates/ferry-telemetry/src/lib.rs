//! Ferry's traces. Spans written with `tracing` by the server, the worker and the browser
//! become OpenTelemetry spans exported over OTLP/HTTP when the standard `OTEL_EXPORTER_OTLP_*`
//! variables name a collector (`otlp.rs`; off otherwise), and a job's trace travels as a
//! W3C `traceparent` from the submitting request to the job's row and on to the worker that
//! claims it (`context.rs`), so one trace shows the job from submit to completion.

mod context;
mod otlp;

pub use context::{continue_trace, remote_context, traceparent_of};
pub use otlp::{Tracing, TracingError, configured, exporting, layer};
