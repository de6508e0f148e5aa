//! Per-tenant quotas: a tenant at its submissions per second or its unfinished jobs is
//! answered `429 QUOTA_EXCEEDED` with `Retry-After`, on every way in (a job, a batch of
//! jobs, a batch), and other tenants are not slowed. Time is the server's manual clock.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use ferry_core::{ManualClock, Role, TenantId, identity::TenantQuotas};
use ferry_server::app::QUOTAS_TTL;
use ferry_testkit::{TestServer, raw::RawAnswer};
use serde_json::json;

use super::{key, tenant};

async fn with_quotas(server: &TestServer, name: &str, quotas: TenantQuotas) -> String {
    let id: TenantId = tenant(server, name).await;
    server
        .queue
        .tenants()
        .set_quotas("test", &id, quotas)
        .await
        .expect("set quotas");
    key(server, &id, Role::Editor, None).await.secret
}

fn refused(answer: &RawAnswer, retry_after: &str) {
    assert_eq!(answer.status, 429, "{answer:?}");
    assert_eq!(answer.body["error"]["code"], "QUOTA_EXCEEDED");
    assert_eq!(
        answer.header("retry-after"),
        Some(retry_after),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_tenant_at_its_quota_is_told_when_to_retry_and_others_are_not_slowed() {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
    ));
    let server = TestServer::builder()
        .with_clock(clock.clone())
        .spawn()
        .await;
    let fast = with_quotas(
        &server,
        "fast",
        TenantQuotas {
            max_submissions_per_second: Some(4),
            max_unfinished_jobs: None,
        },
    )
    .await;
    let full = with_quotas(
        &server,
        "full",
        TenantQuotas {
            max_submissions_per_second: None,
            max_unfinished_jobs: Some(3),
        },
    )
    .await;
    let free = key(&server, &tenant(&server, "free").await, Role::Editor, None)
        .await
        .secret;
    let raw = server.raw();
    let one = json!({"kind": "q.one"}).to_string();
    let two = json!({"jobs": [{"kind": "q.one"}, {"kind": "q.two"}]}).to_string();
    let batch = json!({"kind": "q.item", "items": [{}, {}]}).to_string();

    // Four per second: a job, a batch of jobs and one more fill the second.
    assert_eq!(raw.json("POST", "/v1/jobs", &fast, &one).await.status, 202);
    assert_eq!(
        raw.json("POST", "/v1/jobs/batch", &fast, &two).await.status,
        202
    );
    assert_eq!(raw.json("POST", "/v1/jobs", &fast, &one).await.status, 202);
    refused(&raw.json("POST", "/v1/jobs", &fast, &one).await, "1");
    refused(&raw.json("POST", "/v1/batches", &fast, &batch).await, "1");
    // Another tenant is not slowed.
    for _ in 0..20 {
        assert_eq!(raw.json("POST", "/v1/jobs", &free, &one).await.status, 202);
    }
    // Half a second refills two.
    clock.advance(chrono::Duration::milliseconds(500));
    assert_eq!(
        raw.json("POST", "/v1/batches", &fast, &batch).await.status,
        202
    );
    refused(&raw.json("POST", "/v1/jobs", &fast, &one).await, "1");

    // Three unfinished jobs at most: a fourth waits until one finishes.
    assert_eq!(
        raw.json("POST", "/v1/jobs/batch", &full, &two).await.status,
        202
    );
    let last = raw.json("POST", "/v1/jobs", &full, &one).await;
    assert_eq!(last.status, 202);
    refused(&raw.json("POST", "/v1/jobs", &full, &one).await, "1");
    refused(&raw.json("POST", "/v1/batches", &full, &batch).await, "1");
    let id = last.body["id"].as_str().expect("id");
    let cancel = raw
        .json("POST", &format!("/v1/jobs/{id}/cancel"), &full, "{}")
        .await;
    assert_eq!(cancel.status, 200);
    // Counted again after a second: room for one.
    clock.advance(chrono::Duration::from_std(QUOTAS_TTL).expect("ttl"));
    assert_eq!(raw.json("POST", "/v1/jobs", &full, &one).await.status, 202);
    refused(&raw.json("POST", "/v1/jobs", &full, &one).await, "1");

    // The tenant's own quotas, for anyone of it who reads.
    let own = raw.json("GET", "/v1/tenant", &full, "").await;
    assert_eq!(own.status, 200);
    assert_eq!(own.body["id"], "full");
    assert_eq!(own.body["quotas"]["max_unfinished_jobs"], 3);
    assert!(own.body["quotas"]["max_submissions_per_second"].is_null());
}
