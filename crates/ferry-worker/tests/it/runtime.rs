//! The worker runtime against a real server (SQLite, random port) and a local fixture
//! site: jobs run, progress and items stream, failures retry, cancellation and
//! deadlines stop handlers, shutdown drains, and the worker reconnects.

use std::time::Duration;

use ferry_client::Client;
use ferry_core::{Job, JobState, Secret, api::SubmitJob};
use ferry_testkit::{TestServer, WORKER_TOKEN, fixture, job};
use ferry_worker::{Handler, HandlerError, JobContext, Registry, Worker, WorkerConfig, builtin};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const LONG: Duration = Duration::from_secs(30);

struct Running {
    stop: CancellationToken,
    task: JoinHandle<Result<(), ferry_worker::WorkerError>>,
}

impl Running {
    async fn shutdown(self) -> Result<(), ferry_worker::WorkerError> {
        self.stop.cancel();
        self.task.await.expect("worker task")
    }
}

fn start_worker(url: &str, registry: Registry, tweak: impl FnOnce(&mut WorkerConfig)) -> Running {
    let client = Client::new(url, Secret::new(WORKER_TOKEN)).expect("client");
    let mut config = WorkerConfig {
        worker_id: "test-worker".into(),
        lease_ms: Some(3_000),
        ..Default::default()
    };
    tweak(&mut config);
    let stop = CancellationToken::new();
    let task = tokio::spawn(Worker::new(client, registry, config).run(stop.clone()));
    Running { stop, task }
}

async fn submit(server: &TestServer, spec: SubmitJob) -> Job {
    server.api.submit(&spec).await.expect("submit")
}

fn noop(payload: Value) -> SubmitJob {
    job("ferry.noop", payload)
}

#[tokio::test]
async fn runs_many_jobs_concurrently_and_completes_each_once() {
    let server = TestServer::builder().with_services().spawn().await;
    let worker = start_worker(
        &server.url,
        builtin::registry().expect("built-in handlers"),
        |c| c.concurrency = 8,
    );
    let jobs = server
        .api
        .submit_batch((0..200).map(|_| noop(json!({}))).collect())
        .await
        .expect("batch");
    for j in &jobs {
        let done = server.wait_final(j.id, LONG).await;
        assert_eq!(
            (done.status, done.attempt),
            (JobState::Completed, 1),
            "{done:?}"
        );
    }
    worker.shutdown().await.expect("clean stop");
}

struct Pages;

#[async_trait::async_trait]
impl Handler for Pages {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        let pages = ctx.payload["pages"].as_u64().unwrap_or(0);
        for page in 1..=pages {
            ctx.push_items(vec![
                json!({"page": page, "row": 1}),
                json!({"page": page, "row": 2}),
            ])
            .await;
            ctx.progress(Some(page), Some(pages), Some(format!("page {page}")))
                .await;
        }
        Ok(json!({"rows": pages * 2}))
    }
}

#[tokio::test]
async fn custom_handlers_stream_progress_and_items() {
    let server = TestServer::builder().with_services().spawn().await;
    let mut registry = Registry::new();
    registry.register("scrape.pages", Pages).expect("register");
    let worker = start_worker(&server.url, registry, |_| {});
    let submitted = submit(&server, job("scrape.pages", json!({"pages": 3}))).await;
    let done = server.wait_final(submitted.id, LONG).await;
    assert_eq!(done.result, Some(json!({"rows": 6})));
    let progress = done.progress.expect("progress");
    assert_eq!((progress.current, progress.total), (Some(3), Some(3)));
    let items = server
        .api
        .items(done.id, 0, 100)
        .await
        .expect("items")
        .items;
    let rows: Vec<_> = items
        .iter()
        .map(|i| (i.data["page"].as_u64(), i.data["row"].as_u64()))
        .collect();
    let expected: Vec<_> = (1..=3)
        .flat_map(|p| [(Some(p), Some(1)), (Some(p), Some(2))])
        .collect();
    assert_eq!(rows, expected);
    worker.shutdown().await.expect("clean stop");
}

#[tokio::test]
async fn http_request_jobs_map_statuses_to_outcomes() {
    let server = TestServer::builder().with_services().spawn().await;
    let site = fixture::spawn().await.expect("fixture");
    let worker = start_worker(
        &server.url,
        builtin::registry().expect("built-in handlers"),
        |_| {},
    );
    let http = |payload: Value, attempts: u32| {
        let mut spec = job("http.request", payload);
        spec.max_attempts = Some(attempts);
        spec.backoff = Some(ferry_core::Backoff {
            base_ms: 50,
            max_ms: 100,
        });
        spec
    };

    let echo = submit(&server, http(json!({"method": "POST", "url": site.url("/echo"), "json": {"a": 1}, "headers": {"x-k": "v"}}), 1)).await;
    let echo = server.wait_final(echo.id, LONG).await;
    let result = echo.result.expect("result");
    assert_eq!(result["status"], 200);
    assert_eq!(result["json"]["method"], "POST");
    assert_eq!(result["json"]["json"], json!({"a": 1}));
    assert_eq!(result["json"]["headers"]["x-k"], "v");

    let not_found = submit(&server, http(json!({"url": site.url("/status/404")}), 5)).await;
    let not_found = server.wait_final(not_found.id, LONG).await;
    assert_eq!(
        (not_found.status, not_found.attempt),
        (JobState::Failed, 1),
        "4xx is not retried"
    );
    let error = not_found.error.expect("error");
    assert_eq!(
        (error.code.as_str(), error.retryable),
        ("HTTP_STATUS", false)
    );

    let server_error = submit(&server, http(json!({"url": site.url("/status/500")}), 2)).await;
    let server_error = server.wait_final(server_error.id, LONG).await;
    assert_eq!(
        (server_error.status, server_error.attempt),
        (JobState::Failed, 2),
        "5xx is retried"
    );

    // 429 with Retry-After: 1 — the retry waits at least that second, then succeeds.
    let flaky = submit(&server, http(json!({"url": site.url("/flaky/k1/1")}), 3)).await;
    let flaky = server.wait_final(flaky.id, LONG).await;
    assert_eq!((flaky.status, flaky.attempt), (JobState::Completed, 2));
    assert!(
        flaky.run_at - flaky.created_at >= chrono::Duration::milliseconds(1000),
        "Retry-After honoured"
    );

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead_url = format!("http://{}/", closed.local_addr().expect("addr"));
    drop(closed);
    let unreachable = submit(&server, http(json!({"url": dead_url}), 1)).await;
    let unreachable = server.wait_final(unreachable.id, LONG).await;
    let error = unreachable.error.expect("error");
    assert_eq!(
        (error.code.as_str(), error.retryable),
        ("NETWORK_ERROR", true)
    );

    let bad = submit(&server, http(json!({"url": "ftp://x"}), 3)).await;
    let bad = server.wait_final(bad.id, LONG).await;
    assert_eq!(
        bad.error.map(|e| (e.code, e.retryable)),
        Some(("INVALID_PAYLOAD".into(), false))
    );
    worker.shutdown().await.expect("clean stop");
}

#[tokio::test]
async fn cancelling_a_running_job_stops_its_handler() {
    let server = TestServer::builder().with_services().spawn().await;
    let worker = start_worker(
        &server.url,
        builtin::registry().expect("built-in handlers"),
        |c| c.lease_ms = Some(1_500),
    );
    let submitted = submit(&server, noop(json!({"sleep_ms": 600_000}))).await;
    while server.api.job(submitted.id).await.expect("get").status != JobState::Running {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.api.cancel(submitted.id).await.expect("cancel");
    let done = server.wait_final(submitted.id, LONG).await;
    assert_eq!(done.status, JobState::Cancelled);
    assert_eq!(done.error.map(|e| e.code), Some("CANCELLED".into()));
    worker.shutdown().await.expect("clean stop");
}

#[tokio::test]
async fn the_deadline_stops_a_handler_that_runs_too_long() {
    let server = TestServer::builder().with_services().spawn().await;
    let worker = start_worker(
        &server.url,
        builtin::registry().expect("built-in handlers"),
        |_| {},
    );
    let mut spec = noop(json!({"sleep_ms": 600_000}));
    spec.timeout_ms = Some(500);
    spec.max_attempts = Some(1);
    let submitted = submit(&server, spec).await;
    let done = server.wait_final(submitted.id, LONG).await;
    assert_eq!(done.status, JobState::Failed);
    assert_eq!(done.error.map(|e| e.code), Some("TIMEOUT".into()));
    worker.shutdown().await.expect("clean stop");
}

struct Panics;

#[async_trait::async_trait]
impl Handler for Panics {
    async fn run(&self, _ctx: JobContext) -> Result<Value, HandlerError> {
        panic!("boom")
    }
}

/// A panicking handler fails its job, not the worker; a worker asked for `*` claims only
/// the kinds it has handlers for, leaving the others for a worker that has one.
#[tokio::test]
async fn panics_fail_the_job_not_the_worker_and_unknown_kinds_are_not_claimed() {
    let server = TestServer::builder().with_services().spawn().await;
    let mut registry = builtin::registry().expect("built-in handlers");
    registry.register("bad.panics", Panics).expect("register");
    let worker = start_worker(&server.url, registry, |c| {
        c.kinds = Some(vec!["*".into()]);
        // The panic hook may print a symbolised backtrace (RUST_BACKTRACE=1), which takes
        // seconds on a loaded machine: a short lease would expire before the report.
        c.lease_ms = Some(30_000);
    });
    let mut spec = job("bad.panics", json!({}));
    spec.max_attempts = Some(1);
    let panicked = submit(&server, spec).await;
    let unknown = submit(&server, job("nobody.handles.this", json!({}))).await;
    let panicked = server.wait_final(panicked.id, LONG).await;
    assert_eq!(panicked.error.map(|e| e.code), Some("HANDLER_PANIC".into()));
    // The worker still works.
    let after = submit(&server, noop(json!({}))).await;
    assert_eq!(
        server.wait_final(after.id, LONG).await.status,
        JobState::Completed
    );
    let unknown = server.api.job(unknown.id).await.expect("get");
    assert_eq!(
        (unknown.status, unknown.attempt),
        (JobState::Pending, 0),
        "never claimed: {unknown:?}"
    );
    worker.shutdown().await.expect("clean stop");
}

#[tokio::test]
async fn shutdown_lets_running_jobs_finish_within_the_grace_period() {
    let server = TestServer::builder().with_services().spawn().await;
    let worker = start_worker(
        &server.url,
        builtin::registry().expect("built-in handlers"),
        |c| c.shutdown_grace = Duration::from_secs(20),
    );
    let submitted = submit(&server, noop(json!({"sleep_ms": 700}))).await;
    while server.api.job(submitted.id).await.expect("get").status != JobState::Running {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.shutdown().await.expect("clean stop");
    // The run returned only after the job's completion was delivered.
    assert_eq!(
        server.api.job(submitted.id).await.expect("get").status,
        JobState::Completed
    );
}

/// A claim the server answered just as shutdown came (its answer still on the way): the
/// job it hands out is run within the grace period, not left running on the server until
/// its lease runs out.
#[tokio::test]
async fn a_claim_answered_as_shutdown_comes_still_runs_its_job() {
    use ferry_testkit::faults::{Fault, FaultyProxy};
    let server = TestServer::builder().with_services().spawn().await;
    let proxy = FaultyProxy::spawn(&server.url, |seen| {
        if seen.is_post_to("/v1/worker/claim") && seen.body_has("late") {
            Fault::DelayAnswer(400)
        } else {
            Fault::Pass
        }
    })
    .await
    .expect("proxy");
    let worker = start_worker(
        &proxy.url,
        builtin::registry().expect("built-in handlers"),
        |c| {
            c.worker_id = "late".into();
            c.lease_ms = Some(60_000);
            c.shutdown_grace = Duration::from_secs(20);
        },
    );
    server.claims_waiting(1).await;
    let submitted = submit(&server, noop(json!({"sleep_ms": 100}))).await;
    while server.api.job(submitted.id).await.expect("get").status != JobState::Running {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The server handed the job out; its answer is 400 ms away.
    worker.shutdown().await.expect("clean stop");
    assert_eq!(
        server.api.job(submitted.id).await.expect("get").status,
        JobState::Completed
    );
}

#[tokio::test]
async fn shutdown_hands_back_jobs_that_outlive_the_grace_period() {
    let server = TestServer::builder().with_services().spawn().await;
    let worker = start_worker(
        &server.url,
        builtin::registry().expect("built-in handlers"),
        |c| {
            c.shutdown_grace = Duration::from_millis(300);
            c.stop_grace = Duration::from_millis(300);
        },
    );
    let submitted = submit(&server, noop(json!({"sleep_ms": 600_000}))).await;
    while server.api.job(submitted.id).await.expect("get").status != JobState::Running {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.shutdown().await.expect("clean stop");
    let job = server.api.job(submitted.id).await.expect("get");
    assert_eq!(job.status, JobState::Scheduled, "handed back for a retry");
    assert_eq!(
        job.error.map(|e| (e.code, e.retryable)),
        Some(("WORKER_SHUTDOWN".into(), true))
    );
}

#[tokio::test]
async fn the_worker_waits_for_an_unreachable_server_and_reconnects() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = probe.local_addr().expect("addr");
    drop(probe);
    let worker = start_worker(
        &format!("http://{addr}"),
        builtin::registry().expect("built-in handlers"),
        |_| {},
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!worker.task.is_finished(), "the worker keeps trying");
    let server = TestServer::builder()
        .with_services()
        .listen_on(addr)
        .spawn()
        .await;
    let submitted = submit(&server, noop(json!({}))).await;
    assert_eq!(
        server.wait_final(submitted.id, LONG).await.status,
        JobState::Completed
    );
    worker.shutdown().await.expect("clean stop");
}

#[tokio::test]
async fn a_wrong_token_stops_the_worker_with_a_clear_error() {
    let server = TestServer::spawn().await;
    let client = Client::new(&server.url, Secret::new("wrong")).expect("client");
    let err = Worker::new(
        client,
        builtin::registry().expect("built-in handlers"),
        WorkerConfig::default(),
    )
    .run(CancellationToken::new())
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("UNAUTHORIZED"), "{err}");
}

struct Lookup;

#[async_trait::async_trait]
impl Handler for Lookup {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        let kw = ctx.payload["kw"].as_str().unwrap_or_default().to_owned();
        tokio::time::sleep(Duration::from_millis(20)).await;
        if kw == "kw-13" {
            return Err(HandlerError::fatal(
                "NO_RESULTS",
                "the partner knows no such keyword",
            ));
        }
        Ok(json!({"kw": kw, "count": kw.len()}))
    }
}

#[tokio::test]
async fn a_keyword_batch_streams_results_while_it_runs() {
    let server = TestServer::builder().with_services().spawn().await;
    let mut registry = Registry::new();
    registry.register("kw.lookup", Lookup).expect("register");
    let worker = start_worker(&server.url, registry, |c| c.concurrency = 2);
    let batch = ferry_core::api::CreateBatch {
        kind: "kw.lookup".into(),
        items: (0..40).map(|i| json!({"kw": format!("kw-{i}")})).collect(),
        options: Default::default(),
    };
    let created = server.api.create_batch(&batch).await.expect("create");

    // Poll as the web page would, collecting results as they arrive.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut saw_partial = false;
    let give_up = tokio::time::Instant::now() + LONG;
    loop {
        let page = server
            .api
            .batch_results(created.batch_id, after.as_deref(), 7)
            .await
            .expect("results");
        after = page.next_after.clone();
        seen.extend(page.results);
        let b = server.api.batch(created.batch_id).await.expect("get");
        saw_partial |= b.status == ferry_core::api::BatchState::Running && !seen.is_empty();
        if b.status != ferry_core::api::BatchState::Running && seen.len() == 40 {
            assert_eq!(
                b.status,
                ferry_core::api::BatchState::Failed,
                "one item failed"
            );
            assert_eq!((b.progress.completed, b.progress.failed), (39, 1));
            break;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "batch did not finish"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(saw_partial, "results were readable while the batch ran");
    let mut indexes: Vec<_> = seen.iter().map(|r| r.index).collect();
    indexes.sort_unstable();
    assert_eq!(
        indexes,
        (0..40).collect::<Vec<_>>(),
        "each item exactly once"
    );
    let failed = seen
        .iter()
        .find(|r| r.status == JobState::Failed)
        .expect("failed item");
    assert_eq!(
        (failed.index, failed.error.as_ref().map(|e| e.code.as_str())),
        (13, Some("NO_RESULTS"))
    );
    let ok = seen.iter().find(|r| r.index == 7).expect("item 7");
    assert_eq!(ok.result, Some(json!({"kw": "kw-7", "count": 4})));
    worker.shutdown().await.expect("clean stop");
}

struct Generate;

#[async_trait::async_trait]
impl Handler for Generate {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        let topic = ctx.payload["topic"].as_str().unwrap_or_default();
        Ok(json!({"title": format!("All about {topic}"), "body": "…"}))
    }
}

struct Publish;

#[async_trait::async_trait]
impl Handler for Publish {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        let input = ctx.input.unwrap_or_default();
        let title = input["title"].as_str().unwrap_or_default();
        let account = ctx.payload["account"].as_str().unwrap_or_default();
        Ok(json!({"published": title, "account": account}))
    }
}

#[tokio::test]
async fn a_generate_then_publish_chain_runs_end_to_end() {
    let server = TestServer::builder().with_services().spawn().await;
    let mut registry = Registry::new();
    registry
        .register("post.generate", Generate)
        .expect("register");
    registry
        .register("post.publish", Publish)
        .expect("register");
    let worker = start_worker(&server.url, registry, |_| {});
    let mut spec = job("post.generate", json!({"topic": "ferries"}));
    spec.then = Some(vec![job("post.publish", json!({"account": "blog-7"}))]);
    let parent = submit(&server, spec).await;
    let parent = server.wait_final(parent.id, LONG).await;
    assert_eq!(parent.status, JobState::Completed);
    let query = ferry_client::ListQuery {
        kind: Some("post.publish".into()),
        ..Default::default()
    };
    let child = server.api.list(&query).await.expect("list").jobs.remove(0);
    assert_eq!(child.parent_id, Some(parent.id));
    let child = server.wait_final(child.id, LONG).await;
    assert_eq!(
        child.result,
        Some(json!({"published": "All about ferries", "account": "blog-7"}))
    );
    worker.shutdown().await.expect("clean stop");
}

/// A job with `output` feeds its dataset through the runtime; items the server refuses
/// (no key field) fail the attempt instead of completing without them.
#[tokio::test]
async fn items_go_to_a_dataset_and_refused_items_fail_the_attempt() {
    let server = TestServer::builder().with_services().spawn().await;
    let mut registry = Registry::new();
    registry.register("scrape.pages", Pages).expect("register");
    let worker = start_worker(&server.url, registry, |_| {});
    let into = |dataset: &str, key: &str| SubmitJob {
        output: Some(ferry_core::dataset::Output {
            dataset: dataset.into(),
            key: key.into(),
            mode: ferry_core::dataset::OutputMode::Snapshot,
            max_gone: None,
        }),
        ..job("scrape.pages", json!({"pages": 3}))
    };
    let good = submit(&server, into("pages", "page")).await;
    let done = server.wait_final(good.id, LONG).await;
    assert_eq!(done.status, JobState::Completed, "{done:?}");
    let dataset = server.api.dataset("pages").await.expect("dataset");
    assert_eq!(dataset.items, 3, "two rows per page, keyed by page");

    // Rows without the key the job names: refused when reported, so the attempt fails.
    let bad = submit(&server, into("pages-by-id", "id")).await;
    let failed = server.wait_final(bad.id, LONG).await;
    assert_eq!(failed.status, JobState::Failed, "{failed:?}");
    let error = failed.error.expect("error");
    assert_eq!(
        (error.code.as_str(), error.retryable),
        ("ITEMS_REFUSED", false)
    );
    assert!(error.message.contains("items[0]"), "{}", error.message);
    // No run was applied: the job never completed.
    let missing = server
        .api
        .dataset("pages-by-id")
        .await
        .expect_err("no dataset");
    assert_eq!(missing.code(), Some(ferry_core::ErrorCode::NotFound));
    worker.shutdown().await.expect("clean stop");
}

struct Rank;

#[async_trait::async_trait]
impl Handler for Rank {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        let kw = ctx.payload["kw"].as_str().unwrap_or_default().to_owned();
        ctx.push_items(vec![json!({"kw": kw, "results": kw.len() * 10})])
            .await;
        Ok(json!({"kw": kw}))
    }
}

/// A batch whose items each write their row to one dataset (`merge`): the dataset ends with
/// a row per item and the batch is announced finished once. A snapshot batch is refused.
#[tokio::test]
async fn a_batch_merges_its_items_rows_into_one_dataset() {
    let server = TestServer::builder().with_services().spawn().await;
    let mut registry = Registry::new();
    registry.register("kw.rank", Rank).expect("register");
    let worker = start_worker(&server.url, registry, |c| c.concurrency = 4);
    let batch = |mode| ferry_core::api::CreateBatch {
        kind: "kw.rank".into(),
        items: (0..12).map(|i| json!({"kw": format!("kw-{i}")})).collect(),
        options: ferry_core::api::BatchOptions {
            output: Some(ferry_core::dataset::Output {
                dataset: "rankings".into(),
                key: "kw".into(),
                mode,
                max_gone: None,
            }),
            ..Default::default()
        },
    };
    let refused = server
        .api
        .create_batch(&batch(ferry_core::dataset::OutputMode::Snapshot))
        .await
        .expect_err("a snapshot batch");
    match refused {
        ferry_client::ClientError::Api { status, fields, .. } => {
            assert_eq!(status, 422);
            assert_eq!(fields[0].field, "options.output.mode");
        }
        other => panic!("expected a 422, got {other}"),
    }
    let created = server
        .api
        .create_batch(&batch(ferry_core::dataset::OutputMode::Merge))
        .await
        .expect("create");
    let events = server
        .events_when(|events| events.iter().any(|e| e.event_type == "batch.finished"))
        .await;
    let finished: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "batch.finished")
        .collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(
        finished[0].data.as_ref().map(|d| d["batch_id"].clone()),
        Some(json!(created.batch_id.to_string()))
    );
    let dataset = server.api.dataset("rankings").await.expect("dataset");
    assert_eq!((dataset.items, dataset.gone), (12, 0));
    let runs = server
        .api
        .dataset_runs("rankings")
        .await
        .expect("runs")
        .runs;
    assert_eq!(runs.len(), 12, "one run per item job");
    assert!(runs.iter().all(|r| (r.new, r.gone) == (1, 0)));
    worker.shutdown().await.expect("clean stop");
}
