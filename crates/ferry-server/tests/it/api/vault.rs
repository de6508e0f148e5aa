//! What the server keeps sealed, black-box: the secrets vault (editors save secrets bound
//! to domains, nobody reads a value back, a worker gets one only under a live lease of a
//! job whose payload names it) and saved browser sessions (scoped to what the job names).

use ferry_core::{
    ErrorCode,
    api::SubmitJob,
    vault::{SecretSpec, WorkerSecret},
};
use ferry_testkit::{API_TOKEN, TestServer, job};
use serde_json::json;

use super::{api_code, claim_req};

const VALUE: &str = "vault-value-3f9a1c";

#[tokio::test]
async fn secrets_are_written_never_read_back_and_handed_only_to_the_job_that_names_them() {
    let server = TestServer::spawn().await;
    let raw = server.raw();
    let spec: SecretSpec = serde_json::from_value(json!({
        "value": VALUE, "domains": ["shop.example", "127.0.0.1"]
    }))
    .expect("a spec");
    let made = raw
        .json(
            "PUT",
            "/v1/secrets/SHOP_TOKEN",
            API_TOKEN,
            &serde_json::to_string(&spec).expect("json"),
        )
        .await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    assert_eq!(made.body["domains"], json!(["shop.example", "127.0.0.1"]));
    let again = server
        .api
        .put_secret("SHOP_TOKEN", &spec)
        .await
        .expect("replace");
    assert_eq!(
        serde_json::to_value(again.created_at).expect("a time"),
        made.body["created_at"],
        "replacing keeps when it was made"
    );
    for (path, body, field) in [
        (
            "/v1/secrets/bad-name",
            json!({"value": "x", "domains": ["a.example"]}),
            "name",
        ),
        (
            "/v1/secrets/EMPTY",
            json!({"value": "", "domains": ["a.example"]}),
            "value",
        ),
        (
            "/v1/secrets/UNBOUND",
            json!({"value": "x", "domains": []}),
            "domains",
        ),
    ] {
        let answer = raw.json("PUT", path, API_TOKEN, &body.to_string()).await;
        assert_eq!(answer.status, 422, "{path}: {:?}", answer.body);
        assert_eq!(answer.body["error"]["fields"][0]["field"], field, "{path}");
    }
    let bad_rule = raw
        .json(
            "PUT",
            "/v1/secrets/X",
            API_TOKEN,
            r#"{"value": "x", "domains": ["not a domain"]}"#,
        )
        .await;
    assert_eq!(bad_rule.status, 422, "{:?}", bad_rule.body);
    assert_eq!(bad_rule.body["error"]["fields"][0]["field"], "domains[0]");

    // Listed by name and domains; the value is in no answer and only sealed in the store.
    let listed = raw.json("GET", "/v1/secrets", API_TOKEN, "").await;
    assert_eq!(listed.body["secrets"][0]["name"], "SHOP_TOKEN");
    assert!(!listed.body.to_string().contains(VALUE));
    assert!(!made.body.to_string().contains(VALUE));
    let rows = server
        .queue
        .store()
        .secret_list("default")
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0]
            .sealed
            .windows(VALUE.len())
            .any(|w| w == VALUE.as_bytes()),
        "sealed at rest"
    );

    // A worker holding a job that names it gets it; one whose job does not, nothing.
    let naming = SubmitJob::new(
        "vault.use",
        json!({"headers": {"Authorization": "Bearer {{secret.SHOP_TOKEN}}"}}),
    );
    let plain = SubmitJob::new("vault.plain", json!({}));
    server.api.submit(&naming).await.expect("submit");
    server.api.submit(&plain).await.expect("submit");
    let claimed = server
        .worker
        .claim(&claim_req(&["vault.use", "vault.plain"], 2, 0))
        .await
        .expect("claim")
        .jobs;
    assert_eq!(claimed.len(), 2);
    for job in &claimed {
        let got = server
            .worker
            .worker_secrets(job.id, &job.lease)
            .await
            .expect("the job's secrets")
            .secrets;
        if job.kind == "vault.use" {
            assert_eq!(
                got,
                [WorkerSecret {
                    name: "SHOP_TOKEN".into(),
                    value: ferry_core::Secret::new(VALUE),
                    domains: vec![
                        "shop.example".parse().expect("a rule"),
                        "127.0.0.1".parse().expect("a rule"),
                    ],
                }]
            );
        } else {
            assert!(got.is_empty(), "{got:?}");
        }
    }
    // A lease that is not the job's gets nothing.
    let wrong = server
        .worker
        .worker_secrets(claimed[0].id, "not-the-lease")
        .await
        .expect_err("not the lease");
    assert_eq!(wrong.status(), Some(409));

    assert_eq!(
        raw.json("DELETE", "/v1/secrets/SHOP_TOKEN", API_TOKEN, "")
            .await
            .status,
        204
    );
    assert_eq!(
        raw.json("DELETE", "/v1/secrets/SHOP_TOKEN", API_TOKEN, "")
            .await
            .status,
        404
    );
}

/// Sessions: a worker saves and loads only what its job's recipe names, under a live
/// lease; the client API lists them without contents and deletes them; the database
/// holds them sealed.
#[tokio::test]
async fn sessions_are_scoped_to_the_job_and_sealed() {
    let server = TestServer::builder().spawn().await;
    let saver = server
        .api
        .submit(&job(
            "browser.run",
            json!({"steps": [{"goto": {"url": "http://127.0.0.1/login"}}, {"save_session": "shop-1"}]}),
        ))
        .await
        .expect("submit");
    let claimed = server
        .worker
        .claim(&claim_req(&["browser.run"], 1, 0))
        .await
        .expect("claim")
        .jobs;
    assert_eq!(claimed[0].id, saver.id);
    let lease = claimed[0].lease.clone();
    let state = json!({"cookies": [{"name": "sid", "value": "secret-cookie-4711", "domain": "127.0.0.1", "path": "/"}], "origins": []});

    // Not named by the recipe; not held; malformed.
    let refused = server
        .worker
        .session_save(saver.id, &lease, "shop-2", state.clone())
        .await
        .expect_err("not named");
    assert_eq!(api_code(refused), ErrorCode::SessionNotNamed);
    let refused = server
        .worker
        .session_save(saver.id, "not-the-lease", "shop-1", state.clone())
        .await
        .expect_err("no lease");
    assert_eq!(api_code(refused), ErrorCode::LeaseLost);
    let refused = server
        .worker
        .session_load(saver.id, &lease)
        .await
        .expect_err("no use_session");
    assert_eq!(api_code(refused), ErrorCode::SessionNotNamed);
    let refused = server
        .api
        .session_save(saver.id, &lease, "shop-1", state.clone())
        .await
        .expect_err("the API token is not a worker token");
    assert_eq!(api_code(refused), ErrorCode::Forbidden);

    server
        .worker
        .session_save(saver.id, &lease, "shop-1", state.clone())
        .await
        .expect("save");
    let sealed = server
        .queue
        .store()
        .session_get(ferry_core::DEFAULT_TENANT, "shop-1")
        .await
        .expect("get")
        .expect("stored");
    assert!(
        !sealed.windows(18).any(|w| w == b"secret-cookie-4711"),
        "sealed at rest"
    );
    let listed = server.api.sessions().await.expect("list").sessions;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].saved_by_job),
        ("shop-1", Some(saver.id))
    );
    let raw = server
        .raw()
        .json("GET", "/v1/sessions", API_TOKEN, "")
        .await;
    assert!(
        !raw.body.to_string().contains("secret-cookie"),
        "{:?}",
        raw.body
    );

    // A later job that uses it gets it back in plain form, under its own lease.
    let user = server
        .api
        .submit(&job(
            "browser.run",
            json!({"use_session": "shop-1", "steps": [{"goto": {"url": "http://127.0.0.1/reviews"}}]}),
        ))
        .await
        .expect("submit");
    let claimed = server
        .worker
        .claim(&claim_req(&["browser.run"], 1, 0))
        .await
        .expect("claim")
        .jobs;
    assert_eq!(claimed[0].id, user.id);
    let loaded = server
        .worker
        .session_load(user.id, &claimed[0].lease)
        .await
        .expect("load");
    assert_eq!(
        (loaded.name.as_str(), loaded.state),
        ("shop-1", Some(state))
    );

    server.api.delete_session("shop-1").await.expect("delete");
    assert_eq!(
        api_code(server.api.delete_session("shop-1").await.expect_err("gone")),
        ErrorCode::NotFound
    );
    let loaded = server
        .worker
        .session_load(user.id, &claimed[0].lease)
        .await
        .expect("load");
    assert_eq!(loaded.state, None, "nothing saved under the name now");

    let schema = server
        .raw()
        .json("GET", "/v1/recipes/schema", API_TOKEN, "")
        .await;
    assert_eq!(schema.status, 200);
    assert!(
        schema.body["properties"]["steps"].is_object(),
        "{:?}",
        schema.body
    );
}

/// A job of any other kind names its sessions in its payload's top-level `use_session` and
/// `save_session` (a worker running its own browser code): its worker saves and loads
/// those, and no other.
#[tokio::test]
async fn a_custom_job_names_its_sessions_in_its_payload() {
    let server = TestServer::builder().spawn().await;
    let state = json!({"cookies": [{"name": "sid", "value": "v"}], "origins": []});
    let saver = server
        .api
        .submit(&job(
            "reviews.sync",
            json!({"store": 7, "use_session": "shop-7", "save_session": "shop-7"}),
        ))
        .await
        .expect("submit");
    let claimed = server
        .worker
        .claim(&claim_req(&["reviews.sync"], 1, 0))
        .await
        .expect("claim")
        .jobs;
    assert_eq!(claimed[0].id, saver.id);
    let lease = claimed[0].lease.clone();
    let loaded = server
        .worker
        .session_load(saver.id, &lease)
        .await
        .expect("load");
    assert_eq!((loaded.name.as_str(), loaded.state), ("shop-7", None));
    let refused = server
        .worker
        .session_save(saver.id, &lease, "shop-8", state.clone())
        .await
        .expect_err("not the one it saves");
    assert_eq!(api_code(refused), ErrorCode::SessionNotNamed);
    server
        .worker
        .session_save(saver.id, &lease, "shop-7", state.clone())
        .await
        .expect("save");

    // A job that names nothing gets nothing; one that only uses it reads it back.
    let plain = server
        .api
        .submit(&job(
            "reviews.sync",
            json!({"store": 8, "use_session": "no spaces"}),
        ))
        .await
        .expect("submit");
    let user = server
        .api
        .submit(&job("reviews.sync", json!({"use_session": "shop-7"})))
        .await
        .expect("submit");
    let claimed = server
        .worker
        .claim(&claim_req(&["reviews.sync"], 2, 0))
        .await
        .expect("claim")
        .jobs;
    let lease_of = |id| {
        claimed
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.lease.clone())
            .expect("claimed")
    };
    let refused = server
        .worker
        .session_load(plain.id, &lease_of(plain.id))
        .await
        .expect_err("not a session name");
    assert_eq!(api_code(refused), ErrorCode::SessionNotNamed);
    let loaded = server
        .worker
        .session_load(user.id, &lease_of(user.id))
        .await
        .expect("load");
    assert_eq!(loaded.state, Some(state.clone()));
    let refused = server
        .worker
        .session_save(user.id, &lease_of(user.id), "shop-7", state)
        .await
        .expect_err("it only uses the session");
    assert_eq!(api_code(refused), ErrorCode::SessionNotNamed);
}
