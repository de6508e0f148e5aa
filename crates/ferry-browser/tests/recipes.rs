//! Recipes run in a real Chromium (Debian's, `scripts/chromium.sh` installs it) against the
//! fixture site on 127.0.0.1, checking the exact rows extracted; and `browser.run` end to
//! end through a real server and worker.

use std::{sync::Arc, time::Duration};

use ferry_browser::{BrowserError, BrowserRun, Chromium, ChromiumConfig, Collect};
use ferry_core::{JobState, Secret, recipe::Recipe};
use ferry_testkit::{TestServer, WORKER_TOKEN, fixture, untimed};
use ferry_worker::{Registry, Worker, WorkerConfig};
use serde_json::{Value, json};

fn recipe(value: Value) -> Recipe {
    ferry_core::recipe::validate(&value, "payload").expect("a valid recipe")
}

async fn chromium() -> Chromium {
    Chromium::launch(&ChromiumConfig::default())
        .await
        .expect("Chromium starts (scripts/chromium.sh installs it)")
}

async fn run(browser: &Chromium, value: Value) -> Result<(Value, Vec<Value>), BrowserError> {
    let mut rows = Collect::default();
    let summary = browser.run(&recipe(value), &mut rows).await?;
    Ok((summary, rows.rows))
}

#[tokio::test]
async fn steps_extract_exact_rows() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;

    // A static list: text, attributes, regex with a group, numbers, optional fields.
    let (summary, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/reviews")}},
            {"extract": {"list": "li.review", "fields": {
                "id": {"attr": "data-id"},
                "title": {"selector": "h3"},
                "stars": {"selector": ".stars", "regex": "(\\d+) stars", "number": true},
                "link": {"selector": "a", "attr": "href"},
                "price": {"selector": ".price", "number": true}}}}
        ]}),
    )
    .await
    .expect("run");
    assert_eq!(
        rows,
        [
            json!({"id": "r1", "title": "Great ferry", "stars": 5, "link": "/r/1", "price": 1250.5}),
            json!({"id": "r2", "title": "Late again", "stars": 2, "link": "/r/2", "price": 980}),
            json!({"id": "r3", "title": "Fine", "stars": 4, "link": "/r/3", "price": null}),
        ]
    );
    assert_eq!(untimed(&summary), json!({"rows": 3, "steps": 2}));

    // A list rendered 300 ms after load: wait_for, then extract.
    let (_, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/delayed")}},
            {"wait_for": {"selector": ".item"}},
            {"extract": {"list": ".item", "fields": {"name": {}}}}
        ]}),
    )
    .await
    .expect("run");
    assert_eq!(rows, [json!({"name": "alpha"}), json!({"name": "beta"})]);

    // fill and click: results rendered by a click handler.
    let (_, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/search")}},
            {"fill": {"selector": "#q", "value": "ferry"}},
            {"click": {"selector": "#go"}},
            {"wait_for": {"selector": ".result"}},
            {"extract": {"list": ".result", "fields": {"text": {}}}}
        ]}),
    )
    .await
    .expect("run");
    assert_eq!(
        rows,
        [
            json!({"text": "ferry #1"}),
            json!({"text": "ferry #2"}),
            json!({"text": "ferry #3"})
        ]
    );
    browser.close().await;
}

#[tokio::test]
async fn pages_scrolls_selects_and_keys() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;

    // "Next" is a script button without href, disabled on the last page.
    let (summary, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/paged")}},
            {"paginate": {"next": "#next", "extract": {"list": ".row", "fields": {"r": {}}}}}
        ]}),
    )
    .await
    .expect("run");
    let got: Vec<_> = rows.iter().map(|r| r["r"].clone()).collect();
    assert_eq!(got, ["one", "two", "three", "four", "five", "six"]);
    assert_eq!(summary["pages"], json!(3));
    // max_pages stops early.
    let (_, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/paged")}},
            {"paginate": {"next": "#next", "max_pages": 2, "extract": {"list": ".row", "fields": {"r": {}}}}}
        ]}),
    )
    .await
    .expect("run");
    assert_eq!(rows.len(), 4);

    // A feed loading 5 posts per scroll over fetch, 12 in all.
    let (_, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/feed")}},
            {"infinite_scroll": {"list": ".post", "idle_ms": 700}},
            {"extract": {"list": ".post", "fields": {"p": {}}}}
        ]}),
    )
    .await
    .expect("run");
    let got: Vec<_> = rows.iter().map(|r| r["p"].clone()).collect();
    let want: Vec<_> = (0..12).map(|i| json!(format!("post {i}"))).collect();
    assert_eq!(got, want);
    // until_items stops once enough are there.
    let (_, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/feed")}},
            {"infinite_scroll": {"list": ".post", "until_items": 6}},
            {"extract": {"list": ".post", "fields": {"p": {}}}}
        ]}),
    )
    .await
    .expect("run");
    assert!((6..12).contains(&rows.len()), "{}", rows.len());

    // select and press.
    let (_, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/form")}},
            {"select": {"selector": "#size", "value": "m"}},
            {"fill": {"selector": "#name", "value": "ada"}},
            {"press": {"selector": "#name", "key": "Enter"}},
            {"extract": {"list": "#out", "fields": {"out": {}}}}
        ]}),
    )
    .await
    .expect("run");
    assert_eq!(rows, [json!({"out": "ada/m"})]);
    let err = run(
        &browser,
        json!({"step_timeout_ms": 500, "steps": [
            {"goto": {"url": site.url("/site/form")}},
            {"select": {"selector": "#size", "value": "xl"}}
        ]}),
    )
    .await
    .expect_err("no such option");
    assert_eq!(err.code(), "SELECTOR_TIMEOUT");
    browser.close().await;
}

#[tokio::test]
async fn errors_say_what_failed() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let err = run(
        &browser,
        json!({"step_timeout_ms": 500, "steps": [
            {"goto": {"url": site.url("/site/reviews")}},
            {"click": {"selector": "#no-such-button"}}
        ]}),
    )
    .await
    .expect_err("no button");
    assert_eq!(err.code(), "SELECTOR_TIMEOUT");
    assert!(!err.retryable());
    assert!(
        err.to_string().contains("step 1 (click)") && err.to_string().contains("#no-such-button"),
        "{err}"
    );

    let err = run(
        &browser,
        json!({"steps": [{"goto": {"url": site.url("/status/500")}}]}),
    )
    .await
    .expect_err("500");
    assert_eq!((err.code(), err.retryable()), ("HTTP_STATUS", false));
    let err = run(
        &browser,
        json!({"steps": [{"goto": {"url": site.url("/status/503")}}]}),
    )
    .await
    .expect_err("503");
    assert_eq!((err.code(), err.retryable()), ("HTTP_STATUS", true));

    let err = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/reviews")}},
            {"extract": {"list": "li.review", "fields": {"price": {"selector": ".price", "required": true}}}}
        ]}),
    )
    .await
    .expect_err("r3 has no price");
    assert_eq!(err.code(), "EXTRACT_MISSING");

    // A page that never answers fails with its own code, within its navigation timeout
    // plus the bounded failure capture (it used to take three times the timeout).
    let started = std::time::Instant::now();
    let err = run(
        &browser,
        json!({"navigation_timeout_ms": 3_000, "steps": [{"goto": {"url": site.url("/site/hang")}}]}),
    )
    .await
    .expect_err("hangs");
    let took = started.elapsed();
    assert_eq!((err.code(), err.retryable()), ("NAVIGATION_TIMEOUT", true));
    assert!(
        took < Duration::from_millis(3_000)
            + ferry_browser::FAILURE_CAPTURE_BUDGET
            + Duration::from_millis(1_500),
        "took {took:?}"
    );

    // An extraction that matches nothing fails the job instead of completing it empty.
    let err = run(
        &browser,
        json!({"step_timeout_ms": 500, "steps": [
            {"goto": {"url": site.url("/site/reviews")}},
            {"extract": {"list": "li.gone", "fields": {"t": {}}}}
        ]}),
    )
    .await
    .expect_err("nothing matched");
    assert_eq!((err.code(), err.retryable()), ("EXTRACT_EMPTY", false));
    // Unless the recipe says the page may be empty...
    let (summary, rows) = run(
        &browser,
        json!({"step_timeout_ms": 500, "steps": [
            {"goto": {"url": site.url("/site/reviews")}},
            {"extract": {"list": "li.gone", "min_rows": 0, "fields": {"t": {}}}}
        ]}),
    )
    .await
    .expect("an empty page is allowed");
    assert_eq!((summary["rows"].clone(), rows.len()), (json!(0), 0));
    // ... and a page with fewer rows than the recipe expects fails too.
    let err = run(
        &browser,
        json!({"step_timeout_ms": 500, "steps": [
            {"goto": {"url": site.url("/site/reviews")}},
            {"extract": {"list": "li.review", "min_rows": 4, "fields": {"t": {}}}}
        ]}),
    )
    .await
    .expect_err("three of four");
    assert_eq!(err.code(), "EXTRACT_EMPTY");
    assert!(err.to_string().contains("matched 3 rows"), "{err}");
    // The documented reviews recipe, signed out (the site shows its login page): the
    // job fails; it does not complete with no rows (which would empty a dataset).
    let err = run(
        &browser,
        json!({"step_timeout_ms": 1_000, "steps": [
            {"goto": {"url": site.url("/site/account/reviews")}},
            {"paginate": {"next": "#next", "extract": {"list": "li.review", "fields": {
                "id": {"attr": "data-id"}}}}}
        ]}),
    )
    .await
    .expect_err("signed out");
    assert_eq!(err.code(), "EXTRACT_EMPTY", "{err}");

    // A run dropped mid-step (a job's deadline) still disposes its context. (2.5 s: well
    // into the 10 s wait_for even on a loaded machine.)
    let dropped = tokio::time::timeout(
        Duration::from_millis(2_500),
        run(
            &browser,
            json!({"steps": [
                {"goto": {"url": site.url("/site/reviews")}},
                {"wait_for": {"selector": ".never"}}
            ]}),
        ),
    )
    .await;
    assert!(dropped.is_err(), "still waiting when dropped");
    let mut open = usize::MAX;
    for _ in 0..50 {
        open = browser.open_contexts().await.expect("contexts");
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(open, 0, "every job's context was disposed");

    // The browser is still healthy after all that.
    let (_, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/reviews")}},
            {"extract": {"list": "li.review", "fields": {"id": {"attr": "data-id"}}}}
        ]}),
    )
    .await
    .expect("run");
    assert_eq!(rows.len(), 3);
    browser.close().await;
}

/// Processes whose command line mentions `needle` (Chromium's helpers carry the profile
/// directory of their browser).
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// The processes still mentioning `needle` once they all exited or 10 s passed. Chromium's
/// helpers exit on their own shortly after the browser (later on a loaded machine), so a
/// check that they are gone waits for it, bounded, instead of asserting at once.
async fn processes_left_after_exit(needle: &str) -> Vec<String> {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_with(needle);
        if left.is_empty() || tokio::time::Instant::now() >= give_up {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether process `pid` is gone (exited and reaped) within 10 s.
async fn gone_within(pid: u32) -> bool {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        if tokio::time::Instant::now() >= give_up {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// Closing leaves no Chromium process behind: not the browser (reaped, so no zombie),
/// not a helper.
#[tokio::test]
async fn closing_leaves_no_process_behind() {
    let browser = chromium().await;
    let pid = browser.pid().expect("a child process");
    let profile = browser.profile_dir().display().to_string();
    assert!(!processes_with(&profile).is_empty(), "running while open");
    browser.close().await;
    let left = processes_left_after_exit(&profile).await;
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the browser process was reaped"
    );
}

/// Each job gets its own browser context: a cookie set in one is not sent in the next.
#[tokio::test]
async fn jobs_do_not_share_cookies() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let visit = json!({"steps": [
        {"goto": {"url": site.url("/site/cookie")}},
        {"goto": {"url": site.url("/site/cookie")}},
        {"extract": {"list": "#seen", "fields": {"seen": {}}}}
    ]});
    for _ in 0..2 {
        let (_, rows) = run(&browser, visit.clone()).await.expect("run");
        // Within a job the second visit sends the cookie the first one set.
        assert_eq!(rows, [json!({"seen": "[visit=1]"})]);
    }
    let (_, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/cookie")}},
            {"extract": {"list": "#seen", "fields": {"seen": {}}}}
        ]}),
    )
    .await
    .expect("run");
    assert_eq!(
        rows,
        [json!({"seen": "[]"})],
        "a fresh context has no cookies"
    );
    browser.close().await;
}

/// A worker taking `registry`'s kinds from `server`, two jobs at a time, until `stop`.
fn start_worker(
    server: &TestServer,
    registry: Registry,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<Result<(), ferry_worker::WorkerError>>,
) {
    let client = ferry_client::Client::new(&server.url, Secret::new(WORKER_TOKEN)).expect("client");
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(
            client,
            registry,
            WorkerConfig {
                worker_id: "browser".into(),
                concurrency: 2,
                ..Default::default()
            },
        )
        .run(stop.clone()),
    );
    (stop, worker)
}

/// `browser.run` through a real server and worker: the recipe is checked at submit, rows
/// stream as the job's items, the result counts them.
#[tokio::test]
async fn browser_jobs_run_through_the_worker() {
    let site = fixture::spawn().await.expect("fixture");
    let server = TestServer::builder().with_services().spawn().await;
    let bad = server
        .api
        .submit(&ferry_testkit::job(
            "browser.run",
            json!({"steps": [{"goto": {"url": "ftp://nope"}}]}),
        ))
        .await
        .expect_err("refused at submit");
    assert_eq!(bad.code(), Some(ferry_core::ErrorCode::InvalidRecipe));
    assert!(
        bad.to_string().contains("payload.steps[0].goto.url"),
        "{bad}"
    );

    let chromium = Arc::new(chromium().await);
    let mut registry = Registry::new();
    registry
        .register("browser.run", BrowserRun::new(chromium.clone()))
        .expect("register");
    let (stop, worker) = start_worker(&server, registry);
    let job = server
        .api
        .submit(&ferry_testkit::job(
            "browser.run",
            json!({"steps": [
                {"goto": {"url": site.url("/site/reviews")}},
                {"extract": {"list": "li.review", "fields": {"title": {"selector": "h3"}}}}
            ]}),
        ))
        .await
        .expect("submit");
    let done = server.wait_final(job.id, Duration::from_secs(60)).await;
    assert_eq!(done.status, JobState::Completed, "{done:?}");
    assert_eq!(
        done.result.as_ref().map(untimed),
        Some(json!({"rows": 3, "steps": 2}))
    );
    let items = server.api.items(job.id, 0, 100).await.expect("items");
    let titles: Vec<_> = items
        .items
        .iter()
        .map(|i| i.data["title"].clone())
        .collect();
    assert_eq!(
        titles,
        [json!("Great ferry"), json!("Late again"), json!("Fine")]
    );

    let failing = server
        .api
        .submit(&ferry_testkit::job(
            "browser.run",
            json!({"step_timeout_ms": 300, "steps": [
                {"goto": {"url": site.url("/site/reviews")}},
                {"wait_for": {"selector": ".never"}}
            ]}),
        ))
        .await
        .expect("submit");
    let failed = server.wait_final(failing.id, Duration::from_secs(60)).await;
    assert_eq!(failed.status, JobState::Failed, "not retried: {failed:?}");
    assert_eq!(
        failed.error.map(|e| e.code),
        Some("SELECTOR_TIMEOUT".to_owned())
    );

    stop.cancel();
    worker.await.expect("worker task").expect("clean stop");
    if let Ok(chromium) = Arc::try_unwrap(chromium) {
        chromium.close().await;
    }
}

/// The flow Ferry exists for, through a real server and worker: a login job saves the
/// session on the server (the password comes from the worker's secrets, never the job);
/// a collect job reuses it; a job that fails leaves its artifacts on the server; a `429`
/// is retried after its `Retry-After`.
#[tokio::test]
async fn login_then_collect_through_the_server() {
    let site = fixture::spawn().await.expect("fixture");
    let server = TestServer::builder().with_services().spawn().await;
    let chromium = Arc::new(chromium().await);
    let mut registry = Registry::new();
    registry
        .register(
            "browser.run",
            BrowserRun::new(chromium.clone()).with_secrets(
                [(
                    "DEMO_PASSWORD".to_owned(),
                    ferry_core::BoundSecret::new(
                        fixture::DEMO_PASSWORD,
                        vec!["127.0.0.1".parse().expect("a rule")],
                    ),
                )]
                .into(),
            ),
        )
        .expect("register");
    let (stop, worker) = start_worker(&server, registry);

    let login = server
        .api
        .submit(&ferry_testkit::job(
            "browser.run",
            json!({"inputs": {"user": fixture::DEMO_USER}, "steps": [
                {"goto": {"url": site.url("/site/login")}},
                {"fill": {"selector": "#user", "value": "{{input.user}}"}},
                {"fill": {"selector": "#password", "value": "{{secret.DEMO_PASSWORD}}"}},
                {"click": {"selector": "#sign-in"}},
                {"wait_for": {"selector": "#who"}},
                {"save_session": "shop-1"}
            ]}),
        ))
        .await
        .expect("submit login");
    let done = server.wait_final(login.id, Duration::from_secs(60)).await;
    assert_eq!(done.status, JobState::Completed, "{done:?}");
    let sessions = server.api.sessions().await.expect("sessions").sessions;
    assert_eq!(
        (sessions.len(), sessions[0].saved_by_job),
        (1, Some(login.id))
    );

    let collect = server
        .api
        .submit(&ferry_testkit::job(
            "browser.run",
            json!({"use_session": "shop-1", "steps": [
                {"goto": {"url": site.url("/site/account/reviews")}},
                {"paginate": {"next": "#next", "extract": {"list": "li.review", "fields": {
                    "id": {"attr": "data-id"},
                    "stars": {"selector": ".stars", "number": true}}}}}
            ]}),
        ))
        .await
        .expect("submit collect");
    let done = server.wait_final(collect.id, Duration::from_secs(60)).await;
    assert_eq!(done.status, JobState::Completed, "{done:?}");
    assert_eq!(
        done.result.as_ref().map(untimed),
        Some(json!({"rows": 7, "steps": 2, "pages": 3, "rows_per_page": [3, 3, 1]}))
    );
    let items = server.api.items(collect.id, 0, 100).await.expect("items");
    let ids: Vec<_> = items.items.iter().map(|i| i.data["id"].clone()).collect();
    assert_eq!(
        ids,
        ["rv-1", "rv-2", "rv-3", "rv-4", "rv-5", "rv-6", "rv-7"].map(|s| json!(s))
    );

    // No session: the login page, a failed step, and what it left on the server.
    let lost = server
        .api
        .submit(&ferry_testkit::job(
            "browser.run",
            json!({"step_timeout_ms": 500, "steps": [
                {"goto": {"url": site.url("/site/account/reviews")}},
                {"wait_for": {"selector": "li.review"}}
            ]}),
        ))
        .await
        .expect("submit");
    let failed = server.wait_final(lost.id, Duration::from_secs(60)).await;
    assert_eq!(failed.status, JobState::Failed);
    let artifacts = server.api.artifacts(lost.id).await.expect("artifacts");
    let mut names: Vec<_> = artifacts.artifacts.iter().map(|a| a.name.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "attempt-1-failure-network.json",
            "attempt-1-failure.html",
            "attempt-1-failure.png"
        ]
    );
    let html = server
        .api
        .artifact(lost.id, "attempt-1-failure.html")
        .await
        .expect("html");
    assert!(String::from_utf8_lossy(&html).contains("id=\"login\""));

    // 429 + Retry-After: 1 → retried no sooner than a second later, then done.
    let limited = server
        .api
        .submit(&ferry_testkit::job(
            "browser.run",
            json!({"steps": [
                {"goto": {"url": site.url("/site/limited/through-worker")}},
                {"extract": {"list": ".ok", "fields": {"ok": {}}}}
            ]}),
        ))
        .await
        .expect("submit");
    let done = server.wait_final(limited.id, Duration::from_secs(60)).await;
    assert_eq!(
        (done.status, done.attempt),
        (JobState::Completed, 2),
        "{done:?}"
    );
    let events: Vec<_> = server
        .events_through(std::slice::from_ref(&done))
        .await
        .into_iter()
        .filter(|e| e.job_id == Some(limited.id))
        .collect();
    let at = |t: &str| {
        events
            .iter()
            .filter(|e| e.event_type == t)
            .map(|e| e.at)
            .collect::<Vec<_>>()
    };
    let (retried, started) = (at("job.retrying"), at("job.started"));
    assert_eq!((retried.len(), started.len()), (1, 2));
    assert!(
        started[1] - retried[0] >= chrono::Duration::milliseconds(950),
        "the retry waited for Retry-After: {retried:?} {started:?}"
    );

    stop.cancel();
    worker.await.expect("worker task").expect("clean stop");
    if let Ok(chromium) = Arc::try_unwrap(chromium) {
        chromium.close().await;
    }
}

/// A browser past its job limit is retired: the next job gets a fresh Chromium and the old
/// one is closed, its processes gone.
#[tokio::test]
async fn browsers_are_recycled_after_their_job_limit() {
    use ferry_worker::Handler;
    let site = fixture::spawn().await.expect("fixture");
    let handler =
        BrowserRun::lazy(ChromiumConfig::default()).with_recycle(ferry_browser::Recycle {
            after_jobs: 2,
            above_bytes: u64::MAX,
        });
    let recipe = json!({"steps": [
        {"goto": {"url": site.url("/site/reviews")}},
        {"extract": {"list": "li.review", "fields": {"id": {"attr": "data-id"}}}}
    ]});
    let job = || {
        ferry_worker::JobContext::detached("browser.run", recipe.clone())
            .with_egress(ferry_core::egress::EgressPolicy::allowing_private())
    };
    handler.run(job()).await.expect("job 1");
    let first = handler.current().await.expect("started");
    let (pid, profile) = (
        first.pid().expect("pid"),
        first.profile_dir().display().to_string(),
    );
    drop(first);
    handler.run(job()).await.expect("job 2");
    assert!(handler.current().await.is_none(), "retired after 2 jobs");
    assert!(
        gone_within(pid).await,
        "the retired browser was closed and reaped"
    );
    let left = processes_left_after_exit(&profile).await;
    assert!(left.is_empty(), "no helper left: {left:?}");
    handler.run(job()).await.expect("job 3");
    let second = handler.current().await.expect("a fresh browser");
    assert_ne!(second.pid(), Some(pid));
    drop(second);
    if let Some(chromium) = handler.current().await {
        drop(handler);
        if let Ok(chromium) = Arc::try_unwrap(chromium) {
            chromium.close().await;
        }
    }
}

/// The bench's yardstick walks the same catalog a `paginate` recipe does, every row of
/// every page, and stops at `max_pages` or at the last page.
#[tokio::test]
async fn the_raw_cdp_baseline_walks_the_catalog() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let start = site.url("/site/catalog?page=1&pages=3&flush_ms=0");
    let all = ferry_browser::baseline::walk(&browser, &start, "li.item", "#next", 10)
        .await
        .expect("walk");
    assert_eq!(
        all,
        ferry_browser::baseline::Walked {
            pages: 3,
            rows: 3 * fixture::CATALOG_ROWS
        }
    );
    let two = ferry_browser::baseline::walk(&browser, &start, "li.item", "#next", 2)
        .await
        .expect("walk");
    assert_eq!(two.pages, 2);
    let (summary, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": start}},
            {"paginate": {"next": "#next", "extract": {"list": "li.item", "fields": {"id": {"attr": "data-id"}}}}}
        ]}),
    )
    .await
    .expect("recipe");
    assert_eq!((summary["pages"].clone(), rows.len()), (json!(3), all.rows));
}
