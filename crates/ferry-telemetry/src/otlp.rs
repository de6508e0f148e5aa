//! The exporter: ferry's spans sent to an OpenTelemetry collector over OTLP/HTTP
//! (protobuf), configured the standard way — `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*` — and off unless an
//! endpoint is set (or with `OTEL_SDK_DISABLED=true`).

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing::{Level, Subscriber};
use tracing_subscriber::{Layer, filter::filter_fn, registry::LookupSpan};

/// How long one export may take (the OTLP default).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TracingError {
    #[error("cannot set up the OTLP trace exporter: {0}")]
    Exporter(String),
}

/// The running exporter. [`Tracing::shutdown`] sends what is still buffered; call it
/// before the async runtime the exporter was given stops.
#[derive(Debug)]
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// Exports the spans still buffered (waiting at most the export timeout) and stops.
    pub fn shutdown(self) {
        // An error here means the collector could not take the last spans; nothing is left
        // to do about it while the process exits.
        let _ = self
            .provider
            .shutdown_with_timeout(EXPORT_TIMEOUT + Duration::from_secs(1));
    }
}

fn set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

/// Set once this process exports traces (its layer was built).
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process exports traces: work done only for a trace (reading a job's
/// trace context) is skipped otherwise.
pub fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the environment asks for traces: an OTLP endpoint is set and the SDK is not
/// disabled (`OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`).
pub fn configured() -> bool {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.eq_ignore_ascii_case("none"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The `tracing` layer that exports ferry's spans (those of its own crates, at `INFO` and
/// above, whatever the log filter says) as `service` (unless `OTEL_SERVICE_NAME` names
/// it), or `None` when traces are not configured. Exports run on `runtime`.
pub fn layer<S>(
    service: &str,
    runtime: tokio::runtime::Handle,
) -> Result<Option<(impl Layer<S> + use<S>, Tracing)>, TracingError>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if !configured() {
        return Ok(None);
    }
    // The workspace's one TLS provider; Err only means it is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| TracingError::Exporter(e.to_string()))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(OnRuntime { client, runtime })
        .build()
        .map_err(|e| TracingError::Exporter(e.to_string()))?;
    let mut resource = Resource::builder();
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name(service.to_owned());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("ferry");
    EXPORTING.store(true, std::sync::atomic::Ordering::Relaxed);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(filter_fn(|meta| {
            meta.target().starts_with("ferry") && *meta.level() <= Level::INFO
        }));
    Ok(Some((layer, Tracing { provider })))
}

/// The exporter's HTTP client: the workspace's reqwest, run on the process's tokio runtime
/// (the SDK exports from a thread of its own, where no runtime is entered).
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move {
                let request = reqwest::Request::try_from(request)?;
                let response = client.execute(request).await?;
                let mut answer = Response::builder().status(response.status());
                if let Some(headers) = answer.headers_mut() {
                    *headers = response.headers().clone();
                }
                let body = response.bytes().await?;
                Ok::<_, HttpError>(answer.body(body)?)
            })
            .await?
    }
}
