//! A worker's own metrics, from the real binary: `ferry worker --metrics-listen` serves
//! Prometheus' text format with the attempts it ran (by kind and how they ended) and, for
//! `browser.run`, Chromium's launches, memory, open pages and each step's duration; the
//! exposition passes `promtool check metrics`.

use std::time::Duration;

use ferry_core::{JobState, api::SubmitJob};
use ferry_testkit::{
    TestServer, WORKER_TOKEN, fixture,
    prom::{promtool_check, sample},
};
use serde_json::json;

use crate::common::{ferry, free_port};

#[tokio::test]
async fn a_worker_serves_its_attempts_and_its_browser_as_prometheus_metrics() {
    let site = fixture::spawn().await.expect("fixture");
    let server = TestServer::builder().with_services().spawn().await;
    let listen = format!("127.0.0.1:{}", free_port());
    let mut worker = ferry(&[
        "worker",
        "--server",
        &server.url,
        "--metrics-listen",
        &listen,
    ])
    .env("FERRY_WORKER_TOKEN", WORKER_TOKEN)
    .spawn()
    .expect("spawn ferry worker");

    let mut browse = SubmitJob::new(
        "browser.run",
        json!({"steps": [
            {"goto": {"url": site.url("/echo?q=metrics")}},
            {"extract": {"list": "body", "fields": {"page": {}}}}
        ]}),
    );
    browse.max_attempts = Some(1);
    let mut boom = SubmitJob::new("ferry.noop", json!({"fail": "BOOM"}));
    boom.max_attempts = Some(1);
    let browse = server.api.submit(&browse).await.expect("submit");
    let boom = server.api.submit(&boom).await.expect("submit");
    let browse = server.wait_final(browse.id, Duration::from_secs(90)).await;
    assert_eq!(browse.status, JobState::Completed, "{browse:?}");
    let boom = server.wait_final(boom.id, Duration::from_secs(30)).await;
    assert_eq!(boom.status, JobState::Failed);

    // The worker counts an attempt once its handler returned: wait (bounded) for both.
    let http = reqwest::Client::new();
    let url = format!("http://{listen}/metrics");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = match http.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let counted = |kind, outcome| {
            sample(
                &text,
                "ferry_worker_attempts_total",
                &[("kind", kind), ("outcome", outcome)],
            ) == Some(1.0)
        };
        if (counted("browser.run", "completed") && counted("ferry.noop", "failed"))
            || tokio::time::Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let value = |name, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} in:\n{text}"))
    };
    assert_eq!(
        value(
            "ferry_worker_attempts_total",
            &[("kind", "browser.run"), ("outcome", "completed")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "ferry_worker_attempts_total",
            &[("kind", "ferry.noop"), ("outcome", "failed")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "ferry_worker_attempt_duration_seconds_count",
            &[("kind", "browser.run"), ("outcome", "completed")]
        ),
        1.0
    );
    assert_eq!(
        value("ferry_worker_jobs_running", &[("kind", "browser.run")]),
        0.0
    );
    for action in ["goto", "extract"] {
        assert_eq!(
            value(
                "ferry_browser_step_duration_seconds_count",
                &[("action", action), ("outcome", "ok")]
            ),
            1.0,
            "{action}"
        );
    }
    assert_eq!(value("ferry_browser_launches_total", &[]), 1.0);
    assert_eq!(value("ferry_browser_pages_open", &[]), 0.0);
    // The browser is still up between jobs: its processes hold tens of megabytes.
    assert!(
        value("ferry_browser_memory_bytes", &[]) > 10.0 * 1024.0 * 1024.0,
        "{text}"
    );
    promtool_check(&text).await;
    worker.kill().await.expect("stop the worker");
}
