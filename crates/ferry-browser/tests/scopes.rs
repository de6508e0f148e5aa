//! Recipes v2 (issue #20) in a real Chromium against the demo site, where a plain
//! selector stops: product cards in shadow roots two levels deep, a frame and a frame
//! within it, values read into `{{vars.…}}`, and thirty detail pages one link away —
//! each with its exact rows.

use ferry_browser::{BrowserError, Chromium, ChromiumConfig, Collect};
use ferry_testkit::fixture;
use serde_json::{Value, json};

async fn chromium() -> Chromium {
    Chromium::launch(&ChromiumConfig::default())
        .await
        .expect("Chromium starts (scripts/chromium.sh installs it)")
}

/// `examples/NAME` with its input `site` set to the demo site's address.
fn example(name: &str, site: &fixture::Fixture) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("the example");
    let mut recipe: Value = serde_json::from_str(&text).expect("JSON");
    recipe["inputs"]["site"] = json!(site.url.trim_start_matches("http://"));
    recipe
}

async fn run(browser: &Chromium, recipe: Value) -> (Result<Value, BrowserError>, Collect) {
    let recipe = ferry_core::recipe::validate(&recipe, "payload").expect("a valid recipe");
    let mut host = Collect::default();
    let outcome = browser.run(&recipe, &mut host).await;
    (outcome, host)
}

#[tokio::test]
async fn selectors_pierce_open_shadow_roots_two_levels_deep() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let cards = json!({"list": "product-card", "fields": {
        "name": {"selector": ".name"}, "price": {"selector": ".price", "number": true}}});
    let (outcome, host) = run(&browser, example("shadow-dom.json", &site)).await;
    outcome.expect("completes");
    let mut expected: Vec<Value> = (1..=12)
        .map(|i| json!({"name": format!("Card {i}"), "price": i * 1500}))
        .collect();
    // The closed root's card is out of reach, as in a browser; the two clicks landed.
    expected.push(json!({"cart": 2, "last": "Card 5"}));
    assert_eq!(host.rows, expected);

    // Opting out keeps selectors to the document: nothing matches, and the job says so.
    let (outcome, _) = run(
        &browser,
        json!({"pierce_shadow": false, "step_timeout_ms": 800, "steps": [
            {"goto": {"url": site.url("/site/shadow")}},
            {"extract": cards}
        ]}),
    )
    .await;
    let err = outcome.expect_err("no card in the light DOM");
    assert_eq!(err.code(), "EXTRACT_EMPTY", "{err}");
    browser.close().await;
}

#[tokio::test]
async fn steps_act_and_extract_inside_nested_frames() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    // `examples/frames.json`: the add-ons frame loads a moment after its parent
    // (entering waits for it), and its button sits below the fold of two scrolled,
    // bordered, padded frames.
    let (outcome, host) = run(&browser, example("frames.json", &site)).await;
    outcome.expect("completes");
    assert_eq!(
        host.rows,
        [
            json!({"plan": "Basic", "krw": 9900}),
            json!({"plan": "Team", "krw": 49000}),
            json!({"plan": "Business", "krw": 129000}),
            json!({"addon": "Backup", "krw": 1000}),
            json!({"addon": "Audit log", "krw": 2500}),
            json!({"addon": "SSO", "krw": 5000}),
            json!({"addon": "Support", "krw": 9000}),
            json!({"title": "Pricing"}),
        ]
    );

    // What a step in a frame does not find is named with its frame.
    let (outcome, _) = run(
        &browser,
        json!({"step_timeout_ms": 600, "steps": [
            {"goto": {"url": site.url("/site/frames")}},
            {"frame": {"selector": "#plans"}},
            {"frame": {"selector": "#addons"}},
            {"click": {"selector": "#nope"}}
        ]}),
    )
    .await;
    match outcome {
        Err(BrowserError::SelectorTimeout {
            step: 3, selector, ..
        }) => assert_eq!(selector, "#nope (in frame #plans > #addons)"),
        other => panic!("a missing element in a frame: {other:?}"),
    }
    // A frame that is not there; an element that is no frame.
    let (outcome, _) = run(
        &browser,
        json!({"step_timeout_ms": 600, "steps": [
            {"goto": {"url": site.url("/site/frames")}},
            {"frame": {"selector": "#elsewhere"}}
        ]}),
    )
    .await;
    match outcome {
        Err(BrowserError::SelectorTimeout {
            step: 1, selector, ..
        }) => assert_eq!(selector, "#elsewhere (a frame)"),
        other => panic!("a missing frame: {other:?}"),
    }
    let (outcome, _) = run(
        &browser,
        json!({"step_timeout_ms": 600, "steps": [
            {"goto": {"url": site.url("/site/frames")}},
            {"frame": {"selector": "h1"}}
        ]}),
    )
    .await;
    let err = outcome.expect_err("h1 is no frame");
    assert_eq!((err.code(), err.retryable()), ("FRAME_UNREACHABLE", false));
    browser.close().await;
}

#[tokio::test]
async fn a_value_read_earlier_is_used_by_a_later_step() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let (outcome, host) = run(
        &browser,
        json!({"steps": [
            {"goto": {"url": site.url("/site/shadow")}},
            {"save_var": {"name": "price", "selector": "product-card .price", "regex": "([\\d,]+)"}},
            {"goto": {"url": site.url("/site/form")}},
            {"fill": {"selector": "#name", "value": "costs {{vars.price}}"}},
            {"press": {"selector": "#name", "key": "Enter"}},
            {"extract": {"list": "#out", "fields": {"out": {}}}}
        ]}),
    )
    .await;
    outcome.expect("completes");
    assert_eq!(host.rows, [json!({"out": "costs 1,500/s"})]);

    // A secret that comes back in a value read from the page goes only where the secret
    // may: filled into the form (its host, bound), shown by the page, read into a var,
    // then sent to another host in a URL — refused.
    let other = fixture::spawn_on(std::net::Ipv4Addr::new(127, 0, 0, 2))
        .await
        .expect("a second host");
    let recipe = ferry_core::recipe::validate(
        &json!({"steps": [
            {"goto": {"url": site.url("/site/form")}},
            {"fill": {"selector": "#name", "value": "{{secret.TOKEN}}"}},
            {"press": {"selector": "#name", "key": "Enter"}},
            {"save_var": {"name": "shown", "selector": "#out"}},
            {"goto": {"url": other.url("/echo?q={{vars.shown}}")}}
        ]}),
        "payload",
    )
    .expect("a valid recipe");
    let mut host = Collect::default();
    host.secrets.insert(
        "TOKEN".to_owned(),
        ferry_core::BoundSecret::new("tok-3141", vec!["127.0.0.1".parse().expect("a rule")]),
    );
    let err = browser
        .run(&recipe, &mut host)
        .await
        .expect_err("the secret stays on its host");
    assert!(
        matches!(err, BrowserError::SecretRefused { step: 4, .. }),
        "{err:?}"
    );

    // A var no step sets is refused at submit, by its path.
    let errors = ferry_core::recipe::validate(
        &json!({"steps": [{"goto": {"url": "https://example.com/{{vars.nope}}"}}]}),
        "payload",
    )
    .expect_err("an unknown var");
    assert_eq!(errors[0].field, "payload.steps[0].goto.url", "{errors:?}");
    browser.close().await;
}

#[tokio::test]
async fn follow_visits_thirty_detail_pages_and_gives_their_rows_in_order() {
    let site = fixture::spawn().await.expect("fixture");
    let browser = chromium().await;
    let (outcome, host) = run(&browser, example("follow-links.json", &site)).await;
    let summary = outcome.expect("completes");
    assert_eq!(summary["links_followed"], 30, "{summary}");
    assert_eq!(summary["rows"], 30, "{summary}");
    // Shop 7's second link (with a fragment) is the same page: visited once.
    let expected: Vec<Value> = (1..=30)
        .map(|n| {
            json!({
                "shop": format!("Shop {n}"),
                "rating": format!("{}.{}", 3 + n % 3, n % 10).parse::<f64>().expect("a number"),
                "reviews": n * 10,
                "url": site.url(&format!("/site/shop/{n}")),
            })
        })
        .collect();
    assert_eq!(host.rows, expected);

    // A link whose steps fail fails the job, naming the link, with its own code and its
    // tab's screenshot.
    let (outcome, host) = run(
        &browser,
        json!({"step_timeout_ms": 600, "steps": [
            {"goto": {"url": site.url("/site/directory")}},
            {"follow": {"links": "a.shop", "max_links": 3, "steps": [
                {"extract": {"list": ".missing", "fields": {"x": {}}}}
            ]}}
        ]}),
    )
    .await;
    match outcome {
        Err(e @ BrowserError::Follow { step: 1, .. }) => {
            assert_eq!(e.code(), "EXTRACT_EMPTY", "{e}");
            assert!(e.to_string().contains("/site/shop/1"), "{e}");
        }
        other => panic!("a failing link: {other:?}"),
    }
    assert!(
        host.artifacts
            .iter()
            .any(|(name, _, _)| name == "failure.png"),
        "the link's tab was captured"
    );
    browser.close().await;
}
