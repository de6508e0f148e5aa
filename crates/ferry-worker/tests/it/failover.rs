//! Several instances of one deployment: a client or worker whose instance keeps answering
//! `503` (an instance cut off from its database) moves to the next one, as it does when an
//! instance cannot be reached at all.

use std::time::Duration;

use ferry_client::Client;
use ferry_core::{JobState, Secret};
use ferry_testkit::{
    API_TOKEN, TestServer, WORKER_TOKEN,
    faults::{Fault, FaultyProxy},
    handlers::CountRuns,
    job,
};
use ferry_worker::{Registry, Worker, WorkerConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// An instance that answers every request `503`.
async fn unavailable(server: &TestServer) -> FaultyProxy {
    FaultyProxy::spawn(&server.url, |_| Fault::Refuse(503))
        .await
        .expect("proxy")
}

#[tokio::test]
async fn a_client_moves_on_after_repeated_503s_and_stays_with_one_instance() {
    let server = TestServer::spawn().await;
    let down = unavailable(&server).await;
    let id = server
        .api
        .submit(&job("fail.over", json!({})))
        .await
        .expect("submit")
        .id;

    let client = Client::new(
        &format!("{},{}", down.url, server.url),
        Secret::new(API_TOKEN),
    )
    .expect("client");
    let mut refused = 0;
    loop {
        match client.job(id).await {
            Ok(job) => {
                assert_eq!(job.id, id);
                break;
            }
            Err(e) => {
                assert_eq!(e.status(), Some(503), "{e}");
                refused += 1;
                assert!(refused < 10, "still on the unavailable instance");
            }
        }
    }
    assert_eq!(refused, 3, "moves on after three 503s in a row");
    assert_eq!(client.base_url(), server.url.trim_end_matches('/'));

    // With one instance there is nowhere to go: 503s are answered as they are.
    let alone = Client::new(&down.url, Secret::new(API_TOKEN)).expect("client");
    for _ in 0..5 {
        assert_eq!(alone.job(id).await.expect_err("503").status(), Some(503));
    }
    assert_eq!(alone.base_url(), down.url.trim_end_matches('/'));
}

#[tokio::test]
async fn a_worker_leaves_an_instance_that_answers_503() {
    let server = TestServer::spawn().await;
    let down = unavailable(&server).await;
    let count = CountRuns::default();
    let mut registry = Registry::new();
    registry
        .register("fail.over", count.clone())
        .expect("register");
    let client = Client::new(
        &format!("{},{}", down.url, server.url),
        Secret::new(WORKER_TOKEN),
    )
    .expect("client");
    let stop = CancellationToken::new();
    let worker = Worker::new(
        client,
        registry,
        WorkerConfig {
            worker_id: "fail-over".into(),
            ..Default::default()
        },
    );
    let task = tokio::spawn(worker.run(stop.clone()));
    let id = server
        .api
        .submit(&job("fail.over", json!({})))
        .await
        .expect("submit")
        .id;
    let done = server.wait_final(id, Duration::from_secs(30)).await;
    assert_eq!(done.status, JobState::Completed, "{done:?}");
    stop.cancel();
    task.await.expect("task").expect("worker");
}
