//! The job CLI as a user meets it: the real `ferry` binary against a real server. Exit
//! codes tell a failed job, a timeout, a missing job and an unreachable server apart;
//! `--wait` may be longer than the server's own wait; `job items` pages through a job's
//! items; a deduplicated submit says so; a worker claims only kinds it has handlers for.

use std::{process::Output, time::Duration};

use ferry_client::Client;
use ferry_core::Secret;
use ferry_testkit::{API_TOKEN, TestServer, WORKER_TOKEN};
use ferry_worker::{Worker, WorkerConfig, builtin};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::ferry;

/// `ferry ARGS` against `server` with the API token.
async fn run(server: &TestServer, args: &[&str]) -> Output {
    ferry(args)
        .env("FERRY_API_TOKEN", API_TOKEN)
        .env("FERRY_SERVER_URL", &server.url)
        .output()
        .await
        .expect("run ferry")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A worker with the built-in handlers, in this process; stopped on drop of the token.
fn start_worker(server: &TestServer) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let client = Client::new(&server.url, Secret::new(WORKER_TOKEN)).expect("client");
    let stop = CancellationToken::new();
    let registry = builtin::registry().expect("built-in handlers");
    let worker = Worker::new(client, registry, WorkerConfig::default());
    let run = stop.clone();
    let task = tokio::spawn(async move {
        worker.run(run).await.expect("worker runs");
    });
    (stop, task)
}

#[tokio::test]
async fn exit_codes_tell_failed_timed_out_not_found_and_unreachable_apart() {
    let server = TestServer::builder().with_services().spawn().await;
    let (stop, worker) = start_worker(&server);
    let cases: &[(&[&str], i32)] = &[
        (&["job", "submit", "ferry.noop", "--wait", "20"], 0),
        (
            &[
                "job",
                "submit",
                "ferry.noop",
                "--payload",
                r#"{"fail": "BOOM"}"#,
                "--max-attempts",
                "1",
                "--wait",
                "20",
            ],
            3,
        ),
        // No worker handles this kind: still pending when the wait runs out.
        (
            &["job", "submit", "nobody.handles.this", "--wait", "0.5"],
            4,
        ),
        (&["job", "get", "0190a6d2-7a8e-7c3b-9a1e-2f4b5c6d7e8f"], 5),
        (&["job", "wait", "0190a6d2-7a8e-7c3b-9a1e-2f4b5c6d7e8f"], 5),
        (&["job", "submit"], 2),
        (&["job", "submit", "bad kind"], 1),
    ];
    for (args, code) in cases {
        let out = run(&server, args).await;
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {}", text(&out));
    }
    let unreachable = ferry(&["job", "list", "--server", "http://127.0.0.1:1"])
        .env("FERRY_API_TOKEN", "x")
        .output()
        .await
        .expect("run");
    assert_eq!(unreachable.status.code(), Some(6), "{}", text(&unreachable));

    // `job wait` on a job that is still pending after --timeout: 4, and one line.
    let pending = server
        .api
        .submit(&ferry_testkit::job("nobody.handles.this", json!({})))
        .await
        .expect("submit");
    let id = pending.id.to_string();
    let out = run(&server, &["job", "wait", &id, "--timeout", "0.3"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("still pending"), "{}", text(&out));
    stop.cancel();
    worker.await.expect("worker task");
}

#[tokio::test]
async fn submit_waits_longer_than_the_server_does() {
    // The server waits at most 1 s in a submit; the CLI asked for up to 30 s keeps waiting.
    let server = TestServer::builder()
        .with_services()
        .configure(|c| c.max_sync_wait = Duration::from_secs(1))
        .spawn()
        .await;
    let (stop, worker) = start_worker(&server);
    let out = run(
        &server,
        &[
            "job",
            "submit",
            "ferry.noop",
            "--payload",
            r#"{"sleep_ms": 2500}"#,
            "--wait",
            "30",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("status:   completed"),
        "{}",
        text(&out)
    );
    stop.cancel();
    worker.await.expect("worker task");

    // On a server with the default longest wait (60 s), --wait above it is no longer refused.
    let server = TestServer::builder().with_services().spawn().await;
    let (stop, worker) = start_worker(&server);
    let out = run(&server, &["job", "submit", "ferry.noop", "--wait", "90"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Nonsense waits are refused on the command line, not by a panic.
    for bad in ["-1", "inf", "NaN"] {
        let wait = format!("--wait={bad}");
        let out = run(&server, &["job", "submit", "ferry.noop", &wait]).await;
        assert_eq!(out.status.code(), Some(1), "--wait {bad}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--wait"),
            "{}",
            text(&out)
        );
    }
    stop.cancel();
    worker.await.expect("worker task");
}

#[tokio::test]
async fn job_items_pages_through_every_item() {
    let server = TestServer::spawn().await;
    let job = server
        .api
        .submit(&ferry_testkit::job("collect.many", json!({})))
        .await
        .expect("submit");
    // A worker reports 2,500 items in three reports (more than one page of items).
    let claimed = server
        .worker
        .claim(&ferry_core::api::ClaimRequest {
            worker_id: "cli-test".into(),
            kinds: vec!["collect.many".into()],
            max_jobs: Some(1),
            wait_ms: Some(5_000),
            lease_ms: None,
        })
        .await
        .expect("claim")
        .jobs
        .remove(0);
    for start in (0..2500u64).step_by(1000) {
        let items = (start..(start + 1000).min(2500))
            .map(|i| json!({"i": i}))
            .collect();
        server
            .worker
            .progress(
                claimed.id,
                &ferry_core::api::ProgressRequest {
                    lease: claimed.lease.clone(),
                    current: None,
                    total: None,
                    message: None,
                    items: Some(items),
                    items_offset: Some(start),
                },
            )
            .await
            .expect("items stored");
    }
    let id = job.id.to_string();

    let out = run(&server, &["job", "items", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON value a line"))
        .collect();
    assert_eq!(lines.len(), 2500);
    let expected: Vec<Value> = (0..2500).map(|i| json!({"i": i})).collect();
    assert_eq!(lines, expected);

    let out = run(&server, &["job", "items", &id, "--json", "--limit", "3"]).await;
    let items: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(items.len(), 3, "{}", text(&out));
    assert_eq!(items[2]["data"], json!({"i": 2}));
    let third = items[2]["seq"].as_i64().expect("seq").to_string();
    let out = run(
        &server,
        &["job", "items", &id, "--after", &third, "--limit", "1"],
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"i":3}"#,
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn a_deduplicated_submit_says_so() {
    let server = TestServer::spawn().await;
    let args = [
        "job",
        "submit",
        "sync.reviews",
        "--dedupe-key",
        "sync:shop-42",
    ];
    let first = run(&server, &args).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let first_out = String::from_utf8_lossy(&first.stdout);
    assert!(first_out.contains("submitted"), "{}", text(&first));
    let id = first_out.split_whitespace().next().expect("id").to_owned();

    let second = run(&server, &args).await;
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let second_out = String::from_utf8_lossy(&second.stdout);
    assert!(
        second_out.contains("deduplicated") && second_out.contains(&id),
        "{}",
        text(&second)
    );
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let third = run(&server, &json_args).await;
    let job: Value = serde_json::from_slice(&third.stdout).expect("json");
    assert_eq!(
        (job["id"].as_str(), &job["deduplicated"]),
        (Some(id.as_str()), &json!(true))
    );
    let mut wait_args = args.to_vec();
    wait_args.extend(["--wait", "0.2"]);
    let waited = run(&server, &wait_args).await;
    assert_eq!(waited.status.code(), Some(4), "{}", text(&waited));
    assert!(
        String::from_utf8_lossy(&waited.stdout).contains("deduplicated"),
        "{}",
        text(&waited)
    );
}

#[tokio::test]
async fn a_worker_without_handlers_for_its_kinds_refuses_to_start() {
    let server = TestServer::spawn().await;
    let out = ferry(&["worker", "--server", &server.url, "--kinds", "post.*"])
        .env("FERRY_WORKER_TOKEN", WORKER_TOKEN)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("exits at once")
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", text(&out));
    assert!(
        errors[0].contains("no handler") && errors[0].contains("post.*"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn recipe_inputs_come_from_the_command_line() {
    let server = TestServer::spawn().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let recipe = dir.path().join("reviews.yaml");
    std::fs::write(
        &recipe,
        "inputs: {site: '127.0.0.1:1'}\nsteps:\n  - goto: {url: 'http://{{input.site}}/site/reviews'}\n",
    )
    .expect("write");
    let out = run(
        &server,
        &[
            "job",
            "submit",
            "browser.run",
            "--payload-file",
            recipe.to_str().expect("utf-8"),
            "--input",
            "site=127.0.0.1:4321",
            "--input",
            "shop=42",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let job: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        job["payload"]["inputs"],
        json!({"site": "127.0.0.1:4321", "shop": "42"})
    );
    let out = run(
        &server,
        &[
            "job",
            "submit",
            "ferry.noop",
            "--payload",
            "[]",
            "--input",
            "a=b",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}
