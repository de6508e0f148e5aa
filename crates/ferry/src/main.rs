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
    init_logging(&cli);
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
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            // One useful line: the error and its causes.
            eprintln!("error: {e:#}");
            ExitCode::from(exit::code_for(&e))
        }
    }
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match cli.command {
        // chromiumoxide warns about every CDP event newer than its protocol tables; those
        // are expected with a current Chromium and skipped.
        Command::Serve(_) | Command::Worker(_) => {
            "info,ferry::access=warn,tower_http=warn,sqlx=warn,chromiumoxide=error,chromiumoxide::handler=off"
        }
        _ => "warn,chromiumoxide=error,chromiumoxide::handler=off",
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if cli.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}
