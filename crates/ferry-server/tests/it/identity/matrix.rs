//! The isolation matrix: every route of the router (`http::route_table`, so a new route
//! cannot be left out) × every kind of caller, each cell's status checked against the
//! table below. Tenant `acme` owns the resources the paths name; `beta` is the other
//! tenant. A cell expected to change something gets fresh resources; every other cell
//! uses one shared set, checked untouched at the end; answers to `beta` never name
//! anything of `acme`'s.

use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_core::{JobId, Role, Secret, api::ClaimRequest, identity::UserCreateRequest};
use ferry_server::http::{Access, route_table};
use ferry_testkit::{TestServer, job, raw::RawAnswer};
use serde_json::json;

use super::{admin_of, client, key, tenant};

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    WrongKey,
    Viewer,
    Editor,
    Admin,
    OtherAdmin,
    Worker,
    OtherWorker,
}

const EVERYONE: [Who; 8] = [
    Who::Nobody,
    Who::WrongKey,
    Who::Viewer,
    Who::Editor,
    Who::Admin,
    Who::OtherAdmin,
    Who::Worker,
    Who::OtherWorker,
];

/// method, path, who may (the route's access as this test expects it), the status for an
/// allowed caller of `acme`, the status for an allowed caller of `beta` (on `acme`'s
/// resources). Denied roles get 403, missing or wrong keys 401.
const TABLE: &[(&str, &str, Access, u16, u16)] = &[
    ("GET", "/healthz", Access::Public, 200, 200),
    ("GET", "/v1/openapi.json", Access::Public, 200, 200),
    ("GET", "/v1/docs", Access::Public, 200, 200),
    ("POST", "/v1/jobs", Access::Write, 202, 202),
    ("GET", "/v1/jobs", Access::Read, 200, 200),
    ("POST", "/v1/jobs/batch", Access::Write, 202, 202),
    ("GET", "/v1/jobs/{id}", Access::Read, 200, 404),
    ("GET", "/v1/jobs/{id}/items", Access::Read, 200, 404),
    ("POST", "/v1/jobs/{id}/cancel", Access::Write, 200, 404),
    ("POST", "/v1/jobs/{id}/retry", Access::Write, 200, 404),
    ("GET", "/v1/kinds/paused", Access::Read, 200, 200),
    ("POST", "/v1/kinds/{pattern}/pause", Access::Write, 200, 200),
    (
        "POST",
        "/v1/kinds/{pattern}/resume",
        Access::Write,
        200,
        200,
    ),
    ("POST", "/v1/batches", Access::Write, 202, 202),
    ("GET", "/v1/batches", Access::Read, 200, 200),
    ("GET", "/v1/batches/{id}", Access::Read, 200, 404),
    ("GET", "/v1/batches/{id}/results", Access::Read, 200, 404),
    ("POST", "/v1/batches/{id}/cancel", Access::Write, 200, 404),
    ("GET", "/v1/sessions", Access::Read, 200, 200),
    ("DELETE", "/v1/sessions/{name}", Access::Write, 204, 404),
    // The job's recipe names no session: its own worker is refused for that reason
    // (403 SESSION_NOT_NAMED), another tenant's because the lease is not theirs.
    (
        "POST",
        "/v1/worker/jobs/{id}/session/load",
        Access::Worker,
        403,
        409,
    ),
    (
        "POST",
        "/v1/worker/jobs/{id}/session/save",
        Access::Worker,
        403,
        409,
    ),
    ("GET", "/v1/jobs/{id}/artifacts", Access::Read, 200, 404),
    (
        "GET",
        "/v1/jobs/{id}/artifacts/{name}",
        Access::Read,
        200,
        404,
    ),
    (
        "PUT",
        "/v1/worker/jobs/{id}/artifacts/{name}",
        Access::Worker,
        201,
        409,
    ),
    ("GET", "/v1/recipes/schema", Access::Read, 200, 200),
    ("GET", "/v1/events", Access::Read, 200, 200),
    ("GET", "/v1/jobs/{id}/events", Access::Read, 200, 404),
    ("POST", "/v1/webhooks", Access::Write, 201, 201),
    ("GET", "/v1/webhooks", Access::Read, 200, 200),
    ("DELETE", "/v1/webhooks/{id}", Access::Write, 204, 404),
    (
        "GET",
        "/v1/webhooks/{id}/deliveries",
        Access::Read,
        200,
        404,
    ),
    // No delivery was made in this test: 404 for everyone allowed.
    (
        "POST",
        "/v1/webhooks/{id}/deliveries/{delivery}/replay",
        Access::Write,
        404,
        404,
    ),
    ("POST", "/v1/schedules", Access::Write, 201, 201),
    ("GET", "/v1/schedules", Access::Read, 200, 200),
    ("GET", "/v1/schedules/{name}", Access::Read, 200, 404),
    ("DELETE", "/v1/schedules/{name}", Access::Write, 204, 404),
    (
        "POST",
        "/v1/schedules/{name}/pause",
        Access::Write,
        200,
        404,
    ),
    (
        "POST",
        "/v1/schedules/{name}/resume",
        Access::Write,
        200,
        404,
    ),
    ("POST", "/v1/schedules/{name}/run", Access::Write, 202, 404),
    ("GET", "/v1/datasets", Access::Read, 200, 200),
    ("GET", "/v1/datasets/{name}", Access::Read, 200, 404),
    ("DELETE", "/v1/datasets/{name}", Access::Write, 204, 404),
    ("GET", "/v1/datasets/{name}/items", Access::Read, 200, 404),
    ("GET", "/v1/datasets/{name}/runs", Access::Read, 200, 404),
    ("GET", "/v1/datasets/{name}/export", Access::Read, 200, 404),
    ("GET", "/v1/keys", Access::Admin, 200, 200),
    ("POST", "/v1/keys", Access::Admin, 201, 201),
    ("DELETE", "/v1/keys/{prefix}", Access::Admin, 204, 404),
    ("GET", "/v1/audit", Access::Admin, 200, 200),
    ("GET", "/v1/tenant", Access::Read, 200, 200),
    ("GET", "/v1/tenant/egress", Access::Read, 200, 200),
    ("GET", "/v1/secrets", Access::Read, 200, 200),
    // Before the PUT: the other tenant's PUT makes a secret of that name in its own tenant.
    ("DELETE", "/v1/secrets/{name}", Access::Write, 204, 404),
    ("PUT", "/v1/secrets/{name}", Access::Write, 200, 200),
    (
        "POST",
        "/v1/worker/jobs/{id}/secrets",
        Access::Worker,
        200,
        409,
    ),
    ("PUT", "/v1/tenant/egress", Access::Admin, 200, 200),
    ("GET", "/v1/workers", Access::Read, 200, 200),
    ("GET", "/v1/stats", Access::Read, 200, 200),
    ("POST", "/v1/auth/login", Access::Public, 200, 200),
    ("POST", "/v1/auth/logout", Access::Public, 204, 204),
    ("GET", "/v1/auth/me", Access::Read, 200, 200),
    ("GET", "/v1/users", Access::Admin, 200, 200),
    ("POST", "/v1/users", Access::Admin, 201, 201),
    ("DELETE", "/v1/users/{name}", Access::Admin, 204, 404),
    ("POST", "/v1/worker/claim", Access::Worker, 200, 200),
    // One answer per entry: `beta`'s entry is refused inside a 200 (checked below).
    ("POST", "/v1/worker/complete", Access::Worker, 200, 200),
    (
        "POST",
        "/v1/worker/jobs/{id}/heartbeat",
        Access::Worker,
        200,
        409,
    ),
    (
        "POST",
        "/v1/worker/jobs/{id}/progress",
        Access::Worker,
        200,
        409,
    ),
    (
        "POST",
        "/v1/worker/jobs/{id}/complete",
        Access::Worker,
        200,
        409,
    ),
    (
        "POST",
        "/v1/worker/jobs/{id}/fail",
        Access::Worker,
        200,
        409,
    ),
];

fn role_of(who: Who) -> Option<(Role, bool)> {
    match who {
        Who::Nobody | Who::WrongKey => None,
        Who::Viewer => Some((Role::Viewer, true)),
        Who::Editor => Some((Role::Editor, true)),
        Who::Admin => Some((Role::Admin, true)),
        Who::OtherAdmin => Some((Role::Admin, false)),
        Who::Worker => Some((Role::Worker, true)),
        Who::OtherWorker => Some((Role::Worker, false)),
    }
}

fn expected(access: Access, own: u16, other: u16, who: Who) -> u16 {
    if access == Access::Public {
        return own;
    }
    match role_of(who) {
        None => 401,
        Some((role, _)) if !access.allows(role) => 403,
        Some((_, true)) => own,
        Some((_, false)) => other,
    }
}

/// Everything of `acme`'s the paths can name.
struct Fixture {
    job: JobId,
    cancelled: JobId,
    batch: String,
    webhook: String,
    schedule: String,
    session: String,
    dataset: String,
    running: JobId,
    lease: String,
    artifact: String,
    key_prefix: String,
    user: String,
    secret: String,
}

impl Fixture {
    /// Identifiers that must never show in an answer to `beta`.
    fn names(&self) -> Vec<String> {
        vec![
            self.job.to_string(),
            self.cancelled.to_string(),
            self.batch.clone(),
            self.webhook.clone(),
            self.schedule.clone(),
            self.session.clone(),
            self.dataset.clone(),
            self.running.to_string(),
            self.lease.clone(),
            self.key_prefix.clone(),
            self.user.clone(),
            self.secret.clone(),
        ]
    }
}

struct Callers {
    secrets: Vec<(Who, String)>,
    editor: ferry_client::Client,
    worker: ferry_client::Client,
}

impl Callers {
    fn secret(&self, who: Who) -> Option<&str> {
        match who {
            Who::Nobody => None,
            Who::WrongKey => Some("fk_zzzzzzzzzz_0123456789012345678901234567890123456789"),
            _ => self
                .secrets
                .iter()
                .find(|(w, _)| *w == who)
                .map(|(_, s)| s.as_str()),
        }
    }
}

/// The password of the fixtures' users.
const PASSWORD: &str = "matrix password 1";

static SERIAL: AtomicUsize = AtomicUsize::new(0);

fn serial() -> usize {
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

async fn fixture(server: &TestServer, callers: &Callers) -> Fixture {
    let n = serial();
    let raw = server.raw();
    let editor_key = callers.secret(Who::Editor).expect("editor");
    let submit = |kind: String| {
        let editor = &callers.editor;
        async move { editor.submit(&job(&kind, json!({}))).await.expect("submit") }
    };
    let secret = format!("MATRIX_{n}");
    let made = raw
        .json(
            "PUT",
            &format!("/v1/secrets/{secret}"),
            editor_key,
            r#"{"value": "matrix-secret-value", "domains": ["shop.example"]}"#,
        )
        .await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    let job_id = submit("m.a".into()).await.id;
    let cancelled = submit("m.a".into()).await.id;
    callers.editor.cancel(cancelled).await.expect("cancel");
    let batch = raw
        .json(
            "POST",
            "/v1/batches",
            editor_key,
            r#"{"kind": "m.b", "items": [{}]}"#,
        )
        .await;
    assert_eq!(batch.status, 202, "{:?}", batch.body);
    let webhook = raw
        .json(
            "POST",
            "/v1/webhooks",
            editor_key,
            r#"{"url": "http://127.0.0.1:9/hook", "events": ["job.completed"], "secret": "0123456789abcdef"}"#,
        )
        .await;
    assert_eq!(webhook.status, 201, "{:?}", webhook.body);
    let schedule = format!("nightly-{n}");
    let made = raw
        .json(
            "POST",
            "/v1/schedules",
            editor_key,
            &json!({"name": schedule, "cron": "0 0 * * *", "job": {"kind": "m.s"}}).to_string(),
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let acme = ferry_core::TenantId::new("acme").expect("tenant");
    let session = format!("shop-{n}");
    server
        .queue
        .store()
        .session_put(&acme, &session, b"sealed", None, chrono::Utc::now())
        .await
        .expect("session");

    // A dataset (a job that wrote one item) and a running job with an artifact.
    let dataset = format!("reviews-{n}");
    let mut writer = job(&format!("m.d{n}"), json!({}));
    writer.output =
        Some(serde_json::from_value(json!({"dataset": dataset, "key": "id"})).expect("output"));
    let writer = callers.editor.submit(&writer).await.expect("submit");
    let claim = |kind: String| ClaimRequest {
        worker_id: "fixture".into(),
        kinds: vec![kind],
        max_jobs: Some(1),
        wait_ms: Some(0),
        lease_ms: None,
    };
    let held = callers
        .worker
        .claim(&claim(format!("m.d{n}")))
        .await
        .expect("claim")
        .jobs
        .pop()
        .unwrap_or_else(|| panic!("the writer: {:?}", writer));
    assert_eq!(held.id, writer.id);
    callers
        .worker
        .progress(
            held.id,
            &ferry_core::api::ProgressRequest {
                lease: held.lease.clone(),
                items: Some(vec![json!({"id": 1})]),
                ..Default::default()
            },
        )
        .await
        .expect("items");
    callers
        .worker
        .complete(held.id, &held.lease, json!({}))
        .await
        .expect("complete");
    let running = submit(format!("m.r{n}")).await.id;
    let held = callers
        .worker
        .claim(&claim(format!("m.r{n}")))
        .await
        .expect("claim")
        .jobs
        .pop()
        .expect("the running job");
    assert_eq!(held.id, running);
    let artifact = "page.html".to_owned();
    callers
        .worker
        .upload_artifact(
            running,
            &held.lease,
            &artifact,
            "text/html",
            b"<p>".to_vec(),
        )
        .await
        .expect("upload");
    let key_prefix = key(server, &acme, Role::Viewer, None).await.key.prefix;
    let user = server
        .queue
        .users()
        .create(
            &admin_of(&acme),
            UserCreateRequest {
                name: format!("user{n}@acme.test"),
                password: Secret::new(PASSWORD),
                role: Role::Viewer,
            },
        )
        .await
        .expect("user")
        .name;
    Fixture {
        job: job_id,
        cancelled,
        batch: batch.body["batch_id"]
            .as_str()
            .expect("batch id")
            .to_owned(),
        webhook: webhook.body["id"].as_str().expect("webhook id").to_owned(),
        schedule,
        session,
        dataset,
        running,
        lease: held.lease,
        artifact,
        key_prefix,
        user,
        secret,
    }
}

/// The concrete path and body of a route's request about `f`.
fn request(method: &str, template: &str, f: &Fixture) -> (String, String) {
    let id = if template.starts_with("/v1/batches/") {
        f.batch.clone()
    } else if template.starts_with("/v1/webhooks/") {
        f.webhook.clone()
    } else if template.starts_with("/v1/worker/jobs/") {
        f.running.to_string()
    } else if template.ends_with("/retry") {
        f.cancelled.to_string()
    } else if template.contains("/artifacts") {
        f.running.to_string()
    } else {
        f.job.to_string()
    };
    let name = if template.starts_with("/v1/sessions/") {
        &f.session
    } else if template.starts_with("/v1/schedules/") {
        &f.schedule
    } else if template.starts_with("/v1/datasets/") {
        &f.dataset
    } else if template.starts_with("/v1/users/") {
        &f.user
    } else if template.starts_with("/v1/secrets/") {
        &f.secret
    } else {
        &f.artifact
    };
    let path = template
        .replace("{id}", &id)
        .replace("{name}", name)
        .replace("{pattern}", "quiet.*")
        .replace("{prefix}", &f.key_prefix)
        .replace("{delivery}", &JobId::new().to_string());
    let lease = &f.lease;
    let body = match (method, template) {
        ("POST", "/v1/jobs") => json!({"kind": "m.new"}),
        ("POST", "/v1/jobs/batch") => json!({"jobs": [{"kind": "m.new"}]}),
        ("POST", "/v1/batches") => json!({"kind": "m.new", "items": [{}]}),
        ("POST", "/v1/webhooks") => json!({"url": "http://127.0.0.1:9/new",
            "events": ["job.failed"], "secret": "0123456789abcdef"}),
        ("POST", "/v1/schedules") => json!({"name": format!("new-{}", serial()),
            "cron": "0 0 * * *", "job": {"kind": "m.new"}}),
        ("POST", "/v1/keys") => json!({"role": "viewer"}),
        ("PUT", "/v1/tenant/egress") => json!({"deny": ["evil.example"]}),
        ("PUT", "/v1/secrets/{name}") => json!({"value": "another", "domains": ["a.example"]}),
        ("POST", "/v1/auth/login") => json!({"name": f.user, "password": PASSWORD}),
        ("POST", "/v1/users") => json!({"name": format!("new{}@x.test", serial()),
            "password": PASSWORD, "role": "viewer"}),
        ("POST", "/v1/worker/claim") => {
            json!({"worker_id": "w", "kinds": ["m.none"], "wait_ms": 0})
        }
        ("POST", "/v1/worker/complete") => {
            json!({"jobs": [{"id": f.running, "lease": lease, "result": {}}]})
        }
        ("POST", t) if t.ends_with("/session/save") => {
            json!({"lease": lease, "name": f.session, "state": {}})
        }
        ("POST", t) if t.ends_with("/progress") => json!({"lease": lease, "current": 1}),
        ("POST", t) if t.ends_with("/fail") => {
            json!({"lease": lease, "error": {"code": "X", "message": "m", "retryable": false}})
        }
        ("POST", t) if t.starts_with("/v1/worker/jobs/") => json!({"lease": lease}),
        _ => return (path, String::new()),
    };
    (path, body.to_string())
}

async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    secret: Option<&str>,
    body: &str,
    lease: &str,
) -> RawAnswer {
    let auth = secret.map(|s| format!("Bearer {s}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    if method == "PUT" && path.contains("/artifacts/") {
        headers = vec![("Content-Type", "text/plain"), ("Ferry-Lease", lease)];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth));
        }
        return server.raw().send(method, path, &headers, b"hello").await;
    }
    server
        .raw()
        .send(method, path, &headers, body.as_bytes())
        .await
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_table_says_and_nothing_crosses_tenants() {
    let server = TestServer::builder()
        .configure(|c| c.max_auth_failures_per_minute = 1_000_000)
        .spawn()
        .await;
    let acme = tenant(&server, "acme").await;
    let beta = tenant(&server, "beta").await;
    let mut secrets = Vec::new();
    for (who, tenant, role) in [
        (Who::Viewer, &acme, Role::Viewer),
        (Who::Editor, &acme, Role::Editor),
        (Who::Admin, &acme, Role::Admin),
        (Who::Worker, &acme, Role::Worker),
        (Who::OtherAdmin, &beta, Role::Admin),
        (Who::OtherWorker, &beta, Role::Worker),
    ] {
        secrets.push((who, key(&server, tenant, role, None).await.secret));
    }
    let callers = Callers {
        editor: client(&server, &secrets[1].1),
        worker: client(&server, &secrets[3].1),
        secrets,
    };

    // The table covers the router exactly.
    let served: Vec<(String, String, Access)> = route_table()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_owned(), r.access))
        .collect();
    let listed: Vec<(String, String, Access)> = TABLE
        .iter()
        .map(|(m, p, a, _, _)| (m.to_string(), p.to_string(), *a))
        .collect();
    for route in &served {
        assert!(
            listed.contains(route),
            "route {route:?} is not in the table"
        );
    }
    for route in &listed {
        assert!(
            served.contains(route),
            "the table's {route:?} is not served"
        );
    }

    let shared = fixture(&server, &callers).await;
    let mut wrong = Vec::new();
    for &(method, template, access, own, other) in TABLE {
        for who in EVERYONE {
            let want = expected(access, own, other, who);
            let changes =
                method != "GET" && role_of(who).is_some_and(|(_, mine)| mine) && want < 300;
            let fresh;
            let f = if changes {
                fresh = fixture(&server, &callers).await;
                &fresh
            } else {
                &shared
            };
            let (path, body) = request(method, template, f);
            let answer = send(&server, method, &path, callers.secret(who), &body, &f.lease).await;
            if answer.status != want {
                wrong.push(format!(
                    "{method} {template} as {who:?}: {} (want {want}) {}",
                    answer.status, answer.body
                ));
            }
            if matches!(who, Who::OtherAdmin | Who::OtherWorker) {
                let text = answer.body.to_string();
                // What the request named itself may be echoed back; nothing else.
                for name in shared
                    .names()
                    .into_iter()
                    .filter(|n| !path.contains(n.as_str()) && !body.contains(n.as_str()))
                {
                    assert!(
                        !text.contains(&name),
                        "{method} {template} as {who:?} shows acme's {name}: {text}"
                    );
                }
            }
            if template == "/v1/worker/complete" && who == Who::OtherWorker {
                assert_eq!(answer.body["results"][0]["ok"], false, "{}", answer.body);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Nothing the denied and the other tenant's callers did reached acme's resources.
    let admin = callers.secret(Who::Admin).expect("admin");
    let raw = server.raw();
    let get = |path: String| {
        let raw = raw.clone();
        async move {
            let answer = raw.json("GET", &path, admin, "").await;
            assert_eq!(answer.status, 200, "{path}: {:?}", answer.body);
            answer.body
        }
    };
    assert_eq!(
        get(format!("/v1/jobs/{}", shared.job)).await["status"],
        "pending"
    );
    assert_eq!(
        get(format!("/v1/jobs/{}", shared.cancelled)).await["status"],
        "cancelled"
    );
    assert_eq!(
        get(format!("/v1/jobs/{}", shared.running)).await["status"],
        "running"
    );
    assert_eq!(
        get(format!("/v1/batches/{}", shared.batch)).await["status"],
        "running"
    );
    assert_eq!(
        get(format!("/v1/schedules/{}", shared.schedule)).await["paused"],
        false
    );
    get(format!("/v1/datasets/{}", shared.dataset)).await;
    let artifacts = get(format!("/v1/jobs/{}/artifacts", shared.running)).await;
    assert_eq!(artifacts["artifacts"].as_array().map(Vec::len), Some(1));
    assert!(
        get("/v1/webhooks".into())
            .await
            .to_string()
            .contains(&shared.webhook)
    );
    assert!(
        get("/v1/sessions".into())
            .await
            .to_string()
            .contains(&shared.session)
    );
    assert_eq!(get("/v1/kinds/paused".into()).await["paused"], json!([]));
    // The workers acme sees are acme's own (the other tenant's claimed too).
    let workers = get("/v1/workers".into()).await;
    let tenants: Vec<&str> = workers["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .filter_map(|w| w["tenant"].as_str())
        .collect();
    assert!(
        !tenants.is_empty() && tenants.iter().all(|t| *t == "acme"),
        "{workers}"
    );
    let keys = get("/v1/keys".into()).await;
    let kept = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["prefix"] == shared.key_prefix.as_str())
        .expect("the shared key");
    assert!(kept["revoked_at"].is_null());

    // acme's audit log names only acme's own: its editor and admin keys and the test.
    let audit = get("/v1/audit?limit=1000".into()).await;
    let entries = audit["entries"].as_array().expect("entries");
    assert!(
        entries.len() > 10,
        "the matrix's changes are audited: {audit}"
    );
    let own: Vec<String> = [Who::Editor, Who::Admin]
        .iter()
        .map(|w| format!("key:{}", &callers.secret(*w).expect("secret")[..13]))
        .chain(["test".to_owned()])
        .collect();
    for e in entries {
        let actor = e["actor"].as_str().expect("actor");
        let acme_user = actor
            .strip_prefix("user:user")
            .and_then(|rest| rest.strip_suffix("@acme.test"))
            .is_some_and(|n| n.parse::<usize>().is_ok());
        assert!(
            acme_user || own.iter().any(|o| o == actor),
            "acme's log names {actor}: {e}"
        );
    }
}
