//! `ferry bench metrics`: how long `GET /metrics` takes with a large table. It starts a
//! server (SQLite in a temporary directory unless told otherwise), fills the default tenant
//! with `--jobs` completed jobs and `--waiting` waiting jobs of twenty kinds, and times
//! `--scrapes` scrapes with the API token (what `/metrics` takes without a metrics token).
//! One JSON line: p50, p95 and the slowest, in milliseconds, and the exposition's size.

use std::{process::ExitCode, time::Instant};

use anyhow::{Result, bail};
use ferry_core::{TenantId, api::SubmitJob};
use serde_json::json;

use super::bench_server;
use crate::cli::BenchMetricsArgs;

const KINDS: usize = 20;

pub(super) async fn run(args: BenchMetricsArgs) -> Result<ExitCode> {
    if args.scrapes == 0 {
        bail!("need --scrapes >= 1");
    }
    let b = bench_server(args.database_url.as_deref()).await?;
    let backend = b.store.backend_name();
    eprintln!("filling: {} completed jobs", args.jobs);
    let at = chrono::Utc::now() - chrono::Duration::hours(2);
    b.store
        .job_insert_history(&TenantId::default(), "bench.done", args.jobs, at)
        .await?;
    eprintln!("filling: {} waiting jobs", args.waiting);
    let mut left = args.waiting;
    let mut n = 0usize;
    while left > 0 {
        let batch = left.min(1000);
        let jobs = (0..batch)
            .map(|_| {
                n += 1;
                SubmitJob::new(format!("bench.kind{}", n % KINDS), json!({}))
            })
            .collect();
        b.api.submit_batch(jobs).await?;
        left -= batch;
    }
    let http = reqwest::Client::new();
    let mut took = Vec::with_capacity(args.scrapes);
    let mut bytes = 0;
    for _ in 0..args.scrapes {
        let started = Instant::now();
        let answer = http
            .get(format!("{}/metrics", b.base))
            .bearer_auth(b.api_token.expose())
            .send()
            .await?;
        let status = answer.status();
        bytes = answer.bytes().await?.len();
        if !status.is_success() {
            bail!("/metrics answered {status}");
        }
        took.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let line = json!({
        "bench": "metrics",
        "backend": backend,
        "completed_jobs": args.jobs,
        "waiting_jobs": args.waiting,
        "scrapes": args.scrapes,
        "exposition_bytes": bytes,
    });
    println!("{}", super::with_percentiles(line, took));
    Ok(ExitCode::SUCCESS)
}
