//! `ferry`: the server, the worker, the job CLI, the demo and the benchmarks in one
//! binary. This file only parses the command line and reports errors as one line, with
//! an exit code that says what kind of error it was (`exit.rs`).

mod batch;
mod bench;
mod cli;
mod config;
mod dataset;
mod demo;
mod egress;
mod exit;
mod identity;
mod job;
mod observe;
mod serve;
mod users;
mod vault;
mod worker;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let traces = init_logging(&cli, runtime.handle());
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args, cli.config.as_deref()).await,
            Command::Worker(args) => worker::run(args, cli.config.as_deref()).await,
            Command::Job(args) => job::run(args, cli.config.as_deref()).await,
            Command::Schedule(args) => job::schedule(args, cli.config.as_deref()).await,
            Command::Dataset(args) => dataset::run(args, cli.config.as_deref()).await,
            Command::Batch(args) => batch::run(args, cli.config.as_deref()).await,
            Command::Kinds(args) => job::kinds(args, cli.config.as_deref()).await,
            Command::Status(args) => observe::status(args, cli.config.as_deref()).await,
            Command::Workers(args) => observe::workers(args, cli.config.as_deref()).await,
            Command::Secret(args) => vault::secret(args, cli.config.as_deref()).await,
            Command::Egress(args) => egress::egress(args, cli.config.as_deref()).await,
            Command::Tenant(args) => identity::tenant(args, cli.config.as_deref()).await,
            Command::Key(args) => identity::key(args, cli.config.as_deref()).await,
            Command::WorkerToken(args) => identity::worker_token(args, cli.config.as_deref()).await,
            Command::User(args) => users::user(args, cli.config.as_deref()).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Openapi => print_openapi(),
        }
    });
    // The spans still buffered go out while the runtime the exporter uses still runs.
    if let Some(traces) = traces {
        traces.shutdown();
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            // One useful line: the error and its causes.
            eprintln!("error: {e:#}");
            ExitCode::from(exit::code_for(&e))
        }
    }
}

/// `ferry openapi`: the document on standard output (a reader that stops early, such as
/// `head`, is not an error).
fn print_openapi() -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let document = ferry_server::http::api_document()
        .map_err(|e| anyhow::anyhow!("the API document could not be made: {e}"))?;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{document}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// Logs to standard error (filtered by `FERRY_LOG`, as JSON with `--log-json`) and, for
/// `serve`, `worker` and `demo` when the `OTEL_EXPORTER_OTLP_*` variables name a
/// collector, spans exported as OpenTelemetry traces (the running exporter is returned, to
/// be shut down before exit).
fn init_logging(cli: &Cli, runtime: &tokio::runtime::Handle) -> Option<ferry_telemetry::Tracing> {
    use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};
    let default = match cli.command {
        // chromiumoxide warns about every CDP event newer than its protocol tables; those
        // are expected with a current Chromium and skipped.
        Command::Serve(_) | Command::Worker(_) => {
            "info,ferry::access=warn,tower_http=warn,sqlx=warn,chromiumoxide=error,chromiumoxide::handler=off"
        }
        _ => "warn,chromiumoxide=error,chromiumoxide::handler=off",
    };
    let service = match cli.command {
        Command::Serve(_) => Some("ferry-server"),
        Command::Worker(_) => Some("ferry-worker"),
        Command::Demo(_) => Some("ferry-demo"),
        _ => None,
    };
    let mut filter =
        EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // chromiumoxide logs raw CDP traffic at debug level: filled values, cookies, pages.
    // Whatever FERRY_LOG asks for, only its errors are logged.
    for directive in [
        "chromiumoxide=error",
        "chromiumoxide::handler=off",
        "chromiumoxide::conn=off",
    ] {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    use std::io::IsTerminal;
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let logs = if cli.log_json {
        logs.json().boxed()
    } else {
        logs.boxed()
    };
    // Traces are filtered on their own (ferry's spans at INFO), whatever FERRY_LOG says.
    let (otel, traces) = match service.map(|s| ferry_telemetry::layer(s, runtime.clone())) {
        Some(Ok(Some((layer, traces)))) => (Some(layer), Some(traces)),
        Some(Err(e)) => {
            eprintln!("warning: {e}; traces are not exported");
            (None, None)
        }
        _ => (None, None),
    };
    tracing_subscriber::registry()
        .with(otel)
        .with(logs.with_filter(filter))
        .init();
    traces
}
