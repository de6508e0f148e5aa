//! Limits that keep one client from degrading everyone: a list page is bounded in bytes,
//! and lists inside a request (label filters, webhook kind patterns, schedules, regexes
//! in a recipe) are bounded with a `4xx` instead of a `500` or a stalled server.
//! `FERRY_TEST_BACKEND=postgres` runs them on PostgreSQL.

use std::collections::BTreeSet;

use ferry_client::ListQuery;
use ferry_core::ErrorCode;
use ferry_testkit::{TestServer, job};
use serde_json::json;

/// The largest page of jobs, in bytes of JSON (ferry-server's `MAX_PAGE_BYTES`).
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

#[tokio::test]
async fn a_list_page_is_bounded_in_bytes_and_pages_cover_every_job_once() {
    let server = TestServer::spawn().await;
    let blob = "x".repeat(300 * 1024);
    let mut ids = BTreeSet::new();
    for i in 0..30 {
        let submitted = server
            .api
            .submit(&job("test.blob", json!({"i": i, "blob": blob})))
            .await
            .expect("submit");
        ids.insert(submitted.id);
    }
    let mut seen = BTreeSet::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = server
            .api
            .list(&ListQuery {
                limit: Some(500),
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .expect("a page");
        pages += 1;
        let bytes = serde_json::to_vec(&page.jobs).expect("json").len();
        assert!(
            bytes <= MAX_PAGE_BYTES + 400 * 1024,
            "page {pages} is {bytes} bytes"
        );
        for j in &page.jobs {
            assert!(seen.insert(j.id), "job {} on two pages", j.id);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 20, "too many pages");
    }
    assert_eq!(seen, ids, "every job once");
    assert!(pages >= 3, "9 MiB of jobs took {pages} pages");
}

#[tokio::test]
async fn lists_inside_a_request_are_bounded_with_a_4xx() {
    let server = TestServer::spawn().await;
    let http = reqwest_client();

    // 1,100 label filters: a 422, not a 500.
    let labels: Vec<String> = (0..1_100).map(|i| format!("label=k{i}:v")).collect();
    let answer = http
        .get(format!("{}/v1/jobs?{}", server.url, labels.join("&")))
        .bearer_auth(ferry_testkit::API_TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 422, "{:?}", answer.text().await);

    // A webhook with 1,100 kind patterns.
    let kinds: Vec<String> = (0..1_100).map(|i| format!("kind{i}.*")).collect();
    let answer = http
        .post(format!("{}/v1/webhooks", server.url))
        .bearer_auth(ferry_testkit::API_TOKEN)
        .json(
            &json!({"url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef",
                      "events": ["job.failed"], "kinds": kinds}),
        )
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 422, "{:?}", answer.text().await);

    // A recipe regex that would compile to megabytes.
    let err = server
        .api
        .submit(&job(
            "browser.run",
            json!({"steps": [
                {"goto": {"url": "http://127.0.0.1:9/"}},
                {"extract": {"list": "li", "fields": {"t": {"regex": "(?:\\w+\\s*){100}"}}}}
            ]}),
        ))
        .await
        .expect_err("too large a regex");
    assert_eq!(err.code(), Some(ErrorCode::InvalidRecipe), "{err}");
    assert!(err.to_string().contains("regex"), "{err}");

    // Schedules: 1,000 at most.
    for i in 0..1_000 {
        let answer = http
            .post(format!("{}/v1/schedules", server.url))
            .bearer_auth(ferry_testkit::API_TOKEN)
            .json(&json!({"name": format!("s{i}"), "cron": "0 * * * *", "job": {"kind": "ferry.noop"}}))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status().as_u16(), 201, "schedule {i}");
    }
    let answer = http
        .post(format!("{}/v1/schedules", server.url))
        .bearer_auth(ferry_testkit::API_TOKEN)
        .json(&json!({"name": "one-too-many", "cron": "0 * * * *", "job": {"kind": "ferry.noop"}}))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status().as_u16(), 409, "{:?}", answer.text().await);
}

fn reqwest_client() -> reqwest::Client {
    ferry_client::install_crypto_provider();
    reqwest::Client::new()
}

/// A client that opens a connection and trickles its headers is cut off after the header
/// read timeout, and the server goes on answering others.
/// A query parameter given twice is checked every time it is given: `?wait=` out of range
/// is refused even when a later `wait` is in range, and a limit that is not a number says
/// what it should be.
#[tokio::test]
async fn every_value_of_a_repeated_query_parameter_is_checked() {
    let server = TestServer::spawn().await;
    let raw = server.raw();
    let body = json!({"kind": "q.wait", "payload": {}}).to_string();
    let answer = raw
        .json(
            "POST",
            "/v1/jobs?wait=99999&wait=1",
            ferry_testkit::API_TOKEN,
            &body,
        )
        .await;
    assert_eq!(answer.status, 422, "{:?}", answer.body);
    assert_eq!(answer.body["error"]["fields"][0]["field"], "wait");

    let answer = raw
        .json("GET", "/v1/events?limit=abc", ferry_testkit::API_TOKEN, "")
        .await;
    assert_eq!(answer.status, 422, "{:?}", answer.body);
    let message = answer.body["error"]["fields"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("\"abc\"") && message.contains("from 1 to"),
        "{message}"
    );
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::builder()
        .configure(|c| c.header_read_timeout = std::time::Duration::from_secs(1))
        .spawn()
        .await;
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("a first header");
    // Never finishes its headers: the server closes the connection (an EOF, or a 408
    // and then EOF) well before this bound.
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        slow.read_to_end(&mut buf),
    )
    .await;
    assert!(closed.is_ok(), "the connection was still open after 15 s");
    server.api.health().await.expect("others are still served");
}

/// A webhook the database cannot serve (one stored with thousands of kind patterns before
/// they were limited: its filter is too deep for SQLite to run) never stops the others'
/// deliveries.
#[tokio::test]
async fn one_bad_webhook_never_stops_the_others_deliveries() {
    use ferry_server::services::{Service, WebhookSender};
    let server = TestServer::spawn().await;
    let store = server.queue.store();
    let head = store.events_head().await.expect("head");
    store
        .webhook_insert(
            &ferry_store::WebhookRow {
                id: ferry_core::WebhookId::new(),
                tenant_id: ferry_core::DEFAULT_TENANT.to_owned(),
                url: "http://127.0.0.1:9/bad".to_owned(),
                sealed_secret: vec![0; 32],
                events: vec!["job.created".to_owned()],
                kinds: (0..5_000).map(|i| format!("kind{i}.*")).collect(),
                cursor: head,
                created_at: chrono::Utc::now(),
            },
            &ferry_server::app::Principal::new(Default::default(), ferry_core::Role::Admin, "test")
                .audit(chrono::Utc::now(), "webhook.create", "webhook:bad".into()),
        )
        .await
        .expect("stored");
    let http = reqwest_client();
    let good: serde_json::Value = http
        .post(format!("{}/v1/webhooks", server.url))
        .bearer_auth(ferry_testkit::API_TOKEN)
        .json(
            &json!({"url": "http://127.0.0.1:9/good", "secret": "0123456789abcdef",
                      "events": ["job.created"]}),
        )
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let good_id = good["id"].as_str().expect("an id").to_owned();
    server
        .api
        .submit(&job("ferry.noop", json!({})))
        .await
        .expect("submit");
    // One pass of the sender (it may fail to send; the delivery exists either way).
    let _ = WebhookSender::new(server.queue.clone()).run_once().await;
    let deliveries: serde_json::Value = http
        .get(format!("{}/v1/webhooks/{good_id}/deliveries", server.url))
        .bearer_auth(ferry_testkit::API_TOKEN)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(
        deliveries["deliveries"].as_array().map(Vec::len),
        Some(1),
        "{deliveries}"
    );
}

/// Opens an event stream; answers the response (its body is the stream).
async fn open_stream(http: &reqwest::Client, server: &TestServer) -> reqwest::Response {
    http.get(format!("{}/v1/events?after=now", server.url))
        .bearer_auth(ferry_testkit::API_TOKEN)
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("an answer")
}

/// One client holds at most `max_streams_per_client` event streams; one more is a `429
/// TOO_MANY_STREAMS` with `Retry-After`, and a stream the client closes gives its place back.
#[tokio::test]
async fn event_streams_per_client_are_bounded() {
    let server = TestServer::builder()
        .configure(|c| c.max_streams_per_client = 3)
        .spawn()
        .await;
    let http = reqwest_client();
    let mut open = Vec::new();
    for i in 0..3 {
        let stream = open_stream(&http, &server).await;
        assert_eq!(stream.status().as_u16(), 200, "stream {i}");
        open.push(stream);
    }
    let refused = open_stream(&http, &server).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "TOO_MANY_STREAMS", "{body}");
    // Pages of the record are not streams: still answered.
    let page = http
        .get(format!("{}/v1/events", server.url))
        .bearer_auth(ferry_testkit::API_TOKEN)
        .send()
        .await
        .expect("a page");
    assert_eq!(page.status().as_u16(), 200);

    // Closing one gives its place back (once the server notices the connection is gone).
    drop(open.pop());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let stream = open_stream(&http, &server).await;
        if stream.status().as_u16() == 200 {
            break;
        }
        assert_eq!(stream.status().as_u16(), 429);
        assert!(
            std::time::Instant::now() < deadline,
            "the closed stream's place never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Recipes compile their regexes at submit. A batch whose recipes take long to check is
/// checked off the async runtime: while it is checked, the server goes on answering
/// (`/healthz` here). The test server runs on this test's one-thread runtime, so before,
/// the check held that thread and every `/healthz` waited for the batch.
#[tokio::test]
async fn heavy_recipes_are_checked_without_stalling_the_server() {
    let server = TestServer::spawn().await;
    let http = reqwest_client();
    // Each pattern compiles within the size limit but not in no time.
    let fields: serde_json::Map<String, serde_json::Value> = (0..100)
        .map(|i| {
            (
                format!("f{i}"),
                json!({"regex": format!("(?:\\w+\\s*){{3}}(x{i})")}),
            )
        })
        .collect();
    let recipe = json!({"steps": [
        {"goto": {"url": "http://127.0.0.1:9/"}},
        {"extract": {"list": "li", "fields": fields}}
    ]});
    let jobs: Vec<_> = (0..10)
        .map(|_| job("browser.run", recipe.clone()))
        .collect();
    let batch = {
        let http = http.clone();
        let url = format!("{}/v1/jobs/batch", server.url);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let answer = http
                .post(url)
                .bearer_auth(ferry_testkit::API_TOKEN)
                .json(&json!({ "jobs": jobs }))
                .send()
                .await
                .expect("an answer");
            let status = answer.status().as_u16();
            let body = answer.text().await.unwrap_or_default();
            (status, started.elapsed(), body)
        })
    };
    // Health checks while the batch is checked: each is answered while it is in flight.
    let mut answered = 0;
    while !batch.is_finished() {
        let health = http
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .expect("health");
        assert_eq!(health.status().as_u16(), 200);
        if !batch.is_finished() {
            answered += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, took, body) = batch.await.expect("batch task");
    assert_eq!(status, 202, "the batch is valid: {body}");
    eprintln!("the batch took {took:?}; {answered} health checks answered meanwhile");
    assert!(
        answered >= 3,
        "only {answered} health checks were answered during the {took:?} the batch took"
    );
}
