//! The API document (`GET /v1/openapi.json`): OpenAPI 3.1, describing exactly the routes
//! the router serves (`http::route_table`), each with a unique id, a summary, a success
//! answer, its path parameters, its access as security with `401`/`403`, and the error
//! body for anything else; every reference resolves. The reference page (`GET /v1/docs`)
//! renders it in a real Chromium with nothing loaded from elsewhere.

use std::collections::BTreeSet;

use ferry_server::http::{Access, api_document_problems, route_table};
use ferry_testkit::TestServer;
use futures_util::StreamExt;
use serde_json::Value;

use crate::dashboard::{Chrome, until};

async fn document(server: &TestServer) -> Value {
    let answer = reqwest::get(format!("{}/v1/openapi.json", server.url))
        .await
        .expect("GET /v1/openapi.json");
    assert_eq!(answer.status(), 200, "no credentials needed");
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    answer.json().await.expect("a JSON document")
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_describes_exactly_the_routes_served() {
    let problems = api_document_problems();
    assert!(problems.is_empty(), "the generator says: {problems:#?}");
    let server = TestServer::spawn().await;
    let doc = document(&server).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "OpenAPI 3.1, not {}",
        doc["openapi"]
    );

    let mut described = BTreeSet::new();
    let mut ids = BTreeSet::new();
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("a path item") {
            let name = format!("{} {path}", method.to_uppercase());
            described.insert((method.to_uppercase(), path.clone()));
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{name} has no operationId");
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{name} has no summary"
            );
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|code| code.starts_with('2')),
                "{name} has no success answer: {:?}",
                responses.keys().collect::<Vec<_>>()
            );
            assert_eq!(
                op.pointer("/responses/default/content/application~1json/schema/$ref"),
                Some(&Value::from("#/components/schemas/ApiErrorBody")),
                "{name}: any other answer is the error body"
            );
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            for param in path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            {
                assert!(
                    declared.contains(&param),
                    "{name} does not declare {{{param}}}"
                );
            }
        }
    }

    let served: BTreeSet<(String, String)> = route_table()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(
        described, served,
        "the document's operations are the routes"
    );

    for route in route_table() {
        let op = &doc["paths"][route.path][route.method.as_str().to_lowercase()];
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        assert_eq!(
            secured,
            route.access != Access::Public,
            "{} {}: security as its access ({:?})",
            route.method,
            route.path,
            route.access
        );
        if secured {
            for code in ["401", "403"] {
                assert!(
                    op["responses"][code].is_object(),
                    "{} {} says no {code}",
                    route.method,
                    route.path
                );
            }
        }
    }

    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 100, "bodies are described by reference");
    for r in found {
        let pointer = r
            .strip_prefix('#')
            .expect("a reference inside the document");
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }

    // What clients build on: the job, the submit body, the error body with its codes, the
    // query parameters of the list, the worker's claim.
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    for field in ["id", "kind", "status", "payload", "attempt", "created_at"] {
        assert!(
            !schema("Job")["properties"][field].is_null(),
            "Job has {field}"
        );
    }
    assert_eq!(schema("SubmitJob")["required"], serde_json::json!(["kind"]));
    let codes = schema("ErrorCode").to_string();
    for code in [
        "VALIDATION_FAILED",
        "LEASE_LOST",
        "QUOTA_EXCEEDED",
        "CSRF_FAILED",
    ] {
        assert!(codes.contains(code), "ErrorCode lists {code}");
    }
    let list = &doc["paths"]["/v1/jobs"]["get"]["parameters"];
    let status = list
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "status"))
        .expect("GET /v1/jobs takes status");
    assert_eq!(status["schema"]["enum"][2], "running");
    assert!(
        doc["paths"]["/v1/worker/claim"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]
            .is_object(),
        "the claim's body is described"
    );
    let events = &doc["paths"]["/v1/events"]["get"]["responses"]["200"]["content"];
    assert!(
        events["text/event-stream"].is_object() && events["application/json"].is_object(),
        "the event routes answer a page or a stream: {events}"
    );
}

#[tokio::test]
async fn the_reference_page_renders_the_document_from_the_server_alone() {
    let server = TestServer::spawn().await;
    let html = reqwest::get(format!("{}/v1/docs", server.url))
        .await
        .expect("GET /v1/docs")
        .text()
        .await
        .expect("the page");
    assert!(
        html.contains("Redoc.init(\"/v1/openapi.json\"") && !html.contains("cdn.redoc.ly"),
        "the page renders this server's document and names no CDN"
    );
    let chrome = Chrome::launch().await;
    let page = chrome.browser.new_page("about:blank").await.expect("a tab");
    // Every request the page makes, by URL.
    page.execute(chromiumoxide::cdp::browser_protocol::network::EnableParams::default())
        .await
        .expect("network events");
    let mut requests = page
        .event_listener::<chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent>()
        .await
        .expect("request events");
    page.goto(format!("{}/v1/docs", server.url))
        .await
        .expect("open /v1/docs");
    // Redoc renders each operation's summary, the tags and a schema's fields.
    until(&page, "the rendered reference", |html| {
        html.contains("Submit a job")
            && html.contains("Claim jobs (worker)")
            && html.contains("dedupe_key")
    })
    .await;
    let mut elsewhere = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(std::time::Duration::from_millis(200), requests.next()).await
    {
        let url = &event.request.url;
        // Redoc's worker comes from a `blob:` of the page's own origin.
        let own = url.starts_with(&server.url)
            || url.starts_with(&format!("blob:{}", server.url))
            || url.starts_with("data:");
        if !own {
            elsewhere.push(url.clone());
        }
    }
    assert!(elsewhere.is_empty(), "requests elsewhere: {elsewhere:?}");
}
