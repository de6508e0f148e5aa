//! What the logs say, from the real binary with `--log-json`: `ferry serve` writes one
//! access line per request when `ferry::access` is on (route template, status, duration,
//! the caller — never a secret), and every line a `ferry worker` logs while a job runs
//! names the job (its id, kind, attempt, tenant and trace).

use std::{process::Stdio, time::Duration};

use ferry_core::{JobState, api::SubmitJob};
use ferry_testkit::{TestServer, WORKER_TOKEN};
use serde_json::{Value, json};

use crate::common::{API, ferry, free_port, start_server_with};

fn lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test]
async fn the_server_writes_an_access_line_per_request_naming_the_caller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = tempfile::NamedTempFile::new().expect("a log file");
    let port = free_port();
    let stderr = logs.reopen().expect("the log file");
    let mut server = start_server_with(dir.path(), port, &["--log-json"], |cmd| {
        cmd.env("FERRY_LOG", "warn,ferry::access=info")
            .stderr(Stdio::from(stderr));
    })
    .await;
    let api = ferry_client::Client::new(
        &format!("http://127.0.0.1:{port}"),
        ferry_core::Secret::new(API),
    )
    .expect("client");
    let job = api
        .submit(&SubmitJob::new("logs.kind", json!({})))
        .await
        .expect("submit");
    api.job(job.id).await.expect("get");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let access = loop {
        let found: Vec<Value> = lines(logs.path())
            .into_iter()
            .filter(|l| l["target"] == "ferry::access")
            .collect();
        if found.len() >= 2 || tokio::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let submit = access
        .iter()
        .find(|l| l["fields"]["route"] == "/v1/jobs")
        .unwrap_or_else(|| panic!("a line for the submit: {access:?}"));
    assert_eq!(submit["fields"]["method"], "POST");
    assert_eq!(submit["fields"]["status"], 202);
    assert_eq!(submit["fields"]["actor"], "token:api");
    assert_eq!(submit["fields"]["tenant"], "default");
    assert!(submit["fields"]["ms"].as_f64().is_some());
    let get = access
        .iter()
        .find(|l| l["fields"]["route"] == "/v1/jobs/{id}")
        .unwrap_or_else(|| panic!("a line by route template, not path: {access:?}"));
    assert_eq!(get["fields"]["status"], 200);
    let all = std::fs::read_to_string(logs.path()).unwrap_or_default();
    assert!(!all.contains(API), "the token is never logged");
    server.kill().await.expect("stop the server");
}

#[tokio::test]
async fn every_line_a_worker_logs_about_a_job_names_it() {
    let server = TestServer::builder().with_services().spawn().await;
    let logs = tempfile::NamedTempFile::new().expect("a log file");
    let mut worker = ferry(&["worker", "--server", &server.url, "--log-json"])
        .env("FERRY_WORKER_TOKEN", WORKER_TOKEN)
        .env("FERRY_LOG", "debug")
        .stderr(Stdio::from(logs.reopen().expect("the log file")))
        .spawn()
        .expect("spawn ferry worker");
    let mut spec = SubmitJob::new("ferry.noop", json!({"fail": "BOOM"}));
    spec.max_attempts = Some(1);
    // Submitted in a caller's trace: the worker's lines name it too.
    let job: ferry_core::Job = reqwest::Client::new()
        .post(format!("{}/v1/jobs", server.url))
        .bearer_auth(ferry_testkit::API_TOKEN)
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&spec)
        .send()
        .await
        .expect("submit")
        .json()
        .await
        .expect("a job");
    let done = server.wait_final(job.id, Duration::from_secs(60)).await;
    assert_eq!(done.status, JobState::Failed);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let about: Vec<Value> = loop {
        let found: Vec<Value> = lines(logs.path())
            .into_iter()
            .filter(|l| l["span"]["name"] == "job")
            .collect();
        if found.len() >= 2 || tokio::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(about.len() >= 2, "the start and the failure: {about:?}");
    for line in &about {
        assert_eq!(line["span"]["job_id"], job.id.to_string(), "{line}");
        assert_eq!(line["span"]["kind"], "ferry.noop", "{line}");
        assert_eq!(line["span"]["attempt"], 1, "{line}");
        assert_eq!(line["span"]["tenant"], "default", "{line}");
        assert_eq!(
            line["span"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{line}"
        );
    }
    worker.kill().await.expect("stop the worker");
}
