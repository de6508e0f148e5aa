//! `GET /metrics` scraped by a real Prometheus (Debian's, installed by `scripts/test.sh`):
//! jobs in every state, reports and requests counted, the values read back through
//! Prometheus' query API; the exposition passes `promtool check metrics`.

use std::{process::Stdio, time::Duration};

use ferry_core::{
    Secret,
    api::{ClaimRequest, FailError},
};
use ferry_testkit::{
    TestServer, job,
    prom::{promtool_check, sample},
};
use serde_json::{Value, json};

const METRICS_TOKEN: &str = "metrics-test-token";

/// A Prometheus scraping `target` every second, on a free port; stopped on drop.
struct Prometheus {
    url: String,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: ferry\n    metrics_path: /metrics\n\
             \x20   authorization:\n      credentials: {METRICS_TOKEN}\n\
             \x20   static_configs:\n      - targets: [\"{target}\"]\n"
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write the config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = tokio::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start prometheus (scripts/prometheus.sh installs it)");
        Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
            _dir: dir,
        }
    }

    /// The value of the instant query's only series, once there is one.
    async fn value(&self, query: &str) -> Option<f64> {
        let answer: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let result = answer["data"]["result"].as_array()?;
        match result.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// Prometheus' answer to a query: `Err` with its error when it refuses it.
    async fn check(&self, query: &str) -> Result<(), String> {
        let answer: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match answer["status"].as_str() {
            Some("success") => Ok(()),
            _ => Err(answer.to_string()),
        }
    }

    /// Waits (up to 90 s) until each query answers its value.
    async fn until(&self, expected: &[(&str, f64)]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            let mut wrong = Vec::new();
            for (query, want) in expected {
                let got = self.value(query).await;
                if got != Some(*want) {
                    wrong.push(format!("{query} = {got:?}, not {want}"));
                }
            }
            if wrong.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Prometheus did not read back:\n{}",
                wrong.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The value of the sample of `name` whose labels include every one of `labels`.
async fn scrape(server: &TestServer, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /metrics")
}

#[tokio::test]
async fn prometheus_scrapes_jobs_in_every_state_and_what_happened_to_them() {
    let server = TestServer::builder()
        .configure(|c| c.metrics_token = Some(Secret::new(METRICS_TOKEN)))
        .spawn()
        .await;
    let submit = |spec: ferry_core::api::SubmitJob| {
        let api = server.api.clone();
        async move { api.submit(&spec).await.expect("submit") }
    };
    submit(job("m.wait", json!({}))).await;
    let mut later = job("m.later", json!({}));
    later.delay_ms = Some(3_600_000);
    submit(later).await;
    let cancelled = submit(job("m.cancel", json!({}))).await;
    server.api.cancel(cancelled.id).await.expect("cancel");
    for _ in 0..4 {
        let mut spec = job("m.run", json!({}));
        spec.max_attempts = Some(2);
        submit(spec).await;
    }
    let claimed = server
        .worker
        .claim(&ClaimRequest {
            worker_id: "scraped-1".into(),
            kinds: vec!["m.run".into()],
            max_jobs: Some(4),
            wait_ms: None,
            lease_ms: None,
        })
        .await
        .expect("claim")
        .jobs;
    assert_eq!(claimed.len(), 4);
    server
        .worker
        .complete(claimed[0].id, &claimed[0].lease, json!({}))
        .await
        .expect("complete");
    let fail = |code: &str, retryable: bool| FailError {
        code: code.into(),
        message: "m".into(),
        retryable,
        retry_after_ms: None,
    };
    server
        .worker
        .fail(
            claimed[1].id,
            &claimed[1].lease,
            fail("SELECTOR_TIMEOUT", false),
        )
        .await
        .expect("fail");
    server
        .worker
        .fail(claimed[2].id, &claimed[2].lease, fail("HTTP_429", true))
        .await
        .expect("retry");
    // A repeated report changes nothing and is not counted again.
    let _ = server
        .worker
        .complete(claimed[0].id, &claimed[0].lease, json!({}))
        .await;

    // The token guards the exposition.
    assert_eq!(scrape(&server, "wrong").await.status(), 401);
    let answer = scrape(&server, METRICS_TOKEN).await;
    assert_eq!(answer.status(), 200);
    assert!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        answer.headers()
    );
    let text = answer.text().await.expect("text");
    let jobs = |kind: &str, state: &str| {
        sample(
            &text,
            "ferry_jobs",
            &[("tenant", "default"), ("kind", kind), ("state", state)],
        )
    };
    assert_eq!(jobs("m.wait", "pending"), Some(1.0), "{text}");
    assert_eq!(jobs("m.later", "scheduled"), Some(1.0));
    assert_eq!(jobs("m.run", "running"), Some(1.0));
    assert_eq!(jobs("m.run", "failed"), Some(1.0));
    let transitions = |state: &str, code: &str| {
        sample(
            &text,
            "ferry_job_transitions_total",
            &[("kind", "m.run"), ("state", state), ("error_code", code)],
        )
    };
    assert_eq!(transitions("completed", ""), Some(1.0), "{text}");
    assert_eq!(transitions("failed", "SELECTOR_TIMEOUT"), Some(1.0));
    assert_eq!(transitions("retrying", "HTTP_429"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            "ferry_job_duration_seconds_count",
            &[("kind", "m.run"), ("state", "completed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "ferry_claims_total", &[("tenant", "default")]),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &text,
            "ferry_job_queue_wait_seconds_count",
            &[("tenant", "default"), ("kind", "m.run")]
        ),
        Some(4.0),
        "one wait per job claimed: {text}"
    );
    assert_eq!(
        sample(&text, "ferry_workers_connected", &[("tenant", "default")]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "ferry_http_requests_total",
            &[("method", "POST"), ("route", "/v1/jobs"), ("status", "202")]
        ),
        Some(7.0),
        "requests are counted by route template"
    );
    assert_eq!(
        sample(
            &text,
            "ferry_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/v1/jobs/{id}/cancel"),
                ("status", "200")
            ]
        ),
        Some(1.0)
    );
    assert!(
        !text.contains(&claimed[0].id.to_string()),
        "a job id became a label"
    );
    assert!(sample(&text, "ferry_jobs_oldest_pending_age_seconds", &[]).is_some());
    assert!(sample(&text, "ferry_store_connections", &[("state", "idle")]).is_some());
    for op in ["insert", "claim", "complete", "fail"] {
        assert!(
            sample(
                &text,
                "ferry_store_operation_duration_seconds_count",
                &[("op", op)]
            )
            .is_some_and(|n| n >= 1.0),
            "{op} timed: {text}"
        );
    }

    // promtool agrees with the format and its conventions.
    promtool_check(&text).await;

    // A real Prometheus scrapes the server and answers the same values.
    let target = server.url.trim_start_matches("http://").to_owned();
    let prometheus = Prometheus::start(&target).await;
    prometheus
        .until(&[
            ("ferry_jobs{kind=\"m.wait\",state=\"pending\"}", 1.0),
            ("ferry_jobs{kind=\"m.run\",state=\"running\"}", 1.0),
            ("ferry_jobs{kind=\"m.run\",state=\"failed\"}", 1.0),
            (
                "ferry_job_transitions_total{kind=\"m.run\",state=\"completed\"}",
                1.0,
            ),
            (
                "ferry_job_transitions_total{state=\"failed\",error_code=\"SELECTOR_TIMEOUT\"}",
                1.0,
            ),
            ("sum(ferry_claims_total)", 4.0),
            ("sum(ferry_workers_connected)", 1.0),
            ("up{job=\"ferry\"}", 1.0),
        ])
        .await;

    // Every query of the documented Grafana dashboard is one Prometheus takes.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../docs/grafana-dashboard.json"),
        )
        .expect("docs/grafana-dashboard.json"),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"]
                .as_str()
                .expect("expr")
                .replace("$tenant", ".*");
            if let Err(e) = prometheus.check(&expr).await {
                panic!("{}: {expr}: {e}", panel["title"]);
            }
        }
    }
}

/// The alert rules the docs offer load in Prometheus as they are.
#[tokio::test]
async fn the_documented_alert_rules_pass_promtool() {
    let rules =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/prometheus-alerts.yml");
    let checked = tokio::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .await
        .expect("start promtool (scripts/prometheus.sh installs it)");
    assert!(
        checked.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
