//! `ferry bench events`: what idle, filtered event streams cost the queue. For each
//! number of streams N it starts a server (SQLite in a temporary directory unless told
//! otherwise), opens N `GET /v1/events?after=now&type=job.failed` streams (SSE) that nothing
//! matches, then runs `ferry.noop` jobs through the real HTTP protocol as `ferry bench
//! queue` does (enqueue in batches, drain with W in-process workers) and prints one JSON
//! line per N: events written per second (each job writes three: created, started,
//! completed), completions per second, and the process's CPU use while it ran.
//!
//! It must not read the event record itself: the streams are what is measured.

use std::{
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use anyhow::{Context, Result, bail};
use ferry_core::api::SubmitJob;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{BenchServer, bench_server};
use crate::{cli::BenchEventsArgs, worker::EmbeddedWorker};

/// Events the record gets per `ferry.noop` job run once.
const EVENTS_PER_JOB: usize = 3;

pub(super) async fn run(args: BenchEventsArgs) -> Result<ExitCode> {
    if args.jobs == 0 || args.workers == 0 || !(1..=1000).contains(&args.batch) {
        bail!("need --jobs >= 1, --workers >= 1 and --batch between 1 and 1000");
    }
    for &n in &args.streams {
        let line = one_level(&args, n).await?;
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What the open streams received: SSE events with data (none expected) and position
/// notes (an `id:` alone).
#[derive(Default)]
struct Received {
    events: AtomicU64,
    notes: AtomicU64,
    bytes: AtomicU64,
}

async fn one_level(args: &BenchEventsArgs, n_streams: usize) -> Result<serde_json::Value> {
    let b = bench_server(args.database_url.as_deref()).await?;
    let backend = b.store.backend_name();
    let received = Arc::new(Received::default());
    let mut streams = Vec::with_capacity(n_streams);
    for _ in 0..n_streams {
        streams.push(open_stream(&b, &args.filter, received.clone()).await?);
    }

    let cpu_before = process_cpu_secs();
    let started = Instant::now();
    // 1. Enqueue: batches of `batch` jobs, one request at a time.
    let mut left = args.jobs;
    while left > 0 {
        let n = left.min(args.batch);
        let jobs = (0..n)
            .map(|_| SubmitJob::new("ferry.noop", json!({})))
            .collect();
        b.api.submit_batch(jobs).await?;
        left -= n;
    }
    let enqueue_secs = started.elapsed().as_secs_f64();

    // 2. Drain: W workers; finishes counted from the server's own notifications.
    let mut finished = b.server.queue.subscribe_finished();
    let drain_started = Instant::now();
    let mut workers = Vec::new();
    for i in 0..args.workers {
        workers.push(EmbeddedWorker::start_with(
            &b.base,
            b.worker_token.clone(),
            ferry_worker::builtin::registry()?,
            |c| {
                c.concurrency = args.batch;
                c.complete_batch = args.batch;
                c.worker_id = format!("bench-{i}");
            },
        )?);
    }
    let mut done = 0usize;
    while done < args.jobs {
        match finished.recv().await {
            Ok(_) => done += 1,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => done += n as usize,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => bail!("the server stopped"),
        }
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let total_secs = started.elapsed().as_secs_f64();
    let cpu = process_cpu_secs() - cpu_before;

    for w in workers {
        w.stop().await?;
    }
    let open = streams.iter().filter(|s| !s.is_finished()).count();
    for s in &streams {
        s.abort();
    }
    b.server.shutdown().await;
    if open < n_streams {
        bail!("{} of {n_streams} streams ended early", n_streams - open);
    }
    Ok(json!({
        "bench": "events",
        "backend": backend,
        "streams": n_streams,
        "filter": args.filter,
        "jobs": args.jobs,
        "workers": args.workers,
        "batch": args.batch,
        "events_written_per_s": ((args.jobs * EVENTS_PER_JOB) as f64 / total_secs).round(),
        "enqueue_per_s": (args.jobs as f64 / enqueue_secs).round(),
        "drain_per_s": (args.jobs as f64 / drain_secs).round(),
        "cpu_percent": (cpu / total_secs * 100.0).round(),
        "streams_received": {
            "events": received.events.load(Ordering::Relaxed),
            "position_notes": received.notes.load(Ordering::Relaxed),
            "bytes": received.bytes.load(Ordering::Relaxed),
        },
    }))
}

/// Opens one stream (answers once its headers came) and reads it until aborted.
async fn open_stream(
    b: &BenchServer,
    filter: &str,
    received: Arc<Received>,
) -> Result<tokio::task::JoinHandle<()>> {
    let host = b.base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(host)
        .await
        .context("cannot connect to the bench server")?;
    let head = format!(
        "GET /v1/events?after=now&{filter} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
         Accept: text/event-stream\r\n\r\n",
        b.api_token.expose()
    );
    conn.write_all(head.as_bytes()).await?;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while !text.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            bail!("the stream closed before its headers");
        }
        text.extend_from_slice(&buf[..n]);
    }
    if !text.starts_with(b"HTTP/1.1 200") {
        bail!(
            "the stream was refused: {}",
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or_default()
        );
    }
    Ok(tokio::spawn(async move {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let chunk = String::from_utf8_lossy(&buf[..n]);
                    received.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    let data = chunk.matches("data:").count() as u64;
                    let ids = chunk.matches("id:").count() as u64;
                    received.events.fetch_add(data, Ordering::Relaxed);
                    received
                        .notes
                        .fetch_add(ids.saturating_sub(data), Ordering::Relaxed);
                }
            }
        }
    }))
}

/// CPU seconds (user + system) this process has used; 0 where `/proc` is missing.
fn process_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at field 3.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state (field 3);
    // Linux counts them in USER_HZ, 100 on every architecture it runs on.
    (ticks(11) + ticks(12)) / 100.0
}
