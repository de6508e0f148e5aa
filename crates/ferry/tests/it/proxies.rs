//! Jobs through a proxy: a real `ferry worker` process (`http.request` and `browser.run`)
//! and a real server, with an HTTP proxy and a SOCKS5 proxy served by the test that alone
//! know the site's name (`shop.ferry.invalid`), so a job that completes went through one.
//! The tenant's proxy (its egress policy's) carries every job; a job's own `proxy` takes
//! its place. The proxies' passwords come from the vault, bound to the proxies' host,
//! and appear on no surface of the jobs; a password bound elsewhere is refused.

use std::time::Duration;

use ferry_client::ListQuery;
use ferry_core::{Job, JobState, api::SubmitJob, egress::EgressPolicy};
use ferry_testkit::{TestServer, WORKER_TOKEN, fixture, proxies::TestProxy};
use serde_json::{Value, json};

use crate::{common::ferry, secrets::every_surface};

const NAME: &str = "shop.ferry.invalid";
const HTTP_PW: &str = "http-pw-5e0c1a";
const SOCKS_PW: &str = "socks-pw-7b93d2";

async fn put_secret(server: &TestServer, name: &str, value: &str, domain: &str) {
    let spec =
        serde_json::from_value(json!({"value": value, "domains": [domain]})).expect("a spec");
    server
        .api
        .put_secret(name, &spec)
        .await
        .expect("a vault secret");
}

async fn run(server: &TestServer, kind: &str, payload: Value) -> Job {
    let mut spec = SubmitJob::new(kind, payload);
    spec.max_attempts = Some(1);
    let job = server.api.submit(&spec).await.expect("submit");
    server.wait_final(job.id, Duration::from_secs(90)).await
}

fn completed(job: &Job) -> &Value {
    assert_eq!(
        job.status,
        JobState::Completed,
        "{:?}",
        job.error.as_ref().map(|e| &e.message)
    );
    job.result.as_ref().expect("a result")
}

#[tokio::test]
async fn jobs_go_through_their_tenants_proxy_or_their_own_with_passwords_from_the_vault() {
    let site = fixture::spawn().await.expect("fixture");
    let routes = [(NAME, site.addr)];
    let http = TestProxy::http(Some(("ferry", HTTP_PW)), &routes)
        .await
        .expect("an HTTP proxy");
    let socks = TestProxy::socks5(Some(("ferry", SOCKS_PW)), &routes)
        .await
        .expect("a SOCKS5 proxy");
    let server = TestServer::builder().with_services().spawn().await;
    put_secret(&server, "HTTP_PW", HTTP_PW, "127.0.0.1").await;
    put_secret(&server, "SOCKS_PW", SOCKS_PW, "127.0.0.1").await;
    put_secret(&server, "ELSEWHERE", "elsewhere-pw-1", "proxy.example").await;
    let policy = EgressPolicy {
        proxy: Some(
            http.url(Some("ferry:{{secret.HTTP_PW}}"))
                .parse()
                .expect("a proxy"),
        ),
        ..EgressPolicy::default()
    };
    server
        .api
        .set_tenant_egress(&policy)
        .await
        .expect("the tenant's proxy");
    let mut worker = ferry(&[
        "worker",
        "--server",
        &server.url,
        "--kinds",
        "http.request,browser.run",
    ])
    .env("FERRY_WORKER_TOKEN", WORKER_TOKEN)
    .spawn()
    .expect("spawn ferry worker");
    let url = format!("http://{NAME}:{}/echo", site.addr.port());
    let page = json!({"steps": [
        {"goto": {"url": url}},
        {"extract": {"list": "body", "fields": {"text": {}}}}
    ]});

    // Through the tenant's proxy.
    let request = run(&server, "http.request", json!({"url": url})).await;
    let answer = completed(&request);
    assert_eq!(answer["status"], 200, "{answer}");
    assert!(
        answer["json"]["headers"]["host"]
            .as_str()
            .is_some_and(|h| h.starts_with(NAME))
    );
    let browsed = run(&server, "browser.run", page.clone()).await;
    assert_eq!(completed(&browsed)["rows"], 1);
    let items = every_surface(&server, browsed.id).await;
    assert!(
        items.contains(&format!("\\\"host\\\":\\\"{NAME}")),
        "{items}"
    );
    let through_http = http.seen();
    assert!(
        through_http.iter().any(|s| s.target.starts_with(NAME)),
        "{through_http:?}"
    );
    assert!(
        through_http.iter().all(|s| s.authorized),
        "{through_http:?}"
    );
    assert!(socks.seen().is_empty());

    // A job's own proxy takes the tenant's place.
    let own = socks.url(Some("ferry:{{secret.SOCKS_PW}}"));
    let request = run(&server, "http.request", json!({"url": url, "proxy": own})).await;
    assert_eq!(completed(&request)["status"], 200);
    let mut recipe = page.clone();
    recipe["proxy"] = json!(own);
    let browsed = run(&server, "browser.run", recipe).await;
    assert_eq!(completed(&browsed)["rows"], 1);
    let through_socks = socks.seen();
    assert!(through_socks.len() >= 2, "{through_socks:?}");
    assert!(
        through_socks
            .iter()
            .all(|s| s.authorized && s.target.starts_with(NAME))
    );
    assert_eq!(
        http.seen().len(),
        through_http.len(),
        "nothing more went the tenant's way"
    );

    // A password bound to another host is not sent to this proxy.
    let elsewhere = http.url(Some("ferry:{{secret.ELSEWHERE}}"));
    let refused = run(
        &server,
        "http.request",
        json!({"url": url, "proxy": elsewhere}),
    )
    .await;
    let error = refused.error.clone().expect("refused");
    assert_eq!(error.code, "SECRET_REFUSED", "{}", error.message);
    assert!(error.message.contains("proxy.example"), "{}", error.message);
    let mut recipe = page.clone();
    recipe["proxy"] = json!(elsewhere);
    let refused_page = run(&server, "browser.run", recipe).await;
    assert_eq!(
        refused_page.error.as_ref().map(|e| e.code.as_str()),
        Some("SECRET_REFUSED")
    );
    assert_eq!(http.seen().len(), through_http.len());

    // No password on any surface of any job, in clear or as it travelled (Basic).
    let basic = |password: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("ferry:{password}"))
    };
    let tokens = [
        HTTP_PW.to_owned(),
        SOCKS_PW.to_owned(),
        basic(HTTP_PW),
        basic(SOCKS_PW),
    ];
    let jobs = server
        .api
        .list(&ListQuery {
            limit: Some(100),
            ..Default::default()
        })
        .await
        .expect("the jobs")
        .jobs;
    assert_eq!(jobs.len(), 6);
    for job in &jobs {
        let seen = every_surface(&server, job.id).await;
        for token in &tokens {
            assert!(!seen.contains(token.as_str()), "{token} in {seen}");
        }
        assert!(
            !seen.to_ascii_lowercase().contains("proxy-authorization"),
            "{seen}"
        );
    }
    worker.kill().await.expect("stop the worker");
}
