//! A large dataset through the real binary: 100,000 rows fed by one job, exported as CSV
//! by `ferry dataset export` while the server's memory is watched. The export streams, so
//! the server's heap grows by about a page of rows, not by the size of the file.

use std::time::Duration;

use ferry_client::Client;
use ferry_core::{
    Secret,
    api::{ClaimRequest, ProgressRequest, SubmitJob},
    dataset::{Output, OutputMode},
};
use serde_json::json;

use crate::common::{API, WORKER, ferry, free_port, start_server};

const ROWS: usize = 100_000;
/// Rows per progress report (the most one report may carry).
const PER_REPORT: usize = 1_000;

/// The process's anonymous resident memory (its heap, not the database file it maps).
fn rss_anon_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// One job reports `ROWS` rows of about 600 bytes each, then completes.
async fn feed(url: &str) {
    let api = Client::new(url, Secret::new(API)).expect("client");
    let worker = Client::new(url, Secret::new(WORKER)).expect("client");
    let job = api
        .submit(&SubmitJob {
            output: Some(Output {
                dataset: "big".into(),
                key: "id".into(),
                mode: OutputMode::Snapshot,
                max_gone: None,
            }),
            ..SubmitJob::new("bulk.collect", json!({}))
        })
        .await
        .expect("submit");
    let c = worker
        .claim(&ClaimRequest {
            worker_id: "feeder".into(),
            kinds: vec!["bulk.collect".into()],
            max_jobs: Some(1),
            wait_ms: Some(0),
            lease_ms: Some(600_000),
        })
        .await
        .expect("claim")
        .jobs
        .remove(0);
    assert_eq!(c.id, job.id);
    let text = "lorem ipsum, \"dolor\" sit amet ".repeat(18);
    for start in (0..ROWS).step_by(PER_REPORT) {
        let items = (start..start + PER_REPORT)
            .map(|i| json!({"id": format!("row-{i:06}"), "n": i, "stars": i % 5, "text": text}))
            .collect();
        worker
            .progress(
                c.id,
                &ProgressRequest {
                    lease: c.lease.clone(),
                    current: Some((start + PER_REPORT) as u64),
                    total: Some(ROWS as u64),
                    message: None,
                    items: Some(items),
                    items_offset: Some(start as u64),
                },
            )
            .await
            .expect("report rows");
    }
    worker
        .complete(c.id, &c.lease, json!({"rows": ROWS}))
        .await
        .expect("complete");
    let info = api.dataset("big").await.expect("dataset");
    assert_eq!((info.items, info.gone), (ROWS as u64, 0));
}

#[tokio::test]
async fn a_csv_export_of_100k_rows_streams_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start_server(dir.path(), port, &[]).await;
    feed(&url).await;
    // A fresh process, so the heap the feeding grew is not there to be reused.
    server.kill().await.expect("kill");
    let mut server = start_server(dir.path(), port, &[]).await;
    let pid = server.id().expect("pid");
    let before = rss_anon_kib(pid);
    assert!(before > 0, "cannot read /proc/{pid}/status");

    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let watch = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_anon_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let out = dir.path().join("big.csv");
    let exported = ferry(&[
        "dataset",
        "export",
        "big",
        "--format",
        "csv",
        "--output",
        out.to_str().expect("utf-8 path"),
        "--server",
        &url,
    ])
    .env("FERRY_API_TOKEN", API)
    .output()
    .await
    .expect("run ferry dataset export");
    watch.abort();
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );

    let csv = std::fs::read_to_string(&out).expect("read the export");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("id,n,stars,text"));
    assert_eq!(lines.count(), ROWS);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let last = reader
        .records()
        .last()
        .expect("rows")
        .expect("a valid CSV row");
    assert_eq!(&last[0], "row-099999");
    assert!(
        last[3].contains("\"dolor\""),
        "quotes survive: {:?}",
        &last[3]
    );

    let grew_mib = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before)
        / 1024;
    let file_mib = csv.len() / (1024 * 1024);
    assert!(file_mib >= 50, "the export is {file_mib} MiB");
    assert!(
        grew_mib < 32,
        "exporting {file_mib} MiB grew the server's heap by {grew_mib} MiB"
    );
    eprintln!("exported {file_mib} MiB; the server's heap grew by {grew_mib} MiB at most");
    server.kill().await.expect("kill");
}
