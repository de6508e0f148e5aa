//! What the process tests share: running the real `ferry` binary with a clean environment,
//! and starting `ferry serve` on a free port with known tokens.

use std::{path::Path, process::Stdio, time::Duration};

use ferry_client::Client;
use ferry_core::Secret;
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_ferry");
pub const API: &str = "proc-api-token";
pub const WORKER: &str = "proc-worker-token";

/// `ferry ARGS` with no `FERRY_*` or `OTEL_*` from the test's environment (but quiet logs).
pub fn ferry(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).kill_on_drop(true).stdin(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("FERRY_") || key.starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("FERRY_LOG", "warn");
    cmd
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `ferry serve` on SQLite in `dir`, with the `API` and `WORKER` tokens, once it answers.
pub async fn start_server(dir: &Path, port: u16, extra: &[&str]) -> Child {
    start_server_with(dir, port, extra, |_| {}).await
}

/// [`start_server`], with the command changed by `tweak` first (its environment, where
/// its output goes).
pub async fn start_server_with(
    dir: &Path,
    port: u16,
    extra: &[&str],
    tweak: impl FnOnce(&mut Command),
) -> Child {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "serve",
        "--listen",
        &listen,
        "--data-dir",
        dir.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let mut command = ferry(&args);
    command
        .env("FERRY_API_TOKEN", API)
        .env("FERRY_WORKER_TOKEN", WORKER)
        // The tests' sites and receivers are on 127.0.0.1 (the operator's switch).
        .env("FERRY_EGRESS_ALLOW_PRIVATE", "true");
    tweak(&mut command);
    let child = command.spawn().expect("spawn ferry serve");
    wait_healthy(port).await;
    child
}

pub async fn wait_healthy(port: u16) {
    let client =
        Client::new(&format!("http://127.0.0.1:{port}"), Secret::new(API)).expect("client");
    for _ in 0..200 {
        if client.health().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("ferry serve did not come up on port {port}");
}
