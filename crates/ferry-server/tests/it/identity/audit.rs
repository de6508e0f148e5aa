//! The audit log over HTTP: each change names who made it (the key's prefix), what and
//! to which resource; admins read it newest first in pages; nobody else does, and a
//! tenant sees only its own. Secrets never appear in it.

use ferry_core::Role;
use ferry_testkit::TestServer;
use serde_json::{Value, json};

use super::{key, tenant};

#[tokio::test]
async fn changes_are_audited_with_who_did_them_and_only_admins_read_the_log() {
    let server = TestServer::spawn().await;
    let acme = tenant(&server, "acme").await;
    let beta = tenant(&server, "beta").await;
    let admin = key(&server, &acme, Role::Admin, None).await.secret;
    let editor = key(&server, &acme, Role::Editor, None).await.secret;
    let other = key(&server, &beta, Role::Admin, None).await.secret;
    let raw = server.raw();
    let call = |method: &'static str, path: String, secret: &str, body: Value| {
        let raw = raw.clone();
        let secret = secret.to_owned();
        async move {
            let answer = raw.json(method, &path, &secret, &body.to_string()).await;
            assert!(answer.status < 300, "{method} {path}: {answer:?}");
            answer.body
        }
    };

    let job = call("POST", "/v1/jobs".into(), &editor, json!({"kind": "a.b"})).await;
    let id = job["id"].as_str().expect("id").to_owned();
    call("POST", format!("/v1/jobs/{id}/cancel"), &editor, json!({})).await;
    call("POST", format!("/v1/jobs/{id}/retry"), &editor, json!({})).await;
    let webhook_secret = "whsec-0123456789abcdef";
    call(
        "POST",
        "/v1/webhooks".into(),
        &editor,
        json!({"url": "http://127.0.0.1:9/hook", "events": ["job.failed"],
               "secret": webhook_secret}),
    )
    .await;
    call(
        "POST",
        "/v1/schedules".into(),
        &editor,
        json!({"name": "nightly", "cron": "0 3 * * *", "job": {"kind": "a.b"}}),
    )
    .await;
    call(
        "POST",
        "/v1/schedules/nightly/pause".into(),
        &editor,
        json!({}),
    )
    .await;
    call("POST", "/v1/kinds/a.*/pause".into(), &editor, json!({})).await;
    let viewer = call("POST", "/v1/keys".into(), &admin, json!({"role": "viewer"})).await;
    let viewer_prefix = viewer["prefix"].as_str().expect("prefix").to_owned();
    let viewer_secret = viewer["secret"].as_str().expect("secret").to_owned();
    let revoke = raw
        .json("DELETE", &format!("/v1/keys/{viewer_prefix}"), &admin, "")
        .await;
    assert_eq!(revoke.status, 204);
    // A change that does not happen is not recorded.
    let missing = raw.json("DELETE", "/v1/schedules/none", &editor, "").await;
    assert_eq!(missing.status, 404);

    let log = call("GET", "/v1/audit".into(), &admin, Value::Null).await;
    let entries = log["entries"].as_array().expect("entries");
    let seen: Vec<(&str, String, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().expect("action"),
                e["target"].as_str().expect("target").to_owned(),
                e["actor"].as_str().expect("actor"),
            )
        })
        .collect();
    let by_editor = format!("key:{}", &editor[..13]);
    let by_admin = format!("key:{}", &admin[..13]);
    let key_target = format!("key:{viewer_prefix}");
    let job_target = format!("job:{id}");
    let mine: Vec<(&str, &str, &str)> = seen
        .iter()
        .filter(|(_, _, actor)| *actor != "test")
        .map(|(a, t, who)| (*a, t.as_str(), *who))
        .collect();
    assert_eq!(
        mine,
        [
            ("key.revoke", key_target.as_str(), by_admin.as_str()),
            ("key.create", key_target.as_str(), by_admin.as_str()),
            ("kind.pause", "kind:a.*", by_editor.as_str()),
            ("schedule.pause", "schedule:nightly", by_editor.as_str()),
            ("schedule.create", "schedule:nightly", by_editor.as_str()),
            ("webhook.create", seen[5].1.as_str(), by_editor.as_str()),
            ("job.retry", job_target.as_str(), by_editor.as_str()),
            ("job.cancel", job_target.as_str(), by_editor.as_str()),
        ],
        "newest first: {log}"
    );
    assert!(seen[5].1.starts_with("webhook:"));
    assert_eq!(entries[1]["detail"]["role"], "viewer");
    assert_eq!(
        entries[5]["detail"]["url"], "http://127.0.0.1:9/hook",
        "{log}"
    );
    let text = log.to_string();
    assert!(
        !text.contains(webhook_secret),
        "a webhook secret in the log"
    );
    assert!(
        !text.contains(&viewer_secret[13..]),
        "a key's secret in the log"
    );

    // Pages: `next_before` asks for the older ones.
    let first = call("GET", "/v1/audit?limit=3".into(), &admin, Value::Null).await;
    assert_eq!(first["entries"].as_array().map(Vec::len), Some(3));
    let before = first["next_before"].as_i64().expect("next_before");
    let second = call(
        "GET",
        format!("/v1/audit?limit=3&before={before}"),
        &admin,
        Value::Null,
    )
    .await;
    assert_eq!(second["entries"][0], entries[3]);

    // Only admins, and only their own tenant's.
    let refused = raw.json("GET", "/v1/audit", &editor, "").await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.body["error"]["code"], "FORBIDDEN");
    let theirs = call("GET", "/v1/audit".into(), &other, Value::Null).await;
    let theirs = theirs.to_string();
    assert!(
        !theirs.contains(&id) && !theirs.contains("nightly"),
        "{theirs}"
    );
    let bad = raw
        .json("GET", "/v1/audit?limit=0&after=1", &admin, "")
        .await;
    assert_eq!(bad.status, 422, "{bad:?}");
}
