//! Traces from the real binaries: `ferry serve` and `ferry worker` export OpenTelemetry
//! spans over OTLP/HTTP to a receiver in the test. A browser job submitted with a W3C
//! `traceparent` is one trace: the caller's span, the server's `submit` under it, then the
//! claim, the worker's attempt with a span per browser step, the completion and the
//! webhook delivery that tells of it.

use std::time::Duration;

use ferry_core::{JobId, JobState};
use ferry_testkit::{
    fixture,
    otlp::{OtlpReceiver, ReceivedSpan},
};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::common::{API, WORKER, ferry, free_port, start_server_with};

/// The caller's context, as an instrumented `fetch` in a web app sends it.
const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

fn traced(cmd: &mut Command, otlp: &OtlpReceiver) {
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp.endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "200");
}

fn one<'a>(spans: &'a [ReceivedSpan], name: &str, job: &str) -> Option<&'a ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.name == name && s.trace_id == TRACE && s.attr("job_id") == Some(job))
}

#[tokio::test]
async fn a_browser_job_is_one_trace_from_the_callers_request_through_its_steps() {
    let otlp = OtlpReceiver::start().await;
    let site = fixture::spawn().await.expect("fixture");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start_server_with(dir.path(), port, &[], |cmd| traced(cmd, &otlp)).await;
    let mut worker = ferry(&["worker", "--server", &url, "--kinds", "browser.run"]);
    worker.env("FERRY_WORKER_TOKEN", WORKER);
    traced(&mut worker, &otlp);
    let mut worker = worker.spawn().expect("spawn ferry worker");

    let http = reqwest::Client::new();
    // A webhook told of the completion: its delivery is in the job's trace too.
    let hook = http
        .post(format!("{url}/v1/webhooks"))
        .bearer_auth(API)
        .json(&json!({
            "url": site.url("/echo"),
            "events": ["job.completed"],
            "secret": "a-webhook-secret-of-some-length"
        }))
        .send()
        .await
        .expect("create a webhook");
    assert!(hook.status().is_success(), "{}", hook.status());
    let submitted: Value = http
        .post(format!("{url}/v1/jobs"))
        .bearer_auth(API)
        .header("traceparent", CALLER)
        .json(&json!({
            "kind": "browser.run",
            "max_attempts": 1,
            "payload": {"steps": [
                {"goto": {"url": site.url("/echo?q=traced")}},
                {"extract": {"list": "body", "fields": {"page": {}}}}
            ]}
        }))
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("a job");
    assert_eq!(submitted["trace_id"], TRACE, "{submitted}");
    let id: JobId = submitted["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("an id");
    let api = ferry_client::Client::new(&url, ferry_core::Secret::new(API)).expect("client");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let job = loop {
        let job = api.job(id).await.expect("get the job");
        if job.status.is_final() || tokio::time::Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job.status, JobState::Completed, "{job:?}");
    assert_eq!(job.trace_id.as_deref(), Some(TRACE));

    let job_id = id.to_string();
    let spans = otlp
        .wait_for("the job's spans", Duration::from_secs(30), |spans| {
            ["submit", "claim", "job", "complete", "webhook"]
                .iter()
                .all(|name| one(spans, name, &job_id).is_some())
                && spans
                    .iter()
                    .filter(|s| s.name == "step" && s.trace_id == TRACE)
                    .count()
                    >= 2
        })
        .await;
    let submit = one(&spans, "submit", &job_id).expect("submit");
    assert_eq!(submit.service, "ferry-server");
    assert_eq!(
        submit.parent_span_id, CALLER_SPAN,
        "under the caller's span"
    );
    let claim = one(&spans, "claim", &job_id).expect("claim");
    assert_eq!(claim.parent_span_id, submit.span_id);
    let attempt = one(&spans, "job", &job_id).expect("the attempt");
    assert_eq!(attempt.service, "ferry-worker");
    assert_eq!(attempt.parent_span_id, submit.span_id);
    assert_eq!(attempt.attr("attempt"), Some("1"));
    let mut steps: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.name == "step" && s.trace_id == TRACE)
        .collect();
    steps.sort_by_key(|s| s.attr("index").map(str::to_owned));
    for step in &steps {
        assert_eq!(step.service, "ferry-worker");
        assert_eq!(step.parent_span_id, attempt.span_id, "{step:?}");
    }
    assert_eq!(steps[0].attr("action"), Some("goto"));
    assert_eq!(steps[1].attr("action"), Some("extract"));
    let complete = one(&spans, "complete", &job_id).expect("complete");
    assert_eq!(complete.service, "ferry-server");
    assert_eq!(complete.parent_span_id, submit.span_id);
    let webhook = one(&spans, "webhook", &job_id).expect("the webhook delivery");
    assert_eq!(webhook.parent_span_id, submit.span_id);
    assert_eq!(webhook.attr("event_type"), Some("job.completed"));
    assert_eq!(webhook.attr("status"), Some("200"));

    worker.kill().await.expect("stop the worker");
    server.kill().await.expect("stop the server");
}

#[tokio::test]
async fn without_a_callers_traceparent_the_job_starts_a_trace_of_its_own() {
    let otlp = OtlpReceiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut server = start_server_with(dir.path(), port, &[], |cmd| traced(cmd, &otlp)).await;
    let api = ferry_client::Client::new(&url, ferry_core::Secret::new(API)).expect("client");
    let job = api
        .submit(&ferry_core::api::SubmitJob::new("untraced.kind", json!({})))
        .await
        .expect("submit");
    let trace = job.trace_id.clone().expect("the server started a trace");
    assert_eq!(trace.len(), 32);
    let job_id = job.id.to_string();
    let spans = otlp
        .wait_for("the submit span", Duration::from_secs(30), |spans| {
            spans.iter().any(|s| s.attr("job_id") == Some(&job_id))
        })
        .await;
    let submit = spans
        .iter()
        .find(|s| s.attr("job_id") == Some(&job_id))
        .expect("the submit span");
    assert_eq!(submit.name, "submit");
    assert_eq!(submit.trace_id, trace);
    assert_eq!(submit.parent_span_id, "", "a root span");
    server.kill().await.expect("stop the server");
}
