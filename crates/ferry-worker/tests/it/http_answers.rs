//! `http.request` with answers that used to leave a job unable to complete: a body far
//! larger than the server takes in a result (read whole, then refused again and again)
//! and one with U+0000 (which cannot be stored). Each completes, cut or cleaned.

use std::time::Duration;

use ferry_client::Client;
use ferry_core::{JobState, Secret};
use ferry_testkit::{TestServer, WORKER_TOKEN, fixture, job};
use ferry_worker::{Worker, WorkerConfig, builtin};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_huge_answer_is_cut_and_a_nul_is_replaced_and_the_jobs_complete() {
    let site = fixture::spawn().await.expect("fixture");
    let server = TestServer::builder().with_services().spawn().await;
    let client = Client::new(&server.url, Secret::new(WORKER_TOKEN)).expect("client");
    let stop = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(
            client,
            builtin::registry().expect("built-in handlers"),
            WorkerConfig {
                worker_id: "answers".into(),
                lease_ms: Some(5_000),
                ..Default::default()
            },
        )
        .run(stop.clone()),
    );
    let submit = |payload| {
        let mut spec = job("http.request", payload);
        spec.max_attempts = Some(1);
        spec
    };

    // 64 MiB: read up to the cap, then left unread.
    let huge = server
        .api
        .submit(&submit(json!({"url": site.url("/bytes/67108864")})))
        .await
        .expect("submit");
    let done = server.wait_final(huge.id, Duration::from_secs(60)).await;
    assert_eq!(done.status, JobState::Completed, "{:?}", done.error);
    let result = done.result.expect("a result");
    assert_eq!(result["truncated"], json!(true));
    assert_eq!(
        result["body"].as_str().map(str::len),
        Some(builtin::HTTP_MAX_BODY)
    );

    // A smaller cap, asked for.
    let small = server
        .api
        .submit(&submit(
            json!({"url": site.url("/bytes/5000"), "max_body_bytes": 1000}),
        ))
        .await
        .expect("submit");
    let result = server
        .wait_final(small.id, Duration::from_secs(60))
        .await
        .result
        .expect("a result");
    assert_eq!(
        (result["body"].as_str().map(str::len), &result["truncated"]),
        (Some(1000), &json!(true))
    );

    // U+0000 in a text and in a JSON answer.
    for (path, check) in [("/nul", "body"), ("/nul?json=1", "json")] {
        let submitted = server
            .api
            .submit(&submit(json!({"url": site.url(path)})))
            .await
            .expect("submit");
        let done = server
            .wait_final(submitted.id, Duration::from_secs(60))
            .await;
        assert_eq!(done.status, JobState::Completed, "{path}: {:?}", done.error);
        let result = done.result.expect("a result");
        match check {
            "body" => assert_eq!(result["body"], json!("before\u{FFFD}after")),
            _ => assert_eq!(result["json"], json!({"name": "a\u{FFFD}b", "ok": true})),
        }
    }
    stop.cancel();
    worker.await.expect("worker task").expect("clean stop");
}
