//! Identity (#14): tenants, API keys with roles and kind limits, worker tokens, revocation
//! and expiry, wrong credentials counted per address. `matrix` walks every route with every
//! kind of credential.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use ferry_client::Client;
use ferry_core::{
    Clock, ErrorCode, ManualClock, Role, Secret, TenantId,
    api::ClaimRequest,
    identity::{KeyCreateRequest, KeyCreated},
};
use ferry_server::app::{Principal, Tenants};
use ferry_testkit::{API_TOKEN, TestServer, WORKER_TOKEN, job};
use serde_json::json;

mod audit;
mod matrix;
mod quotas;
mod users;

/// Makes the tenant (unless it is `default`, there from the start).
pub(crate) async fn tenant(server: &TestServer, id: &str) -> TenantId {
    let id = TenantId::new(id).expect("tenant id");
    if id.as_str() != ferry_core::DEFAULT_TENANT {
        Tenants::new(server.queue.store(), server.queue.clock())
            .create("test", &id, "", Default::default())
            .await
            .expect("create tenant");
    }
    id
}

/// What the database holds: on SQLite its files (every table), on PostgreSQL the rows of
/// `table` (in `ferry.`) as JSON text.
pub(crate) async fn database_bytes(server: &TestServer, table: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Some(url) = &server.database_url {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM ferry.{table} t"
        )))
        .fetch_all(&pool)
        .await
        .expect("read rows");
        bytes = rows.concat().into_bytes();
        pool.close().await;
    }
    if let Some(path) = server.sqlite_path() {
        for file in ["", "-wal"] {
            bytes.extend(std::fs::read(format!("{}{file}", path.display())).unwrap_or_default());
        }
    }
    bytes
}

/// Whether `needle` is anywhere in `bytes`.
pub(crate) fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The tenant's admin, as a test acting in-process.
pub(crate) fn admin_of(tenant: &TenantId) -> Principal {
    Principal::new(tenant.clone(), Role::Admin, "test")
}

/// A key of `tenant` with `role`, limited to `kinds` if given.
pub(crate) async fn key(
    server: &TestServer,
    tenant: &TenantId,
    role: Role,
    kinds: Option<&[&str]>,
) -> KeyCreated {
    server
        .queue
        .keys()
        .create(
            &admin_of(tenant),
            KeyCreateRequest {
                role,
                kinds: kinds.map(|ks| ks.iter().map(|k| k.parse().expect("pattern")).collect()),
                name: format!("{role} of {tenant}"),
                expires_at: None,
            },
        )
        .await
        .expect("create key")
}

pub(crate) fn client(server: &TestServer, secret: &str) -> Client {
    Client::new(&server.url, Secret::new(secret)).expect("client")
}

fn claim(kinds: &[&str]) -> ClaimRequest {
    ClaimRequest {
        worker_id: "w".to_owned(),
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
        max_jobs: Some(10),
        wait_ms: Some(0),
        lease_ms: None,
    }
}

fn code(e: ferry_client::ClientError) -> ErrorCode {
    e.code()
        .unwrap_or_else(|| panic!("expected an API error, got {e}"))
}

#[tokio::test]
async fn tokens_are_required_and_not_interchangeable() {
    let server = TestServer::spawn().await;
    let raw = server.raw();
    let body = r#"{"kind": "a"}"#;
    let claim = r#"{"worker_id": "w", "kinds": ["a"]}"#;
    let cases = [
        (
            raw.send(
                "POST",
                "/v1/jobs",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .await,
            (401, "UNAUTHORIZED"),
        ),
        (
            raw.json("POST", "/v1/jobs", "wrong", body).await,
            (401, "UNAUTHORIZED"),
        ),
        // A known token on the other API: who it is is known, what it asks is not allowed.
        (
            raw.json("POST", "/v1/jobs", WORKER_TOKEN, body).await,
            (403, "FORBIDDEN"),
        ),
        (
            raw.json("POST", "/v1/worker/claim", API_TOKEN, claim).await,
            (403, "FORBIDDEN"),
        ),
    ];
    for (answer, expected) in cases {
        assert_eq!(
            (answer.status, answer.code()),
            expected,
            "{:?}",
            answer.body
        );
    }
    assert_eq!(raw.send("GET", "/healthz", &[], b"").await.status, 200);
}

/// With `configured_tokens` off, the configured tokens are refused like unknown ones and
/// keys go on working.
#[tokio::test]
async fn the_configured_tokens_can_be_switched_off() {
    let server = TestServer::builder()
        .configure(|c| c.configured_tokens = false)
        .spawn()
        .await;
    let raw = server.raw();
    for (token, path, body) in [
        (API_TOKEN, "/v1/jobs", r#"{"kind": "a.b"}"#),
        (
            WORKER_TOKEN,
            "/v1/worker/claim",
            r#"{"worker_id": "w", "kinds": ["*"], "wait_ms": 0}"#,
        ),
    ] {
        let refused = raw.json("POST", path, token, body).await;
        assert_eq!(
            (refused.status, refused.code()),
            (401, "UNAUTHORIZED"),
            "{path}"
        );
    }
    let admin = key(&server, &TenantId::default(), Role::Admin, None).await;
    let own = raw
        .json("POST", "/v1/jobs", &admin.secret, r#"{"kind": "a.b"}"#)
        .await;
    assert_eq!(own.status, 202, "{own:?}");
}

#[tokio::test]
async fn keys_act_in_their_own_tenant_with_their_role() {
    let server = TestServer::spawn().await;
    let acme = tenant(&server, "acme").await;
    let beta = tenant(&server, "beta").await;
    let viewer = client(
        &server,
        &key(&server, &acme, Role::Viewer, None).await.secret,
    );
    let editor = client(
        &server,
        &key(&server, &acme, Role::Editor, None).await.secret,
    );
    let other = client(
        &server,
        &key(&server, &beta, Role::Admin, None).await.secret,
    );

    let submitted = editor
        .submit(&job("report.daily", json!({})))
        .await
        .expect("submit");
    assert_eq!(
        viewer.job(submitted.id).await.expect("a viewer reads").id,
        submitted.id
    );
    let refused = viewer
        .submit(&job("report.daily", json!({})))
        .await
        .expect_err("a viewer may not submit");
    assert_eq!(code(refused), ErrorCode::Forbidden);
    let refused = viewer.cancel(submitted.id).await.expect_err("nor cancel");
    assert_eq!(code(refused), ErrorCode::Forbidden);

    // Another tenant's admin, and the configured token (the default tenant), see nothing.
    for outsider in [&other, &server.api] {
        let hidden = outsider.job(submitted.id).await.expect_err("not theirs");
        assert_eq!(code(hidden), ErrorCode::NotFound);
        let hidden = outsider.cancel(submitted.id).await.expect_err("not theirs");
        assert_eq!(code(hidden), ErrorCode::NotFound);
        let page = outsider.list(&Default::default()).await.expect("list");
        assert!(page.jobs.iter().all(|j| j.id != submitted.id));
    }
    assert_eq!(
        editor.job(submitted.id).await.expect("still there").status,
        ferry_core::JobState::Pending,
        "nothing the outsiders did reached it"
    );
}

#[tokio::test]
async fn admins_make_list_and_revoke_keys_over_http_and_the_secret_shows_once() {
    let server = TestServer::spawn().await;
    let acme = tenant(&server, "acme").await;
    let admin = key(&server, &acme, Role::Admin, None).await;
    let raw = server.raw();
    let made = raw
        .json(
            "POST",
            "/v1/keys",
            &admin.secret,
            r#"{"role": "editor", "kinds": ["shop.*"], "name": "ci"}"#,
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let secret = made.body["secret"].as_str().expect("secret").to_owned();
    let prefix = made.body["prefix"].as_str().expect("prefix").to_owned();
    assert!(secret.starts_with(&format!("{prefix}_")));
    assert_eq!(made.body["tenant"], "acme");
    assert_eq!(made.body["kinds"], json!(["shop.*"]));

    let editor = client(&server, &secret);
    editor
        .submit(&job("shop.sync", json!({})))
        .await
        .expect("its kind");
    let refused = editor
        .submit(&job("report.daily", json!({})))
        .await
        .expect_err("another kind");
    assert_eq!(code(refused), ErrorCode::KindNotAllowed);
    let mut chained = job("shop.sync", json!({}));
    chained.then = Some(vec![job("report.daily", json!({}))]);
    let refused = editor
        .submit(&chained)
        .await
        .expect_err("a chain to another kind");
    assert_eq!(code(refused), ErrorCode::KindNotAllowed);

    let listed = raw.json("GET", "/v1/keys", &admin.secret, "").await;
    assert_eq!(listed.status, 200);
    let text = listed.body.to_string();
    assert!(text.contains(&prefix) && !text.contains(&secret), "{text}");
    assert!(
        listed.body["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["prefix"] == prefix.as_str() && !k["last_used_at"].is_null())
    );

    for bad in [
        r#"{"role": "owner"}"#,
        r#"{"role": "viewer", "kinds": []}"#,
        r#"{"role": "viewer", "expires_at": "2000-01-01T00:00:00Z"}"#,
        r#"{"role": "viewer", "colour": "red"}"#,
    ] {
        let answer = raw.json("POST", "/v1/keys", &admin.secret, bad).await;
        assert!(
            matches!(answer.status, 400 | 422) && !answer.code().is_empty(),
            "{bad}: {:?}",
            answer.body
        );
    }
    let editor_key = raw.json("GET", "/v1/keys", &secret, "").await;
    assert_eq!((editor_key.status, editor_key.code()), (403, "FORBIDDEN"));

    let revoked = raw
        .json("DELETE", &format!("/v1/keys/{prefix}"), &admin.secret, "")
        .await;
    assert_eq!(revoked.status, 204);
    let refused = editor
        .job(ferry_core::JobId::new())
        .await
        .expect_err("revoked");
    assert_eq!(code(refused), ErrorCode::KeyRevoked);
    let again = raw
        .json("DELETE", &format!("/v1/keys/{prefix}"), &admin.secret, "")
        .await;
    assert_eq!((again.status, again.code()), (404, "NOT_FOUND"));
    // Another tenant's admin cannot revoke it (nor tell that it exists).
    let beta = tenant(&server, "beta").await;
    let other = key(&server, &beta, Role::Admin, None).await;
    let hidden = raw
        .json(
            "DELETE",
            &format!("/v1/keys/{}", admin.key.prefix),
            &other.secret,
            "",
        )
        .await;
    assert_eq!((hidden.status, hidden.code()), (404, "NOT_FOUND"));
}

#[tokio::test]
async fn a_worker_token_claims_only_its_kinds_and_only_in_its_tenant() {
    let server = TestServer::spawn().await;
    let acme = tenant(&server, "acme").await;
    let beta = tenant(&server, "beta").await;
    let editor = client(
        &server,
        &key(&server, &acme, Role::Editor, None).await.secret,
    );
    let laptop = client(
        &server,
        &key(&server, &acme, Role::Worker, Some(&["baemin.*"]))
            .await
            .secret,
    );
    let other = client(
        &server,
        &key(&server, &beta, Role::Worker, None).await.secret,
    );
    let sync = editor
        .submit(&job("baemin.sync", json!({})))
        .await
        .expect("submit");
    let report = editor
        .submit(&job("report.daily", json!({})))
        .await
        .expect("submit");

    let nothing = other.claim(&claim(&["*"])).await.expect("claim in beta");
    assert!(
        nothing.jobs.is_empty(),
        "another tenant's worker gets none of acme's jobs"
    );
    let refused = laptop
        .claim(&claim(&["*"]))
        .await
        .expect_err("wider than its kinds");
    assert_eq!(code(refused), ErrorCode::KindNotAllowed);
    let refused = laptop
        .claim(&claim(&["report.daily"]))
        .await
        .expect_err("outside its kinds");
    assert_eq!(code(refused), ErrorCode::KindNotAllowed);
    let claimed = laptop
        .claim(&claim(&["baemin.*"]))
        .await
        .expect("its kinds");
    assert_eq!(
        claimed.jobs.iter().map(|j| j.id).collect::<Vec<_>>(),
        [sync.id]
    );
    assert_eq!(
        editor.job(report.id).await.expect("get").status,
        ferry_core::JobState::Pending
    );
    // The worker token is no API key.
    let refused = laptop
        .job(sync.id)
        .await
        .expect_err("worker on the client API");
    assert_eq!(code(refused), ErrorCode::Forbidden);
}

#[tokio::test]
async fn an_expired_key_is_refused_with_its_own_code() {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
    ));
    let server = TestServer::builder()
        .with_clock(clock.clone())
        .spawn()
        .await;
    let made = server
        .queue
        .keys()
        .create(
            &admin_of(&TenantId::default()),
            KeyCreateRequest {
                role: Role::Viewer,
                kinds: None,
                name: String::new(),
                expires_at: Some(clock.now() + chrono::Duration::hours(1)),
            },
        )
        .await
        .expect("create");
    let viewer = client(&server, &made.secret);
    viewer.paused().await.expect("before it expires");
    clock.advance(chrono::Duration::seconds(3_601));
    // Past the cache's life, so the key is looked at again.
    tokio::time::sleep(ferry_server::app::KEY_CACHE_TTL).await;
    let refused = viewer.paused().await.expect_err("expired");
    assert_eq!(code(refused), ErrorCode::KeyExpired);
}

#[tokio::test]
async fn wrong_credentials_from_one_address_are_slowed_and_others_are_not() {
    let server = TestServer::builder()
        .configure(|c| c.max_auth_failures_per_minute = 5)
        .spawn()
        .await;
    let raw = server.raw();
    let guess = "fk_aaaaaaaaaa_0123456789012345678901234567890123456789";
    for _ in 0..5 {
        let answer = raw.json("GET", "/v1/jobs", guess, "").await;
        assert_eq!((answer.status, answer.code()), (401, "UNAUTHORIZED"));
    }
    let slowed = raw.json("GET", "/v1/jobs", guess, "").await;
    assert_eq!(
        (slowed.status, slowed.code()),
        (429, "TOO_MANY_AUTH_FAILURES"),
        "{:?}",
        slowed.body
    );
    let wait: u64 = slowed
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&wait), "{wait}");
    // The budget is the address's: an in-process caller (no address) is not counted.
    let app = ferry_server::http::app(server.queue.clone());
    let answer = tower::ServiceExt::oneshot(
        app,
        axum::http::Request::get("/v1/jobs")
            .header("authorization", format!("Bearer {API_TOKEN}"))
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await
    .expect("answer");
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn keys_never_appear_in_clear_in_the_database_events_or_answers() {
    let server = TestServer::spawn().await;
    let acme = tenant(&server, "acme").await;
    let admin = key(&server, &acme, Role::Admin, None).await;
    let worker = key(&server, &acme, Role::Worker, Some(&["a.*"])).await;
    let api = client(&server, &admin.secret);
    api.submit(&job("a.b", json!({}))).await.expect("submit");
    let secrets = [&admin.secret, &worker.secret];
    // Each key's secret part (after the prefix) must be nowhere.
    let needles: Vec<&str> = secrets
        .iter()
        .map(|s| s.rsplit('_').next().expect("secret part"))
        .collect();
    let events = server
        .queue
        .store()
        .events_read(&acme, &Default::default(), 0, 1_000, 10_000)
        .await
        .expect("events");
    let mut seen = format!("{events:?}");
    seen.push_str(&format!(
        "{:?}",
        server.queue.keys().list(&acme).await.expect("list")
    ));
    seen.push_str(
        &server
            .raw()
            .json("GET", "/v1/keys", &admin.secret, "")
            .await
            .body
            .to_string(),
    );
    for needle in &needles {
        assert!(!seen.contains(needle), "a secret in events or answers");
    }
    let bytes = database_bytes(&server, "api_keys").await;
    for needle in &needles {
        assert!(!holds(&bytes, needle), "a secret in the database");
    }
    for s in &secrets {
        let prefix = &s[..13];
        assert!(
            holds(&bytes, prefix),
            "the visible prefix is kept (the check reads the right place)"
        );
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_by_a_second_postgresql_instance_within_a_second() {
    let first = TestServer::builder()
        .backend(ferry_testkit::Backend::Postgres)
        .spawn()
        .await;
    let url = first.database_url.clone().expect("postgres");
    // Instances of one database share the sealing key (keys are hashed under it).
    let sealing = first.queue.config().sealing_key.clone();
    let second = TestServer::builder()
        .on_database(&url)
        .configure(|c| c.sealing_key = sealing)
        .spawn()
        .await;
    let acme = tenant(&first, "acme").await;
    let admin = key(&first, &acme, Role::Admin, None).await;
    let viewer = key(&first, &acme, Role::Viewer, None).await;
    let on_second = client(&second, &viewer.secret);
    on_second
        .paused()
        .await
        .expect("the key works on the second instance");

    let revoked = first
        .raw()
        .json(
            "DELETE",
            &format!("/v1/keys/{}", viewer.key.prefix),
            &admin.secret,
            "",
        )
        .await;
    assert_eq!(revoked.status, 204);
    let start = std::time::Instant::now();
    let refused = loop {
        match on_second.paused().await {
            Err(e) => break e,
            Ok(_) if start.elapsed() < std::time::Duration::from_secs(5) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            Ok(_) => panic!("still accepted 5 s after it was revoked"),
        }
    };
    assert_eq!(code(refused), ErrorCode::KeyRevoked);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(1),
        "refused only after {:?}",
        start.elapsed()
    );
}
