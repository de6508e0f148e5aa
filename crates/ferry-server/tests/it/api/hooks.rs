//! Webhooks and schedules, black-box: signed deliveries with retries, dead letters and
//! replay against a receiver served by the test, held to the egress policy; schedules that
//! enqueue one job per tick.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use ferry_client::ListQuery;
use ferry_testkit::{API_TOKEN, TestServer, job};
use serde_json::json;

use super::claim_req;

/// Requests a receiver got: headers, path, body.
type Seen = Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1: records every request; `/hook` fails its first two,
/// `/down` fails while `down` is set.
pub(crate) struct Receiver {
    pub(crate) url: String,
    seen: Seen,
    pub(crate) down: Arc<std::sync::atomic::AtomicBool>,
}

pub(crate) async fn receiver() -> Receiver {
    use axum::{Router, body::Bytes, extract::State, http::StatusCode, routing::post};
    let seen: Seen = Arc::default();
    let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let state = (seen.clone(), down.clone());
    let app = Router::new()
        .route(
            "/{path}",
            post(
                |State((seen, down)): State<(Seen, Arc<std::sync::atomic::AtomicBool>)>,
                 axum::extract::Path(path): axum::extract::Path<String>,
                 headers: axum::http::HeaderMap,
                 body: Bytes| async move {
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    seen.push((headers, path.clone(), body.to_vec()));
                    let tries = seen.iter().filter(|s| s.1 == path).count();
                    let fail = match path.as_str() {
                        "hook" => tries <= 2,
                        _ => down.load(std::sync::atomic::Ordering::SeqCst),
                    };
                    if fail {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver { url, seen, down }
}

async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Webhooks: deliveries come from the event record, signed, retried after failures with
/// the same `Ferry-Id`, filtered by type and kind; a delivery that keeps failing goes dead
/// and can be replayed; bad input is a 422 naming the field.
#[tokio::test]
async fn webhooks_deliver_signed_events_with_retries() {
    let hook = receiver().await;
    let server = TestServer::builder()
        .with_services()
        .configure(|c| {
            c.services.webhooks.interval = Duration::from_millis(50);
            c.services.webhooks.backoff_base = Duration::from_millis(50);
            c.services.webhooks.retry_for = Duration::from_millis(700);
        })
        .spawn()
        .await;
    let raw = server.raw();
    for (body, field) in [
        (
            r#"{"url": "ftp://x", "events": ["job.completed"], "secret": "0123456789abcdef"}"#,
            "url",
        ),
        (
            r#"{"url": "http://x", "events": ["job.exploded"], "secret": "0123456789abcdef"}"#,
            "events[0]",
        ),
        (
            r#"{"url": "http://x", "events": ["job.failed"], "secret": "short"}"#,
            "secret",
        ),
        (
            r#"{"url": "http://x", "events": ["job.failed"], "kinds": ["no spaces"], "secret": "0123456789abcdef"}"#,
            "kinds[0]",
        ),
    ] {
        let answer = raw.json("POST", "/v1/webhooks", API_TOKEN, body).await;
        assert_eq!(answer.status, 422, "{body}");
        assert_eq!(answer.body["error"]["fields"][0]["field"], field, "{body}");
    }

    let secret = "whsec-0123456789abcdef";
    let created = raw
        .json(
            "POST",
            "/v1/webhooks",
            API_TOKEN,
            &json!({"url": format!("{}/hook", hook.url), "events": ["job.completed", "job.failed"],
                    "kinds": ["mail.*"], "secret": secret})
            .to_string(),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert!(created.body.get("secret").is_none(), "never answered back");
    let hook_id = created.body["id"].as_str().expect("id").to_owned();

    let run = |kind: &'static str| {
        let server = &server;
        async move {
            let j = server
                .api
                .submit(&job(kind, json!({})))
                .await
                .expect("submit");
            let c = server
                .worker
                .claim(&claim_req(&[kind], 1, 0))
                .await
                .expect("claim")
                .jobs;
            server
                .worker
                .complete(c[0].id, &c[0].lease, json!({"ok": true}))
                .await
                .expect("complete");
            j.id
        }
    };
    run("other.kind").await;
    let mail = run("mail.send").await;

    let requests = until("three attempts", async || {
        let seen = hook.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mine: Vec<_> = seen.into_iter().filter(|s| s.1 == "hook").collect();
        (mine.len() >= 3).then_some(mine)
    })
    .await;
    let header = |h: &axum::http::HeaderMap, name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let ids: std::collections::HashSet<_> =
        requests.iter().map(|r| header(&r.0, "ferry-id")).collect();
    assert_eq!(ids.len(), 1, "one delivery, retried: {ids:?}");
    for (headers, _, body) in &requests {
        let ts: i64 = header(headers, "ferry-timestamp")
            .parse()
            .expect("timestamp");
        assert_eq!(
            header(headers, "ferry-signature"),
            ferry_server::services::sign(secret.as_bytes(), ts, body),
            "signed over the exact body"
        );
        let event: serde_json::Value = serde_json::from_slice(body).expect("json");
        assert_eq!(
            (event["type"].as_str(), event["job_id"].as_str()),
            (Some("job.completed"), Some(mail.to_string().as_str())),
            "only mail.* and only completions"
        );
    }
    // A webhook's delivery log once its newest delivery has `status`.
    let log_when = |id: String, status: &'static str| {
        let raw = raw.clone();
        until(status, async move || {
            let log = raw
                .json(
                    "GET",
                    &format!("/v1/webhooks/{id}/deliveries"),
                    API_TOKEN,
                    "",
                )
                .await;
            (log.body["deliveries"][0]["status"] == status).then_some(log.body)
        })
    };
    let log = log_when(hook_id.clone(), "delivered").await;
    assert_eq!(log["deliveries"].as_array().map(Vec::len), Some(1));
    assert_eq!(log["deliveries"][0]["attempts"], 3);
    assert_eq!(log["deliveries"][0]["last_status"], 204);

    // A receiver that stays down: the delivery goes dead, and a replay delivers it.
    let down = raw
        .json(
            "POST",
            "/v1/webhooks",
            API_TOKEN,
            &json!({"url": format!("{}/down", hook.url), "events": ["job.completed"], "secret": secret})
                .to_string(),
        )
        .await;
    let down_id = down.body["id"].as_str().expect("id").to_owned();
    run("mail.send").await;
    let dead = log_when(down_id.clone(), "dead").await;
    let delivery = dead["deliveries"][0]["id"].as_str().expect("id").to_owned();
    assert!(dead["deliveries"][0]["attempts"].as_u64() >= Some(2));
    hook.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let replay = format!("/v1/webhooks/{down_id}/deliveries/{delivery}/replay");
    assert_eq!(raw.json("POST", &replay, API_TOKEN, "").await.status, 202);
    log_when(down_id.clone(), "delivered").await;
    assert_eq!(raw.json("POST", &replay, API_TOKEN, "").await.status, 409);

    let listed = raw.json("GET", "/v1/webhooks", API_TOKEN, "").await;
    assert_eq!(listed.body["webhooks"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        raw.json("DELETE", &format!("/v1/webhooks/{down_id}"), API_TOKEN, "")
            .await
            .status,
        204
    );
    assert_eq!(
        raw.json(
            "GET",
            &format!("/v1/webhooks/{down_id}/deliveries"),
            API_TOKEN,
            ""
        )
        .await
        .status,
        404
    );
}

/// Webhooks are held to the tenant's egress policy: an internal address in the URL is a
/// 422, a name resolving to one is refused at each delivery (the receiver sees nothing),
/// and once the tenant's admin allows the address, deliveries arrive.
#[tokio::test]
async fn webhooks_reach_only_where_the_egress_policy_allows() {
    let hook = receiver().await;
    hook.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let server = TestServer::builder()
        .with_services()
        .configure(|c| {
            c.egress = ferry_core::egress::EgressPolicy::default();
            c.services.webhooks.interval = Duration::from_millis(50);
            c.services.webhooks.backoff_base = Duration::from_millis(50);
            c.services.webhooks.retry_for = Duration::from_millis(300);
        })
        .spawn()
        .await;
    let raw = server.raw();
    let create = |url: String| {
        let raw = raw.clone();
        async move {
            raw.json(
                "POST",
                "/v1/webhooks",
                API_TOKEN,
                &json!({"url": url, "events": ["job.completed"], "secret": "whsec-0123456789abcdef"})
                    .to_string(),
            )
            .await
        }
    };
    let literal = create(format!("{}/literal", hook.url)).await;
    assert_eq!(literal.status, 422, "{:?}", literal.body);
    assert_eq!(literal.body["error"]["fields"][0]["field"], "url");
    let message = literal.body["error"]["fields"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("egress to 127.0.0.1 is denied"),
        "{message}"
    );

    let port = hook.url.rsplit(':').next().unwrap_or_default();
    let named = create(format!("http://localhost:{port}/named")).await;
    assert_eq!(named.status, 201, "{:?}", named.body);
    let named_id = named.body["id"].as_str().expect("id").to_owned();
    let complete_one = async || {
        server
            .api
            .submit(&job("egress.kind", json!({})))
            .await
            .expect("submit");
        let c = server
            .worker
            .claim(&claim_req(&["egress.kind"], 1, 0))
            .await
            .expect("claim")
            .jobs;
        server
            .worker
            .complete(c[0].id, &c[0].lease, json!({}))
            .await
            .expect("complete");
    };
    complete_one().await;
    let log = until("the refused delivery goes dead", async || {
        let log = raw
            .json(
                "GET",
                &format!("/v1/webhooks/{named_id}/deliveries"),
                API_TOKEN,
                "",
            )
            .await;
        (log.body["deliveries"][0]["status"] == "dead").then_some(log.body)
    })
    .await;
    let error = log["deliveries"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("egress to localhost is denied"), "{error}");
    let seen = hook.seen.lock().unwrap_or_else(|e| e.into_inner()).len();
    assert_eq!(seen, 0, "nothing reached the receiver");

    // The tenant's admin allows the receiver's address.
    let allowed = raw
        .json(
            "PUT",
            "/v1/tenant/egress",
            API_TOKEN,
            r#"{"allow": ["127.0.0.1"]}"#,
        )
        .await;
    assert_eq!(allowed.status, 200, "{:?}", allowed.body);
    assert_eq!(allowed.body["tenant"]["allow"], json!(["127.0.0.1"]));
    let direct = create(format!("{}/direct", hook.url)).await;
    assert_eq!(direct.status, 201, "{:?}", direct.body);
    complete_one().await;
    until("a delivery arrives", async || {
        let seen = hook.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        seen.iter().any(|s| s.1 == "direct").then_some(())
    })
    .await;
}

/// Cron schedules: every tick enqueues one job (labelled with the schedule); pause and
/// resume; a missed tick fires once on start, or not with `catch_up: false`; bad input is a
/// 422 naming the field.
#[tokio::test]
async fn schedules_enqueue_one_job_per_tick() {
    use ferry_server::services::{CronService, Service};
    let server = TestServer::builder()
        .with_services()
        .configure(|c| c.services.cron_interval = Duration::from_millis(100))
        .spawn()
        .await;
    let raw = server.raw();
    for (body, field) in [
        (
            r#"{"name": "a", "cron": "61 * * * *", "job": {"kind": "x.y"}}"#,
            "cron",
        ),
        (
            r#"{"name": "a", "cron": "* * * * *", "timezone": "Mars/Olympus", "job": {"kind": "x.y"}}"#,
            "timezone",
        ),
        (
            r#"{"name": "a b", "cron": "* * * * *", "job": {"kind": "x.y"}}"#,
            "name",
        ),
        (
            r#"{"name": "a", "cron": "* * * * *", "job": {"kind": "no spaces"}}"#,
            "job.kind",
        ),
    ] {
        let answer = raw.json("POST", "/v1/schedules", API_TOKEN, body).await;
        assert_eq!(answer.status, 422, "{body}: {:?}", answer.body);
        assert_eq!(answer.body["error"]["fields"][0]["field"], field, "{body}");
    }
    let every_second = r#"{"name": "tick", "cron": "* * * * * *", "timezone": "Asia/Seoul",
        "job": {"kind": "report.tick", "payload": {"n": 1}}}"#;
    let created = raw
        .json("POST", "/v1/schedules", API_TOKEN, every_second)
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        raw.json("POST", "/v1/schedules", API_TOKEN, every_second)
            .await
            .status,
        409,
        "names are unique"
    );
    let ticks = || async {
        server
            .api
            .list(&ListQuery {
                kind: Some("report.tick".to_owned()),
                limit: Some(100),
                ..Default::default()
            })
            .await
            .expect("list")
            .jobs
    };
    let jobs = until("two ticks", async || {
        let jobs = ticks().await;
        (jobs.len() >= 2).then_some(jobs)
    })
    .await;
    assert!(
        jobs.iter()
            .all(|j| j.labels.get("schedule").map(String::as_str) == Some("tick"))
    );
    let runs: std::collections::HashSet<_> = jobs.iter().map(|j| j.run_at).collect();
    assert_eq!(runs.len(), jobs.len(), "one job per tick");

    let paused = raw
        .json("POST", "/v1/schedules/tick/pause", API_TOKEN, "")
        .await;
    assert_eq!(paused.body["paused"], true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let frozen = ticks().await.len();
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(
        ticks().await.len(),
        frozen,
        "a paused schedule fires nothing"
    );
    // Run now, paused or not: one job, labelled as a manual run; the ticks stay paused.
    let ran = raw
        .json("POST", "/v1/schedules/tick/run", API_TOKEN, "")
        .await;
    assert_eq!(ran.status, 202, "{:?}", ran.body);
    assert_eq!(ran.body["labels"]["schedule"], "tick");
    assert_eq!(ran.body["labels"]["run"], "manual");
    assert_eq!(ran.body["payload"], json!({"n": 1}));
    let frozen = frozen + 1;
    assert_eq!(ticks().await.len(), frozen);
    assert_eq!(
        raw.json("POST", "/v1/schedules/nope/run", API_TOKEN, "")
            .await
            .status,
        404
    );
    let resumed = raw
        .json("POST", "/v1/schedules/tick/resume", API_TOKEN, "")
        .await;
    assert_eq!(resumed.body["paused"], false);
    until("ticks again", async || {
        (ticks().await.len() > frozen).then_some(())
    })
    .await;
    assert_eq!(
        raw.json("DELETE", "/v1/schedules/tick", API_TOKEN, "")
            .await
            .status,
        204
    );
    assert_eq!(
        raw.json("GET", "/v1/schedules/tick", API_TOKEN, "")
            .await
            .status,
        404
    );

    // Missed ticks (as if no server ran for an hour): one job with catch_up, none without.
    let quiet = TestServer::builder().spawn().await;
    for (name, catch_up) in [("daily", true), ("skipper", false)] {
        let body = json!({"name": name, "cron": "0 3 * * *", "catch_up": catch_up,
                          "job": {"kind": format!("missed.{name}")}});
        let answer = quiet
            .raw()
            .json("POST", "/v1/schedules", API_TOKEN, &body.to_string())
            .await;
        assert_eq!(answer.status, 201);
        let next: chrono::DateTime<Utc> =
            serde_json::from_value(answer.body["next_at"].clone()).expect("next_at");
        let id: ferry_core::ScheduleId =
            serde_json::from_value(answer.body["id"].clone()).expect("id");
        let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
        assert!(
            quiet
                .queue
                .store()
                .schedule_advance(id, next, an_hour_ago, None)
                .await
                .expect("advance")
        );
    }
    let cron = CronService::new(quiet.queue.clone());
    assert_eq!(
        cron.run_once().await.expect("pass"),
        1,
        "only the catch-up one fired"
    );
    assert_eq!(
        cron.run_once().await.expect("pass"),
        0,
        "once, not per missed tick"
    );
    let listed = quiet
        .raw()
        .json("GET", "/v1/schedules", API_TOKEN, "")
        .await;
    for s in listed.body["schedules"].as_array().expect("list") {
        let next: chrono::DateTime<Utc> =
            serde_json::from_value(s["next_at"].clone()).expect("next_at");
        assert!(next > Utc::now(), "moved to the next tick: {s}");
    }
    let daily = quiet
        .api
        .list(&ListQuery {
            kind: Some("missed.daily".to_owned()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(daily.jobs.len(), 1);
}
