//! A secret goes only where it is bound and is reported nowhere: a real `ferry worker`
//! process with a marker secret of its own (`FERRY_SECRET_MARK`, bound to 127.0.0.1 by
//! `FERRY_SECRET_DOMAINS_MARK`) and one from the tenant's vault, logging at trace level,
//! runs a recipe that fills both into a page that shows them back and puts one into a URL,
//! then fails; neither is in the job, its items, its events, its artifacts or the worker's
//! logs. A recipe that fills one into a page of another host is refused (`SECRET_REFUSED`).
//! And `ferry secret`, which never shows a value.

use std::{process::Stdio, time::Duration};

use ferry_core::{JobId, JobState, api::SubmitJob};
use ferry_testkit::{API_TOKEN, TestServer, WORKER_TOKEN, fixture};
use serde_json::{Value, json};

use crate::common::ferry;

const MARKER: &str = "mark-8c1e5d-secret";
/// A secret of the tenant's vault (the server hands it to the worker for the job).
const VAULTED: &str = "vault-2b7f40-secret";

/// Everything a client can read about a job, as one text.
pub(crate) async fn every_surface(server: &TestServer, id: JobId) -> String {
    let raw = server.raw();
    let mut text = String::new();
    for path in [
        format!("/v1/jobs/{id}"),
        format!("/v1/jobs/{id}/items"),
        format!("/v1/jobs/{id}/events"),
        format!("/v1/jobs/{id}/artifacts"),
    ] {
        let answer = raw.json("GET", &path, API_TOKEN, "").await;
        assert_eq!(answer.status, 200, "{path}");
        text.push_str(&answer.body.to_string());
    }
    let artifacts = server.api.artifacts(id).await.expect("artifacts");
    for artifact in &artifacts.artifacts {
        let bytes = server
            .api
            .artifact(id, &artifact.name)
            .await
            .expect("an artifact");
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    text
}

#[tokio::test]
async fn a_secret_is_filled_only_where_it_is_bound_and_reported_nowhere() {
    let site = fixture::spawn().await.expect("fixture");
    let attacker = fixture::spawn_on(std::net::Ipv4Addr::new(127, 0, 0, 2))
        .await
        .expect("a second site");
    let server = TestServer::builder().with_services().spawn().await;
    let logs = tempfile::NamedTempFile::new().expect("a log file");
    let mut worker = ferry(&["worker", "--server", &server.url, "--kinds", "browser.run"])
        .env("FERRY_WORKER_TOKEN", WORKER_TOKEN)
        .env("FERRY_LOG", "trace")
        .env("FERRY_SECRET_MARK", MARKER)
        .env("FERRY_SECRET_DOMAINS_MARK", "127.0.0.1")
        .stderr(Stdio::from(logs.reopen().expect("the log file")))
        .spawn()
        .expect("spawn ferry worker");

    let spec = serde_json::from_value(json!({"value": VAULTED, "domains": ["127.0.0.1"]}))
        .expect("a spec");
    server
        .api
        .put_secret("VAULTED", &spec)
        .await
        .expect("a vault secret");
    let submit = |recipe: Value| {
        let server = &server;
        async move {
            let mut spec = SubmitJob::new("browser.run", recipe);
            spec.max_attempts = Some(1);
            let job = server.api.submit(&spec).await.expect("submit");
            server.wait_final(job.id, Duration::from_secs(90)).await
        }
    };
    // Filled into the demo form (which shows it back), put into a URL the page echoes,
    // then a step that fails: items, the error, failure artifacts (HTML, network log).
    let used = submit(json!({"steps": [
        {"goto": {"url": site.url("/site/form")}},
        {"fill": {"selector": "#name", "value": "{{secret.MARK}}-{{secret.VAULTED}}"}},
        {"press": {"selector": "#name", "key": "Enter"}},
        {"wait_for": {"selector": "#out:not(:empty)"}},
        {"extract": {"list": "#out", "fields": {"shown": {}}}},
        {"goto": {"url": format!("{}?pw={{{{secret.MARK}}}}", site.url("/echo"))}},
        {"extract": {"list": "body", "fields": {"page": {}}}},
        {"wait_for": {"selector": "#never", "timeout_ms": 500}}
    ]}))
    .await;
    assert_eq!(used.status, JobState::Failed);
    assert_eq!(
        used.error.as_ref().map(|e| e.code.as_str()),
        Some("SELECTOR_TIMEOUT")
    );
    let seen = every_surface(&server, used.id).await;
    assert!(
        seen.contains("[REDACTED]-[REDACTED]/"),
        "the form showed both: {seen}"
    );
    assert!(seen.contains("failure"), "failure artifacts were read");
    assert!(!seen.contains(MARKER), "the marker leaked: {seen}");
    assert!(!seen.contains(VAULTED), "the vault's secret leaked: {seen}");

    // The attacker's page (another host) is never given it.
    let stolen = submit(json!({"steps": [
        {"goto": {"url": attacker.url("/site/form")}},
        {"fill": {"selector": "#name", "value": "{{secret.MARK}}"}},
        {"press": {"selector": "#name", "key": "Enter"}},
        {"extract": {"list": "#out", "fields": {"shown": {}}, "min_rows": 0}}
    ]}))
    .await;
    let error = stolen.error.clone().expect("refused");
    assert_eq!(error.code, "SECRET_REFUSED", "{}", error.message);
    assert!(error.message.contains("127.0.0.2"), "{}", error.message);
    assert!(!every_surface(&server, stolen.id).await.contains(MARKER));

    worker.kill().await.expect("stop the worker");
    let logged = std::fs::read_to_string(logs.path()).expect("the worker's logs");
    assert!(logged.contains("TRACE"), "trace logs were on");
    assert!(!logged.contains(MARKER), "the marker is in the logs");
    assert!(
        !logged.contains(VAULTED),
        "the vault's secret is in the logs"
    );
}

/// `ferry secret`: a value read from stdin (never the command line), listed by name and
/// domains only, removed; removing it again exits 5 (not found), a bad domain is one line
/// and exit 1.
#[tokio::test]
async fn the_secret_commands_save_list_and_remove_without_showing_a_value() {
    use tokio::io::AsyncWriteExt;
    const VALUE: &str = "cli-value-90ab17";
    let server = TestServer::spawn().await;
    let cli = |args: &[&str]| {
        let mut cmd = ferry(args);
        cmd.env("FERRY_API_TOKEN", API_TOKEN)
            .env("FERRY_SERVER_URL", &server.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let mut put = cli(&[
        "secret",
        "put",
        "SHOP_PASSWORD",
        "--domain",
        "shop.example",
        "--domain",
        "127.0.0.1",
        "--value-stdin",
    ])
    .spawn()
    .expect("spawn");
    let mut stdin = put.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{VALUE}\n").as_bytes())
        .await
        .expect("write the value");
    drop(stdin);
    let out = put.wait_with_output().await.expect("ferry secret put");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("SHOP_PASSWORD"), "{said}");
    let listed = cli(&["secret", "list", "--json"])
        .output()
        .await
        .expect("ferry secret list");
    let listed_text = String::from_utf8_lossy(&listed.stdout).into_owned();
    let list: Value = serde_json::from_str(&listed_text).expect("JSON");
    assert_eq!(list["secrets"][0]["name"], "SHOP_PASSWORD");
    assert_eq!(
        list["secrets"][0]["domains"],
        json!(["shop.example", "127.0.0.1"])
    );
    assert!(!listed_text.contains(VALUE) && !said.contains(VALUE));
    // The worker's view has the value: it was saved as given.
    let stored = server
        .queue
        .store()
        .secret_list("default")
        .await
        .expect("rows");
    assert_eq!(stored.len(), 1);

    let bad = cli(&[
        "secret",
        "put",
        "X",
        "--domain",
        "not a domain",
        "--value-stdin",
    ])
    .output()
    .await
    .expect("ferry secret put");
    let err = String::from_utf8_lossy(&bad.stderr).into_owned();
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert!(err.contains("domains[0]"), "{err}");
    let rm = cli(&["secret", "rm", "SHOP_PASSWORD"])
        .output()
        .await
        .expect("ferry secret rm");
    assert_eq!(rm.status.code(), Some(0));
    let again = cli(&["secret", "rm", "SHOP_PASSWORD"])
        .output()
        .await
        .expect("ferry secret rm");
    assert_eq!(again.status.code(), Some(5));
}

/// `ferry egress`: shows the tenant's rules and what is in effect, sets them (an internal
/// address allowed by name, rate limits per domain), and a bad rule is one line and exit 1.
#[tokio::test]
async fn the_egress_commands_show_and_set_the_tenants_rules() {
    let server = TestServer::spawn().await;
    let cli = |args: &[&str]| {
        let mut cmd = ferry(args);
        cmd.env("FERRY_API_TOKEN", API_TOKEN)
            .env("FERRY_SERVER_URL", &server.url);
        cmd
    };
    let set = cli(&[
        "egress",
        "set",
        "--allow",
        "10.0.5.0/24",
        "--allow",
        "erp.corp.example",
        "--deny",
        "ads.example",
        "--rate",
        "shop.example=2000",
        "--rate",
        "api.partner.example=100/60000",
        "--json",
    ])
    .output()
    .await
    .expect("ferry egress set");
    let said = String::from_utf8_lossy(&set.stdout).into_owned();
    assert_eq!(set.status.code(), Some(0), "{said}");
    let answer: Value = serde_json::from_str(&said).expect("JSON");
    assert_eq!(
        answer["tenant"]["allow"],
        json!(["10.0.5.0/24", "erp.corp.example"])
    );
    assert_eq!(answer["tenant"]["deny"], json!(["ads.example"]));
    assert_eq!(
        answer["tenant"]["rate_limits"],
        json!([
            {"domain": "shop.example", "interval_ms": 2000},
            {"domain": "api.partner.example", "max": 100, "per_ms": 60000}
        ])
    );
    let shown = cli(&["egress", "show"])
        .output()
        .await
        .expect("ferry egress show");
    let text = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        text.contains("erp.corp.example")
            && text.contains("in effect")
            && text.contains("shop.example: one start per 2000 ms"),
        "{text}"
    );
    let bad = cli(&["egress", "set", "--allow", "not a rule"])
        .output()
        .await
        .expect("ferry egress set");
    let err = String::from_utf8_lossy(&bad.stderr).into_owned();
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not a rule"), "{err}");
}
