//! Chains (`then`) to every kind: the parent's result reaches each child beside its payload
//! (the job's and the claimed job's `input`), never inside it, so built-in handlers and
//! browser recipes, which refuse unknown payload fields, run as chained jobs too. A child
//! that could not be created is refused at the parent's submit, never dropped later.

use std::time::Duration;

use ferry_client::{Client, ListQuery};
use ferry_core::{
    ErrorCode, JobState, Secret,
    api::{ClaimRequest, ProgressRequest, SubmitJob},
    dataset::{Output, OutputMode},
};
use ferry_testkit::{TestServer, WORKER_TOKEN, fixture, job};
use ferry_worker::{Worker, WorkerConfig, builtin};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const LONG: Duration = Duration::from_secs(30);

fn claim(kind: &str) -> ClaimRequest {
    ClaimRequest {
        worker_id: "w".into(),
        kinds: vec![kind.into()],
        max_jobs: Some(1),
        wait_ms: Some(0),
        lease_ms: None,
    }
}

fn recipe() -> Value {
    json!({"inputs": {"shop": "demo"}, "steps": [
        {"goto": {"url": "http://127.0.0.1:9/shops/{{input.shop}}"}},
        {"extract": {"list": ".review", "fields": {"title": {"selector": "h3"}}}}
    ]})
}

/// A `browser.run` child exists once its parent completes, with its recipe as submitted
/// and the parent's result as `input`; so does a `ferry.noop` child. Checked through the
/// worker protocol, without a browser.
#[tokio::test]
async fn a_completed_parent_creates_every_child_with_its_result_as_input() {
    let server = TestServer::spawn().await;
    let mut spec = job("ferry.noop", json!({}));
    spec.then = Some(vec![
        job("browser.run", recipe()),
        job("ferry.noop", json!({"sleep_ms": 1})),
    ]);
    let parent = server.api.submit(&spec).await.expect("submit");
    let claimed = server
        .worker
        .claim(&claim("ferry.noop"))
        .await
        .expect("claim")
        .jobs
        .remove(0);
    assert_eq!(claimed.id, parent.id);
    assert_eq!(
        claimed.input, None,
        "a job that is not chained has no input"
    );
    let result = json!({"shop": "other", "n": 1});
    server
        .worker
        .complete(parent.id, &claimed.lease, result.clone())
        .await
        .expect("complete");

    let browser = server
        .api
        .list(&ListQuery {
            kind: Some("browser.run".into()),
            ..Default::default()
        })
        .await
        .expect("list")
        .jobs;
    assert_eq!(
        browser.len(),
        1,
        "the browser.run child exists: {browser:?}"
    );
    let child = &browser[0];
    assert_eq!(child.parent_id, Some(parent.id));
    // The parent's children, by its id (and text in their kind).
    let by_parent = server
        .api
        .list(&ListQuery {
            parent: Some(parent.id.to_string()),
            search: Some("BROWSER".into()),
            ..Default::default()
        })
        .await
        .expect("list")
        .jobs;
    assert_eq!(
        by_parent.iter().map(|j| j.id).collect::<Vec<_>>(),
        [child.id]
    );
    assert_eq!(child.status, JobState::Pending);
    assert_eq!(child.payload, recipe(), "the payload is as submitted");
    assert_eq!(child.input.as_ref(), Some(&result));

    // The worker gets the result beside the payload.
    let claimed = server
        .worker
        .claim(&claim("browser.run"))
        .await
        .expect("claim")
        .jobs
        .remove(0);
    assert_eq!(claimed.id, child.id);
    assert_eq!(claimed.payload, recipe());
    assert_eq!(claimed.input.as_ref(), Some(&result));
    let body = server
        .raw()
        .json(
            "POST",
            "/v1/worker/claim",
            WORKER_TOKEN,
            r#"{"worker_id": "w", "kinds": ["ferry.noop"], "wait_ms": 0}"#,
        )
        .await
        .body;
    assert_eq!(body["jobs"][0]["payload"], json!({"sleep_ms": 1}));
    assert_eq!(body["jobs"][0]["input"], result);
}

/// `ferry.noop` and `http.request` refuse unknown payload fields; chained after a parent
/// they run to completion with the built-in handlers.
#[tokio::test]
async fn chains_to_built_in_kinds_complete() {
    let server = TestServer::builder().with_services().spawn().await;
    let site = fixture::spawn().await.expect("fixture");
    let client = Client::new(&server.url, Secret::new(WORKER_TOKEN)).expect("client");
    let config = WorkerConfig {
        worker_id: "chains".into(),
        lease_ms: Some(3_000),
        ..Default::default()
    };
    let stop = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(client, builtin::registry().expect("built-ins"), config).run(stop.clone()),
    );
    let mut spec = job("ferry.noop", json!({}));
    spec.then = Some(vec![
        job("ferry.noop", Value::Null),
        job("http.request", json!({"url": site.url("/echo")})),
    ]);
    let parent = server.api.submit(&spec).await.expect("submit");
    let parent = server.wait_final(parent.id, LONG).await;
    assert_eq!(parent.status, JobState::Completed, "{parent:?}");
    for kind in ["ferry.noop", "http.request"] {
        let children: Vec<_> = server
            .api
            .list(&ListQuery {
                kind: Some(kind.into()),
                ..Default::default()
            })
            .await
            .expect("list")
            .jobs
            .into_iter()
            .filter(|j| j.parent_id == Some(parent.id))
            .collect();
        assert_eq!(children.len(), 1, "{kind}: {children:?}");
        let child = server.wait_final(children[0].id, LONG).await;
        assert_eq!(child.status, JobState::Completed, "{kind}: {child:?}");
        assert_eq!(child.input, parent.result, "{kind}");
    }
    stop.cancel();
    worker.await.expect("worker task").expect("clean stop");
}

/// A child that could not be created is refused with the parent, naming it.
#[tokio::test]
async fn a_child_that_could_not_be_created_is_refused_at_submit() {
    let server = TestServer::spawn().await;
    let mut spec = job("ferry.noop", json!({}));
    spec.then = Some(vec![SubmitJob {
        then: Some(vec![job(
            "browser.run",
            json!({"steps": [{"goto": {"url": "ftp://x"}}]}),
        )]),
        ..job("ferry.noop", json!({}))
    }]);
    let err = server.api.submit(&spec).await.expect_err("refused");
    let fields = match &err {
        ferry_client::ClientError::Api { status, fields, .. } => {
            assert_eq!(*status, 422);
            fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(err.code(), Some(ErrorCode::InvalidRecipe), "{err:?}");
    assert_eq!(fields, ["then[0].then[0].payload.steps[0].goto.url"]);
    let jobs = server.api.list(&ListQuery::default()).await.expect("list");
    assert!(jobs.jobs.is_empty(), "nothing was created: {jobs:?}");
}

/// A chained job's `output` is checked against the dataset it names at the parent's submit,
/// as the parent's own is.
#[tokio::test]
async fn a_child_output_keyed_against_its_dataset_is_refused_at_submit() {
    let server = TestServer::spawn().await;
    let output = |key: &str| Output {
        dataset: "reviews".into(),
        key: key.into(),
        mode: OutputMode::Merge,
        max_gone: None,
    };
    let first = server
        .api
        .submit(&SubmitJob {
            output: Some(output("id")),
            ..job("reviews.sync", json!({}))
        })
        .await
        .expect("submit");
    let c = server
        .worker
        .claim(&claim("reviews.sync"))
        .await
        .expect("claim")
        .jobs
        .remove(0);
    assert_eq!(c.id, first.id);
    server
        .worker
        .progress(
            c.id,
            &ProgressRequest {
                lease: c.lease.clone(),
                items: Some(vec![json!({"id": "r1"})]),
                ..Default::default()
            },
        )
        .await
        .expect("items");
    server
        .worker
        .complete(c.id, &c.lease, json!({}))
        .await
        .expect("complete");

    let mut spec = job("ferry.noop", json!({}));
    spec.then = Some(vec![SubmitJob {
        output: Some(output("review_id")),
        ..job("reviews.sync", json!({}))
    }]);
    let err = server.api.submit(&spec).await.expect_err("refused");
    let ferry_client::ClientError::Api { status, fields, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*status, 422);
    let fields: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["then[0].output.key"]);
}

/// A job keeps the W3C `traceparent` it was submitted under (as given, when this server
/// exports no traces), hands it to the worker in the claim, and its chain's children
/// continue the same trace; a malformed one is ignored, as the specification asks.
#[tokio::test]
async fn a_job_and_its_chain_continue_the_callers_trace() {
    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let server = TestServer::spawn().await;
    let http = reqwest::Client::new();
    let submit = |traceparent: &'static str| {
        let http = &http;
        let server = &server;
        async move {
            let mut spec = job("traced.parent", json!({}));
            spec.then = Some(vec![job("traced.child", json!({}))]);
            let answer = http
                .post(format!("{}/v1/jobs", server.url))
                .bearer_auth(ferry_testkit::API_TOKEN)
                .header("traceparent", traceparent)
                .json(&spec)
                .send()
                .await
                .expect("submit");
            assert_eq!(answer.status(), reqwest::StatusCode::ACCEPTED);
            answer.json::<ferry_core::Job>().await.expect("a job")
        }
    };
    let parent = submit(CALLER).await;
    assert_eq!(
        parent.trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let claimed = server
        .worker
        .claim(&claim("traced.parent"))
        .await
        .expect("claim")
        .jobs
        .remove(0);
    assert_eq!(
        claimed.traceparent.as_ref().map(|t| t.as_str()),
        Some(CALLER)
    );
    server
        .worker
        .complete(parent.id, &claimed.lease, json!({}))
        .await
        .expect("complete");
    let child = server
        .worker
        .claim(&claim("traced.child"))
        .await
        .expect("claim the child")
        .jobs
        .remove(0);
    assert_eq!(
        child.traceparent.as_ref().map(|t| t.as_str()),
        Some(CALLER),
        "the child continues its parent's trace"
    );
    assert_eq!(
        server.api.job(child.id).await.expect("the child").trace_id,
        parent.trace_id
    );

    let untraced = submit("00-not-a-trace-01").await;
    assert_eq!(untraced.trace_id, None);

    // A batch's items are in the trace of the request that created it.
    let answer = http
        .post(format!("{}/v1/batches", server.url))
        .bearer_auth(ferry_testkit::API_TOKEN)
        .header("traceparent", CALLER)
        .json(&json!({"kind": "traced.item", "items": [{}, {}]}))
        .send()
        .await
        .expect("create a batch");
    assert_eq!(answer.status(), reqwest::StatusCode::ACCEPTED);
    let items = server
        .worker
        .claim(&ClaimRequest {
            max_jobs: Some(2),
            ..claim("traced.item")
        })
        .await
        .expect("claim the items")
        .jobs;
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(item.traceparent.as_ref().map(|t| t.as_str()), Some(CALLER));
    }
}
