//! The egress policy of `http.request` through a real server and worker: internal
//! addresses refused by default (`EGRESS_DENIED`, not retried) however the URL spells or
//! names them, allowed once the tenant's admin allows them, and a redirect from an allowed
//! host to a denied one refused at its hop; vault secrets in its headers and body, sent
//! only where they are bound and reported nowhere.

use std::{net::Ipv4Addr, time::Duration};

use ferry_client::Client;
use ferry_core::{JobState, Secret, egress::EgressPolicy};
use ferry_testkit::{TestServer, WORKER_TOKEN, fixture, job};
use ferry_worker::{Worker, WorkerConfig, builtin};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn http_requests_reach_only_where_the_tenant_allows() {
    let site = fixture::spawn().await.expect("fixture");
    let other = fixture::spawn_on(Ipv4Addr::new(127, 0, 0, 2))
        .await
        .expect("a second site");
    // The operator's default: internal addresses denied.
    let server = TestServer::builder()
        .with_services()
        .configure(|c| c.egress = EgressPolicy::default())
        .spawn()
        .await;
    let client = Client::new(&server.url, Secret::new(WORKER_TOKEN)).expect("client");
    let stop = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(
            client,
            builtin::registry().expect("built-in handlers"),
            WorkerConfig {
                worker_id: "egress".into(),
                lease_ms: Some(5_000),
                ..Default::default()
            },
        )
        .run(stop.clone()),
    );
    let run = |url: String| {
        let server = &server;
        async move {
            let mut spec = job("http.request", json!({"url": url}));
            spec.max_attempts = Some(3);
            let submitted = server.api.submit(&spec).await.expect("submit");
            server
                .wait_final(submitted.id, Duration::from_secs(60))
                .await
        }
    };
    let port = site.addr.port();
    for url in [
        site.url("/echo"),
        format!("http://localhost:{port}/echo"),
        format!("http://127.1:{port}/echo"),
        format!("http://2130706433:{port}/echo"),
        format!("http://[::ffff:127.0.0.1]:{port}/echo"),
        format!("http://0.0.0.0:{port}/echo"),
        // Private, shared, link-local and metadata addresses, v4 and v6: refused before
        // any connection is tried, so the answer does not depend on what listens there.
        format!("http://10.255.0.1:{port}/echo"),
        "http://192.168.1.1/".to_owned(),
        "http://100.64.0.1/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[fd00::1]/".to_owned(),
        "http://[fe80::1]/".to_owned(),
    ] {
        let done = run(url.clone()).await;
        assert_eq!(done.status, JobState::Failed, "{url}");
        let error = done.error.expect("an error");
        assert_eq!(error.code, "EGRESS_DENIED", "{url}: {}", error.message);
        assert_eq!(done.attempt, 1, "{url}: not retried");
    }

    // The tenant's admin allows the site by address; the policy reaches the worker.
    let allow: EgressPolicy =
        serde_json::from_value(json!({"allow": ["127.0.0.1"]})).expect("a policy");
    let set = server.api.set_tenant_egress(&allow).await.expect("set");
    assert_eq!(set.tenant, allow);
    assert!(!set.effective.allow_private);
    assert_eq!(server.api.tenant_egress().await.expect("get").tenant, allow);
    let done = run(site.url("/echo")).await;
    assert_eq!(done.status, JobState::Completed, "{:?}", done.error);
    // …but not a redirect onwards to another internal address.
    let hop = format!("{}?to={}", site.url("/redirect"), other.url("/echo"));
    let done = run(hop).await;
    let error = done.error.expect("an error");
    assert_eq!(error.code, "EGRESS_DENIED", "{}", error.message);
    assert!(error.message.contains("127.0.0.2"), "{}", error.message);

    // A tenant cannot switch internal addresses on wholesale: the operator's switch.
    let wholesale: EgressPolicy =
        serde_json::from_value(json!({"allow_private": true})).expect("a policy");
    let refused = server
        .api
        .set_tenant_egress(&wholesale)
        .await
        .expect_err("the operator's switch");
    assert_eq!(refused.status(), Some(422));
    stop.cancel();
    worker.await.expect("worker task").expect("clean stop");
}

/// An `http.request` takes a vault secret into its headers and body only for a host the
/// secret is bound to (`SECRET_REFUSED` elsewhere), and its value is in nothing the job
/// reports: the echoed answer comes back with `[REDACTED]` where the secret went.
#[tokio::test]
async fn http_requests_carry_vault_secrets_only_to_their_domains_and_report_them_nowhere() {
    const VALUE: &str = "tok-71d2c9-vault";
    let site = fixture::spawn().await.expect("fixture");
    let other = fixture::spawn_on(Ipv4Addr::new(127, 0, 0, 2))
        .await
        .expect("a second site");
    let server = TestServer::builder().with_services().spawn().await;
    let spec =
        serde_json::from_value(json!({"value": VALUE, "domains": ["127.0.0.1"]})).expect("a spec");
    server
        .api
        .put_secret("API_TOKEN", &spec)
        .await
        .expect("put a secret");
    let client = Client::new(&server.url, Secret::new(WORKER_TOKEN)).expect("client");
    let stop = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(
            client,
            builtin::registry().expect("built-in handlers"),
            WorkerConfig::default(),
        )
        .run(stop.clone()),
    );
    let run = |payload: serde_json::Value| {
        let server = &server;
        async move {
            let mut spec = job("http.request", payload);
            spec.max_attempts = Some(1);
            let submitted = server.api.submit(&spec).await.expect("submit");
            server
                .wait_final(submitted.id, Duration::from_secs(60))
                .await
        }
    };
    let done = run(json!({
        "method": "POST",
        "url": site.url("/echo"),
        "headers": {"Authorization": "Bearer {{secret.API_TOKEN}}"},
        "json": {"token": "{{ secret.API_TOKEN }}", "template": "{{name}}"}
    }))
    .await;
    assert_eq!(done.status, JobState::Completed, "{:?}", done.error);
    let result = done.result.expect("a result");
    let echoed = &result["json"];
    assert_eq!(echoed["headers"]["authorization"], "Bearer [REDACTED]");
    assert_eq!(echoed["json"]["token"], "[REDACTED]");
    assert_eq!(
        echoed["json"]["template"], "{{name}}",
        "other templates stay"
    );
    assert!(!result.to_string().contains(VALUE));

    let refused = run(json!({
        "url": other.url("/echo"),
        "headers": {"Authorization": "Bearer {{secret.API_TOKEN}}"}
    }))
    .await;
    let error = refused.error.expect("refused");
    assert_eq!(error.code, "SECRET_REFUSED", "{}", error.message);
    assert!(error.message.contains("127.0.0.2"), "{}", error.message);
    assert!(!error.message.contains(VALUE));
    stop.cancel();
    worker.await.expect("worker task").expect("clean stop");
}
