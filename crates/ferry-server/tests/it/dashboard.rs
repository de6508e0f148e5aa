//! The dashboard driven by a real headless Chromium (Debian's) against the real server:
//! log in, find a failed job by filter, open it, retry it; a viewer gets no retry button
//! and the server refuses the form anyway; a user of another tenant never sees the job.
//! Schedules (paused and run from their page), datasets (rows, runs, a download), webhooks
//! (their deliveries) and saved sessions (deleted from their page, never shown) have pages
//! too, each showing only the user's tenant.

use std::time::{Duration, Instant};

use chromiumoxide::{Browser, BrowserConfig, Page, cdp::js_protocol::runtime::EvaluateParams};
use ferry_client::Client;
use ferry_core::{
    Role, Secret, TenantId,
    api::{ClaimRequest, FailError},
    identity::UserCreateRequest,
};
use ferry_testkit::{TestServer, job};
use futures_util::StreamExt;
use serde_json::json;

use crate::identity::{admin_of, client, key, tenant};

const PASSWORD: &str = "dashboard password";

/// A 4×4 PNG: the failure screenshot the worker leaves.
const SCREENSHOT: &[u8] = &[
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 4, 0, 0, 0, 4, 8, 2, 0,
    0, 0, 38, 147, 9, 41, 0, 0, 0, 16, 73, 68, 65, 84, 120, 156, 99, 56, 160, 166, 11, 71, 12, 196,
    113, 0, 200, 83, 17, 49, 23, 56, 0, 39, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

/// A headless Chromium with a profile of its own, stopped when dropped.
pub(crate) struct Chrome {
    pub(crate) browser: Browser,
    events: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Chrome {
    pub(crate) async fn launch() -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let config = BrowserConfig::builder()
            .chrome_executable("/usr/bin/chromium")
            .user_data_dir(profile.path())
            .new_headless_mode()
            .no_sandbox()
            .launch_timeout(Duration::from_secs(60))
            .window_size(1280, 800)
            .viewport(chromiumoxide::handler::viewport::Viewport {
                width: 1280,
                height: 800,
                ..Default::default()
            })
            .arg("disable-gpu")
            .arg("disable-dev-shm-usage")
            .arg("no-first-run")
            .build()
            .expect("browser config");
        let (browser, mut handler) = Browser::launch(config).await.expect("launch Chromium");
        let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Self {
            browser,
            events,
            _profile: profile,
        }
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        self.events.abort();
    }
}

/// The page's HTML once `check` holds for it (bounded: 15 s).
pub(crate) async fn until(page: &Page, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let html = page.content().await.unwrap_or_default();
        if check(&html) {
            return html;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {what}; the page is:\n{html}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element `selector` finds, trying again (bounded: 15 s) while it is not
/// there yet or was replaced under the click (a live page redraws itself).
pub(crate) async fn click(page: &Page, selector: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let tried = match page.find_element(selector).await {
            Ok(element) => element.click().await.map(|_| ()),
            Err(e) => Err(e),
        };
        match tried {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => panic!("click {selector}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

pub(crate) async fn type_into(page: &Page, selector: &str, text: &str) {
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .expect("focus")
        .type_str(text)
        .await
        .expect("type");
}

/// Logs in on the login page the browser was sent to.
pub(crate) async fn log_in(page: &Page, name: &str) {
    until(page, "the login form", |h| h.contains("name=\"password\"")).await;
    type_into(page, "input[name=name]", name).await;
    type_into(page, "input[name=password]", PASSWORD).await;
    click(page, "section.login button[type=submit]").await;
    until(page, "the page after logging in", |h| h.contains("Log out")).await;
}

pub(crate) async fn log_out(page: &Page) {
    click(page, "header form button[type=submit]").await;
    until(page, "the login page", |h| h.contains("name=\"password\"")).await;
}

/// Saves the page as `<name>.png` into `$FERRY_DASHBOARD_SCREENSHOTS` when it is set
/// (`scripts/screenshots.sh` regenerates the ones under docs/).
pub(crate) async fn snapshot(page: &Page, name: &str) {
    let Ok(dir) = std::env::var("FERRY_DASHBOARD_SCREENSHOTS") else {
        return;
    };
    let params = chromiumoxide::page::ScreenshotParams::builder().build();
    page.save_screenshot(
        params,
        std::path::Path::new(&dir).join(format!("{name}.png")),
    )
    .await
    .expect("screenshot");
}

/// Runs `js` (a promise) in the page and answers its value.
pub(crate) async fn eval(page: &Page, js: &str) -> serde_json::Value {
    let params = EvaluateParams::builder()
        .expression(js)
        .await_promise(true)
        .return_by_value(true)
        .build()
        .expect("params");
    page.evaluate_expression(params)
        .await
        .expect("evaluate")
        .into_value()
        .expect("a value")
}

/// Submits a job of `kind` that `worker` claims and fails for good with `error` (code,
/// message), after leaving `screenshot` as its failure screenshot.
pub(crate) async fn fail_one(
    app: &Client,
    worker: &Client,
    kind: &str,
    (code, message): (&str, &str),
    screenshot: Option<&[u8]>,
) -> ferry_core::JobId {
    let mut spec = job(kind, json!({"for": kind}));
    spec.max_attempts = Some(1);
    let id = app.submit(&spec).await.expect("submit").id;
    let held = claim(worker, kind).await;
    if let Some(png) = screenshot {
        worker
            .upload_artifact(id, &held, "failure.png", "image/png", png.to_vec())
            .await
            .expect("upload the screenshot");
    }
    worker
        .fail(
            id,
            &held,
            FailError {
                code: code.into(),
                message: message.into(),
                retryable: false,
                retry_after_ms: None,
            },
        )
        .await
        .expect("fail");
    id
}

/// Claims the one waiting job of `kind` (waiting up to 5 s for one to be due); its lease.
async fn claim(worker: &Client, kind: &str) -> String {
    claim_job(worker, kind).await.1
}

/// [`claim`], with the claimed job's id.
pub(crate) async fn claim_job(worker: &Client, kind: &str) -> (ferry_core::JobId, String) {
    claim_job_as(worker, kind, "w1").await
}

/// Claims one job of `kind` as the worker named `worker_id`.
pub(crate) async fn claim_job_as(
    worker: &Client,
    kind: &str,
    worker_id: &str,
) -> (ferry_core::JobId, String) {
    let claimed = worker
        .claim(&ClaimRequest {
            worker_id: worker_id.into(),
            kinds: vec![kind.into()],
            max_jobs: Some(1),
            wait_ms: Some(5_000),
            lease_ms: None,
        })
        .await
        .expect("claim");
    let held = claimed.jobs.first().expect("a job to claim");
    (held.id, held.lease.clone())
}

pub(crate) async fn user(server: &TestServer, tenant: &TenantId, name: &str, role: Role) {
    server
        .queue
        .users()
        .create(
            &admin_of(tenant),
            UserCreateRequest {
                name: name.into(),
                password: Secret::new(PASSWORD),
                role,
            },
        )
        .await
        .expect("user");
}

#[tokio::test]
async fn a_user_finds_a_failed_job_and_retries_it_and_nobody_else_can() {
    let server = TestServer::spawn().await;
    let acme = tenant(&server, "acme").await;
    let beta = tenant(&server, "beta").await;
    user(&server, &acme, "ana@acme.test", Role::Editor).await;
    user(&server, &acme, "vic@acme.test", Role::Viewer).await;
    user(&server, &beta, "bea@beta.test", Role::Editor).await;

    // acme: one job that failed for good, one still waiting; beta: a job of its own.
    let app = client(
        &server,
        &key(&server, &acme, Role::Editor, None).await.secret,
    );
    let worker: Client = client(
        &server,
        &key(&server, &acme, Role::Worker, None).await.secret,
    );
    let failed = fail_one(
        &app,
        &worker,
        "report.daily",
        ("SELECTOR_TIMEOUT", "no element matched .review"),
        Some(SCREENSHOT),
    )
    .await;
    app.submit(&job("report.weekly", json!({})))
        .await
        .expect("submit");
    // Two jobs that hit rate limits (a group of dead letters) and a mail nobody retries.
    for (kind, code) in [
        ("shop.sync", "HTTP_429"),
        ("shop.sync", "HTTP_429"),
        ("mail.send", "SMTP_DOWN"),
    ] {
        fail_one(&app, &worker, kind, (code, "too many requests"), None).await;
    }
    let theirs = client(
        &server,
        &key(&server, &beta, Role::Editor, None).await.secret,
    )
    .submit(&job("beta.secret", json!({})))
    .await
    .expect("submit")
    .id;

    let chrome = Chrome::launch().await;
    let page = chrome
        .browser
        .new_page(format!("{}/jobs", server.url))
        .await
        .expect("a page");
    // Not logged in: sent to log in, then back to the jobs.
    log_in(&page, "ana@acme.test").await;
    let list = until(&page, "the jobs", |h| h.contains("report.weekly")).await;
    assert!(list.contains("report.daily"));
    snapshot(&page, "jobs").await;
    assert!(
        !list.contains("beta.secret"),
        "another tenant's job is listed"
    );

    // The overview: four failed, one waiting, by kind; what finished in the last hour.
    page.goto(format!("{}/overview", server.url))
        .await
        .expect("goto");
    let overview = until(&page, "the overview", |h| h.contains("By kind")).await;
    assert!(
        overview.contains("<span class=\"n\">4</span> failed"),
        "{overview}"
    );
    assert!(
        overview.contains("<span class=\"n\">1</span> waiting"),
        "{overview}"
    );
    assert!(overview.contains("shop.sync") && !overview.contains("beta.secret"));
    assert!(overview.contains("100 % failed"), "{overview}");
    assert!(
        overview.contains("<span class=\"n\">1</span> workers connected"),
        "{overview}"
    );
    snapshot(&page, "overview").await;

    // The worker that claimed is listed with the kinds it asked for.
    page.goto(format!("{}/workers", server.url))
        .await
        .expect("goto");
    let workers = until(&page, "the workers", |h| h.contains("<code>w1</code>")).await;
    assert!(workers.contains("connected") && workers.contains("127.0.0.1"));
    snapshot(&page, "workers").await;

    // Dead letters: both groups; the rate-limited one is retried as a whole.
    page.goto(format!("{}/dead", server.url))
        .await
        .expect("goto");
    let dead = until(&page, "the dead letters", |h| h.contains("HTTP_429")).await;
    assert!(dead.contains("SELECTOR_TIMEOUT"));
    snapshot(&page, "dead-letters").await;
    click(&page, "tr:first-child button[name=retry-group]").await;
    until(&page, "the group retried", |h| {
        h.contains("SELECTOR_TIMEOUT") && !h.contains("HTTP_429")
    })
    .await;
    let waiting = server
        .queue
        .list(&ferry_store::ListParams {
            tenant_id: "acme".into(),
            status: Some(ferry_core::JobState::Pending),
            kind: Some("shop.sync".parse().expect("kind")),
            labels: vec![],
            before: None,
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(waiting.len(), 2, "the group's jobs wait again");
    page.goto(format!("{}/jobs", server.url))
        .await
        .expect("goto");

    // Filter by state, open the failed job.
    eval(&page, "(async () => { document.querySelector('select[name=state]').value = 'failed'; return 1; })()").await;
    click(&page, "form.filters button[type=submit]").await;
    until(&page, "the failed jobs only", |h| {
        h.contains("report.daily") && !h.contains("report.weekly")
    })
    .await;
    click(&page, &format!("table.jobs a[href='/jobs/{failed}']")).await;
    let detail = until(&page, "the job", |h| h.contains("SELECTOR_TIMEOUT")).await;
    assert!(detail.contains("no element matched .review"));
    assert!(detail.contains(&failed.to_string()));
    // The failure screenshot is shown, loaded through the session.
    let width = eval(
        &page,
        "(async () => { const img = document.querySelector('section.artifacts img'); \
         if (!img.complete) await new Promise(r => img.onload = r); return img.naturalWidth; })()",
    )
    .await;
    assert_eq!(width, json!(4), "the screenshot did not load");

    snapshot(&page, "job-failed").await;

    // Retry: the job waits again; a worker then completes it, and the page shows it
    // without being reloaded (a mark left in the page survives).
    click(&page, "button[name=retry]").await;
    until(&page, "the retried job", |h| {
        h.contains("state pending") && !h.contains("name=\"retry\"")
    })
    .await;
    eval(&page, "(async () => { window.ferryMark = 7; return 1; })()").await;
    let again = claim(&worker, "report.daily").await;
    worker
        .complete(failed, &again, json!({"reviews": 42}))
        .await
        .expect("complete");
    until(&page, "the job completed, live", |h| {
        h.contains("state completed") && h.contains("reviews")
    })
    .await;
    assert_eq!(
        eval(&page, "(async () => window.ferryMark)()").await,
        json!(7),
        "the page was reloaded"
    );

    // A viewer sees the job without buttons, and the server refuses the form anyway.
    log_out(&page).await;
    page.goto(format!("{}/jobs/{failed}", server.url))
        .await
        .expect("goto");
    log_in(&page, "vic@acme.test").await;
    let seen = until(&page, "the job as a viewer", |h| h.contains("report.daily")).await;
    assert!(!seen.contains("name=\"cancel\"") && !seen.contains("name=\"retry\""));
    page.goto(format!("{}/dead", server.url))
        .await
        .expect("goto");
    let dead = until(&page, "the dead letters as a viewer", |h| {
        h.contains("Dead letters")
    })
    .await;
    assert!(!dead.contains("retry-group"), "a viewer is offered a retry");
    page.goto(format!("{}/jobs/{failed}", server.url))
        .await
        .expect("goto");
    until(&page, "the job as a viewer", |h| h.contains("report.daily")).await;
    let status = eval(
        &page,
        &format!(
            "(async () => {{ const csrf = document.querySelector('input[name=csrf]').value; \
             const r = await fetch('/jobs/{failed}/cancel', {{method: 'POST', \
             headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, \
             body: 'csrf=' + encodeURIComponent(csrf), redirect: 'manual'}}); return r.status; }})()"
        ),
    )
    .await;
    assert_eq!(status, json!(403));
    // Without the CSRF token, even an editor's form is refused (checked as the viewer).
    let forged = eval(
        &page,
        &format!(
            "(async () => (await fetch('/jobs/{failed}/cancel', {{method: 'POST', \
             headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: 'csrf=00', \
             redirect: 'manual'}})).status)()"
        ),
    )
    .await;
    assert_eq!(forged, json!(403));
    assert_eq!(
        server
            .queue
            .get(&acme, failed)
            .await
            .expect("job")
            .status
            .as_str(),
        "completed"
    );

    // A user of beta never sees acme's job, by list or by address.
    log_out(&page).await;
    log_in(&page, "bea@beta.test").await;
    let list = until(&page, "beta's jobs", |h| h.contains("beta.secret")).await;
    assert!(!list.contains("report.daily"));
    page.goto(format!("{}/jobs/{failed}", server.url))
        .await
        .expect("goto");
    let hidden = until(&page, "the not-found page", |h| h.contains("No such job")).await;
    assert!(!hidden.contains("report.daily"));
    page.goto(format!("{}/jobs/{theirs}", server.url))
        .await
        .expect("goto");
    until(&page, "beta's own job", |h| h.contains("beta.secret")).await;
}

/// Schedules, datasets, webhooks and sessions have pages of their own: an editor pauses a
/// schedule, reads a dataset's rows and runs and downloads it, sees a webhook's
/// deliveries, deletes a saved session; a user of another tenant sees none of them.
#[tokio::test]
async fn schedules_datasets_webhooks_and_sessions_have_pages_and_stay_in_their_tenant() {
    // Deliveries retried briefly: one to a receiver that is down goes dead soon.
    let server = TestServer::builder()
        .with_services()
        .configure(|c| {
            c.services.webhooks.interval = Duration::from_millis(50);
            c.services.webhooks.backoff_base = Duration::from_millis(50);
            c.services.webhooks.retry_for = Duration::from_millis(700);
        })
        .spawn()
        .await;
    let down = crate::api::hooks::receiver().await;
    let site = ferry_testkit::fixture::spawn().await.expect("fixture");
    let acme = tenant(&server, "acme").await;
    let beta = tenant(&server, "beta").await;
    user(&server, &acme, "ana@acme.test", Role::Editor).await;
    user(&server, &beta, "bea@beta.test", Role::Editor).await;
    let app = client(
        &server,
        &key(&server, &acme, Role::Editor, None).await.secret,
    );
    let worker = client(
        &server,
        &key(&server, &acme, Role::Worker, None).await.secret,
    );
    app.create_schedule(
        &serde_json::from_value(json!({
            "name": "nightly-sync", "cron": "0 3 * * *", "timezone": "Asia/Seoul",
            "job": {"kind": "shop.sync", "payload": {}}
        }))
        .expect("a schedule spec"),
    )
    .await
    .expect("create a schedule");
    let echo_hook = server
        .queue
        .webhooks()
        .create(
            &admin_of(&acme),
            serde_json::from_value(json!({
                "url": site.url("/echo"), "events": ["job.completed"],
                "secret": "a-webhook-secret-of-some-length"
            }))
            .expect("a webhook spec"),
        )
        .await
        .expect("create a webhook")
        .id;
    let down_hook = server
        .queue
        .webhooks()
        .create(
            &admin_of(&acme),
            serde_json::from_value(json!({
                "url": format!("{}/down", down.url), "events": ["job.completed"],
                "secret": "a-webhook-secret-of-some-length"
            }))
            .expect("a webhook spec"),
        )
        .await
        .expect("create a webhook that is down")
        .id;
    // A job that fills a dataset (and whose completion the webhook is told of).
    let spec = serde_json::from_value(json!({
        "kind": "reviews.sync", "payload": {},
        "output": {"dataset": "reviews", "key": "id"}
    }))
    .expect("a spec");
    let id = app.submit(&spec).await.expect("submit").id;
    let lease = claim(&worker, "reviews.sync").await;
    worker
        .progress(
            id,
            &ferry_core::api::ProgressRequest {
                lease: lease.clone(),
                current: None,
                total: None,
                message: None,
                items: Some(vec![
                    json!({"id": "r1", "title": "Great soup", "stars": 5}),
                    json!({"id": "r2", "title": "Cold tea", "stars": 2}),
                ]),
                items_offset: None,
            },
        )
        .await
        .expect("items");
    worker
        .complete(id, &lease, json!({}))
        .await
        .expect("complete");
    // A login a recipe saved.
    let recipe = serde_json::from_value(json!({
        "kind": "browser.run",
        "payload": {"steps": [{"goto": {"url": site.url("/site/form")}}, {"save_session": "shop-login"}]}
    }))
    .expect("a spec");
    let saver = app.submit(&recipe).await.expect("submit").id;
    let held = claim(&worker, "browser.run").await;
    worker
        .session_save(
            saver,
            &held,
            "shop-login",
            json!({"cookies": [{"name": "sid", "value": "SECRET-COOKIE"}]}),
        )
        .await
        .expect("save the session");

    let chrome = Chrome::launch().await;
    let page = chrome
        .browser
        .new_page(format!("{}/schedules", server.url))
        .await
        .expect("a page");
    log_in(&page, "ana@acme.test").await;
    let schedules = until(&page, "the schedules", |h| h.contains("nightly-sync")).await;
    assert!(schedules.contains("0 3 * * *") && schedules.contains("Asia/Seoul"));
    snapshot(&page, "schedules").await;
    click(&page, "table.schedules form button").await;
    until(&page, "the schedule paused", |h| h.contains("Resume")).await;
    assert!(
        server
            .queue
            .schedules()
            .get(&admin_of(&acme), "nightly-sync")
            .await
            .expect("the schedule")
            .paused
    );
    // Run now: its job is submitted at once and opened.
    click(&page, "form[action=\"/schedules/nightly-sync/run\"] button").await;
    until(&page, "the job it ran", |h| h.contains("Payload")).await;
    let path = eval(&page, "Promise.resolve(location.pathname)").await;
    let ran: ferry_core::JobId = path
        .as_str()
        .and_then(|p| p.strip_prefix("/jobs/"))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("a job's page: {path}"));
    let labels = app.job(ran).await.expect("the job").labels;
    assert_eq!(labels.get("run").map(String::as_str), Some("manual"));

    page.goto(format!("{}/datasets", server.url))
        .await
        .expect("goto");
    until(&page, "the datasets", |h| {
        h.contains("href=\"/datasets/reviews\"")
    })
    .await;
    click(&page, "a[href=\"/datasets/reviews\"]").await;
    let rows = until(&page, "the rows", |h| h.contains("Great soup")).await;
    assert!(rows.contains("Cold tea") && rows.contains(&id.to_string()));
    snapshot(&page, "dataset").await;
    let csv = eval(
        &page,
        "fetch(document.querySelector('a[href$=\"format=csv\"]').href).then(r => r.text())",
    )
    .await;
    let csv = csv.as_str().unwrap_or_default();
    assert!(
        csv.contains("Great soup") && csv.contains("Cold tea"),
        "{csv}"
    );

    page.goto(format!("{}/webhooks", server.url))
        .await
        .expect("goto");
    until(&page, "the webhooks", |h| h.contains("/echo")).await;
    click(
        &page,
        &format!("table.webhooks a[href=\"/webhooks/{echo_hook}\"]"),
    )
    .await;
    let mut delivered = String::new();
    for _ in 0..30 {
        delivered = page.content().await.unwrap_or_default();
        if delivered.contains("delivered") && delivered.contains("HTTP 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        page.reload().await.expect("reload");
    }
    assert!(
        delivered.contains("delivered") && delivered.contains("HTTP 200"),
        "{delivered}"
    );
    // The receiver that was down: its delivery dies, comes back up, and a replay delivers.
    page.goto(format!("{}/webhooks/{down_hook}", server.url))
        .await
        .expect("goto");
    let mut dead = String::new();
    for _ in 0..40 {
        dead = page.content().await.unwrap_or_default();
        if dead.contains(">Replay<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        page.reload().await.expect("reload");
    }
    assert!(dead.contains("dead") && dead.contains("HTTP 500"), "{dead}");
    down.down.store(false, std::sync::atomic::Ordering::SeqCst);
    click(&page, "table.deliveries form button").await;
    let mut replayed = String::new();
    for _ in 0..40 {
        replayed = page.content().await.unwrap_or_default();
        if replayed.contains("delivered") && replayed.contains("HTTP 204") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        page.reload().await.expect("reload");
    }
    assert!(
        replayed.contains("delivered") && replayed.contains("HTTP 204"),
        "{replayed}"
    );
    snapshot(&page, "webhook").await;

    page.goto(format!("{}/sessions", server.url))
        .await
        .expect("goto");
    let sessions = until(&page, "the sessions", |h| h.contains("shop-login")).await;
    assert!(sessions.contains(&saver.to_string()));
    assert!(!sessions.contains("SECRET-COOKIE"), "never its contents");
    snapshot(&page, "sessions").await;
    click(&page, "table.sessions form button").await;
    until(&page, "the session deleted", |h| {
        h.contains("No saved sessions")
    })
    .await;
    assert!(app.sessions().await.expect("sessions").sessions.is_empty());

    // beta sees none of acme's.
    log_out(&page).await;
    log_in(&page, "bea@beta.test").await;
    for path in ["/schedules", "/datasets", "/webhooks"] {
        page.goto(format!("{}{path}", server.url))
            .await
            .expect("goto");
        let html = until(&page, path, |h| h.contains("Log out")).await;
        assert!(
            !html.contains("nightly-sync") && !html.contains("reviews") && !html.contains("/echo"),
            "{path}: {html}"
        );
    }
    page.goto(format!("{}/datasets/reviews", server.url))
        .await
        .expect("goto");
    let hidden = until(&page, "not found", |h| h.contains("No such")).await;
    assert!(!hidden.contains("Great soup"));
}
