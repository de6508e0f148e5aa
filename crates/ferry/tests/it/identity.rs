//! `ferry tenant`, `ferry key` and `ferry worker-token` as an operator meets them: made on
//! the server's data dir, the key printed alone on stdout, used against `ferry serve` on
//! that data dir, listed, revoked; bad input exits with one line and its own code.

use std::process::Output;

use ferry_client::Client;
use ferry_core::{ErrorCode, Secret, api::ClaimRequest};
use ferry_testkit::job;
use serde_json::{Value, json};

use crate::common::{ferry, free_port, start_server};

async fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--data-dir", dir.to_str().expect("utf-8 path")]);
    ferry(&all).output().await.expect("run ferry")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn an_operator_makes_a_tenant_and_keys_that_the_server_then_honours() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    assert_eq!(stdout(&run(d, &["tenant", "create", "acme"]).await), "acme");
    let taken = run(d, &["tenant", "create", "acme"]).await;
    assert_eq!(taken.status.code(), Some(1));
    let listed = stdout(&run(d, &["tenant", "list"]).await);
    assert!(
        listed.contains("acme") && listed.contains("default"),
        "{listed}"
    );

    let editor = stdout(
        &run(
            d,
            &[
                "key", "create", "--tenant", "acme", "--role", "editor", "--kinds", "shop.*",
            ],
        )
        .await,
    );
    assert!(
        editor.starts_with("fk_") && !editor.contains('\n'),
        "{editor}"
    );
    let made: Value = serde_json::from_str(&stdout(
        &run(
            d,
            &[
                "worker-token",
                "create",
                "--tenant",
                "acme",
                "--kinds",
                "shop.*",
                "--expires",
                "30d",
                "--name",
                "laptop",
                "--json",
            ],
        )
        .await,
    ))
    .expect("json");
    let worker = made["secret"].as_str().expect("secret").to_owned();
    assert!(worker.starts_with("fw_"));
    assert_eq!(made["role"], "worker");

    let port = free_port();
    let mut server = start_server(d, port, &[]).await;
    let url = format!("http://127.0.0.1:{port}");
    let app = Client::new(&url, Secret::new(&editor)).expect("client");
    let submitted = app
        .submit(&job("shop.sync", json!({})))
        .await
        .expect("its kind");
    let refused = app
        .submit(&job("report.daily", json!({})))
        .await
        .expect_err("another kind");
    assert_eq!(refused.code(), Some(ErrorCode::KindNotAllowed));
    let laptop = Client::new(&url, Secret::new(&worker)).expect("client");
    let claimed = laptop
        .claim(&ClaimRequest {
            worker_id: "laptop".into(),
            kinds: vec!["shop.*".into()],
            max_jobs: Some(1),
            wait_ms: Some(0),
            lease_ms: None,
        })
        .await
        .expect("claim");
    assert_eq!(claimed.jobs.len(), 1);
    assert_eq!(claimed.jobs[0].id, submitted.id);

    // A quota set from the CLI while the server runs: acme holds one unfinished job, its
    // limit now, so its next submit is refused (once the server reads the quota again).
    let set = stdout(&run(d, &["tenant", "set", "acme", "--max-unfinished-jobs", "1"]).await);
    assert!(set.contains("unfinished jobs: 1"), "{set}");
    let mut quota = None;
    for _ in 0..100 {
        match app.submit(&job("shop.sync", json!({}))).await {
            Err(e) => {
                quota = e.code();
                break;
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    assert_eq!(quota, Some(ErrorCode::QuotaExceeded));

    // Revoked from the CLI while the server runs: refused within the cache's half second.
    let prefix = made["prefix"].as_str().expect("prefix").to_owned();
    assert_eq!(
        stdout(&run(d, &["worker-token", "revoke", &prefix, "--tenant", "acme"]).await),
        ""
    );
    let mut refused = None;
    for _ in 0..100 {
        match laptop
            .claim(&ClaimRequest {
                worker_id: "laptop".into(),
                kinds: vec!["shop.*".into()],
                max_jobs: Some(1),
                wait_ms: Some(0),
                lease_ms: None,
            })
            .await
        {
            Err(e) => {
                refused = e.code();
                break;
            }
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    assert_eq!(refused, Some(ErrorCode::KeyRevoked));
    let keys: Value = serde_json::from_str(&stdout(
        &run(d, &["key", "list", "--tenant", "acme", "--json"]).await,
    ))
    .expect("json");
    let text = keys.to_string();
    assert!(
        !text.contains(&worker) && !text.contains(&editor),
        "no secret is listed"
    );
    assert!(
        keys["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k["prefix"] == prefix.as_str() && !k["revoked_at"].is_null())
    );
    server.kill().await.expect("stop server");

    // Bad input: one line and its own exit code.
    for (args, code) in [
        (vec!["key", "create", "--role", "owner"], 2),
        (
            vec!["key", "create", "--tenant", "nobody", "--role", "viewer"],
            5,
        ),
        (
            vec!["key", "revoke", "fk_nosuchkey0", "--tenant", "acme"],
            5,
        ),
        (
            vec!["worker-token", "revoke", &editor[..13], "--tenant", "acme"],
            5,
        ),
        (
            vec!["key", "create", "--role", "viewer", "--expires", "soon"],
            1,
        ),
        (vec!["tenant", "create", "has space"], 1),
        (
            vec!["tenant", "set", "acme", "--max-unfinished-jobs", "0"],
            2,
        ),
        (
            vec![
                "tenant",
                "set",
                "nobody",
                "--max-submissions-per-second",
                "3",
            ],
            5,
        ),
    ] {
        let out = run(d, &args).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(!err.trim().is_empty(), "{args:?} says why");
    }
}
