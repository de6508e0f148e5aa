//! The recipe builder, driven by a real headless Chromium against the real server: a
//! recipe is checked as it is typed (its problem named by path, before any submit), run
//! once as a test job that opens on its live job page (one attempt, labelled; its rows show
//! as the worker reports them), saved as a schedule, and reopened from a job; a viewer
//! checks recipes but runs and saves none.

use ferry_core::{JobId, Role, api::ProgressRequest};
use ferry_testkit::TestServer;
use serde_json::{Value, json};

use crate::dashboard::{
    Chrome, claim_job, click, eval, log_in, log_out, snapshot, type_into, until, user,
};
use crate::identity::{admin_of, client, key, tenant};

/// Replaces the builder's recipe as typing would (an `input` event).
async fn set_recipe(page: &chromiumoxide::Page, recipe: &str) {
    let js = format!(
        "(async () => {{ const t = document.querySelector('textarea#recipe'); t.value = {}; \
         t.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()",
        Value::String(recipe.to_owned())
    );
    eval(page, &js).await;
}

#[tokio::test]
async fn a_recipe_is_checked_while_typed_run_as_a_test_and_saved_as_a_schedule() {
    let server = TestServer::spawn().await;
    let acme = tenant(&server, "acme").await;
    user(&server, &acme, "ana@acme.test", Role::Editor).await;
    user(&server, &acme, "vic@acme.test", Role::Viewer).await;
    let worker = client(
        &server,
        &key(&server, &acme, Role::Worker, None).await.secret,
    );
    let chrome = Chrome::launch().await;
    let page = chrome
        .browser
        .new_page(format!("{}/recipes", server.url))
        .await
        .expect("a page");
    log_in(&page, "ana@acme.test").await;
    until(&page, "the starter recipe, valid", |h| {
        h.contains("Recipe builder") && h.contains("Valid: 2 steps.")
    })
    .await;

    // A click without a selector: named by its path while typing, nothing submitted.
    set_recipe(
        &page,
        r#"{"steps": [{"goto": {"url": "https://shop.example/reviews"}}, {"click": {"selector": ""}}]}"#,
    )
    .await;
    until(&page, "the problem, live", |h| {
        h.contains("payload.steps[1].click.selector") && !h.contains("Valid:")
    })
    .await;
    snapshot(&page, "recipes").await;
    let recipe = json!({"steps": [
        {"goto": {"url": "https://shop.example/reviews"}},
        {"extract": {"list": "li.review", "fields": {"title": {"selector": "h3"}}}}
    ]});
    set_recipe(&page, &recipe.to_string()).await;
    until(&page, "the recipe valid again", |h| {
        h.contains("Valid: 2 steps.")
    })
    .await;

    // Run once as a test: the job opens on its page and turns completed there.
    click(&page, "button[value=test]").await;
    until(&page, "the test job's page", |h| {
        h.contains("browser.run") && h.contains("Payload")
    })
    .await;
    let url = page.url().await.expect("url").unwrap_or_default();
    let id: JobId = url
        .rsplit('/')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("a job page: {url}"));
    let job = server.queue.get(&acme, id).await.expect("the job");
    assert_eq!(job.payload, recipe);
    assert_eq!(job.max_attempts, 1, "a test runs once");
    assert_eq!(
        job.labels.get("source").map(String::as_str),
        Some("recipe-builder")
    );
    let (claimed, lease) = claim_job(&worker, "browser.run").await;
    assert_eq!(claimed, id);
    let lease = &lease;
    let rows = ["Great ferry", "Late again", "Fine"].map(|title| json!({"title": title}));
    worker
        .progress(
            id,
            &ProgressRequest {
                lease: lease.clone(),
                items: Some(rows.to_vec()),
                items_offset: Some(0),
                ..ProgressRequest::default()
            },
        )
        .await
        .expect("the rows");
    // The rows show while the job still runs, without a reload.
    until(&page, "the rows, live", |h| {
        h.contains("<td>Great ferry</td>") && h.contains("running")
    })
    .await;
    worker
        .complete(
            id,
            lease,
            json!({"rows": 3, "steps": 2, "step_ms": [412, 38]}),
        )
        .await
        .expect("complete");
    let done = until(&page, "the result, without a reload", |h| {
        h.contains("completed") && h.contains("\"rows\": 3")
    })
    .await;
    // Each step with how long it took.
    let steps = eval(
        &page,
        "[...document.querySelectorAll('section.steps tbody tr')].map(r => r.innerText.replace(/\\s+/g, ' ').trim())",
    )
    .await;
    assert_eq!(
        steps,
        json!([
            "0 goto https://shop.example/reviews 412 ms done",
            "1 extract li.review 38 ms done"
        ]),
        "{done}"
    );
    snapshot(&page, "recipe-test-run").await;
    assert!(
        done.contains("<td>Great ferry</td>") && done.contains("<td>Fine</td>"),
        "the rows on the job's page: {done}"
    );

    // Reopened from the job; saved as a schedule.
    page.goto(format!("{}/recipes?from={id}", server.url))
        .await
        .expect("goto");
    until(&page, "the job's recipe", |h| {
        h.contains("li.review") && h.contains("Valid: 2 steps.")
    })
    .await;
    type_into(&page, "input[name=name]", "reviews-hourly").await;
    type_into(&page, "input[name=cron]", "0 * * * *").await;
    click(&page, "button[value=schedule]").await;
    until(&page, "the schedule listed", |h| {
        h.contains("<code>reviews-hourly</code>")
    })
    .await;
    let schedule = server
        .queue
        .schedules()
        .get(&admin_of(&acme), "reviews-hourly")
        .await
        .expect("the schedule");
    assert_eq!(schedule.job.payload, recipe);

    // A viewer checks, but has nothing to run or save with.
    log_out(&page).await;
    page.goto(format!("{}/recipes", server.url))
        .await
        .expect("goto");
    log_in(&page, "vic@acme.test").await;
    let viewer = until(&page, "the builder", |h| h.contains("Valid: 2 steps.")).await;
    assert!(viewer.contains("Viewers check recipes"), "{viewer}");
    assert!(
        !viewer.contains("value=\"test\""),
        "no run button for a viewer"
    );
}
