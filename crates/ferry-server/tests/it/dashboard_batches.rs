//! The dashboard's batches pages, driven by a real headless Chromium against the real
//! server: a batch listed with its progress, its page with the items that finished (linked
//! to their jobs) and its cancellation by an editor; another tenant's user sees neither.
//! The API's list pages newest first.

use ferry_core::{
    Role,
    api::{ClaimRequest, CreateBatch, FailError},
};
use ferry_testkit::TestServer;
use serde_json::json;

use crate::dashboard::{Chrome, click, log_in, log_out, snapshot, until, user};
use crate::identity::{client, key, tenant};

#[tokio::test]
async fn a_batch_shows_its_progress_and_finished_items_and_is_cancelled_from_its_page() {
    let server = TestServer::spawn().await;
    let acme = tenant(&server, "acme").await;
    let beta = tenant(&server, "beta").await;
    user(&server, &acme, "eve@acme.test", Role::Editor).await;
    user(&server, &beta, "bea@beta.test", Role::Editor).await;
    let app = client(
        &server,
        &key(&server, &acme, Role::Editor, None).await.secret,
    );
    let worker = client(
        &server,
        &key(&server, &acme, Role::Worker, None).await.secret,
    );
    let older = app
        .create_batch(&CreateBatch {
            kind: "kw.count".into(),
            items: vec![json!({"kw": "old"})],
            options: Default::default(),
        })
        .await
        .expect("an older batch")
        .batch_id;
    let batch = app
        .create_batch(&CreateBatch {
            kind: "kw.lookup".into(),
            items: vec![
                json!({"kw": "soup"}),
                json!({"kw": "tea"}),
                json!({"kw": "rice"}),
            ],
            options: Default::default(),
        })
        .await
        .expect("a batch")
        .batch_id;
    let listed = app.batches(None, 1).await.expect("the newest batch");
    assert_eq!(listed.batches.len(), 1);
    assert_eq!(listed.batches[0].id, batch);
    let rest = app
        .batches(listed.next_before, 10)
        .await
        .expect("the older ones");
    assert_eq!(
        rest.batches.iter().map(|b| b.id).collect::<Vec<_>>(),
        [older]
    );
    assert_eq!(rest.next_before, None);

    let claimed = worker
        .claim(&ClaimRequest {
            worker_id: "w1".into(),
            kinds: vec!["kw.lookup".into()],
            max_jobs: Some(2),
            wait_ms: Some(0),
            lease_ms: None,
        })
        .await
        .expect("claim")
        .jobs;
    assert_eq!(claimed.len(), 2);
    worker
        .complete(claimed[0].id, &claimed[0].lease, json!({"hits": 42}))
        .await
        .expect("complete");
    worker
        .fail(
            claimed[1].id,
            &claimed[1].lease,
            FailError {
                code: "NO_RESULTS".into(),
                message: "nothing found".into(),
                retryable: false,
                retry_after_ms: None,
            },
        )
        .await
        .expect("fail");

    let chrome = Chrome::launch().await;
    let page = chrome
        .browser
        .new_page(format!("{}/batches", server.url))
        .await
        .expect("a page");
    log_in(&page, "eve@acme.test").await;
    let list = until(&page, "the batches", |h| h.contains(&batch.to_string())).await;
    assert!(list.contains("1 completed · 1 failed"), "{list}");
    assert!(list.contains(&older.to_string()));
    snapshot(&page, "batches").await;
    click(&page, &format!("a[href=\"/batches/{batch}\"]")).await;
    let shown = until(&page, "the finished items", |h| h.contains("NO_RESULTS")).await;
    assert!(shown.contains("{\"hits\":42}"), "{shown}");
    assert!(shown.contains(&format!("href=\"/jobs/{}\"", claimed[0].id)));
    click(&page, "form[action$=\"/cancel\"] button").await;
    until(&page, "the batch cancelled", |h| {
        h.contains("1 cancelled") && !h.contains("Cancel the unfinished items")
    })
    .await;

    log_out(&page).await;
    log_in(&page, "bea@beta.test").await;
    page.goto(format!("{}/batches", server.url))
        .await
        .expect("goto");
    let theirs = until(&page, "beta's batches", |h| h.contains("No batches yet")).await;
    assert!(!theirs.contains(&batch.to_string()));
    page.goto(format!("{}/batches/{batch}", server.url))
        .await
        .expect("goto");
    until(&page, "not found", |h| h.contains("No such batch")).await;
}
