//! A SQLite database whose disk fills up, or that cannot be written at all: a real server
//! on a real small file system (a tmpfs this test mounts, so it runs as root, as CI does).
//! Every `202` must survive a restart, a write that cannot be made is a `503` with
//! `Retry-After`, and writes work again once there is room.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use ferry_core::{JobId, Secret, SystemClock};
use ferry_server::{RunningServer, ServerConfig, StartOptions};
use ferry_store::Store;
use ferry_testkit::{API_TOKEN, WORKER_TOKEN, raw::Raw};
use tokio_util::sync::CancellationToken;

/// A tmpfs of `size` mounted on a fresh directory; unmounted (and removed) on drop.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let uid = Command::new("id").arg("-u").output().expect("run id -u");
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "0",
            "this test mounts a tmpfs and must run as root (CI does)"
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("ferry-small-disk-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a tmpfs on {}", dir.display());
        SmallDisk { dir }
    }

    /// Gives the disk more room (a tmpfs grows in place).
    fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "grow the tmpfs on {}", self.dir.display());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

async fn serve(db: &Path) -> RunningServer {
    let store = Store::open_sqlite(db).await.expect("open sqlite store");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind 127.0.0.1");
    ferry_server::start(StartOptions {
        listener,
        store,
        clock: Arc::new(SystemClock),
        config: ServerConfig::new(Secret::new(API_TOKEN), Secret::new(WORKER_TOKEN)),
        services: false,
        shutdown: CancellationToken::new(),
    })
    .expect("start server")
}

/// Submits one job with a `bytes`-long payload; answers the status and the id when `202`.
async fn submit(raw: &Raw, bytes: usize) -> (u16, Option<JobId>, ferry_testkit::raw::RawAnswer) {
    let body = serde_json::json!({"kind": "disk.fill", "payload": {"pad": "x".repeat(bytes)}});
    let answer = raw
        .json("POST", "/v1/jobs", API_TOKEN, &body.to_string())
        .await;
    let id = answer.body["id"].as_str().and_then(|s| s.parse().ok());
    (answer.status, id, answer)
}

#[tokio::test]
async fn a_full_disk_answers_503_keeps_every_accepted_job_and_recovers() {
    let disk = SmallDisk::mount("4m");
    let db = disk.dir.join("ferry.db");
    // Room to give back later: freeing it is how space "returns".
    let filler = disk.dir.join("filler");
    std::fs::write(&filler, vec![0u8; 1 << 20]).expect("write the filler file");
    let server = serve(&db).await;
    let raw = Raw {
        base: format!("http://{}", server.addr),
    };

    let mut accepted = Vec::new();
    let mut refused = 0;
    for _ in 0..400 {
        let (status, id, answer) = submit(&raw, 32 * 1024).await;
        match status {
            202 => accepted.push(id.expect("a 202 names its job")),
            503 => {
                assert_eq!(answer.code(), "STORAGE_UNAVAILABLE", "{:?}", answer.body);
                assert!(
                    answer.header("retry-after").is_some(),
                    "503 says when to retry"
                );
                refused += 1;
                if refused == 5 {
                    break;
                }
            }
            other => panic!("a full disk answered {other}: {:?}", answer.body),
        }
    }
    assert_eq!(refused, 5, "the 4 MiB disk never filled up");
    assert!(!accepted.is_empty(), "some jobs fit before the disk filled");
    // Take the last free blocks too: health says the store cannot write.
    let rest = disk.dir.join("rest");
    let mut rest_file = std::fs::File::create(&rest).expect("create the second filler");
    while std::io::Write::write_all(&mut rest_file, &[0u8; 4096]).is_ok() {}
    drop(rest_file);
    let health = raw.json("GET", "/healthz", API_TOKEN, "").await;
    assert_eq!(
        health.status, 503,
        "health reports a store that cannot write"
    );
    assert_eq!(health.code(), "STORAGE_UNAVAILABLE");

    // Space comes back: writes work again (within a bounded wait), without a restart.
    assert_eq!(submit(&raw, 32 * 1024).await.0, 503);
    std::fs::remove_file(&filler).expect("remove the filler file");
    std::fs::remove_file(&rest).expect("remove the second filler");
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let (status, id, answer) = submit(&raw, 1024).await;
        if status == 202 {
            break id.expect("a 202 names its job");
        }
        assert_eq!(status, 503, "{:?}", answer.body);
        assert!(Instant::now() < deadline, "writes never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    accepted.push(after);
    assert_eq!(raw.json("GET", "/healthz", API_TOKEN, "").await.status, 200);

    // Every job answered 202 is there after a restart. Closing checkpoints the WAL into the
    // database file, which needs room the test took away again: the disk grows first.
    server.shutdown().await;
    disk.grow("16m");
    let store = Store::open_sqlite(&db).await.expect("reopen sqlite store");
    for id in &accepted {
        store
            .job_get(ferry_core::DEFAULT_TENANT, *id)
            .await
            .unwrap_or_else(|e| panic!("job {id} was answered 202 but is gone: {e}"));
    }
    store.close().await;
}

#[tokio::test]
async fn a_read_only_database_refuses_to_start() {
    let disk = SmallDisk::mount("4m");
    let db = disk.dir.join("ferry.db");
    Store::open_sqlite(&db)
        .await
        .expect("create the database")
        .close()
        .await;
    // The store's last files close a moment after `close` (its checkpointer stops on drop);
    // a file system with files open for writing cannot become read-only.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&disk.dir)
        .status()
        .expect("run mount")
        .success()
    {
        assert!(Instant::now() < deadline, "remount read-only");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let error = Store::open_sqlite(&db)
        .await
        .expect_err("a database that cannot be written does not open");
    assert!(
        matches!(error, ferry_store::StoreError::Storage(_)),
        "a storage error, not a crash later: {error:?}"
    );
}
