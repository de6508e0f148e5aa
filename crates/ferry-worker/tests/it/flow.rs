//! Flow control under load: 8 worker runtimes hammer a mix of concurrency keys, rate keys
//! (interval and window), both at once, push-backs and unkeyed work. The guarantees are
//! checked from the server's event record (`ferry_testkit::flow`), not from the workers.
//! Runs on SQLite, and on PostgreSQL with FERRY_TEST_BACKEND=postgres (`.ci/run` does both).

use std::time::Duration;

use ferry_client::Client;
use ferry_core::{JobState, Secret};
use ferry_testkit::{TestServer, WORKER_TOKEN, flow};
use ferry_worker::{Registry, Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn eight_workers_never_exceed_key_limits() {
    let server = TestServer::builder().with_services().spawn().await;
    let jobs = server.api.submit_batch(flow::mix()).await.expect("submit");
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let mut registry = Registry::new();
        registry
            .register("flow.work", flow::Work)
            .expect("register");
        let client = Client::new(&server.url, Secret::new(WORKER_TOKEN)).expect("client");
        let config = WorkerConfig {
            worker_id: format!("w{w}"),
            concurrency: 4,
            lease_ms: Some(5_000),
            ..Default::default()
        };
        tasks.push(tokio::spawn(
            Worker::new(client, registry, config).run(stop.clone()),
        ));
    }
    for j in &jobs {
        let done = server.wait_final(j.id, Duration::from_secs(60)).await;
        assert_eq!(done.status, JobState::Completed, "{done:?}");
    }
    stop.cancel();
    for t in tasks {
        t.await.expect("worker task").expect("clean stop");
    }

    let mut stored = Vec::new();
    for j in &jobs {
        stored.push(server.api.job(j.id).await.expect("get"));
    }
    let events = server.events_through(&stored).await;
    flow::check_mix(&events, &stored).expect("limits held");
}
