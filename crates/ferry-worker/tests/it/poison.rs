//! One poison job must not stop a worker fleet: a body nested deeper than the shared
//! limit is refused at submit, and a job that got in anyway (stored before the limit, or
//! by `ferry.enqueue`) fails on its own while the worker goes on with the others.

use std::time::Duration;

use ferry_client::Client;
use ferry_core::{ErrorCode, JobState, Secret, error::job_codes, json::MAX_DEPTH};
use ferry_testkit::{TestServer, WORKER_TOKEN, job};
use ferry_worker::{Registry, Worker, WorkerConfig, builtin};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// `[[[…1…]]]`, `levels` deep.
fn nested(levels: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..levels {
        value = Value::Array(vec![value]);
    }
    value
}

#[tokio::test]
async fn a_deep_payload_is_refused_and_a_poison_job_fails_alone() {
    let server = TestServer::builder().with_services().spawn().await;

    // At submit: refused naming the field, whatever the route.
    let err = server
        .api
        .submit(&job("ferry.noop", nested(100)))
        .await
        .expect_err("too deep");
    assert_eq!(err.code(), Some(ErrorCode::ValidationFailed), "{err}");
    assert!(err.to_string().contains("payload"), "{err}");
    server
        .api
        .submit(&job("ferry.noop", nested(MAX_DEPTH - 2)))
        .await
        .expect("within the limit");

    // A job stored with a payload nested 126 deep (as an older server took it).
    let store = server.queue.store();
    let now = chrono::Utc::now();
    let mut poison = ferry_core::validate::new_job(
        &ferry_core::TenantId::default(),
        job("ferry.noop", json!({})),
        &ferry_core::validate::JobDefaults::default(),
        now,
        "",
    )
    .expect("a job");
    poison.payload = nested(126);
    store
        .job_insert(&[poison.clone()], now)
        .await
        .expect("stored");

    let registry: Registry = builtin::registry().expect("built-in handlers");
    let client = Client::new(&server.url, Secret::new(WORKER_TOKEN)).expect("client");
    let stop = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(
            client,
            registry,
            WorkerConfig {
                worker_id: "poison".into(),
                ..Default::default()
            },
        )
        .run(stop.clone()),
    );

    let failed = server.wait_final(poison.id, Duration::from_secs(30)).await;
    assert_eq!(failed.status, JobState::Failed, "{failed:?}");
    let error = failed.error.expect("an error");
    assert_eq!(error.code, job_codes::INVALID_PAYLOAD, "{error:?}");
    assert!(!error.retryable);

    // The worker is still there and takes the next job.
    let next = server
        .api
        .submit(&job("ferry.noop", json!({})))
        .await
        .expect("submit");
    let done = server.wait_final(next.id, Duration::from_secs(30)).await;
    assert_eq!(done.status, JobState::Completed, "{done:?}");
    assert!(!worker.is_finished(), "the worker did not stop");
    stop.cancel();
    worker.await.expect("worker task").expect("clean stop");
}
