//! Recipes v2 (issue #20) in a real Chromium against the demo site: an overlay that may
//! or may not come (`dismiss`); a "Load more" list walked by `paginate` with
//! `mode: load_more`; a virtualized list that recycles its rows, collected while
//! scrolling; every row once with its exact values; and optional steps.

use ferry_browser::{BrowserError, Chromium, ChromiumConfig, Collect};
use ferry_testkit::{fixture, untimed};
use serde_json::{Value, json};

async fn chromium() -> Chromium {
    Chromium::launch(&ChromiumConfig::default())
        .await
        .expect("Chromium starts (scripts/chromium.sh installs it)")
}

async fn run(browser: &Chromium, recipe: Value) -> (Result<Value, BrowserError>, Vec<Value>) {
    let recipe = ferry_core::recipe::validate(&recipe, "payload").expect("a valid recipe");
    let mut host = Collect::default();
    let outcome = browser.run(&recipe, &mut host).await;
    (outcome, host.rows)
}

fn products(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_consent_banner_is_dismissed_when_it_shows_and_skipped_when_it_does_not() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let recipe = |query: &str| {
        json!({"steps": [
            {"goto": {"url": site.url(&format!("/site/consent{query}"))}},
            {"dismiss": {"selector": "#consent .accept", "within_ms": 3000}},
            {"extract": {"list": "body", "fields": {"consent": {"attr": "data-consent"}}}},
            {"extract": {"list": "li.product", "fields": {"name": {"selector": ".name"}}}}
        ]})
    };
    let expected: Vec<String> = (1..=5).map(|i| format!("Product {i}")).collect();

    // The banner comes 300 ms after the page: clicked away.
    let (shown, rows) = run(&browser, recipe("")).await;
    let summary = shown.expect("completes");
    assert_eq!(summary["dismissed"], json!([1]), "{summary}");
    assert_eq!(rows[0]["consent"], "yes", "the banner's button was clicked");
    assert_eq!(products(&rows[1..]), expected);

    // No banner: nothing to dismiss, and the run goes on.
    let (quiet, rows) = run(&browser, recipe("?banner=0")).await;
    let summary = quiet.expect("completes");
    assert!(summary.get("dismissed").is_none(), "{summary}");
    assert_eq!(rows[0]["consent"], Value::Null);
    assert_eq!(products(&rows[1..]), expected);

    // A `click` in its place fails the page without a banner.
    let (clicked, _) = run(
        &browser,
        json!({"step_timeout_ms": 500, "steps": [
            {"goto": {"url": site.url("/site/consent?banner=0")}},
            {"click": {"selector": "#consent .accept"}}
        ]}),
    )
    .await;
    assert!(
        matches!(clicked, Err(BrowserError::SelectorTimeout { step: 1, .. })),
        "{clicked:?}"
    );
    browser.close().await;
}

#[tokio::test]
async fn load_more_gives_every_row_once() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let (outcome, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/more")}},
            {"paginate": {"next": "#more", "mode": "load_more", "extract": {
                "list": "li.row",
                "fields": {"n": {"selector": ".n", "number": true}, "name": {"selector": ".name"}}}}}
        ]}),
    )
    .await;
    let summary = outcome.expect("completes");
    assert_eq!(
        untimed(&summary),
        json!({"rows": 100, "steps": 2, "pages": 4, "rows_per_page": [25, 25, 25, 25]})
    );
    let expected: Vec<Value> = (1..=100)
        .map(|i| json!({"n": i, "name": format!("Row {i}")}))
        .collect();
    assert_eq!(rows, expected);

    // `max_pages` bounds the loads: two loads, 50 rows.
    let (outcome, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/more")}},
            {"paginate": {"next": "#more", "mode": "load_more", "max_pages": 2, "extract": {
                "list": "li.row", "fields": {"n": {"selector": ".n", "number": true}}}}}
        ]}),
    )
    .await;
    assert_eq!(outcome.expect("completes")["rows"], 50);
    assert_eq!(rows.last(), Some(&json!({"n": 50})));

    // A list replaced in place is no load-more list: refused, not read as its last page.
    let (outcome, _) = run(
        &browser,
        json!({"step_timeout_ms": 1000, "steps": [
            {"goto": {"url": site.url("/site/more?replace=1")}},
            {"paginate": {"next": "#more", "mode": "load_more", "extract": {
                "list": "li.row", "fields": {"n": {"selector": ".n", "number": true}}}}}
        ]}),
    )
    .await;
    match outcome {
        Err(BrowserError::SelectorTimeout {
            step: 1, selector, ..
        }) => {
            assert!(selector.contains("did not grow"), "{selector}");
        }
        other => panic!("a replaced list is refused: {other:?}"),
    }
    browser.close().await;
}

#[tokio::test]
async fn a_virtualized_list_is_collected_while_scrolling_every_row_once() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let extract = json!({
        "list": ".vrow",
        "fields": {"id": {"selector": ".id", "number": true}, "name": {"selector": ".name"}},
        "dedupe_by": "id"
    });
    let (outcome, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/virtual")}},
            {"infinite_scroll": {"list": ".vrow", "container": "#viewport", "idle_ms": 500,
                                 "extract": extract}}
        ]}),
    )
    .await;
    assert_eq!(outcome.expect("completes")["rows"], 500);
    let expected: Vec<Value> = (1..=500)
        .map(|i| json!({"id": i, "name": format!("Item {i}")}))
        .collect();
    assert_eq!(rows, expected, "500 of 500, in order, none twice");

    // The old way, `infinite_scroll` then `extract`, reads only the 20 rows in the page.
    let (outcome, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/virtual")}},
            {"infinite_scroll": {"list": ".vrow", "idle_ms": 300, "max_scrolls": 5}},
            {"extract": extract}
        ]}),
    )
    .await;
    outcome.expect("completes");
    assert_eq!(rows.len(), 20);

    // `until_items` stops early.
    let (outcome, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/virtual")}},
            {"infinite_scroll": {"list": ".vrow", "container": "#viewport", "until_items": 60,
                                 "extract": extract}}
        ]}),
    )
    .await;
    assert!(outcome.expect("completes")["rows"].as_u64() >= Some(60));
    assert_eq!(rows[..60], expected[..60]);

    // `max_scrolls` bounds it: the first read and two more.
    let (outcome, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/virtual")}},
            {"infinite_scroll": {"list": ".vrow", "container": "#viewport", "max_scrolls": 2,
                                 "extract": extract}}
        ]}),
    )
    .await;
    outcome.expect("completes");
    assert!(rows.len() < 500 && rows.len() > 20, "{}", rows.len());
    assert_eq!(rows[..], expected[..rows.len()]);

    // A container that is not there fails the step, naming it.
    let (outcome, _) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/virtual")}},
            {"infinite_scroll": {"list": ".vrow", "container": "#nope", "extract": extract}}
        ]}),
    )
    .await;
    assert!(
        matches!(&outcome, Err(BrowserError::SelectorTimeout { step: 1, selector, .. }) if selector == "#nope"),
        "{outcome:?}"
    );
    browser.close().await;
}

#[tokio::test]
async fn dedupe_by_drops_rows_seen_on_an_earlier_page() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    // Without load_more, each click re-reads the growing list; `dedupe_by` keeps each row
    // once all the same.
    let (outcome, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/more")}},
            {"paginate": {"next": "#more", "extract": {
                "list": "li.row", "fields": {"n": {"selector": ".n", "number": true}},
                "dedupe_by": "n"}}}
        ]}),
    )
    .await;
    let summary = outcome.expect("completes");
    assert_eq!(summary["rows"], 100);
    assert_eq!(summary["rows_per_page"], json!([25, 25, 25, 25]));
    let expected: Vec<Value> = (1..=100).map(|n| json!({"n": n})).collect();
    assert_eq!(rows, expected);
    browser.close().await;
}

#[tokio::test]
async fn an_optional_step_that_finds_nothing_is_skipped_and_others_still_fail() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let (outcome, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/consent?banner=0")}},
            {"click": {"selector": "#newsletter .close"}, "optional": 300},
            {"extract": {"list": "li.promo", "fields": {"p": {}}}, "optional": true},
            {"extract": {"list": "li.product", "fields": {"name": {"selector": ".name"}}}}
        ]}),
    )
    .await;
    let summary = outcome.expect("completes");
    assert_eq!(summary["skipped"], json!([1, 2]), "{summary}");
    assert_eq!(rows.len(), 5);
    // Not optional: the same click fails the run.
    let (outcome, _) = run(
        &browser,
        json!({"step_timeout_ms": 300, "steps": [
            {"goto": {"url": site.url("/site/consent?banner=0")}},
            {"click": {"selector": "#newsletter .close"}}
        ]}),
    )
    .await;
    assert!(
        matches!(outcome, Err(BrowserError::SelectorTimeout { step: 1, .. })),
        "{outcome:?}"
    );
    browser.close().await;
}

/// Rows the page's load code fills in just after its load event (a slow image holds the
/// load back well after the HTML is parsed) are read filled in, not as placeholders: a
/// list is settled only once its document has held still since loading. Reached by a
/// click, whose wait ends at the new document's load event.
#[tokio::test]
async fn rows_filled_in_by_load_code_are_read_filled_in() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let (outcome, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/placeholders")}},
            {"click": {"selector": "#again"}},
            {"extract": {"list": "li.item", "fields": {"text": {}}}}
        ]}),
    )
    .await;
    outcome.expect("completes");
    assert_eq!(
        rows,
        [
            json!({"text": "Review 1"}),
            json!({"text": "Review 2"}),
            json!({"text": "Review 3"})
        ]
    );
}

/// A link is clicked where a user's click would land: under a clear layer, the layer
/// takes the click and the link is not followed (a link is clicked by its own activation
/// only when a click at its centre would hit it). Once the layer is gone, it is followed.
#[tokio::test]
async fn a_covered_link_is_not_followed_through_the_layer() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let (outcome, rows) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/covered")}},
            {"click": {"selector": "#next"}},
            {"extract": {"list": "body", "fields": {"hit": {"attr": "data-hit"}}}},
            {"click": {"selector": "#next"}},
            {"extract": {"list": "li.item", "fields": {"text": {}}}}
        ]}),
    )
    .await;
    outcome.expect("completes");
    assert_eq!(rows[0], json!({"hit": "cover"}), "{rows:?}");
    assert_eq!(rows.len(), 4, "the uncovered link was followed: {rows:?}");
}
