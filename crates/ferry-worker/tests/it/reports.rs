//! The report path under faults: a worker talks to a real server through a proxy that
//! refuses progress reports or loses the server's answer. Every item reported reaches
//! the server exactly once, or the attempt fails (retryably) instead of completing short.

use std::time::Duration;

use ferry_client::Client;
use ferry_core::{JobState, Secret, error::job_codes};
use ferry_testkit::{
    TestServer, WORKER_TOKEN,
    faults::{Fault, FaultyProxy},
    job,
};
use ferry_worker::{Handler, HandlerError, JobContext, Registry, Worker, WorkerConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Reports `reports` pages of five rows each, then completes.
struct Pages;

#[async_trait::async_trait]
impl Handler for Pages {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        let reports = ctx.payload["reports"].as_u64().unwrap_or(1);
        for page in 0..reports {
            ctx.push_items(
                (0..5)
                    .map(|row| json!({"page": page, "row": row}))
                    .collect(),
            )
            .await;
        }
        Ok(json!({"rows": reports * 5}))
    }
}

async fn run_worker(url: &str) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let mut registry = Registry::new();
    registry.register("scrape.pages", Pages).expect("register");
    let client = Client::new(url, Secret::new(WORKER_TOKEN)).expect("client");
    let stop = CancellationToken::new();
    let worker = Worker::new(
        client,
        registry,
        WorkerConfig {
            worker_id: "faulty".into(),
            lease_ms: Some(5_000),
            ..Default::default()
        },
    );
    let until = stop.clone();
    let task = tokio::spawn(async move {
        let _ = worker.run(until).await;
    });
    (stop, task)
}

#[tokio::test]
async fn refused_and_lost_reports_are_retried_and_every_item_arrives_once() {
    let server = TestServer::builder().with_services().spawn().await;
    // The first report is refused eight times in a row (more than the worker used to
    // retry before it dropped a report); after that, each report is refused once and
    // then stored with its answer lost, so the worker resends what the server has.
    let proxy = FaultyProxy::spawn(&server.url, |seen| {
        if !seen.is_post_to("/progress") {
            Fault::Pass
        } else if seen.n <= 8 {
            Fault::Refuse(503)
        } else {
            match seen.n % 3 {
                0 => Fault::Refuse(503),
                1 => Fault::LoseAnswer(502),
                _ => Fault::Pass,
            }
        }
    })
    .await
    .expect("proxy");
    let (stop, task) = run_worker(&proxy.url).await;
    let submitted = server
        .api
        .submit(&job("scrape.pages", json!({"reports": 10})))
        .await
        .expect("submit");
    let done = server
        .wait_final(submitted.id, Duration::from_secs(60))
        .await;
    assert_eq!(done.status, JobState::Completed, "{done:?}");
    let items = server
        .api
        .items(done.id, 0, 1000)
        .await
        .expect("items")
        .items;
    let rows: Vec<(u64, u64)> = items
        .iter()
        .map(|i| {
            (
                i.data["page"].as_u64().unwrap_or(99),
                i.data["row"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    let want: Vec<(u64, u64)> = (0..10).flat_map(|p| (0..5).map(move |r| (p, r))).collect();
    assert_eq!(rows, want, "every item exactly once, in order");
    let lost = proxy
        .faults()
        .iter()
        .filter(|(_, f)| matches!(f, Fault::LoseAnswer(_)))
        .count();
    assert!(lost > 0, "some answers were lost: {:?}", proxy.faults());
    stop.cancel();
    let _ = task.await;
}

#[tokio::test]
async fn items_that_cannot_be_delivered_fail_the_attempt_retryably() {
    let server = TestServer::builder().with_services().spawn().await;
    // Reports never get through; everything else does.
    let proxy = FaultyProxy::spawn(&server.url, |seen| {
        if seen.is_post_to("/progress") {
            Fault::Refuse(503)
        } else {
            Fault::Pass
        }
    })
    .await
    .expect("proxy");
    let (stop, task) = run_worker(&proxy.url).await;
    let mut spec = job("scrape.pages", json!({"reports": 2}));
    spec.max_attempts = Some(1);
    let submitted = server.api.submit(&spec).await.expect("submit");
    let done = server
        .wait_final(submitted.id, Duration::from_secs(60))
        .await;
    assert_eq!(
        done.status,
        JobState::Failed,
        "never completed short: {done:?}"
    );
    let error = done.error.expect("an error");
    assert_eq!(error.code, job_codes::ITEMS_UNDELIVERED, "{error:?}");
    assert!(error.retryable, "{error:?}");
    stop.cancel();
    let _ = task.await;
}
