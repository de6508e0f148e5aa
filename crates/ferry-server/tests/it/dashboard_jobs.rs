//! The dashboard's jobs list, driven by a real headless Chromium against the real server:
//! filtered by label and by time (made at or before), a job opened by its id, and a
//! selection of failed jobs retried with one click (each through the same service as its
//! own button); a viewer gets no selection and the server refuses their post anyway. A job
//! found by text in its dedupe key, its page telling its attempts (with what the error
//! code usually means) and the jobs its chain enqueued.

use ferry_core::{JobState, Role};
use ferry_testkit::{TestServer, job};
use serde_json::json;

use crate::dashboard::{Chrome, claim_job_as, click, eval, fail_one, log_in, log_out, until, user};
use crate::identity::{client, key, tenant};

#[tokio::test]
async fn jobs_are_found_by_label_time_and_id_and_a_selection_is_retried_at_once() {
    let server = TestServer::spawn().await;
    let acme = tenant(&server, "acme").await;
    user(&server, &acme, "eve@acme.test", Role::Editor).await;
    user(&server, &acme, "vic@acme.test", Role::Viewer).await;
    let app = client(
        &server,
        &key(&server, &acme, Role::Editor, None).await.secret,
    );
    let worker = client(
        &server,
        &key(&server, &acme, Role::Worker, None).await.secret,
    );
    let mut failed = Vec::new();
    for _ in 0..3 {
        failed.push(fail_one(&app, &worker, "bulk.a", ("BOOM", "it broke"), None).await);
    }
    let mut blue = job("bulk.b", json!({}));
    blue.labels = Some([("team".to_owned(), "blue".to_owned())].into());
    let blue = app.submit(&blue).await.expect("submit").id;

    let chrome = Chrome::launch().await;
    let page = chrome
        .browser
        .new_page(format!("{}/jobs?label=team%3Dblue", server.url))
        .await
        .expect("a page");
    log_in(&page, "eve@acme.test").await;
    page.goto(format!("{}/jobs?label=team%3Dblue", server.url))
        .await
        .expect("goto");
    let labelled = until(&page, "the labelled job", |h| h.contains("bulk.b")).await;
    assert!(!labelled.contains("bulk.a"), "{labelled}");
    page.goto(format!("{}/jobs?until=2000-01-01T00%3A00", server.url))
        .await
        .expect("goto");
    until(&page, "nothing made by then", |h| {
        h.contains("No jobs match")
    })
    .await;
    page.goto(format!("{}/jobs?q={blue}", server.url))
        .await
        .expect("goto");
    until(&page, "the job by its id", |h| {
        h.contains("Payload") && h.contains("bulk.b")
    })
    .await;

    page.goto(format!("{}/jobs?state=failed", server.url))
        .await
        .expect("goto");
    until(&page, "the failed jobs", |h| {
        h.matches("name=\"id\"").count() == 3
    })
    .await;
    eval(
        &page,
        "Promise.resolve(document.querySelectorAll('input[name=id]').forEach(c => c.checked = true) || true)",
    )
    .await;
    click(&page, "button[value=retry]").await;
    let done = until(&page, "the outcome", |h| h.contains("Retried 3 of 3 jobs")).await;
    for id in &failed {
        assert!(done.contains(&id.to_string()));
        assert_eq!(app.job(*id).await.expect("a job").status, JobState::Pending);
    }

    log_out(&page).await;
    log_in(&page, "vic@acme.test").await;
    page.goto(format!("{}/jobs", server.url))
        .await
        .expect("goto");
    let read = until(&page, "the list", |h| h.contains("bulk.a")).await;
    assert!(!read.contains("name=\"id\""), "no selection for a viewer");
    let status = eval(
        &page,
        &format!(
            "fetch('/jobs/bulk', {{method: 'POST', headers: {{'content-type': 'application/x-www-form-urlencoded'}}, \
             body: 'csrf=' + encodeURIComponent(document.querySelector('input[name=csrf]').value) \
             + '&action=cancel&id={}'}}).then(r => r.status)",
            failed[0]
        ),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        app.job(failed[0]).await.expect("a job").status,
        JobState::Pending
    );
}

#[tokio::test]
async fn a_job_is_found_by_text_and_its_page_tells_its_attempts_and_children() {
    let server = TestServer::spawn().await;
    let acme = tenant(&server, "acme").await;
    user(&server, &acme, "eve@acme.test", Role::Editor).await;
    let app = client(
        &server,
        &key(&server, &acme, Role::Editor, None).await.secret,
    );
    let worker = client(
        &server,
        &key(&server, &acme, Role::Worker, None).await.secret,
    );
    // A sync keyed by account that fails once (a selector that never showed), then
    // completes and enqueues its publish step.
    let mut sync = job("shop.sync", json!({}));
    sync.dedupe_key = Some("account-7731".into());
    sync.backoff = Some(ferry_core::Backoff {
        base_ms: 1,
        max_ms: 1,
    });
    sync.then = Some(vec![job("post.publish", json!({}))]);
    let id = app.submit(&sync).await.expect("submit").id;
    app.submit(&job("mail.send", json!({})))
        .await
        .expect("submit");
    // Each attempt on a worker of its own: the page names both.
    let (claimed, lease) = claim_job_as(&worker, "shop.sync", "office-laptop").await;
    assert_eq!(claimed, id);
    worker
        .fail(
            id,
            &lease,
            ferry_core::api::FailError {
                code: "SELECTOR_TIMEOUT".into(),
                message: "step 2 (click): nothing matched `#next`".into(),
                retryable: true,
                retry_after_ms: None,
            },
        )
        .await
        .expect("fail");
    let (_, lease) = claim_job_as(&worker, "shop.sync", "cloud-vm-2").await;
    worker
        .complete(id, &lease, json!({"ok": true}))
        .await
        .expect("complete");

    let chrome = Chrome::launch().await;
    let page = chrome
        .browser
        .new_page(format!("{}/jobs", server.url))
        .await
        .expect("a page");
    log_in(&page, "eve@acme.test").await;
    // Part of the dedupe key, in another case: the sync, not the mail.
    page.goto(format!("{}/jobs?q=ACCOUNT-77", server.url))
        .await
        .expect("goto");
    let found = until(&page, "the job by its key", |h| h.contains("shop.sync")).await;
    assert!(!found.contains("mail.send"), "{found}");
    page.goto(format!("{}/jobs/{id}", server.url))
        .await
        .expect("goto");
    let detail = until(&page, "its attempts and children", |h| {
        h.contains("Attempts") && h.contains("Enqueued by this job")
    })
    .await;
    assert!(detail.contains("SELECTOR_TIMEOUT"), "{detail}");
    assert!(
        detail.contains("A step waited for an element that never showed"),
        "the guidance for the code: {detail}"
    );
    assert!(detail.contains("retrying") && detail.contains("completed"));
    assert!(detail.contains("post.publish"), "the child: {detail}");
    // In the attempts table (the facts above it name the job's current worker).
    let attempts = detail
        .split("<h2>Attempts</h2>")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .unwrap_or_default();
    let first = attempts
        .find("office-laptop")
        .expect("the first attempt's worker");
    let second = attempts
        .find("cloud-vm-2")
        .expect("the second attempt's worker");
    assert!(first < second, "attempts in order: {attempts}");
}
