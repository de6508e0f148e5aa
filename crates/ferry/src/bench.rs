//! `ferry bench queue`: no-op jobs through the real HTTP protocol on this machine. It
//! starts a server (SQLite in a temporary directory unless told otherwise) and W
//! in-process worker runtimes, each with its own HTTP client, and prints one JSON line:
//! enqueue rate, drain rate (claim + run + complete), and enqueue→start latency.

use std::{process::ExitCode, sync::Arc, time::Instant};

use anyhow::{Context, Result, bail};
use ferry_client::Client;
use ferry_core::{JobState, Secret, SystemClock, TenantId, api::SubmitJob, id::random_token};
use ferry_server::{ServerConfig, StartOptions};
use ferry_store::{DatabaseUrl, Durability, Store};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    cli::{BenchArgs, BenchCommand, BenchDatasetArgs, BenchQueueArgs},
    worker::EmbeddedWorker,
};

mod browser;
mod dashboard;
mod events;
mod metrics;
mod timings;

pub async fn run(args: BenchArgs) -> Result<ExitCode> {
    match args.command {
        BenchCommand::Queue(args) => queue(args).await,
        BenchCommand::Browser(args) => browser::run(args).await,
        BenchCommand::Dataset(args) => dataset(args).await,
        BenchCommand::Events(args) => events::run(args).await,
        BenchCommand::Dashboard(args) => dashboard::run(args).await,
        BenchCommand::Metrics(args) => metrics::run(args).await,
    }
}

/// One sync job writing `rows` to the dataset `bench` (rows `from..from + rows`, the text
/// of row `i` marked `edit` when `i % 10 == 0` and `edited`): claim, report the rows 1,000
/// at a time, complete. Answers (seconds reporting, seconds completing).
async fn sync_rows(b: &BenchServer, from: usize, rows: usize, edited: bool) -> Result<(f64, f64)> {
    use ferry_core::api::{ClaimRequest, ProgressRequest};
    let worker = Client::new(&b.base, b.worker_token.clone())?;
    let job = b
        .api
        .submit(&SubmitJob {
            output: Some(ferry_core::dataset::Output {
                dataset: "bench".into(),
                key: "id".into(),
                mode: ferry_core::dataset::OutputMode::Snapshot,
                max_gone: None,
            }),
            ..SubmitJob::new("bench.sync", json!({}))
        })
        .await?;
    let claimed = worker
        .claim(&ClaimRequest {
            worker_id: "bench".into(),
            kinds: vec!["bench.sync".into()],
            max_jobs: Some(1),
            wait_ms: Some(5_000),
            lease_ms: Some(600_000),
        })
        .await?
        .jobs;
    let Some(c) = claimed.into_iter().find(|c| c.id == job.id) else {
        bail!("the sync job was not claimed");
    };
    let text = "a review of some length, with a comma and \"quotes\" ".repeat(8);
    let started = Instant::now();
    for start in (from..from + rows).step_by(1000) {
        let end = (start + 1000).min(from + rows);
        let items = (start..end)
            .map(|i| {
                let edit = if edited && i % 10 == 0 { "edited " } else { "" };
                json!({"id": format!("r{i:08}"), "stars": i % 5, "author": format!("user {}", i % 977),
                       "text": format!("{edit}{text}")})
            })
            .collect();
        worker
            .progress(
                c.id,
                &ProgressRequest {
                    lease: c.lease.clone(),
                    items_offset: Some((start - from) as u64),
                    items: Some(items),
                    ..Default::default()
                },
            )
            .await?;
    }
    let reported = started.elapsed().as_secs_f64();
    let started = Instant::now();
    worker.complete(c.id, &c.lease, json!({})).await?;
    Ok((reported, started.elapsed().as_secs_f64()))
}

/// Writes nowhere, counting bytes.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn dataset(args: BenchDatasetArgs) -> Result<ExitCode> {
    if args.rows < 1000 {
        bail!("need --rows >= 1000");
    }
    let b = bench_server(args.database_url.as_deref()).await?;
    let backend = b.store.backend_name();
    // 1. A first run: every row new.
    let (report_s, first_s) = sync_rows(&b, 0, args.rows, false).await?;
    // 2. An overlapping run: 5% of rows gone, 5% new, 10% of the rest edited.
    let shift = args.rows / 20;
    let (_, second_s) = sync_rows(&b, shift, args.rows, true).await?;
    let info = b.api.dataset("bench").await?;
    let run = info.last_run.clone().context("no run recorded")?;
    // 3. Exports, streamed to a counter.
    let mut exports = serde_json::Map::new();
    for format in [
        ferry_core::dataset::ExportFormat::Csv,
        ferry_core::dataset::ExportFormat::Jsonl,
    ] {
        let mut out = Counter(0);
        let started = Instant::now();
        b.api.export_dataset("bench", format, &mut out).await?;
        let secs = started.elapsed().as_secs_f64();
        exports.insert(
            format.as_str().to_owned(),
            json!({"mib": (out.0 as f64 / 1048576.0).round(), "rows_per_s": (info.items as f64 / secs).round(),
                   "mib_per_s": ((out.0 as f64 / 1048576.0) / secs * 10.0).round() / 10.0}),
        );
    }
    b.server.shutdown().await;
    let line = json!({
        "bench": "dataset",
        "backend": backend,
        "rows": args.rows,
        "report_rows_per_s": (args.rows as f64 / report_s).round(),
        "apply_new_rows_per_s": (args.rows as f64 / first_s).round(),
        "apply_overlapping_rows_per_s": (args.rows as f64 / second_s).round(),
        "overlapping_run": {"new": run.new, "changed": run.changed, "unchanged": run.unchanged, "gone": run.gone},
        "export": exports,
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// A server for a benchmark: on `database_url`, or SQLite in a temporary directory.
struct BenchServer {
    server: ferry_server::RunningServer,
    store: Store,
    base: String,
    api: Client,
    api_token: Secret,
    worker_token: Secret,
    _dir: tempfile::TempDir,
}

async fn bench_server(database_url: Option<&str>) -> Result<BenchServer> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let url: DatabaseUrl = match database_url {
        Some(url) => url.parse().map_err(|e: String| anyhow::anyhow!(e))?,
        None => DatabaseUrl::Sqlite(dir.path().join("bench.db")),
    };
    let store = Store::open(&url, Durability::Normal)
        .await
        .context("cannot open the database")?;
    let (api_token, worker_token) = (Secret::new(random_token()), Secret::new(random_token()));
    let mut config = ServerConfig::new(api_token.clone(), worker_token.clone());
    config.max_batch_jobs = 1000;
    // The bench's sites are on 127.0.0.1.
    config.egress.allow_private = true;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let server = ferry_server::start(StartOptions {
        listener,
        store: store.clone(),
        clock: Arc::new(SystemClock),
        config,
        services: true,
        shutdown: CancellationToken::new(),
    })?;
    let base = format!("http://{}", server.addr);
    let api = Client::new(&base, api_token.clone())?;
    Ok(BenchServer {
        server,
        store,
        base,
        api,
        api_token,
        worker_token,
        _dir: dir,
    })
}

async fn queue(args: BenchQueueArgs) -> Result<ExitCode> {
    if args.jobs == 0 || args.workers == 0 || !(1..=1000).contains(&args.batch) {
        bail!("need --jobs >= 1, --workers >= 1 and --batch between 1 and 1000");
    }
    let BenchServer {
        server,
        store,
        base,
        api,
        api_token,
        worker_token,
        _dir,
    } = bench_server(args.database_url.as_deref()).await?;
    let backend = store.backend_name();
    if args.history > 0 {
        let at = chrono::Utc::now() - chrono::Duration::hours(1);
        store
            .job_insert_history(&TenantId::default(), "ferry.noop", args.history, at)
            .await?;
    }
    // 1. Enqueue: batches of `batch` jobs, one request at a time.
    let started = Instant::now();
    let mut left = args.jobs;
    let mut next = 0usize;
    while left > 0 {
        let n = left.min(args.batch);
        let jobs = (next..next + n)
            .map(|i| {
                let mut spec = SubmitJob::new("ferry.noop", json!({}));
                // Job i gets key i mod N: consecutive jobs use different keys.
                if args.keys > 0 {
                    spec.concurrency = Some(ferry_core::flow::ConcurrencySpec {
                        key: format!("key:{}", i % args.keys),
                        limit: Some(args.key_limit),
                    });
                }
                spec
            })
            .collect();
        api.submit_batch(jobs).await?;
        next += n;
        left -= n;
    }
    let enqueue_secs = started.elapsed().as_secs_f64();

    // 2. Drain: W workers, each claiming up to `batch` jobs at a time.
    let mut finished = server.queue.subscribe_finished();
    let started = Instant::now();
    let mut workers = Vec::new();
    for i in 0..args.workers {
        workers.push(EmbeddedWorker::start_with(
            &base,
            worker_token.clone(),
            ferry_worker::builtin::registry()?,
            |c| {
                c.concurrency = args.batch;
                c.complete_batch = args.batch;
                c.worker_id = format!("bench-{i}");
            },
        )?);
    }
    // Count finishes from the server's own notifications, not by querying the database
    // (which would compete with what is measured).
    let mut done = 0usize;
    while done < args.jobs {
        match finished.recv().await {
            Ok(_) => done += 1,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => done += n as usize,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => bail!("the server stopped"),
        }
    }
    let drain_secs = started.elapsed().as_secs_f64();
    // What the server spent on the enqueue and the drain (read before the latency phase).
    let timings = timings::read(&base, &api_token).await?;

    // 3. Latency: idle, long-polling workers; jobs submitted one at a time.
    let mut ids = Vec::with_capacity(args.latency_jobs);
    for _ in 0..args.latency_jobs {
        ids.push(
            api.submit(&SubmitJob::new("ferry.noop", json!({})))
                .await?
                .id,
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let mut latencies = Vec::with_capacity(ids.len());
    for id in ids {
        let job = loop {
            let job = api.job(id).await?;
            if job.status == JobState::Completed {
                break job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        if let Some(start) = job.started_at {
            latencies
                .push((start - job.created_at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
    let left = store.job_counts(&TenantId::default()).await?;
    if left.iter().any(|(s, n)| !s.is_final() && *n > 0) {
        bail!("jobs left unfinished: {left:?}");
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };

    for w in workers {
        w.stop().await?;
    }
    server.shutdown().await;
    let line = json!({
        "bench": "queue",
        "backend": backend,
        "jobs": args.jobs,
        "workers": args.workers,
        "batch": args.batch,
        "history": args.history,
        "keys": args.keys,
        "key_limit": args.key_limit,
        "enqueue_per_s": (args.jobs as f64 / enqueue_secs).round(),
        "drain_per_s": (args.jobs as f64 / drain_secs).round(),
        "enqueue_to_start_ms": {"p50": pct(0.50), "p99": pct(0.99), "n": latencies.len(), "resolution_ms": 1},
        "server": timings,
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// `line` with the p50, p95 and slowest of `took` (milliseconds, to a tenth) added as
/// `p50_ms`, `p95_ms`, `max_ms`.
fn with_percentiles(mut line: serde_json::Value, mut took: Vec<f64>) -> serde_json::Value {
    took.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((took.len().saturating_sub(1)) as f64 * q).round() as usize;
        (took.get(i).copied().unwrap_or_default() * 10.0).round() / 10.0
    };
    line["p50_ms"] = json!(at(0.5));
    line["p95_ms"] = json!(at(0.95));
    line["max_ms"] = json!(at(1.0));
    line
}
