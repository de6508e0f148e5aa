//! The demo site's harder patterns in a real Chromium: tabs rendered on click, a link
//! opening a new tab, `429` with `Retry-After`, a `500` leaving failure artifacts, the
//! `wait_for` kinds, `scroll`, screenshots, secrets and inputs, and a saved login reused
//! by a fresh context; the egress policy on every request of a page.

use std::collections::HashMap;

use ferry_browser::{BrowserError, Chromium, ChromiumConfig, Collect};
use ferry_core::{BoundSecret, egress::EgressPolicy};
use ferry_testkit::fixture;
use serde_json::{Value, json};

async fn chromium() -> Chromium {
    Chromium::launch(&ChromiumConfig::default())
        .await
        .expect("Chromium starts (scripts/chromium.sh installs it)")
}

async fn run_with(
    browser: &Chromium,
    host: &mut Collect,
    value: Value,
) -> Result<Value, BrowserError> {
    let recipe = ferry_core::recipe::validate(&value, "payload").expect("a valid recipe");
    browser.run(&recipe, host).await
}

/// A secret the demo site's pages (127.0.0.1) may be given.
fn on_loopback(value: &str) -> BoundSecret {
    BoundSecret::new(value, vec!["127.0.0.1".parse().expect("a rule")])
}

fn is_png(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n")
}

#[tokio::test]
async fn tabs_new_pages_and_screenshots() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;

    // In-page tabs: the panel is rendered 100 ms after the click.
    let mut host = Collect::default();
    run_with(
        &browser,
        &mut host,
        json!({"steps": [
            {"goto": {"url": site.url("/site/product")}},
            {"click": {"selector": ".tab[data-tab=specs]"}},
            {"wait_for": {"selector": "li.spec"}},
            {"extract": {"list": "li.spec", "fields": {
                "name": {"selector": "b"},
                "value": {"selector": "span"}}}}
        ]}),
    )
    .await
    .expect("specs");
    assert_eq!(
        host.rows,
        [
            json!({"name": "Weight", "value": "1 kg"}),
            json!({"name": "Origin", "value": "Colombia"}),
            json!({"name": "Price", "value": "24,900 KRW"}),
        ]
    );

    // A link with target=_blank: switch to the newest tab and read it; screenshot it.
    let mut host = Collect::default();
    let summary = run_with(
        &browser,
        &mut host,
        json!({"steps": [
            {"goto": {"url": site.url("/site/links")}},
            {"click": {"selector": "#open-product"}},
            {"switch_tab": {"index": -1}},
            {"wait_for": {"selector": "#name"}},
            {"extract": {"list": "#name", "fields": {"product": {}}}},
            {"screenshot": {"name": "product.png", "full_page": true}},
            {"switch_tab": {"index": 0}},
            {"extract": {"list": "#open-product", "fields": {"link": {"attr": "href"}}}}
        ]}),
    )
    .await
    .expect("new tab");
    assert_eq!(
        host.rows,
        [
            json!({"product": "Harbor Blend 1 kg"}),
            json!({"link": "/site/product"})
        ]
    );
    assert_eq!(summary["screenshots"], json!(["product.png"]));
    let (name, content_type, png) = &host.artifacts[0];
    assert_eq!(
        (name.as_str(), content_type.as_str()),
        ("product.png", "image/png")
    );
    assert!(is_png(png) && png.len() > 1_000, "a real PNG");

    // A tab that never opens.
    let mut host = Collect::default();
    let err = run_with(
        &browser,
        &mut host,
        json!({"step_timeout_ms": 500, "steps": [
            {"goto": {"url": site.url("/site/links")}},
            {"switch_tab": {"index": 1}}
        ]}),
    )
    .await
    .expect_err("no second tab");
    assert_eq!(err.code(), "SELECTOR_TIMEOUT");
    assert!(err.to_string().contains("no tab 1"), "{err}");
    browser.close().await;
}

#[tokio::test]
async fn status_errors_and_failure_artifacts() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;

    // 429 with Retry-After: retryable, and the error carries the wait.
    let mut host = Collect::default();
    let recipe = json!({"steps": [
        {"goto": {"url": site.url("/site/limited/browser-test")}},
        {"extract": {"list": ".ok", "fields": {"ok": {}}}}
    ]});
    let err = run_with(&browser, &mut host, recipe.clone())
        .await
        .expect_err("429 first");
    assert_eq!((err.code(), err.retryable()), ("HTTP_STATUS", true));
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(1)));
    assert!(
        err.to_string().contains("HTTP 429 (Retry-After: 1 s)"),
        "{err}"
    );
    let mut host = Collect::default();
    run_with(&browser, &mut host, recipe)
        .await
        .expect("then ok");
    assert_eq!(host.rows, [json!({"ok": "ok on visit 2"})]);

    // A 500 is not retried, and leaves a screenshot, the HTML and the network log.
    let mut host = Collect::default();
    let err = run_with(
        &browser,
        &mut host,
        json!({"steps": [{"goto": {"url": site.url("/site/error")}}]}),
    )
    .await
    .expect_err("500");
    assert_eq!((err.code(), err.retryable()), ("HTTP_STATUS", false));
    let names: Vec<&str> = host.artifacts.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        names,
        ["failure.png", "failure.html", "failure-network.json"]
    );
    assert!(is_png(&host.artifacts[0].2));
    let html = String::from_utf8_lossy(&host.artifacts[1].2);
    assert!(html.contains("Something broke"), "{html}");
    let log: Value = serde_json::from_slice(&host.artifacts[2].2).expect("json");
    let entry = log["entries"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .find(|e| e["url"] == json!(site.url("/site/error")))
        })
        .expect("the document's request");
    assert_eq!(
        (&entry["status"], &entry["type"], &entry["method"]),
        (&json!(500), &json!("Document"), &json!("GET"))
    );
    assert!(entry["duration_ms"].as_f64().is_some(), "{entry}");
    browser.close().await;
}

#[tokio::test]
async fn waits_scrolls_secrets_and_inputs() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let mut host = Collect {
        secrets: HashMap::from([("NAME".to_owned(), on_loopback("Mina"))]),
        ..Default::default()
    };
    run_with(
        &browser,
        &mut host,
        json!({"inputs": {"size": "m"}, "steps": [
            {"goto": {"url": site.url("/site/form")}},
            {"wait_for": {"url_contains": "/site/form"}},
            {"wait_for": {"delay_ms": 50}},
            {"select": {"selector": "#size", "value": "{{input.size}}"}},
            {"fill": {"selector": "#name", "value": "{{secret.NAME}}"}},
            {"press": {"selector": "#name", "key": "Enter"}},
            {"wait_for": {"selector": "#out"}},
            {"extract": {"list": "#out", "fields": {"out": {}}}}
        ]}),
    )
    .await
    .expect("form");
    assert_eq!(host.rows, [json!({"out": "Mina/m"})]);

    // The feed loads over fetch: wait for the network to go quiet, scroll, quiet again.
    let mut host = Collect::default();
    run_with(
        &browser,
        &mut host,
        json!({"steps": [
            {"goto": {"url": site.url("/site/feed")}},
            {"wait_for": {"network_idle_ms": 300}},
            {"scroll": {}},
            {"wait_for": {"network_idle_ms": 300}},
            {"scroll": {"selector": ".post:last-child"}},
            {"extract": {"list": ".post", "fields": {"post": {}}}}
        ]}),
    )
    .await
    .expect("feed");
    assert!(host.rows.len() >= 10, "two loads at least: {:?}", host.rows);
    assert_eq!(host.rows[0], json!({"post": "post 0"}));

    // A secret this worker does not have fails the step, naming the variable to set.
    let mut host = Collect::default();
    let err = run_with(
        &browser,
        &mut host,
        json!({"steps": [
            {"goto": {"url": site.url("/site/form")}},
            {"fill": {"selector": "#name", "value": "{{secret.FERRY_TEST_NOT_SET}}"}}
        ]}),
    )
    .await
    .expect_err("no such secret");
    assert_eq!((err.code(), err.retryable()), ("INVALID_RECIPE", false));
    assert!(
        err.to_string().contains("FERRY_SECRET_FERRY_TEST_NOT_SET"),
        "{err}"
    );

    // url_contains that never comes.
    let err = run_with(
        &browser,
        &mut Collect::default(),
        json!({"steps": [
            {"goto": {"url": site.url("/site/form")}},
            {"wait_for": {"url_contains": "/elsewhere", "timeout_ms": 300}}
        ]}),
    )
    .await
    .expect_err("stays");
    assert_eq!(err.code(), "SELECTOR_TIMEOUT");
    browser.close().await;
}

/// Log in once and save the session; a later run in a fresh context loads it and reads
/// the pages behind the login, including what the site keeps in localStorage.
#[tokio::test]
async fn a_saved_login_is_reused_by_a_fresh_context() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let mut host = Collect {
        secrets: HashMap::from([(
            "DEMO_PASSWORD".to_owned(),
            on_loopback(fixture::DEMO_PASSWORD),
        )]),
        ..Default::default()
    };
    let summary = run_with(
        &browser,
        &mut host,
        json!({"inputs": {"user": fixture::DEMO_USER}, "steps": [
            {"goto": {"url": site.url("/site/login")}},
            {"fill": {"selector": "#user", "value": "{{input.user}}"}},
            {"fill": {"selector": "#password", "value": "{{secret.DEMO_PASSWORD}}"}},
            {"click": {"selector": "#sign-in"}},
            {"wait_for": {"url_contains": "/site/account"}},
            {"wait_for": {"selector": "#who"}},
            {"save_session": "demo-shop"}
        ]}),
    )
    .await
    .expect("login");
    assert_eq!(summary["sessions_saved"], json!(["demo-shop"]));
    let saved = host.sessions.get("demo-shop").expect("saved").clone();
    assert!(
        saved["cookies"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["name"] == "sid")),
        "{saved}"
    );
    assert_eq!(saved["origins"][0]["local"]["shop"], "Harbor Cafe");

    let reviews = json!({"use_session": "demo-shop", "steps": [
        {"goto": {"url": site.url("/site/account/reviews")}},
        {"wait_for": {"selector": "li.review", "timeout_ms": 2000}},
        {"extract": {"list": "#shop", "fields": {"shop": {}}}},
        {"paginate": {"next": "#next", "extract": {"list": "li.review", "fields": {
            "id": {"attr": "data-id"},
            "author": {"selector": ".author", "replace": ["^by ", ""]},
            "stars": {"selector": ".stars", "number": true},
            "date": {"selector": "time", "date": "%Y.%m.%d"}}}}}
    ]});
    let mut with_session = Collect {
        sessions: host.sessions.clone(),
        ..Default::default()
    };
    let summary = run_with(&browser, &mut with_session, reviews.clone())
        .await
        .expect("collect with the session");
    assert_eq!(summary["pages"], json!(3));
    assert_eq!(with_session.rows.len(), 8, "{:?}", with_session.rows);
    assert_eq!(with_session.rows[0], json!({"shop": "Harbor Cafe"}));
    assert_eq!(
        with_session.rows[1],
        json!({"id": "rv-1", "author": "mina", "stars": 5, "date": "2026-11-01"})
    );
    assert_eq!(
        with_session.rows[7],
        json!({"id": "rv-7", "author": "tom", "stars": 1, "date": "2026-11-15"})
    );

    // Without the session the site sends the browser to its login page.
    let mut without = Collect::default();
    let err = run_with(&browser, &mut without, reviews)
        .await
        .expect_err("not signed in");
    assert_eq!(err.code(), "SELECTOR_TIMEOUT");
    let html = without
        .artifacts
        .iter()
        .find(|a| a.0 == "failure.html")
        .map(|a| String::from_utf8_lossy(&a.2).into_owned())
        .expect("the page's HTML");
    assert!(html.contains("id=\"login\""), "the login page: {html}");
    browser.close().await;
}

fn allowing(rules: &[&str]) -> EgressPolicy {
    EgressPolicy {
        allow: rules.iter().map(|r| r.parse().expect("a rule")).collect(),
        ..EgressPolicy::default()
    }
}

/// What a page's script read from `to` (`/site/reach`): `ok 200 …` or `blocked`.
async fn reached(browser: &Chromium, policy: EgressPolicy, page: &str) -> Value {
    let mut host = Collect {
        egress: policy,
        ..Collect::default()
    };
    run_with(
        browser,
        &mut host,
        json!({"steps": [
            {"goto": {"url": page}},
            {"wait_for": {"selector": "#fetch[data-done]"}},
            {"extract": {"list": "#fetch", "fields": {"text": {}}}}
        ]}),
    )
    .await
    .expect("the page loads");
    host.rows
        .first()
        .map(|r| r["text"].clone())
        .unwrap_or_default()
}

/// Every request of a page passes the job's egress policy: a navigation to an internal
/// address however it is spelled or named, a redirect from an allowed host to a denied
/// one, and a page's own requests to a denied address.
#[tokio::test]
async fn the_egress_policy_holds_for_navigations_redirects_and_page_requests() {
    let site = fixture::spawn().await.expect("fixture");
    let other = fixture::spawn_on(std::net::Ipv4Addr::new(127, 0, 0, 2))
        .await
        .expect("a second site");
    let browser = chromium().await;
    let port = site.addr.port();
    for url in [
        site.url("/site/reviews"),
        format!("http://localhost:{port}/site/reviews"),
        format!("http://127.1:{port}/site/reviews"),
        format!("http://0x7f000001:{port}/site/reviews"),
        format!("http://[::ffff:127.0.0.1]:{port}/site/reviews"),
    ] {
        let mut host = Collect {
            egress: EgressPolicy::default(),
            ..Collect::default()
        };
        let error = run_with(
            &browser,
            &mut host,
            json!({"steps": [{"goto": {"url": url}}]}),
        )
        .await
        .expect_err("an internal address");
        assert_eq!(error.code(), "EGRESS_DENIED", "{url}: {error}");
        assert!(!error.retryable());
    }

    // Allowed by address; the redirect's next hop is not.
    let only_site = allowing(&["127.0.0.1"]);
    let hop = format!(
        "{}?to={}",
        site.url("/redirect"),
        other.url("/site/reviews")
    );
    let mut host = Collect {
        egress: only_site.clone(),
        ..Collect::default()
    };
    let error = run_with(
        &browser,
        &mut host,
        json!({"steps": [{"goto": {"url": hop}}]}),
    )
    .await
    .expect_err("the redirect leads to a denied address");
    assert_eq!(error.code(), "EGRESS_DENIED", "{error}");
    assert!(error.to_string().contains("127.0.0.2"), "{error}");

    // A page's own request to a denied address never reaches it.
    let page = format!("{}?to={}", site.url("/site/reach"), other.url("/open-data"));
    assert_eq!(reached(&browser, only_site, &page).await, "blocked");
    assert_eq!(
        reached(&browser, EgressPolicy::allowing_private(), &page).await,
        "ok 200 internal data"
    );
    browser.close().await;
}
