//! Two real `ferry serve` processes on one PostgreSQL database, workers that know both,
//! 20,000 jobs, and a kill -9 of one instance mid-run: nothing is lost, every job
//! completes, and each result is applied once. The check reads the database's own record.

use std::{process::Stdio, time::Duration};

use ferry_client::Client;
use ferry_core::{Secret, api::SubmitJob};
use ferry_testkit::{handlers::CountRuns, pg::TestDatabase};
use ferry_worker::{Registry, Worker, WorkerConfig};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

const BIN: &str = env!("CARGO_BIN_EXE_ferry");
const API: &str = "cluster-api-token";
const WORKER: &str = "cluster-worker-token";
const JOBS: usize = 20_000;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn instance(db_url: &str, port: u16, data: &std::path::Path) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--database-url",
        db_url,
    ])
    .arg("--data-dir")
    .arg(data)
    .env("FERRY_API_TOKEN", API)
    .env("FERRY_WORKER_TOKEN", WORKER)
    .env("FERRY_LOG", "error")
    .stdin(Stdio::null())
    .stderr(Stdio::null())
    .kill_on_drop(true);
    let child = cmd.spawn().expect("spawn ferry serve");
    let client =
        Client::new(&format!("http://127.0.0.1:{port}"), Secret::new(API)).expect("client");
    for _ in 0..200 {
        if client.health().await.is_ok() {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("instance on {port} did not come up");
}

async fn counts(db: &mut PgConnection) -> (i64, i64) {
    sqlx::query_as("SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FROM ferry.jobs")
        .fetch_one(db)
        .await
        .expect("count")
}

#[tokio::test]
async fn killing_one_of_two_instances_loses_nothing() {
    let db = TestDatabase::create().await;
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (port_a, port_b) = (free_port(), free_port());
    let (url_a, url_b) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );
    let mut a = instance(&db.url, port_a, dir_a.path()).await;
    let _b = instance(&db.url, port_b, dir_b.path()).await;

    let runs = CountRuns::default();
    let mut workers = Vec::new();
    let stop = CancellationToken::new();
    // Each worker starts on a different instance and knows the other.
    for (i, servers) in [format!("{url_a},{url_b}"), format!("{url_b},{url_a}")]
        .iter()
        .enumerate()
    {
        let mut registry = Registry::new();
        registry
            .register("cluster.run", runs.clone())
            .expect("register");
        let client = Client::new(servers, Secret::new(WORKER)).expect("client");
        let config = WorkerConfig {
            worker_id: format!("w{i}"),
            concurrency: 32,
            lease_ms: Some(2_000),
            ..Default::default()
        };
        workers.push(tokio::spawn(
            Worker::new(client, registry, config).run(stop.clone()),
        ));
    }

    let api = Client::new(&format!("{url_a},{url_b}"), Secret::new(API)).expect("client");
    for chunk in 0..JOBS / 1000 {
        let batch = (0..1000)
            .map(|i| SubmitJob::new("cluster.run", json!({"n": chunk * 1000 + i})))
            .collect();
        api.submit_batch(batch).await.expect("accepted");
    }

    let mut pg = PgConnection::connect(&db.url).await.expect("connect");
    while counts(&mut pg).await.0 < (JOBS / 4) as i64 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.kill().await.expect("kill -9 instance A");

    let give_up = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let (completed, total) = counts(&mut pg).await;
        assert_eq!(total, JOBS as i64, "every accepted job is still there");
        if completed == total {
            break;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "only {completed} of {total} completed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each stored result is the one of the attempt that completed: applied once.
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ferry.jobs WHERE (result->>'attempt')::int <> attempt",
    )
    .fetch_one(&mut pg)
    .await
    .expect("check results");
    assert_eq!(mismatched, 0);
    // A job ran more than once only when its first attempt was lost with instance A.
    let ran_twice = runs.runs().values().filter(|n| **n > 1).count();
    let retried: i64 = sqlx::query_scalar("SELECT count(*) FROM ferry.jobs WHERE attempt > 1")
        .fetch_one(&mut pg)
        .await
        .expect("retried");
    assert!(
        ran_twice as i64 <= retried,
        "{ran_twice} jobs ran twice but only {retried} were retried"
    );
    assert_eq!(runs.runs().len(), JOBS);

    stop.cancel();
    for w in workers {
        w.await.expect("task").expect("worker stops");
    }
}
