//! Per-domain politeness: a tenant's rate limits per target domain (its egress policy's
//! `rate_limits`) are given at submit to every `http.request` and `browser.run` job aimed
//! at a matching host without a limit of its own, so they share one rate key and are
//! started no faster than the domain's rule allows. And the tenant's proxy, checked when
//! set and given to workers with each claim. `FERRY_TEST_BACKEND=postgres` runs
//! them on PostgreSQL.

use ferry_core::{
    ErrorCode,
    api::{ClaimRequest, SubmitJob},
    egress::EgressPolicy,
    flow::RateLimit,
};
use ferry_testkit::TestServer;
use serde_json::json;

fn http(url: &str) -> SubmitJob {
    SubmitJob::new("http.request", json!({"url": url}))
}

#[tokio::test]
async fn jobs_aimed_at_one_domain_share_its_rate_limit() {
    let server = TestServer::spawn().await;
    let policy: EgressPolicy = serde_json::from_value(json!({
        "rate_limits": [{"domain": "shop.example", "interval_ms": 600_000}]
    }))
    .expect("a policy");
    let set = server
        .api
        .set_tenant_egress(&policy)
        .await
        .expect("an admin sets the tenant's policy");
    assert_eq!(set.tenant.rate_limits.len(), 1);

    let first = server
        .api
        .submit(&http("https://a.shop.example/reviews"))
        .await
        .expect("submit");
    let limit = first.rate_limit.clone().expect("the domain's limit");
    assert_eq!(limit.key, "domain:shop.example");
    assert_eq!(limit.interval_ms, Some(600_000));
    let browse = server
        .api
        .submit(&SubmitJob::new(
            "browser.run",
            json!({"steps": [{"goto": {"url": "https://www.shop.example/"}}]}),
        ))
        .await
        .expect("submit");
    assert_eq!(
        browse.rate_limit.as_ref().map(|r| r.key.as_str()),
        Some("domain:shop.example"),
        "a recipe's first page decides"
    );
    let elsewhere = server
        .api
        .submit(&http("https://other.example/"))
        .await
        .expect("submit");
    assert_eq!(elsewhere.rate_limit, None);
    let mut own = http("https://shop.example/api");
    own.rate_limit = Some(RateLimit {
        key: "my-key".into(),
        interval_ms: Some(1),
        max: None,
        per_ms: None,
    });
    let own = server.api.submit(&own).await.expect("submit");
    assert_eq!(
        own.rate_limit.as_ref().map(|r| r.key.as_str()),
        Some("my-key"),
        "a job's own limit is kept"
    );

    // One start for the shop now; the other shop job waits for the interval.
    let claimed = server
        .worker
        .claim(&ClaimRequest {
            worker_id: "polite".into(),
            kinds: vec!["http.request".into(), "browser.run".into()],
            max_jobs: Some(10),
            wait_ms: Some(0),
            lease_ms: None,
        })
        .await
        .expect("claim")
        .jobs;
    assert!(
        claimed.iter().all(|j| j.egress.rate_limits.is_empty()),
        "workers get where they may connect, not the server's rate rules"
    );
    let ids: Vec<_> = claimed.iter().map(|j| j.id).collect();
    assert_eq!(ids.len(), 3, "{claimed:?}");
    assert!(ids.contains(&elsewhere.id) && ids.contains(&own.id));
    assert_eq!(
        ids.iter()
            .filter(|id| **id == first.id || **id == browse.id)
            .count(),
        1,
        "one job for shop.example at a time"
    );
}

#[tokio::test]
async fn a_domain_rate_without_a_whole_rule_is_refused_by_field() {
    let server = TestServer::spawn().await;
    let policy: EgressPolicy = serde_json::from_value(json!({
        "rate_limits": [{"domain": "shop.example", "max": 5}]
    }))
    .expect("a policy");
    let error = server
        .api
        .set_tenant_egress(&policy)
        .await
        .expect_err("refused");
    assert_eq!(error.code(), Some(ErrorCode::ValidationFailed), "{error}");
    assert!(
        error.to_string().contains("rate_limits[0].per_ms"),
        "{error}"
    );
}

/// A tenant's proxy: its password must come from the vault (a clear one is refused and
/// not repeated), its address must be one the policy allows; set, it reaches workers with
/// each claimed job. A recipe's own proxy is checked at submit.
#[tokio::test]
async fn a_tenants_proxy_is_checked_when_set_and_given_with_each_claim() {
    let server = TestServer::spawn().await;
    let raw = server.raw();
    let put = |body: serde_json::Value| {
        let raw = &raw;
        async move {
            raw.json(
                "PUT",
                "/v1/tenant/egress",
                ferry_testkit::API_TOKEN,
                &body.to_string(),
            )
            .await
        }
    };
    let clear = put(json!({"proxy": "http://me:hunter2@proxy.example:3128"})).await;
    assert!(
        (400..500).contains(&clear.status),
        "{}: {:?}",
        clear.status,
        clear.body
    );
    let message = clear.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("{{secret.NAME}}"), "{message}");
    assert!(
        !clear.body.to_string().contains("hunter2"),
        "{:?}",
        clear.body
    );
    let metadata = put(json!({"proxy": "http://169.254.169.254:80"})).await;
    assert_eq!(metadata.status, 422, "{:?}", metadata.body);
    assert_eq!(metadata.body["error"]["fields"][0]["field"], "proxy");

    let proxy = "socks5://ferry:{{secret.PROXY_PW}}@proxy.example:1080";
    let set = put(json!({"proxy": proxy})).await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(set.body["effective"]["proxy"], proxy);
    server
        .api
        .submit(&http("https://shop.example/"))
        .await
        .expect("submit");
    let claimed = server
        .worker
        .claim(&ClaimRequest {
            worker_id: "proxied".into(),
            kinds: vec!["http.request".into()],
            max_jobs: Some(1),
            wait_ms: Some(0),
            lease_ms: None,
        })
        .await
        .expect("claim")
        .jobs;
    assert_eq!(
        claimed[0].egress.proxy.as_ref().map(ToString::to_string),
        Some(proxy.to_owned())
    );

    let bad_recipe = raw
        .json(
            "POST",
            "/v1/jobs",
            ferry_testkit::API_TOKEN,
            &json!({"kind": "browser.run", "payload": {
                "steps": [{"goto": {"url": "https://shop.example/"}}],
                "proxy": "ftp://proxy.example"
            }})
            .to_string(),
        )
        .await;
    assert_eq!(bad_recipe.status, 422, "{:?}", bad_recipe.body);
    assert_eq!(
        bad_recipe.body["error"]["fields"][0]["field"],
        "payload.proxy"
    );
    // And an `http.request`'s: a password in clear is never stored.
    let clear_request = raw
        .json(
            "POST",
            "/v1/jobs",
            ferry_testkit::API_TOKEN,
            &json!({"kind": "http.request", "payload": {
                "url": "https://shop.example/",
                "proxy": "http://me:hunter2@proxy.example:3128"
            }})
            .to_string(),
        )
        .await;
    assert_eq!(clear_request.status, 422, "{:?}", clear_request.body);
    assert_eq!(
        clear_request.body["error"]["fields"][0]["field"],
        "payload.proxy"
    );
    assert!(!clear_request.body.to_string().contains("hunter2"));
}
