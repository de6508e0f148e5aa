//! Users over HTTP: made by a tenant's admin, logging in with a password (argon2id in the
//! database, never the password), acting with the session cookie under their role and
//! only in their tenant, every change carrying the CSRF token; logged out, removed, and
//! wrong passwords counted like wrong keys.

use ferry_core::{Role, Secret, identity::UserCreateRequest};
use ferry_testkit::{TestServer, raw::RawAnswer};
use serde_json::{Value, json};

use super::{admin_of, database_bytes, holds, key, tenant};

const PASSWORD: &str = "correct horse battery";

/// A browser's session: the cookie and the CSRF token its login answered.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn login(server: &TestServer, body: Value) -> (RawAnswer, Option<Browser>) {
    let answer = server
        .raw()
        .send(
            "POST",
            "/v1/auth/login",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await;
    let browser = answer.header("set-cookie").map(|set| Browser {
        cookie: set.split(';').next().expect("name=value").to_owned(),
        csrf: answer.body["csrf_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    });
    (answer, browser)
}

/// A request as the browser sends it; `csrf` adds its CSRF header.
async fn send(
    server: &TestServer,
    b: &Browser,
    method: &str,
    path: &str,
    body: Value,
    csrf: Option<&str>,
) -> RawAnswer {
    let mut headers = vec![
        ("Cookie", b.cookie.as_str()),
        ("Content-Type", "application/json"),
    ];
    if let Some(token) = csrf {
        headers.push(("X-CSRF-Token", token));
    }
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    server
        .raw()
        .send(method, path, &headers, body.as_bytes())
        .await
}

#[tokio::test]
async fn users_log_in_and_act_with_their_role_in_their_tenant_only() {
    let server = TestServer::spawn().await;
    let acme = tenant(&server, "acme").await;
    let beta = tenant(&server, "beta").await;
    let admin = key(&server, &acme, Role::Admin, None).await.secret;
    let viewer_key = key(&server, &acme, Role::Viewer, None).await.secret;
    let raw = server.raw();
    let make = |name: &str, password: &str, role: &str| {
        json!({"name": name, "password": password, "role": role}).to_string()
    };

    // Admins make users; bad input is named.
    let made = raw
        .json(
            "POST",
            "/v1/users",
            &admin,
            &make("Ana@Acme.test", PASSWORD, "editor"),
        )
        .await;
    assert_eq!(made.status, 201, "{made:?}");
    assert_eq!(made.body["name"], "ana@acme.test");
    assert_eq!(made.body["role"], "editor");
    for (body, field) in [
        (make("bo@acme.test", "short", "viewer"), "password"),
        (make("bo@acme.test", PASSWORD, "worker"), "role"),
        (make("two words", PASSWORD, "viewer"), "name"),
    ] {
        let refused = raw.json("POST", "/v1/users", &admin, &body).await;
        assert_eq!(refused.status, 422, "{refused:?}");
        assert_eq!(refused.body["error"]["fields"][0]["field"], field);
    }
    let taken = raw
        .json(
            "POST",
            "/v1/users",
            &admin,
            &make("ana@acme.test", PASSWORD, "viewer"),
        )
        .await;
    assert_eq!(taken.status, 409);
    let viewer = raw
        .json(
            "POST",
            "/v1/users",
            &viewer_key,
            &make("x@acme.test", PASSWORD, "viewer"),
        )
        .await;
    assert_eq!(viewer.status, 403);

    // Wrong name or password: the same answer.
    for body in [
        json!({"name": "ana@acme.test", "password": "wrong horse battery"}),
        json!({"name": "nobody@acme.test", "password": PASSWORD}),
    ] {
        let (answer, _) = login(&server, body).await;
        assert_eq!(answer.status, 401, "{answer:?}");
        assert_eq!(answer.body["error"]["message"], "wrong name or password");
    }

    let (answer, ana) = login(
        &server,
        json!({"name": "ANA@acme.test", "password": PASSWORD}),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["tenant"], "acme");
    assert_eq!(answer.body["role"], "editor");
    let set = answer.header("set-cookie").expect("a cookie");
    for part in [
        "ferry_session=fs_",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=604800",
    ] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP by default: {set}");
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let ana = ana.expect("logged in");

    let me = send(&server, &ana, "GET", "/v1/auth/me", Value::Null, None).await;
    assert_eq!(me.body["actor"], "user:ana@acme.test", "{me:?}");
    assert_eq!(me.body["role"], "editor");
    // Reading needs no CSRF token; a change does, and the right one.
    assert_eq!(
        send(&server, &ana, "GET", "/v1/jobs", Value::Null, None)
            .await
            .status,
        200
    );
    let job = json!({"kind": "a.b"});
    for csrf in [None, Some("00"), Some("not hex")] {
        let refused = send(&server, &ana, "POST", "/v1/jobs", job.clone(), csrf).await;
        assert_eq!(refused.status, 403, "{csrf:?}: {refused:?}");
        assert_eq!(refused.body["error"]["code"], "CSRF_FAILED");
    }
    let submitted = send(
        &server,
        &ana,
        "POST",
        "/v1/jobs",
        job.clone(),
        Some(&ana.csrf),
    )
    .await;
    assert_eq!(submitted.status, 202, "{submitted:?}");
    // An editor, not an admin.
    assert_eq!(
        send(&server, &ana, "GET", "/v1/keys", Value::Null, None)
            .await
            .status,
        403
    );
    // Another tenant's job is not there.
    let theirs = key(&server, &beta, Role::Editor, None).await.secret;
    let other = raw
        .json("POST", "/v1/jobs", &theirs, &job.to_string())
        .await;
    let other_id = other.body["id"].as_str().expect("id");
    let hidden = send(
        &server,
        &ana,
        "GET",
        &format!("/v1/jobs/{other_id}"),
        Value::Null,
        None,
    )
    .await;
    assert_eq!(hidden.status, 404);

    // The login and the user's change are in the audit log, by the user.
    let audit = raw.json("GET", "/v1/audit", &admin, "").await;
    let actions: Vec<(&str, &str)> = audit.body["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["actor"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        actions.contains(&("user.login", "user:ana@acme.test")),
        "{actions:?}"
    );
    assert!(actions.contains(&("user.create", &*format!("key:{}", &admin[..13]))));

    // Logging out ends the session and clears the cookie.
    let out = send(&server, &ana, "POST", "/v1/auth/logout", Value::Null, None).await;
    assert_eq!(out.status, 204);
    assert!(
        out.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let ended = send(&server, &ana, "GET", "/v1/jobs", Value::Null, None).await;
    assert_eq!(ended.status, 401, "{ended:?}");

    // A user of two tenants names one; removed from a tenant, their session there ends.
    server
        .queue
        .users()
        .grant(&admin_of(&beta), "ana@acme.test", Role::Viewer)
        .await
        .expect("grant");
    let (two, _) = login(
        &server,
        json!({"name": "ana@acme.test", "password": PASSWORD}),
    )
    .await;
    assert_eq!(two.status, 422, "{two:?}");
    assert_eq!(two.body["error"]["fields"][0]["field"], "tenant");
    let (in_beta, b) = login(
        &server,
        json!({"name": "ana@acme.test", "password": PASSWORD, "tenant": "beta"}),
    )
    .await;
    assert_eq!(
        (in_beta.status, &in_beta.body["role"]),
        (200, &json!("viewer"))
    );
    let b = b.expect("beta session");
    assert_eq!(
        send(&server, &b, "GET", "/v1/tenant", Value::Null, None)
            .await
            .body["id"],
        "beta"
    );
    let removed = server
        .raw()
        .json("DELETE", "/v1/users/ana@acme.test", &theirs, "")
        .await;
    assert_eq!(removed.status, 403, "an editor may not remove users");
    let beta_admin = key(&server, &beta, Role::Admin, None).await.secret;
    let removed = raw
        .json("DELETE", "/v1/users/ana@acme.test", &beta_admin, "")
        .await;
    assert_eq!(removed.status, 204);
    assert_eq!(
        send(&server, &b, "GET", "/v1/jobs", Value::Null, None)
            .await
            .status,
        401
    );
    let listed = raw.json("GET", "/v1/users", &beta_admin, "").await;
    assert_eq!(listed.body["users"], json!([]));

    // The database holds the argon2id hash, never the password.
    let bytes = database_bytes(&server, "users").await;
    assert!(!holds(&bytes, PASSWORD), "a password in the database");
    assert!(
        holds(&bytes, "$argon2id$"),
        "the hash is where the check looks"
    );
}

#[tokio::test]
async fn wrong_passwords_are_counted_like_wrong_keys() {
    let server = TestServer::builder()
        .configure(|c| c.max_auth_failures_per_minute = 3)
        .spawn()
        .await;
    let acme = tenant(&server, "acme").await;
    server
        .queue
        .users()
        .create(
            &admin_of(&acme),
            UserCreateRequest {
                name: "ana@acme.test".into(),
                password: Secret::new(PASSWORD),
                role: Role::Viewer,
            },
        )
        .await
        .expect("user");
    for _ in 0..3 {
        let (answer, _) = login(
            &server,
            json!({"name": "ana@acme.test", "password": "guess guess"}),
        )
        .await;
        assert_eq!(answer.status, 401);
    }
    let (slowed, _) = login(
        &server,
        json!({"name": "ana@acme.test", "password": PASSWORD}),
    )
    .await;
    assert_eq!(slowed.status, 429, "{slowed:?}");
    assert_eq!(slowed.body["error"]["code"], "TOO_MANY_AUTH_FAILURES");
    assert!(slowed.header("retry-after").is_some());
}
