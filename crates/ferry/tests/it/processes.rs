//! Tests that run the real `ferry` binary as separate processes: kill -9 of the server
//! and of a worker mid-run lose nothing, generated tokens work, SIGTERM drains, and
//! bad input on the command line ends with one useful line and a non-zero exit.

use std::{process::Stdio, time::Duration};

use ferry_client::Client;
use ferry_core::{JobState, Secret, api::SubmitJob};
use ferry_testkit::{TestServer, WORKER_TOKEN, handlers::CountRuns};
use ferry_worker::{Registry, Worker, WorkerConfig, builtin};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{API, WORKER, ferry, free_port, start_server};

async fn count_final(api: &Client, ids: &[ferry_core::JobId]) -> usize {
    let mut n = 0;
    for id in ids {
        if let Ok(job) = api.job(*id).await {
            n += usize::from(job.status.is_final());
        }
    }
    n
}

#[tokio::test]
async fn kill_9_of_the_server_loses_no_accepted_job_and_applies_each_result_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start_server(dir.path(), port, &[]).await;
    let api = Client::new(&url, Secret::new(API)).expect("client");

    let mut registry = Registry::new();
    registry
        .register("crash.record", CountRuns::default())
        .expect("register");
    let stop = CancellationToken::new();
    let worker_client = Client::new(&url, Secret::new(WORKER)).expect("client");
    let config = WorkerConfig {
        concurrency: 8,
        lease_ms: Some(2_000),
        ..Default::default()
    };
    let worker = tokio::spawn(Worker::new(worker_client, registry, config).run(stop.clone()));

    let mut ids = Vec::new();
    for _ in 0..3 {
        let batch = (0..100)
            .map(|i| SubmitJob::new("crash.record", json!({"i": i})))
            .collect();
        ids.extend(
            api.submit_batch(batch)
                .await
                .expect("accepted")
                .into_iter()
                .map(|j| j.id),
        );
    }
    // Kill the server twice while jobs are being claimed and completed.
    for round in 1..=2 {
        while count_final(&api, &ids).await < round * 60 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.kill().await.expect("kill -9");
        tokio::time::sleep(Duration::from_millis(300)).await;
        server = start_server(dir.path(), port, &[]).await;
    }
    let give_up = tokio::time::Instant::now() + Duration::from_secs(90);
    while count_final(&api, &ids).await < ids.len() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "jobs did not all finish after the restarts"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &ids {
        let job = api
            .job(*id)
            .await
            .expect("every accepted job is still there");
        assert_eq!(job.status, JobState::Completed, "{job:?}");
        // The stored result is the one of the attempt that completed, applied once.
        assert_eq!(
            job.result.as_ref().map(|r| r["attempt"].clone()),
            Some(json!(job.attempt)),
            "{job:?}"
        );
        assert_eq!(
            job.result.as_ref().map(|r| r["id"].clone()),
            Some(json!(id.to_string()))
        );
    }
    stop.cancel();
    worker
        .await
        .expect("worker task")
        .expect("worker stops cleanly");
    server.kill().await.expect("kill");
}

#[tokio::test]
async fn kill_9_of_a_worker_mid_job_runs_the_job_again() {
    let server = TestServer::builder().with_services().spawn().await;
    let mut spec = SubmitJob::new("ferry.noop", json!({"sleep_ms": 1500}));
    spec.max_attempts = Some(3);
    let submitted = server.api.submit(&spec).await.expect("submit");
    let mut worker = ferry(&[
        "worker",
        "--server",
        &server.url,
        "--lease-ms",
        "1500",
        "--id",
        "doomed",
    ])
    .env("FERRY_WORKER_TOKEN", WORKER_TOKEN)
    .spawn()
    .expect("spawn ferry worker");
    loop {
        let job = server.api.job(submitted.id).await.expect("get");
        if job.status == JobState::Running {
            assert_eq!(job.worker_id.as_deref(), Some("doomed"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.kill().await.expect("kill -9 the worker");
    // After the lease expires the rescuer puts it back; a healthy worker finishes it.
    let rescued = loop {
        let job = server.api.job(submitted.id).await.expect("get");
        if job.status != JobState::Running {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rescued.error.map(|e| e.code), Some("LEASE_EXPIRED".into()));
    let client = Client::new(&server.url, Secret::new(WORKER_TOKEN)).expect("client");
    let stop = CancellationToken::new();
    let healthy = tokio::spawn(
        Worker::new(
            client,
            builtin::registry().expect("built-in handlers"),
            WorkerConfig::default(),
        )
        .run(stop.clone()),
    );
    let done = server
        .wait_final(submitted.id, Duration::from_secs(30))
        .await;
    assert_eq!((done.status, done.attempt), (JobState::Completed, 2));
    stop.cancel();
    healthy.await.expect("task").expect("clean stop");
}

#[tokio::test]
async fn generated_tokens_serve_the_cli_and_sigterm_drains() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let mut server = ferry(&[
        "serve",
        "--listen",
        &listen,
        "--data-dir",
        data,
        "--with-worker",
    ])
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    let token_path = dir.path().join("api-token");
    for _ in 0..200 {
        if token_path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path)
            .expect("token file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let token = std::fs::read_to_string(&token_path).expect("token");
    let client = Client::new(&url, Secret::new(token.trim())).expect("client");
    for _ in 0..200 {
        if client.health().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let out = ferry(&[
        "job",
        "submit",
        "ferry.noop",
        "--wait",
        "20",
        "--server",
        &url,
        "--data-dir",
        data,
    ])
    .output()
    .await
    .expect("run job submit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("status:   completed"), "{stdout}");

    let list = ferry(&[
        "job",
        "list",
        "--json",
        "--server",
        &url,
        "--data-dir",
        data,
    ])
    .output()
    .await
    .expect("list");
    let page: Value = serde_json::from_slice(&list.stdout).expect("json list");
    assert_eq!(page["jobs"].as_array().map(Vec::len), Some(1));

    let submitted = ferry(&[
        "batch",
        "submit",
        "ferry.noop",
        "--items",
        "[{}, {}, {}]",
        "--json",
        "--server",
        &url,
        "--data-dir",
        data,
    ])
    .output()
    .await
    .expect("batch submit");
    let created: Value = serde_json::from_slice(&submitted.stdout).expect("batch json");
    let batch_id = created["batch_id"].as_str().expect("batch id").to_owned();
    let waited = ferry(&[
        "batch",
        "wait",
        &batch_id,
        "--timeout",
        "30",
        "--server",
        &url,
        "--data-dir",
        data,
    ])
    .output()
    .await
    .expect("batch wait");
    let stdout = String::from_utf8_lossy(&waited.stdout);
    assert!(
        waited.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert!(
        stdout.contains("status:   completed") && stdout.contains("3 completed"),
        "{stdout}"
    );

    let pid = server.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), server.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "graceful exit: {status:?}");
}

#[tokio::test]
async fn bad_input_on_the_command_line_is_one_line_and_a_non_zero_exit() {
    let server = TestServer::spawn().await;
    let check = |out: std::process::Output, needle: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "should fail: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr:?}");
        assert!(stderr.contains(needle), "{needle:?} in {stderr:?}");
    };
    let with_api = |args: &[&str]| {
        let mut cmd = ferry(args);
        cmd.env("FERRY_API_TOKEN", ferry_testkit::API_TOKEN)
            .env("FERRY_SERVER_URL", &server.url);
        cmd
    };
    let cases: &[(&[&str], &str)] = &[
        (&["job", "submit", "bad kind"], "VALIDATION_FAILED"),
        (
            &["job", "submit", "a", "--payload", "{nope"],
            "not valid JSON",
        ),
        (&["job", "get", "not-an-id"], "not a job id"),
        (
            &["job", "get", "0190a6d2-7a8e-7c3b-9a1e-2f4b5c6d7e8f"],
            "NOT_FOUND",
        ),
        (
            &["job", "submit", "a", "--label", "no-equals-sign"],
            "KEY=VALUE",
        ),
        (
            &["schedule", "add", "nightly", "61 * * * *", "report.nightly"],
            "VALIDATION_FAILED",
        ),
        (&["schedule", "rm", "no-such-schedule"], "NOT_FOUND"),
        (&["schedule", "run", "no-such-schedule"], "NOT_FOUND"),
    ];
    for (args, needle) in cases {
        check(with_api(args).output().await.expect("run"), needle);
    }
    // And a schedule run now prints the job it submitted.
    let added = with_api(&["schedule", "add", "nightly", "0 3 * * *", "report.nightly"])
        .output()
        .await
        .expect("run");
    assert!(added.status.success(), "{added:?}");
    let ran = with_api(&["schedule", "run", "nightly"])
        .output()
        .await
        .expect("run");
    assert!(ran.status.success(), "{ran:?}");
    let id: ferry_core::JobId = String::from_utf8_lossy(&ran.stdout)
        .trim()
        .parse()
        .expect("a job id");
    let job = server.api.job(id).await.expect("the job it submitted");
    assert_eq!(job.kind, "report.nightly");
    let mut wrong_token = ferry(&["job", "list"]);
    wrong_token
        .env("FERRY_API_TOKEN", "nope")
        .env("FERRY_SERVER_URL", &server.url);
    check(wrong_token.output().await.expect("run"), "UNAUTHORIZED");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    check(
        ferry(&["serve", "--data-dir", data, "--database-url", "mysql://x"])
            .output()
            .await
            .expect("run"),
        "database URL",
    );
    let mut unreachable = ferry(&["job", "list", "--server", "http://127.0.0.1:1"]);
    unreachable.env("FERRY_API_TOKEN", "x");
    check(unreachable.output().await.expect("run"), "cannot reach");
}

/// The README's main command: `ferry demo` runs the login → saved session → collect flow
/// in a real Chromium and exits 0 with the rows it collected.
#[tokio::test]
async fn the_demo_collects_behind_a_login_and_exits_zero() {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        ferry(&["demo"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output(),
    )
    .await
    .expect("the demo finishes")
    .expect("run ferry demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for expected in [
        "sessions on the server: demo-shop",
        "reviews behind the login (Chromium, saved session, 3 pages): 7 rows",
        "rv-7 1★ 2026-11-15 tom: Closed on a Tuesday",
        "infinite feed (Chromium, loaded over fetch while scrolling): 12 posts",
        "demo done: 6 jobs completed",
        "dataset reviews:demo-shop: 7 new, 0 changed, 0 gone (7 rows;",
        "schedule \"hourly-review-sync\" (0 * * * * UTC) will sync the reviews into reviews:demo-shop again at",
        "/v1/events",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains(ferry_testkit::fixture::DEMO_PASSWORD),
        "no secret printed"
    );
}

/// A webhook receiver on 127.0.0.1 that reports each delivery (its `Ferry-Id` and body) and
/// answers `204` only once `answer` is set; until then it holds the connection open.
async fn hanging_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let answer = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answering = answer.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let tx = tx.clone();
            let answering = answering.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head, then as much body as Content-Length says.
                let (head, body) = loop {
                    let Ok(n) = conn.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&raw).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break (head.to_owned(), body.to_owned());
                    }
                };
                let id = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("ferry-id")
                            .then(|| v.trim().to_owned())
                    })
                    .unwrap_or_default();
                let _ = tx.send((id, body));
                if answering.load(std::sync::atomic::Ordering::SeqCst) {
                    let _ = conn
                        .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                        .await;
                } else {
                    // Hold the delivery: the sender waits for an answer that never comes.
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
            });
        }
    });
    (url, rx, answer)
}

#[tokio::test]
async fn a_server_killed_mid_delivery_delivers_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start_server(dir.path(), port, &[]).await;
    let (hook_url, mut deliveries, answer) = hanging_receiver().await;
    let raw = ferry_testkit::raw::Raw { base: url.clone() };
    let created = raw
        .json(
            "POST",
            "/v1/webhooks",
            API,
            &json!({"url": hook_url, "events": ["job.completed"], "secret": "whsec-0123456789abcdef"})
                .to_string(),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let hook = created.body["id"].as_str().expect("webhook id").to_owned();

    // A job completes through the worker protocol.
    let api = Client::new(&url, Secret::new(API)).expect("client");
    let worker = Client::new(&url, Secret::new(WORKER)).expect("client");
    let job = api
        .submit(&SubmitJob::new("hook.test", json!({})))
        .await
        .expect("submit");
    let c = worker
        .claim(&ferry_core::api::ClaimRequest {
            worker_id: "w".into(),
            kinds: vec!["hook.test".into()],
            max_jobs: Some(1),
            wait_ms: Some(0),
            lease_ms: None,
        })
        .await
        .expect("claim")
        .jobs
        .remove(0);
    worker
        .complete(c.id, &c.lease, json!({"ok": true}))
        .await
        .expect("complete");

    // The first attempt reaches the receiver, which holds it; the server dies meanwhile.
    let (first_id, first_body) = tokio::time::timeout(Duration::from_secs(20), deliveries.recv())
        .await
        .expect("a delivery within 20 s")
        .expect("a delivery");
    server.kill().await.expect("kill -9");
    answer.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut server = start_server(dir.path(), port, &[]).await;

    // After the restart the same delivery comes again (at least once), and is recorded.
    let (again_id, again_body) = tokio::time::timeout(Duration::from_secs(20), deliveries.recv())
        .await
        .expect("the delivery again within 20 s")
        .expect("a delivery");
    assert_eq!(
        again_id, first_id,
        "the same Ferry-Id: receivers dedupe by it"
    );
    assert_eq!(again_body, first_body);
    let event: Value = serde_json::from_str(&again_body).expect("event json");
    assert_eq!(
        (event["type"].as_str(), event["job_id"].as_str()),
        (Some("job.completed"), Some(job.id.to_string().as_str()))
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = raw
            .json("GET", &format!("/v1/webhooks/{hook}/deliveries"), API, "")
            .await;
        if log.body["deliveries"][0]["status"] == "delivered" {
            assert_eq!(log.body["deliveries"].as_array().map(Vec::len), Some(1));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not recorded as delivered: {:?}",
            log.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill().await.expect("kill");
}
