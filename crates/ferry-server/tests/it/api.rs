//! Black-box tests of the HTTP API: a real server on a random port, a real SQLite
//! database, requests over TCP. Maintenance is stepped with `run_maintenance`.

use std::{sync::Arc, time::Duration};

use chrono::{TimeZone, Utc};
use ferry_client::{ClientError, ListQuery};
use ferry_core::{
    ErrorCode, JobState, ManualClock,
    api::{ClaimRequest, FailError, ProgressRequest},
};
use ferry_testkit::{API_TOKEN, TestServer, WORKER_TOKEN, job};
use serde_json::json;

mod completions;
pub(crate) mod hooks;
mod listing;
mod vault;

fn claim_req(kinds: &[&str], max_jobs: u32, wait_ms: u64) -> ClaimRequest {
    ClaimRequest {
        worker_id: "test-worker".to_owned(),
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
        max_jobs: Some(max_jobs),
        wait_ms: Some(wait_ms),
        lease_ms: None,
    }
}

fn api_code(e: ClientError) -> ErrorCode {
    e.code()
        .unwrap_or_else(|| panic!("expected an API error, got {e}"))
}

#[tokio::test]
async fn submit_answers_202_with_location_and_the_job() {
    let server = TestServer::spawn().await;
    let answer = server
        .raw()
        .json(
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "http.request", "payload": {"url": "x"}, "labels": {"store_id": "42"}}"#,
        )
        .await;
    assert_eq!(answer.status, 202);
    let id = answer.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        answer.header("location"),
        Some(format!("/v1/jobs/{id}").as_str())
    );
    assert_eq!(answer.body["status"], "pending");
    let job = server
        .api
        .job(id.parse().expect("uuid"))
        .await
        .expect("get");
    assert_eq!(job.payload, json!({"url": "x"}));
    assert_eq!(job.labels["store_id"], "42");
}

/// method, path, token, body, expected status, code, and first field named.
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    u16,
    &'a str,
    Option<&'a str>,
);

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_code_never_a_500() {
    let server = TestServer::builder()
        .configure(|c| c.max_body_bytes = 4096)
        .spawn()
        .await;
    let raw = server.raw();
    let big = format!(r#"{{"kind": "a", "payload": "{}"}}"#, "x".repeat(5000));
    const ID: &str = "0190a6d2-7a8e-7c3b-9a1e-2f4b5c6d7e8f";
    let fail_path = format!("/v1/worker/jobs/{ID}/fail");
    let unknown_job = format!("/v1/jobs/{ID}");
    let long_search = format!("/v1/jobs?search={}", "x".repeat(201));
    let cases: &[Case] = &[
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            "{not json",
            400,
            "BAD_REQUEST",
            None,
        ),
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "a", "colour": 1}"#,
            400,
            "BAD_REQUEST",
            None,
        ),
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": 5}"#,
            400,
            "BAD_REQUEST",
            None,
        ),
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "a", "priority": "high"}"#,
            400,
            "BAD_REQUEST",
            None,
        ),
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            &big,
            413,
            "PAYLOAD_TOO_LARGE",
            None,
        ),
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "no spaces"}"#,
            422,
            "VALIDATION_FAILED",
            Some("kind"),
        ),
        (
            "POST",
            "/v1/jobs?wait=soon",
            API_TOKEN,
            r#"{"kind": "a"}"#,
            422,
            "VALIDATION_FAILED",
            Some("wait"),
        ),
        (
            "GET",
            "/v1/jobs/not-a-uuid",
            API_TOKEN,
            "",
            400,
            "BAD_REQUEST",
            None,
        ),
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "a", "then": [{"kind": "b"}, {"kind": "bad kind"}]}"#,
            422,
            "VALIDATION_FAILED",
            Some("then[1].kind"),
        ),
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "a", "concurrency": {"key": "acct:1", "limit": 0}}"#,
            422,
            "VALIDATION_FAILED",
            Some("concurrency.limit"),
        ),
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "a", "concurrency": {"key": "acct:1"}}"#,
            422,
            "VALIDATION_FAILED",
            Some("concurrency.limit"),
        ),
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "a", "concurrency": {"key": "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "limit": 1}}"#,
            422,
            "VALIDATION_FAILED",
            Some("concurrency.key"),
        ),
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "a", "rate_limit": {"key": "api", "interval_ms": 18446744073709551615}}"#,
            422,
            "VALIDATION_FAILED",
            Some("rate_limit.interval_ms"),
        ),
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "a", "rate_limit": {"key": "api", "max": 5}}"#,
            422,
            "VALIDATION_FAILED",
            Some("rate_limit.per_ms"),
        ),
        (
            "POST",
            "/v1/batches",
            API_TOKEN,
            r#"{"kind": "a", "items": [1], "options": {"rate_limit": {"key": "api"}}}"#,
            422,
            "VALIDATION_FAILED",
            Some("options.rate_limit"),
        ),
        (
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "browser.run", "payload": {"steps": [{"goto": {"url": "https://a.example"}}, {"click": {}}]}}"#,
            422,
            "INVALID_RECIPE",
            Some("payload.steps[1]"),
        ),
        (
            "POST",
            "/v1/batches",
            API_TOKEN,
            r#"{"kind": "browser.run", "items": [{"steps": [{"goto": {"url": "https://a.example"}}]}, {"steps": [{"goto": {"url": "ftp://x"}}]}]}"#,
            422,
            "INVALID_RECIPE",
            Some("items[1].steps[0].goto.url"),
        ),
        (
            "GET",
            "/v1/events?after=x",
            API_TOKEN,
            "",
            422,
            "VALIDATION_FAILED",
            Some("after"),
        ),
        ("GET", &unknown_job, API_TOKEN, "", 404, "NOT_FOUND", None),
        ("GET", "/v1/nothing", API_TOKEN, "", 404, "NOT_FOUND", None),
        (
            "DELETE",
            "/v1/jobs",
            API_TOKEN,
            "",
            405,
            "METHOD_NOT_ALLOWED",
            None,
        ),
        (
            "GET",
            "/v1/jobs?stauts=pending",
            API_TOKEN,
            "",
            422,
            "VALIDATION_FAILED",
            Some("stauts"),
        ),
        (
            "GET",
            "/v1/jobs?status=sleeping",
            API_TOKEN,
            "",
            422,
            "VALIDATION_FAILED",
            Some("status"),
        ),
        (
            "GET",
            "/v1/jobs?limit=0",
            API_TOKEN,
            "",
            422,
            "VALIDATION_FAILED",
            Some("limit"),
        ),
        (
            "GET",
            "/v1/jobs?parent=not-a-job",
            API_TOKEN,
            "",
            422,
            "VALIDATION_FAILED",
            Some("parent"),
        ),
        (
            "GET",
            &long_search,
            API_TOKEN,
            "",
            422,
            "VALIDATION_FAILED",
            Some("search"),
        ),
        (
            "POST",
            "/v1/worker/claim",
            WORKER_TOKEN,
            r#"{"worker_id": "w", "kinds": ["http*", "ok.*"]}"#,
            422,
            "VALIDATION_FAILED",
            Some("kinds[0]"),
        ),
        (
            "POST",
            "/v1/worker/claim",
            WORKER_TOKEN,
            r#"{"worker_id": "w", "kinds": []}"#,
            422,
            "VALIDATION_FAILED",
            Some("kinds"),
        ),
        (
            "POST",
            &fail_path,
            WORKER_TOKEN,
            r#"{"lease": "x", "error": {"code": "lower case", "message": "m"}}"#,
            422,
            "VALIDATION_FAILED",
            Some("error.code"),
        ),
        (
            "POST",
            "/v1/jobs/batch",
            API_TOKEN,
            r#"{"jobs": [{"kind": "a"}, {"kind": ""}, {"kind": "b", "max_attempts": 0}]}"#,
            422,
            "VALIDATION_FAILED",
            Some("jobs[1].kind"),
        ),
    ];
    for (method, path, token, body, status, code, field) in cases {
        let answer = raw.json(method, path, token, body).await;
        let what = format!("{method} {path} {body:.60}: {}", answer.body);
        assert_eq!((answer.status, answer.code()), (*status, *code), "{what}");
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}"
        );
        assert_eq!(
            answer.body["error"]["fields"][0]["field"].as_str(),
            *field,
            "{what}"
        );
    }
    let no_type = raw
        .send(
            "POST",
            "/v1/jobs",
            &[("Authorization", &format!("Bearer {API_TOKEN}"))],
            br#"{"kind":"a"}"#,
        )
        .await;
    assert_eq!(
        (no_type.status, no_type.code()),
        (415, "UNSUPPORTED_MEDIA_TYPE")
    );
    // The refused batch named every bad entry, and stored none of them.
    let batch = raw
        .json(
            "POST",
            "/v1/jobs/batch",
            API_TOKEN,
            r#"{"jobs": [{"kind": "a"}, {"kind": ""}, {"kind": "b", "max_attempts": 0}]}"#,
        )
        .await;
    let fields: Vec<_> = batch.body["error"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["field"].clone())
        .collect();
    assert_eq!(
        fields,
        [json!("jobs[1].kind"), json!("jobs[2].max_attempts")]
    );
    assert!(
        server
            .api
            .list(&ListQuery::default())
            .await
            .expect("list")
            .jobs
            .is_empty()
    );
}

#[tokio::test]
async fn a_job_runs_through_the_worker_protocol() {
    let server = TestServer::spawn().await;
    let submitted = server
        .api
        .submit(&job("sync.reviews", json!({"shop": 1})))
        .await
        .expect("submit");
    let claimed = server
        .worker
        .claim(&claim_req(&["sync.*"], 5, 0))
        .await
        .expect("claim")
        .jobs;
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!(
        (c.id, c.attempt, c.payload.clone()),
        (submitted.id, 1, json!({"shop": 1}))
    );

    let hb = server
        .worker
        .heartbeat(c.id, &c.lease)
        .await
        .expect("heartbeat");
    assert!(!hb.cancel && hb.lease_expires_at > Utc::now());
    let report = ProgressRequest {
        lease: c.lease.clone(),
        current: Some(1),
        total: Some(2),
        message: Some("page 1".into()),
        items: Some(vec![json!({"id": "r1"}), json!({"id": "r2"})]),
        items_offset: Some(0),
    };
    server
        .worker
        .progress(c.id, &report)
        .await
        .expect("progress");
    server
        .worker
        .progress(c.id, &report)
        .await
        .expect("progress repeated");
    let running = server.api.job(c.id).await.expect("get");
    assert_eq!(running.status, JobState::Running);
    assert_eq!(
        running.progress.and_then(|p| p.message),
        Some("page 1".into())
    );
    let items = server.api.items(c.id, 0, 100).await.expect("items");
    assert_eq!(
        items
            .items
            .iter()
            .map(|i| i.data.clone())
            .collect::<Vec<_>>(),
        [json!({"id": "r1"}), json!({"id": "r2"})]
    );
    assert!(
        server
            .api
            .items(c.id, items.next_after, 100)
            .await
            .expect("items")
            .items
            .is_empty()
    );

    let done = server
        .worker
        .complete(c.id, &c.lease, json!({"n": 2}))
        .await
        .expect("complete");
    assert_eq!(
        (done.status, done.result.clone()),
        (JobState::Completed, Some(json!({"n": 2})))
    );
    let again = server
        .worker
        .complete(c.id, &c.lease, json!({"n": 999}))
        .await
        .expect("repeat is idempotent");
    assert_eq!(again.result, Some(json!({"n": 2})));
    let late = server
        .worker
        .fail(
            c.id,
            &c.lease,
            FailError {
                code: "X".into(),
                message: "late".into(),
                retryable: true,
                retry_after_ms: None,
            },
        )
        .await
        .expect_err("fail after complete");
    assert_eq!(api_code(late), ErrorCode::LeaseLost);
}

#[tokio::test]
async fn claims_long_poll_until_work_arrives() {
    let server = TestServer::spawn().await;
    let worker = server.worker.clone();
    let waiting = tokio::spawn(async move { worker.claim(&claim_req(&["a"], 1, 20_000)).await });
    server.claims_waiting(1).await;
    let submitted = server
        .api
        .submit(&job("a", json!({})))
        .await
        .expect("submit");
    let got = waiting.await.expect("task").expect("claim");
    assert_eq!(
        got.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        [submitted.id]
    );
    // With nothing to do, a claim answers an empty list when its wait is over.
    assert!(
        server
            .worker
            .claim(&claim_req(&["a"], 1, 200))
            .await
            .expect("claim")
            .jobs
            .is_empty()
    );
}

#[tokio::test]
async fn a_long_poll_wakes_for_a_delayed_job_when_it_is_due() {
    let server = TestServer::spawn().await;
    let mut spec = job("later", json!({}));
    spec.delay_ms = Some(500);
    let submitted = server.api.submit(&spec).await.expect("submit");
    assert_eq!(submitted.status, JobState::Scheduled);
    let got = server
        .worker
        .claim(&claim_req(&["later"], 1, 20_000))
        .await
        .expect("claim");
    assert_eq!(got.jobs.len(), 1);
    assert!(Utc::now() >= submitted.run_at);
}

#[tokio::test]
async fn submit_with_wait_answers_the_finished_job() {
    let server = TestServer::spawn().await;
    let worker = server.worker.clone();
    tokio::spawn(async move {
        let c = worker
            .claim(&claim_req(&["quick"], 1, 20_000))
            .await
            .expect("claim")
            .jobs
            .remove(0);
        worker
            .complete(c.id, &c.lease, json!("done"))
            .await
            .expect("complete");
    });
    let job_done = server
        .api
        .submit_and_wait(&job("quick", json!({})), Duration::from_secs(20))
        .await
        .expect("submit");
    assert_eq!(
        (job_done.status, job_done.result),
        (JobState::Completed, Some(json!("done")))
    );

    let answer = server
        .raw()
        .json(
            "POST",
            "/v1/jobs?wait=0.2",
            API_TOKEN,
            r#"{"kind": "nobody.runs.this"}"#,
        )
        .await;
    assert_eq!(
        (answer.status, answer.body["status"].as_str()),
        (202, Some("pending"))
    );
}

#[tokio::test]
async fn cancel_reaches_a_running_job_on_its_next_heartbeat() {
    let server = TestServer::spawn().await;
    let waiting = server
        .api
        .submit(&job("a", json!({})))
        .await
        .expect("submit");
    let cancelled = server.api.cancel(waiting.id).await.expect("cancel");
    assert_eq!(cancelled.status, JobState::Cancelled);

    let running = server
        .api
        .submit(&job("b", json!({})))
        .await
        .expect("submit");
    let c = server
        .worker
        .claim(&claim_req(&["b"], 1, 0))
        .await
        .expect("claim")
        .jobs
        .remove(0);
    assert!(
        server
            .api
            .cancel(running.id)
            .await
            .expect("cancel")
            .cancel_requested
    );
    assert!(
        server
            .worker
            .heartbeat(c.id, &c.lease)
            .await
            .expect("heartbeat")
            .cancel
    );
    let acked = server
        .worker
        .fail(
            c.id,
            &c.lease,
            FailError {
                code: "CANCELLED".into(),
                message: "stopped".into(),
                retryable: false,
                retry_after_ms: None,
            },
        )
        .await
        .expect("ack");
    assert_eq!(acked.status, JobState::Cancelled);
    let revived = server.api.retry(running.id).await.expect("retry");
    assert_eq!((revived.status, revived.attempt), (JobState::Pending, 0));
    let not_now = server
        .api
        .retry(running.id)
        .await
        .expect_err("retry a pending job");
    assert_eq!(api_code(not_now), ErrorCode::InvalidState);
}

#[tokio::test]
async fn expired_leases_and_deadlines_are_enforced_by_maintenance() {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
            .single()
            .expect("time"),
    ));
    let server = TestServer::builder()
        .with_clock(clock.clone())
        .spawn()
        .await;
    let mut spec = job("a", json!({}));
    spec.max_attempts = Some(2);
    spec.timeout_ms = Some(60_000);
    let submitted = server.api.submit(&spec).await.expect("submit");
    let mut req = claim_req(&["a"], 1, 0);
    req.lease_ms = Some(5_000);
    let first = server
        .worker
        .claim(&req)
        .await
        .expect("claim")
        .jobs
        .remove(0);

    clock.advance(chrono::Duration::milliseconds(5_001));
    assert_eq!(server.run_maintenance().await, 1);
    let rescued = server.api.job(submitted.id).await.expect("get");
    assert_eq!(rescued.status, JobState::Scheduled);
    assert_eq!(rescued.error.map(|e| e.code), Some("LEASE_EXPIRED".into()));
    let late = server
        .worker
        .complete(first.id, &first.lease, json!("late"))
        .await
        .expect_err("late complete");
    assert_eq!(api_code(late), ErrorCode::LeaseLost);

    clock.advance(chrono::Duration::seconds(5));
    let second = server
        .worker
        .claim(&req)
        .await
        .expect("claim")
        .jobs
        .remove(0);
    assert_eq!(second.attempt, 2);
    // Heartbeats keep the lease but the deadline still ends the attempt.
    for _ in 0..20 {
        clock.advance(chrono::Duration::seconds(4));
        server
            .worker
            .heartbeat(second.id, &second.lease)
            .await
            .expect("heartbeat");
    }
    server.run_maintenance().await;
    let dead = server.api.job(submitted.id).await.expect("get");
    assert_eq!(dead.status, JobState::Failed);
    assert_eq!(dead.error.map(|e| e.code), Some("TIMEOUT".into()));
}

#[tokio::test]
async fn dedupe_keys_answer_200_with_the_existing_job() {
    let server = TestServer::spawn().await;
    let body = r#"{"kind": "sync.reviews", "payload": {"shop": 1}, "dedupe_key": "sync:shop-1"}"#;
    let first = server.raw().json("POST", "/v1/jobs", API_TOKEN, body).await;
    assert_eq!(first.status, 202);
    let again = server.raw().json("POST", "/v1/jobs", API_TOKEN, body).await;
    assert_eq!(again.status, 200, "a duplicate creates nothing");
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.body["dedupe_key"], "sync:shop-1");

    let mut spec = job("sync.reviews", json!({}));
    spec.dedupe_key = Some("sync:shop-1".into());
    let mut other = job("sync.reviews", json!({}));
    other.dedupe_key = Some("sync:shop-2".into());
    let answer = server
        .api
        .submit_batch_detailed(vec![spec, other])
        .await
        .expect("batch");
    assert_eq!(answer.created, [false, true]);
    assert_eq!(
        answer.jobs[0].id.to_string(),
        first.body["id"].as_str().unwrap_or_default()
    );
}

#[tokio::test]
async fn paused_kinds_wait_until_resumed() {
    let server = TestServer::spawn().await;
    let paused = server.api.pause("report.*").await.expect("pause");
    assert_eq!(paused.paused, ["report.*"]);
    let submitted = server
        .api
        .submit(&job("report.daily", json!({})))
        .await
        .expect("submit");
    assert!(
        server
            .worker
            .claim(&claim_req(&["*"], 10, 300))
            .await
            .expect("claim")
            .jobs
            .is_empty()
    );

    let worker = server.worker.clone();
    let waiting =
        tokio::spawn(async move { worker.claim(&claim_req(&["report.*"], 10, 20_000)).await });
    server.claims_waiting(1).await;
    assert!(!waiting.is_finished(), "still paused");
    assert!(
        server
            .api
            .resume("report.*")
            .await
            .expect("resume")
            .paused
            .is_empty()
    );
    let got = waiting.await.expect("task").expect("claim").jobs;
    assert_eq!(
        got.iter().map(|j| j.id).collect::<Vec<_>>(),
        [submitted.id],
        "resuming wakes the long-poll"
    );

    let bad = server
        .raw()
        .json("POST", "/v1/kinds/report*/pause", API_TOKEN, "")
        .await;
    assert_eq!((bad.status, bad.code()), (422, "VALIDATION_FAILED"));
    assert_eq!(bad.body["error"]["fields"][0]["field"], "pattern");
    let wrong_token = server
        .raw()
        .json("GET", "/v1/kinds/paused", WORKER_TOKEN, "")
        .await;
    assert_eq!((wrong_token.status, wrong_token.code()), (403, "FORBIDDEN"));
}

#[tokio::test]
async fn batches_are_created_whole_and_cancelled_whole() {
    let server = TestServer::spawn().await;
    let batch = ferry_core::api::CreateBatch {
        kind: "kw.lookup".into(),
        items: (0..5).map(|i| json!({"kw": format!("kw-{i}")})).collect(),
        options: ferry_core::api::BatchOptions {
            max_attempts: Some(2),
            ..Default::default()
        },
    };
    let created = server.api.create_batch(&batch).await.expect("create");
    assert_eq!(created.total, 5);
    let b = server.api.batch(created.batch_id).await.expect("get");
    assert_eq!(
        (b.status, b.progress.pending),
        (ferry_core::api::BatchState::Running, 5)
    );
    let cancelled = server
        .api
        .cancel_batch(created.batch_id)
        .await
        .expect("cancel");
    assert_eq!(
        (cancelled.status, cancelled.progress.cancelled),
        (ferry_core::api::BatchState::Cancelled, 5)
    );
    assert!(
        server
            .worker
            .claim(&claim_req(&["kw.*"], 10, 0))
            .await
            .expect("claim")
            .jobs
            .is_empty()
    );

    let raw = server.raw();
    let bad = raw
        .json(
            "POST",
            "/v1/batches",
            API_TOKEN,
            r#"{"kind": "kw.lookup", "items": [{}, {}], "options": {"priority": 99999}}"#,
        )
        .await;
    assert_eq!((bad.status, bad.code()), (422, "VALIDATION_FAILED"));
    assert_eq!(
        bad.body["error"]["fields"].as_array().map(Vec::len),
        Some(1),
        "named once: {}",
        bad.body
    );
    assert_eq!(bad.body["error"]["fields"][0]["field"], "options.priority");
    let empty = raw
        .json(
            "POST",
            "/v1/batches",
            API_TOKEN,
            r#"{"kind": "kw.lookup", "items": []}"#,
        )
        .await;
    assert_eq!(empty.body["error"]["fields"][0]["field"], "items");
    let missing = raw
        .json(
            "GET",
            "/v1/batches/0190a6d2-7a8e-7c3b-9a1e-2f4b5c6d7e8f",
            API_TOKEN,
            "",
        )
        .await;
    assert_eq!(
        (missing.status, missing.body["error"]["message"].as_str()),
        (404, Some("batch not found"))
    );
    let bad_cursor = raw
        .json(
            "GET",
            &format!("/v1/batches/{}/results?after=nope", created.batch_id),
            API_TOKEN,
            "",
        )
        .await;
    assert_eq!(bad_cursor.body["error"]["fields"][0]["field"], "after");
}

/// Server-side limits by key pattern: a ceiling for jobs that name the key, the limit
/// for jobs that leave it out, and a key for `kind:` rules. A slot freed by a completion
/// wakes a waiting long-poll at once.
#[tokio::test]
async fn configured_key_limits_apply_and_freed_slots_wake_claims() {
    use ferry_core::flow::{ConcurrencySpec, KeyRule};
    let server = TestServer::builder()
        .configure(|c| {
            c.job_defaults.concurrency_rules = vec![
                KeyRule::new("account:*", 1).expect("rule"),
                KeyRule::new("kind:report.*", 1).expect("rule"),
            ];
        })
        .spawn()
        .await;
    let keyed = |kind: &str, key: Option<&str>, limit: Option<u32>| {
        let mut spec = job(kind, json!({}));
        spec.concurrency = key.map(|key| ConcurrencySpec {
            key: key.into(),
            limit,
        });
        spec
    };
    let a = server
        .api
        .submit(&keyed("login", Some("account:7"), None))
        .await
        .expect("submit");
    assert_eq!(a.concurrency.as_ref().map(|c| c.limit), Some(1));
    let capped = server
        .api
        .submit(&keyed("login", Some("account:7"), Some(5)))
        .await
        .expect("submit");
    assert_eq!(capped.concurrency.as_ref().map(|c| c.limit), Some(1));
    let report = server
        .api
        .submit(&keyed("report.daily", None, None))
        .await
        .expect("submit");
    assert_eq!(
        report
            .concurrency
            .as_ref()
            .map(|c| (c.key.as_str(), c.limit)),
        Some(("kind:report.*", 1))
    );
    let unrelated = server
        .api
        .submit(&keyed("other", Some("mine"), None))
        .await
        .expect_err("no limit anywhere");
    assert_eq!(api_code(unrelated), ErrorCode::ValidationFailed);

    let first = server
        .worker
        .claim(&claim_req(&["login"], 10, 0))
        .await
        .expect("claim")
        .jobs;
    assert_eq!(first.iter().map(|j| j.id).collect::<Vec<_>>(), [a.id]);
    // The second job of the account waits; the completion of the first wakes it.
    let worker = server.worker.clone();
    let waiting =
        tokio::spawn(async move { worker.claim(&claim_req(&["login"], 10, 20_000)).await });
    server.claims_waiting(1).await;
    let started = std::time::Instant::now();
    server
        .worker
        .complete(a.id, &first[0].lease, json!({}))
        .await
        .expect("complete");
    let next = waiting.await.expect("task").expect("claim").jobs;
    assert_eq!(next.iter().map(|j| j.id).collect::<Vec<_>>(), [capped.id]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken, not timed out"
    );
}

/// Artifacts: uploaded under the job's lease, listed and downloaded by clients, served so
/// a page's HTML never runs on the API's origin.
#[tokio::test]
async fn artifacts_are_uploaded_under_the_lease_and_served() {
    let server = TestServer::builder().spawn().await;
    let submitted = server
        .api
        .submit(&job("report.render", json!({})))
        .await
        .expect("submit");
    let claimed = server
        .worker
        .claim(&claim_req(&["report.render"], 1, 0))
        .await
        .expect("claim")
        .jobs;
    let lease = claimed[0].lease.clone();
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    let info = server
        .worker
        .upload_artifact(submitted.id, &lease, "page.html", "text/html", html.clone())
        .await
        .expect("upload");
    assert_eq!((info.size_bytes, info.attempt), (html.len() as u64, 1));
    let png = vec![0x89, b'P', b'N', b'G', 1, 2, 3];
    server
        .worker
        .upload_artifact(submitted.id, &lease, "shot.png", "image/png", png.clone())
        .await
        .expect("upload");

    for (name, lease_used, code) in [
        ("bad name!", lease.as_str(), ErrorCode::ValidationFailed),
        (".hidden", lease.as_str(), ErrorCode::ValidationFailed),
        ("ok.png", "stale", ErrorCode::LeaseLost),
    ] {
        let err = server
            .worker
            .upload_artifact(submitted.id, lease_used, name, "image/png", vec![1])
            .await
            .expect_err("refused");
        assert_eq!(api_code(err), code, "{name}");
    }

    let listed = server.api.artifacts(submitted.id).await.expect("list");
    let names: Vec<_> = listed.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"page.html") && names.contains(&"shot.png"));
    assert_eq!(
        server
            .api
            .artifact(submitted.id, "shot.png")
            .await
            .expect("download"),
        png
    );
    let raw = server
        .raw()
        .send(
            "GET",
            &format!("/v1/jobs/{}/artifacts/page.html", submitted.id),
            &[("Authorization", &format!("Bearer {API_TOKEN}"))],
            b"",
        )
        .await;
    assert_eq!(raw.status, 200);
    let header = |name: &str| {
        raw.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("content-type").as_deref(), Some("text/html"));
    assert_eq!(
        header("content-security-policy").as_deref(),
        Some("sandbox")
    );
    assert_eq!(
        api_code(
            server
                .api
                .artifact(submitted.id, "nope.png")
                .await
                .expect_err("none")
        ),
        ErrorCode::NotFound
    );
    assert_eq!(
        api_code(
            server
                .api
                .artifacts(ferry_core::JobId::new())
                .await
                .expect_err("no job")
        ),
        ErrorCode::NotFound
    );
    // Once the job is finished, its lease no longer uploads.
    server
        .worker
        .complete(submitted.id, &lease, json!({}))
        .await
        .expect("complete");
    let late = server
        .worker
        .upload_artifact(submitted.id, &lease, "late.png", "image/png", vec![1])
        .await
        .expect_err("finished");
    assert_eq!(api_code(late), ErrorCode::LeaseLost);

    // Retention takes a finished job's artifacts with it.
    let retention = TestServer::builder()
        .configure(|c| c.services.cleaner.retention = Duration::ZERO)
        .spawn()
        .await;
    let kept = retention
        .api
        .submit(&job("report.render", json!({})))
        .await
        .expect("submit");
    let c = retention
        .worker
        .claim(&claim_req(&["report.render"], 1, 0))
        .await
        .expect("claim")
        .jobs;
    retention
        .worker
        .upload_artifact(kept.id, &c[0].lease, "shot.png", "image/png", vec![1, 2, 3])
        .await
        .expect("upload");
    retention
        .worker
        .complete(kept.id, &c[0].lease, json!({}))
        .await
        .expect("complete");
    let objects = retention
        .queue
        .config()
        .artifacts
        .clone()
        .expect("an artifact store");
    let path = object_store_path(kept.id, "shot.png");
    assert!(
        object_store::ObjectStoreExt::get(&*objects, &path)
            .await
            .is_ok()
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    retention.run_maintenance().await;
    assert!(
        retention
            .queue
            .store()
            .artifact_list(ferry_core::DEFAULT_TENANT, kept.id)
            .await
            .expect("list")
            .is_empty(),
        "index rows removed"
    );
    assert!(
        retention.api.job(kept.id).await.is_err(),
        "the job itself went first"
    );
    assert!(
        matches!(
            object_store::ObjectStoreExt::get(&*objects, &path).await,
            Err(object_store::Error::NotFound { .. })
        ),
        "the file removed"
    );

    // A server without an artifact store says so.
    let bare = TestServer::builder().without_artifacts().spawn().await;
    let j = bare
        .api
        .submit(&job("x.y", json!({})))
        .await
        .expect("submit");
    let c = bare
        .worker
        .claim(&claim_req(&["x.y"], 1, 0))
        .await
        .expect("claim")
        .jobs;
    assert_eq!(c[0].id, j.id);
    let err = bare
        .worker
        .upload_artifact(j.id, &c[0].lease, "a.png", "image/png", vec![1])
        .await
        .expect_err("disabled");
    assert_eq!(api_code(err), ErrorCode::ArtifactsDisabled);
}

/// A live stream resumed with `Last-Event-ID` has no gap and no duplicate; filters apply;
/// a bad filter is a 422.
#[tokio::test]
async fn event_streams_resume_without_gap_or_duplicate() {
    let server = TestServer::builder().spawn().await;
    for i in 0..3 {
        server
            .api
            .submit(&job("mail.send", json!({"n": i})))
            .await
            .expect("submit");
    }
    let first = ferry_testkit::sse::read(&server.url, "/v1/events", None, 3).await;
    assert!(first.iter().all(|(_, t, _)| t == "job.created"));
    let last_seen = first[2].0;

    // While the client is away: more jobs, one run to completion.
    for i in 3..5 {
        server
            .api
            .submit(&job("mail.send", json!({"n": i})))
            .await
            .expect("submit");
    }
    let claimed = server
        .worker
        .claim(&claim_req(&["mail.send"], 1, 0))
        .await
        .expect("claim")
        .jobs;
    server
        .worker
        .complete(claimed[0].id, &claimed[0].lease, json!({"ok": true}))
        .await
        .expect("complete");

    // Everything the record holds, read as pages.
    let all = server.events_when(|e| e.len() >= 7).await;
    assert_eq!(all.len(), 7, "{all:?}");
    let resumed = ferry_testkit::sse::read(&server.url, "/v1/events", Some(last_seen), 4).await;
    let mut ids: Vec<i64> = first.iter().chain(&resumed).map(|e| e.0).collect();
    let streamed = ids.clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 7, "no duplicate: {streamed:?}");
    let mut expected: Vec<i64> = all.iter().map(|e| e.id).collect();
    expected.sort();
    assert_eq!(ids, expected, "no gap");
    assert_eq!(
        streamed,
        all.iter().map(|e| e.id).collect::<Vec<_>>(),
        "the stream and the pages agree on the order"
    );
    assert_eq!(resumed[3].1, "job.completed");
    assert_eq!(resumed[3].2["job_id"], json!(claimed[0].id));

    // One job's stream, and a type filter.
    let one = ferry_testkit::sse::read(
        &server.url,
        &format!("/v1/jobs/{}/events", claimed[0].id),
        None,
        3,
    )
    .await;
    let types: Vec<&str> = one.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(types, ["job.created", "job.started", "job.completed"]);
    let done = ferry_testkit::sse::read(
        &server.url,
        "/v1/events?type=job.completed&kind=mail.*",
        None,
        1,
    )
    .await;
    assert_eq!(done[0].1, "job.completed");

    let bad = server
        .raw()
        .json("GET", "/v1/events?type=job.exploded", API_TOKEN, "")
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["error"]["fields"][0]["field"], "type");
}

/// A live stream read off a raw connection, block by block: `(id, event type, data)`,
/// where a block with only an `id:` is a position note (no event).
struct RawStream {
    stream: tokio::net::TcpStream,
    text: String,
}

impl RawStream {
    /// Opens `path` as a stream; answers once the response's headers came, so the
    /// server has taken its starting position.
    async fn open(base: &str, path: &str) -> RawStream {
        use tokio::io::AsyncWriteExt;
        let host = base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {API_TOKEN}\r\nAccept: text/event-stream\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut s = RawStream {
            stream,
            text: String::new(),
        };
        s.read_until(|_, text| text.contains("\r\n\r\n")).await;
        assert!(s.text.starts_with("HTTP/1.1 200"), "{}", s.text);
        s
    }

    /// Reads until `done` holds for the blocks so far (or fails after 10 s).
    async fn read_until(
        &mut self,
        done: impl Fn(&[(i64, Option<String>, Option<serde_json::Value>)], &str) -> bool,
    ) -> Vec<(i64, Option<String>, Option<serde_json::Value>)> {
        use tokio::io::AsyncReadExt;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 8192];
        loop {
            let blocks: Vec<_> = self
                .text
                .split("\n\n")
                .filter_map(|block| {
                    let field = |name: &str| {
                        block
                            .lines()
                            .find_map(|l| l.strip_prefix(name))
                            .map(|v| v.trim().to_owned())
                    };
                    let id = field("id:")?.parse().ok()?;
                    let data = field("data:").and_then(|d| serde_json::from_str(&d).ok());
                    Some((id, field("event:"), data))
                })
                .collect();
            if done(&blocks, &self.text) {
                return blocks;
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("not in time; read so far: {}", self.text))
                .expect("read");
            assert!(read > 0, "the stream ended early: {}", self.text);
            self.text.push_str(&String::from_utf8_lossy(&buf[..read]));
        }
    }
}

/// A filter that matches nothing still moves the reader's position past what it read:
/// pages answer a `next_after` at the end of what they scanned, a stream sends that
/// position as an `id:` of its own (so a client reconnecting with `Last-Event-ID` does not
/// read it again), and a webhook's cursor moves. `after=now` starts at the record's end.
#[tokio::test]
async fn filtered_readers_move_past_events_they_do_not_match() {
    let server = TestServer::builder().spawn().await;
    let raw = server.raw();
    let hook = raw
        .json(
            "POST",
            "/v1/webhooks",
            API_TOKEN,
            r#"{"url": "http://127.0.0.1:9/hook", "events": ["job.failed"], "secret": "0123456789abcdef"}"#,
        )
        .await;
    assert_eq!(hook.status, 201, "{:?}", hook.body);
    let stream_from_start = RawStream::open(&server.url, "/v1/events?type=job.failed").await;
    for i in 0..30 {
        server
            .api
            .submit(&job("mail.send", json!({"n": i})))
            .await
            .expect("submit");
    }
    let all = server.events_when(|e| e.len() >= 30).await;
    let last = all.last().expect("events").id;

    let page = raw
        .json("GET", "/v1/events?type=job.failed&limit=10", API_TOKEN, "")
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body["events"], json!([]));
    assert_eq!(page.body["next_after"], json!(last), "past what it scanned");
    let at_end = raw
        .json("GET", &format!("/v1/events?after={last}"), API_TOKEN, "")
        .await;
    assert_eq!(at_end.body["next_after"], json!(last), "nothing to scan");
    let now = raw.json("GET", "/v1/events?after=now", API_TOKEN, "").await;
    assert_eq!(now.status, 200, "{:?}", now.body);
    assert_eq!(
        (now.body["events"].clone(), now.body["next_after"].clone()),
        (json!([]), json!(last))
    );

    // The stream notes its position without sending an event.
    let mut stream_from_start = stream_from_start;
    let notes = stream_from_start
        .read_until(|blocks, _| blocks.iter().any(|b| b.0 == last))
        .await;
    assert!(
        notes.iter().all(|b| b.1.is_none() && b.2.is_none()),
        "{notes:?}"
    );

    // The webhook's cursor moves past the events it does not want.
    ferry_server::services::Service::run_once(&ferry_server::services::WebhookSender::new(
        server.queue.clone(),
    ))
    .await
    .expect("webhooks");
    let hooks = server
        .queue
        .store()
        .webhook_list(None)
        .await
        .expect("hooks");
    assert_eq!(hooks[0].cursor, last);

    // From now: only what is written after the stream opened.
    let mut from_now = RawStream::open(&server.url, "/v1/events?after=now").await;
    let new = server
        .api
        .submit(&job("mail.send", json!({"n": "new"})))
        .await
        .expect("submit");
    let seen = from_now
        .read_until(|blocks, _| blocks.iter().any(|b| b.2.is_some()))
        .await;
    let first = seen.iter().find(|b| b.2.is_some()).expect("an event");
    assert!(first.0 > last);
    assert_eq!(
        first.2.as_ref().map(|d| d["job_id"].clone()),
        Some(json!(new.id))
    );
    let bad = raw
        .json("GET", "/v1/events?after=later", API_TOKEN, "")
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["error"]["fields"][0]["field"], "after");
}

fn object_store_path(job: ferry_core::JobId, name: &str) -> object_store::path::Path {
    object_store::path::Path::from(format!("jobs/{job}/{name}"))
}

/// U+0000 cannot be stored by PostgreSQL (and SQLite's JSON would keep a string the other
/// backend refuses), so every string the API takes is checked at the edge: a body, a path or
/// a query with U+0000 is a `422` naming the field, on both backends, and nothing is stored.
#[tokio::test]
async fn nul_characters_are_refused_at_the_edge_naming_the_field() {
    let server = TestServer::spawn().await;
    let raw = server.raw();
    let client_cases = [
        (
            "/v1/jobs",
            r#"{"kind": "nul.a", "payload": {"t": "x\u0000y"}}"#,
            "payload.t",
        ),
        (
            "/v1/jobs",
            r#"{"kind": "nul.a", "labels": {"k": "v\u0000"}}"#,
            "labels.k",
        ),
        (
            "/v1/jobs",
            r#"{"kind": "nul.a", "dedupe_key": "\u0000"}"#,
            "dedupe_key",
        ),
        (
            "/v1/jobs/batch",
            r#"{"jobs": [{"kind": "nul.a"}, {"kind": "nul.a", "payload": {"s": ["ok", "a\u0000"]}}]}"#,
            "jobs[1].payload.s[1]",
        ),
        (
            "/v1/batches",
            r#"{"kind": "nul.a", "items": [{"kw": "shoes"}, {"kw": "\u0000"}]}"#,
            "items[1].kw",
        ),
        (
            "/v1/schedules",
            r#"{"name": "nul", "cron": "* * * * *", "job": {"kind": "nul.a", "payload": {"x": "\u0000"}}}"#,
            "job.payload.x",
        ),
        (
            "/v1/webhooks",
            r#"{"url": "http://127.0.0.1:9/\u0000", "events": ["job.failed"], "secret": "0123456789abcdef"}"#,
            "url",
        ),
        (
            "/v1/jobs",
            r#"{"kind": "nul.a", "output": {"dataset": "d\u0000", "key": "id"}}"#,
            "output.dataset",
        ),
    ];
    for (path, body, field) in client_cases {
        let answer = raw.json("POST", path, API_TOKEN, body).await;
        assert_eq!(answer.status, 422, "{path} {body}: {:?}", answer.body);
        assert_eq!(answer.code(), "VALIDATION_FAILED", "{body}");
        assert_eq!(answer.body["error"]["fields"][0]["field"], field, "{body}");
    }
    for (path, field) in [
        ("/v1/jobs?label=k:%00", "label"),
        ("/v1/datasets/a%00b", "path"),
        ("/v1/schedules/a%00b", "path"),
    ] {
        let answer = raw.json("GET", path, API_TOKEN, "").await;
        assert_eq!(answer.status, 422, "{path}: {:?}", answer.body);
        assert_eq!(answer.body["error"]["fields"][0]["field"], field, "{path}");
    }
    let page = server.api.list(&ListQuery::default()).await.expect("list");
    assert!(page.jobs.is_empty(), "nothing was stored: {:?}", page.jobs);

    // The worker's reports: refused the same way, and the job can still be completed.
    let job = server
        .api
        .submit(&job("nul.w", json!({})))
        .await
        .expect("submit");
    let claimed = server
        .worker
        .claim(&claim_req(&["nul.w"], 1, 0))
        .await
        .expect("claim")
        .jobs
        .remove(0);
    let (id, lease) = (job.id, claimed.lease.clone());
    let worker_cases = [
        (
            format!("/v1/worker/jobs/{id}/progress"),
            json!({"lease": lease, "message": "a\u{0}"}),
            "message",
        ),
        (
            format!("/v1/worker/jobs/{id}/progress"),
            json!({"lease": lease, "items": [{"t": "ok"}, {"t": "\u{0}"}]}),
            "items[1].t",
        ),
        (
            format!("/v1/worker/jobs/{id}/complete"),
            json!({"lease": lease, "result": {"body": "a\u{0}b"}}),
            "result.body",
        ),
        (
            "/v1/worker/complete".to_owned(),
            json!({"jobs": [{"id": id, "lease": lease, "result": {"body": "\u{0}"}}]}),
            "jobs[0].result.body",
        ),
        (
            format!("/v1/worker/jobs/{id}/fail"),
            json!({"lease": lease, "error": {"code": "E", "message": "a\u{0}", "retryable": true}}),
            "error.message",
        ),
    ];
    for (path, body, field) in worker_cases {
        let answer = raw
            .json("POST", &path, WORKER_TOKEN, &body.to_string())
            .await;
        assert_eq!(answer.status, 422, "{path} {body}: {:?}", answer.body);
        assert_eq!(answer.code(), "VALIDATION_FAILED", "{body}");
        assert_eq!(answer.body["error"]["fields"][0]["field"], field, "{body}");
    }
    assert_eq!(
        server.api.job(id).await.expect("get").status,
        JobState::Running
    );
    let done = server
        .worker
        .complete(id, &lease, json!({"body": "fine"}))
        .await
        .expect("complete");
    assert_eq!(done.status, JobState::Completed);
    assert_eq!(done.result, Some(json!({"body": "fine"})));
}
