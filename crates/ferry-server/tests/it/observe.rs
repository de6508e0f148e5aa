//! What an operator watches, through the real server: `GET /v1/workers` lists the workers
//! that claimed (kinds, jobs in hand, agent, address, connected) and `GET /v1/stats` counts
//! jobs by kind and state with the last hour's throughput and failure rate; a real
//! Prometheus scrapes `GET /metrics` (`observe::prometheus`).

use ferry_core::{
    JobState,
    api::{ClaimRequest, FailError},
};
use ferry_testkit::{TestServer, job};
use serde_json::json;

mod prometheus;

fn claim(worker: &str, kinds: &[&str], n: u32) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker.to_owned(),
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
        max_jobs: Some(n),
        wait_ms: None,
        lease_ms: None,
    }
}

#[tokio::test]
async fn workers_and_stats_show_what_claims_and_reports_did() {
    let server = TestServer::spawn().await;
    assert!(
        server
            .api
            .workers()
            .await
            .expect("workers")
            .workers
            .is_empty(),
        "no worker has claimed yet"
    );
    for _ in 0..3 {
        let mut spec = job("obs.a", json!({}));
        spec.max_attempts = Some(1);
        server.api.submit(&spec).await.expect("submit");
    }
    server
        .api
        .submit(&job("obs.b", json!({})))
        .await
        .expect("submit b");

    let claimed = server
        .worker
        .claim(&claim("laptop-1", &["obs.a"], 3))
        .await
        .expect("claim")
        .jobs;
    assert_eq!(claimed.len(), 3);
    server
        .worker
        .complete(claimed[0].id, &claimed[0].lease, json!({"ok": true}))
        .await
        .expect("complete");
    let error = FailError {
        code: "SELECTOR_TIMEOUT".into(),
        message: "no .row".into(),
        retryable: false,
        retry_after_ms: None,
    };
    server
        .worker
        .fail(claimed[1].id, &claimed[1].lease, error)
        .await
        .expect("fail");
    // A second worker that found nothing to do.
    server
        .worker
        .claim(&claim("vm-2", &["obs.c", "obs.d.*"], 1))
        .await
        .expect("empty claim");

    let workers = server.api.workers().await.expect("workers").workers;
    let summary: Vec<(&str, u64, bool)> = workers
        .iter()
        .map(|w| (w.id.as_str(), w.jobs_in_hand, w.connected))
        .collect();
    assert_eq!(summary, [("laptop-1", 1, true), ("vm-2", 0, true)]);
    let laptop = &workers[0];
    assert_eq!(laptop.kinds, ["obs.a"]);
    assert_eq!(workers[1].kinds, ["obs.c", "obs.d.*"]);
    assert_eq!(laptop.address.as_deref(), Some("127.0.0.1"));
    assert!(
        laptop
            .agent
            .as_deref()
            .is_some_and(|a| a.starts_with("ferry/")),
        "{laptop:?}"
    );

    let stats = server.api.stats().await.expect("stats");
    let count = |kind: &str, state: JobState| {
        stats
            .jobs
            .kinds
            .iter()
            .find(|k| k.kind == kind && k.state == state)
            .map_or(0, |k| k.count)
    };
    assert_eq!(count("obs.a", JobState::Running), 1);
    assert_eq!(count("obs.a", JobState::Failed), 1);
    assert_eq!(count("obs.b", JobState::Pending), 1);
    assert_eq!((stats.completed, stats.failed), (1, 1));
    assert_eq!(stats.failure_rate, Some(0.5));
    assert_eq!(stats.workers_connected, 2);
    assert!(stats.jobs.oldest_pending_at.is_some());
}
