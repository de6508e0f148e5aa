//! `ferry user` as an operator meets it: a user added with a password on stdin logs in to
//! `ferry serve` on that data dir; a new password ends their sessions and the old one
//! stops working; removed, they cannot log in. The password is never an argument.

use std::process::{Output, Stdio};

use ferry_testkit::raw::{Raw, RawAnswer};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::common::{ferry, free_port, start_server_with};

/// `ferry ARGS --data-dir DIR` with `stdin` written to its standard input.
async fn run(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut all = args.to_vec();
    all.extend(["--data-dir", dir.to_str().expect("utf-8 path")]);
    let mut child = ferry(&all)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferry");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    child.wait_with_output().await.expect("ferry exits")
}

fn said(out: &Output) -> String {
    format!(
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn login(raw: &Raw, name: &str, password: &str) -> RawAnswer {
    raw.send(
        "POST",
        "/v1/auth/login",
        &[("Content-Type", "application/json")],
        json!({"name": name, "password": password})
            .to_string()
            .as_bytes(),
    )
    .await
}

#[tokio::test]
async fn an_operator_adds_a_user_who_logs_in_changes_their_password_and_is_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let first = "first long password";
    let added = run(
        d,
        &[
            "user",
            "add",
            "Ana@Example.com",
            "--role",
            "editor",
            "--password-stdin",
        ],
        &format!("{first}\n"),
    )
    .await;
    assert!(added.status.success(), "{}", said(&added));
    assert_eq!(
        String::from_utf8_lossy(&added.stdout).trim(),
        "ana@example.com"
    );
    let listed = run(d, &["user", "list"], "").await;
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("ana@example.com\teditor"),
        "{}",
        said(&listed)
    );
    // Bad input: one line and a non-zero exit; no terminal and no --password-stdin.
    for (args, stdin, code, says) in [
        (
            vec!["user", "add", "bo@example.com", "--password-stdin"],
            "short\n",
            1,
            "password",
        ),
        (
            vec!["user", "add", "bo@example.com"],
            "",
            1,
            "--password-stdin",
        ),
        (
            vec![
                "user",
                "add",
                "bo@example.com",
                "--role",
                "worker",
                "--password-stdin",
            ],
            "long enough pass\n",
            1,
            "role",
        ),
        (
            vec!["user", "passwd", "nobody@example.com", "--password-stdin"],
            "long enough pass\n",
            5,
            "not found",
        ),
    ] {
        let out = run(d, &args, stdin).await;
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", said(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(says) && err.trim().lines().count() == 1,
            "{args:?}: {err}"
        );
    }

    let key = run(d, &["key", "create", "--role", "admin"], "").await;
    assert!(key.status.success(), "{}", said(&key));
    let key = String::from_utf8_lossy(&key.stdout).trim().to_owned();

    // The server logs everything it would (debug, request traces) into a file, which must
    // hold no password, key, session or CSRF token.
    let log_path = d.join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = free_port();
    let mut server = start_server_with(d, port, &[], |c| {
        c.env("FERRY_LOG", "debug,tower_http=trace")
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
    })
    .await;
    let raw = Raw {
        base: format!("http://127.0.0.1:{port}"),
    };
    let session = login(&raw, "ana@example.com", first).await;
    assert_eq!(session.status, 200, "{session:?}");
    assert_eq!(session.body["role"], "editor");
    let cookie = session
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_owned();
    let headers = [("Cookie", cookie.as_str())];
    let me = || raw.send("GET", "/v1/auth/me", &headers, b"");
    assert_eq!(me().await.status, 200);

    let second = "second long password";
    let changed = run(
        d,
        &["user", "passwd", "ana@example.com", "--password-stdin"],
        &format!("{second}\n"),
    )
    .await;
    assert!(changed.status.success(), "{}", said(&changed));
    assert_eq!(me().await.status, 401, "a new password ends the sessions");
    assert_eq!(login(&raw, "ana@example.com", first).await.status, 401);
    assert_eq!(login(&raw, "ana@example.com", second).await.status, 200);

    let by_key = raw.json("GET", "/v1/users", &key, "").await;
    assert_eq!(by_key.status, 200, "{by_key:?}");
    let wrong = raw
        .json(
            "GET",
            "/v1/users",
            // The key with its last character changed (never to itself).
            &format!(
                "{}{}",
                &key[..key.len() - 1],
                if key.ends_with('x') { 'y' } else { 'x' }
            ),
            "",
        )
        .await;
    assert_eq!(wrong.status, 401);
    let csrf = session.body["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_owned();
    let cookie_value = cookie.split_once('=').expect("name=value").1.to_owned();

    let removed = run(d, &["user", "rm", "ana@example.com"], "").await;
    assert!(removed.status.success(), "{}", said(&removed));
    assert_eq!(login(&raw, "ana@example.com", second).await.status, 401);
    let again = run(d, &["user", "rm", "ana@example.com"], "").await;
    assert_eq!(again.status.code(), Some(5), "{}", said(&again));
    server.kill().await.expect("stop server");
    let logged = std::fs::read_to_string(&log_path).expect("the log");
    assert!(
        logged.contains("/v1/auth/login"),
        "the log has the requests: {logged}"
    );
    for (what, secret) in [
        ("a password", first),
        ("a password", second),
        ("a key", &key[14..]),
        ("a session token", &cookie_value[3..]),
        ("a CSRF token", &csrf),
    ] {
        assert!(!logged.contains(secret), "{what} in the server's log");
    }
}

/// With the configured tokens off, `ferry serve --with-worker` (whose worker would use the
/// configured worker token) refuses to start, in one line.
#[tokio::test]
async fn an_embedded_worker_needs_the_configured_tokens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = ferry(&[
        "serve",
        "--with-worker",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().expect("utf-8 path"),
    ])
    .env("FERRY_CONFIGURED_TOKENS", "false")
    .output()
    .await
    .expect("run ferry");
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("configured_tokens") && err.trim().lines().count() == 1,
        "{err}"
    );
}
