//! The API against its own document: Schemathesis (from PyPI; `scripts/python.sh` installs
//! it, `scripts/test.sh` runs that first) reads `GET /v1/openapi.json` from a real server
//! and sends it requests generated from the document — valid ones and broken ones — to
//! every operation: the client API with an admin key, the worker protocol with a worker
//! token. No answer may be a 5xx, and every answer must be one the document lists, with
//! the content type and body it describes. Runs on the backend of the run
//! (`FERRY_TEST_BACKEND`), so `scripts/test.sh` runs it on SQLite and on PostgreSQL.

use std::{path::PathBuf, process::Stdio, time::Duration};

use ferry_testkit::{API_TOKEN, TestServer, WORKER_TOKEN};

/// Requests per operation and phase: enough to reach every parameter and field, few
/// enough for the suite's budget.
const EXAMPLES: &str = "25";

/// The conformance checks: no server error, and status, content type, headers and body as
/// documented.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

fn schemathesis() -> PathBuf {
    if let Ok(path) = std::env::var("FERRY_SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    let target =
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "/var/tmp/ferry-target".into());
    PathBuf::from(target).join("ferry-py/bin/schemathesis")
}

/// Runs Schemathesis against `server` with `token` on the operations `filter` selects;
/// answers its report when it found something.
async fn fuzz(server: &TestServer, token: &str, filter: &[&str]) -> Option<String> {
    let program = schemathesis();
    assert!(
        program.exists(),
        "{} is missing: run ./scripts/python.sh (scripts/test.sh does) to install \
         Schemathesis",
        program.display()
    );
    let report = tempfile::tempdir().expect("report dir");
    let mut command = tokio::process::Command::new(&program);
    command
        .arg("run")
        .arg(format!("{}/v1/openapi.json", server.url))
        .args(["--checks", CHECKS])
        .args(["--max-examples", EXAMPLES])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        // One worker: Hypothesis's lambda descriptions are not thread-safe on Python 3.11.
        .args(["--workers", "1"])
        .args(["--seed", "7"])
        .args(["--request-timeout", "20"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--report-dir"])
        .arg(report.path())
        .args(["--no-color"])
        .args(filter)
        .env("SCHEMATHESIS_HOOKS", "")
        // Its cache (`.schemathesis/`) goes in the temporary directory, not the clone.
        .current_dir(report.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let run = tokio::time::timeout(Duration::from_secs(600), command.output())
        .await
        .expect("Schemathesis finishes within 10 minutes")
        .expect("run Schemathesis");
    println!("{}", String::from_utf8_lossy(&run.stdout));
    if run.status.success() {
        return None;
    }
    Some(format!(
        "{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_to_generated_requests_is_one_the_document_lists() {
    let server = TestServer::builder()
        .configure(|c| {
            // A generated `?wait=` must not hold the run for a minute.
            c.max_sync_wait = Duration::from_secs(1);
            // Generated logins fail by the hundred from one address: past the limit every
            // request from it would be a `429`, and the run would test nothing else.
            c.max_auth_failures_per_minute = u32::MAX;
        })
        .spawn()
        .await;
    let mut found = Vec::new();
    if let Some(report) = fuzz(
        &server,
        API_TOKEN,
        &["--exclude-path-regex", "^/v1/worker/"],
    )
    .await
    {
        found.push(format!("== the client API\n{report}"));
    }
    if let Some(report) = fuzz(
        &server,
        WORKER_TOKEN,
        &["--include-path-regex", "^/v1/worker/"],
    )
    .await
    {
        found.push(format!("== the worker protocol\n{report}"));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
    // The run was not throttled into testing nothing: the key still works.
    server.api.stats().await.expect("the API key still answers");
}
