//! Test helpers for Ferry and for Ferry's users: start a real server on a random port
//! against a fresh database ([`TestServer`]), serve a local site for handlers to call
//! ([`fixture`]), and build job specs with sensible defaults ([`job`]).

pub mod faults;
pub use ferry_demo_site as fixture;
pub mod flow;
pub mod handlers;
pub mod otlp;
pub mod pg;
pub mod prom;
pub mod proxies;
pub mod tcp_proxy;

use std::{sync::Arc, time::Duration};

use ferry_client::Client;
use ferry_core::{Clock, ManualClock, Secret, SystemClock, api::SubmitJob};
use ferry_server::{
    Queue, RunningServer, ServerConfig, StartOptions,
    services::{Cleaner, LeaseRescuer, Scheduler, Service, TimeoutEnforcer},
};
use ferry_store::{DatabaseUrl, Durability, Store};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub const API_TOKEN: &str = "test-api-token";
pub const WORKER_TOKEN: &str = "test-worker-token";

/// A job spec with defaults; change fields on the result as needed.
pub fn job(kind: &str, payload: Value) -> SubmitJob {
    SubmitJob::new(kind, payload)
}

/// A `browser.run` summary without its `step_ms` (how long each step took), after
/// checking there is one number per step: what is left compares exactly.
pub fn untimed(summary: &Value) -> Value {
    let mut rest = summary.clone();
    let timings = rest
        .as_object_mut()
        .and_then(|o| o.remove("step_ms"))
        .unwrap_or_else(|| panic!("no step_ms in {summary}"));
    let steps = summary["steps"].as_u64().unwrap_or_default();
    let all_numbers = timings
        .as_array()
        .is_some_and(|t| t.len() as u64 == steps && t.iter().all(Value::is_u64));
    assert!(all_numbers, "one time per step in {summary}");
    rest
}

/// How to start a [`TestServer`].
#[derive(Debug)]
pub struct TestServerBuilder {
    services: bool,
    clock: Option<Arc<ManualClock>>,
    config: ServerConfig,
    addr: Option<std::net::SocketAddr>,
    backend: Backend,
    /// Use this PostgreSQL database instead of a fresh one (several instances, one database).
    shared_database: Option<String>,
    /// Keep artifacts in the server's temporary directory (as `ferry serve` does).
    artifacts: bool,
}

/// Which database a [`TestServer`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `FERRY_TEST_BACKEND=postgres` runs the server-level tests on PostgreSQL;
    /// `./scripts/test.sh` runs them once per backend.
    pub fn from_env() -> Backend {
        match std::env::var("FERRY_TEST_BACKEND").as_deref() {
            Ok("postgres") => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }
}

impl TestServerBuilder {
    /// Run the maintenance services on their tickers (default: off; tests call
    /// [`TestServer::run_maintenance`] instead).
    pub fn with_services(mut self) -> Self {
        self.services = true;
        self
    }

    /// Drive the server with a manual clock.
    pub fn with_clock(mut self, clock: Arc<ManualClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Run on an existing PostgreSQL database (e.g. another TestServer's).
    pub fn on_database(mut self, url: &str) -> Self {
        self.backend = Backend::Postgres;
        self.shared_database = Some(url.to_owned());
        self
    }

    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self
    }

    /// Listen on this address instead of a random port.
    pub fn listen_on(mut self, addr: std::net::SocketAddr) -> Self {
        self.addr = Some(addr);
        self
    }

    /// A server without an artifact store (uploads answer `ARTIFACTS_DISABLED`).
    pub fn without_artifacts(mut self) -> Self {
        self.artifacts = false;
        self
    }

    pub fn configure(mut self, f: impl FnOnce(&mut ServerConfig)) -> Self {
        f(&mut self.config);
        self
    }

    pub async fn spawn(self) -> TestServer {
        let dir = tempfile::tempdir().expect("create temp dir");
        let mut database_url = None;
        let (store, database) = match self.backend {
            Backend::Sqlite => {
                let path = dir.path().join("ferry.db");
                (
                    Store::open_sqlite(&path).await.expect("open sqlite store"),
                    None,
                )
            }
            Backend::Postgres => {
                let (url, db) = match &self.shared_database {
                    Some(url) => (url.clone(), None),
                    None => {
                        let db = pg::TestDatabase::create().await;
                        (db.url.clone(), Some(db))
                    }
                };
                let store = Store::open(&DatabaseUrl::Postgres(url.clone()), Durability::Normal)
                    .await
                    .expect("open postgres store");
                database_url = Some(url);
                (store, db)
            }
        };
        let listener =
            tokio::net::TcpListener::bind(self.addr.unwrap_or(([127, 0, 0, 1], 0).into()))
                .await
                .expect("bind 127.0.0.1");
        let clock: Arc<dyn Clock> = match &self.clock {
            Some(c) => c.clone(),
            None => Arc::new(SystemClock),
        };
        let shutdown = CancellationToken::new();
        let mut config = self.config;
        if self.artifacts && config.artifacts.is_none() {
            config.artifacts = Some(
                ferry_server::local_artifacts(&dir.path().join("artifacts")).expect("artifact dir"),
            );
        }
        let running = ferry_server::start(StartOptions {
            listener,
            store,
            clock,
            config,
            services: self.services,
            shutdown: shutdown.clone(),
        })
        .expect("start server");
        let url = format!("http://{}", running.addr);
        TestServer {
            api: Client::new(&url, Secret::new(API_TOKEN)).expect("api client"),
            worker: Client::new(&url, Secret::new(WORKER_TOKEN)).expect("worker client"),
            queue: running.queue.clone(),
            url,
            clock: self.clock,
            running: Some(running),
            _dir: dir,
            database_url,
            _database: database,
        }
    }
}

/// A real Ferry server on 127.0.0.1 and a random port, on a fresh SQLite database in
/// a temporary directory that lives as long as this value.
#[derive(Debug)]
pub struct TestServer {
    pub url: String,
    /// A client with the API token.
    pub api: Client,
    /// A client with the worker token.
    pub worker: Client,
    pub queue: Arc<Queue>,
    pub clock: Option<Arc<ManualClock>>,
    /// The PostgreSQL database, when the server runs on one.
    pub database_url: Option<String>,
    running: Option<RunningServer>,
    _dir: tempfile::TempDir,
    _database: Option<pg::TestDatabase>,
}

impl TestServer {
    pub fn builder() -> TestServerBuilder {
        let mut config = ServerConfig::new(Secret::new(API_TOKEN), Secret::new(WORKER_TOKEN));
        config.services.rescue_interval = Duration::from_millis(200);
        config.services.timeout_interval = Duration::from_millis(200);
        config.services.schedule_interval = Duration::from_millis(200);
        // The test sites are on 127.0.0.1: the operator's switch, as a deployment on a
        // private network would set it. The egress tests put the default back.
        config.egress.allow_private = true;
        TestServerBuilder {
            services: false,
            clock: None,
            config,
            addr: None,
            backend: Backend::from_env(),
            shared_database: None,
            artifacts: true,
        }
    }

    /// The default test server: system clock, maintenance stepped by hand.
    pub async fn spawn() -> TestServer {
        Self::builder().spawn().await
    }

    /// Waits (up to 10 s) until `n` claims long-poll on this server, asleep until work
    /// arrives: what a test does next then wakes them.
    pub async fn claims_waiting(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.queue.waiting_claims() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} claims wait, not {n}",
                self.queue.waiting_claims()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The whole event record once `ready` holds for it (or after 10 s: then as it is). On
    /// PostgreSQL an event shows once every older transaction has ended, and other tests on
    /// the same server may hold one for a moment.
    pub async fn events_when(
        &self,
        ready: impl Fn(&[ferry_core::api::Event]) -> bool,
    ) -> Vec<ferry_core::api::Event> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.api.all_events(0).await.expect("events");
            if ready(&events) || tokio::time::Instant::now() > deadline {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The event record once every job in `jobs` has its final event in it.
    pub async fn events_through(&self, jobs: &[ferry_core::Job]) -> Vec<ferry_core::api::Event> {
        self.events_when(|events| {
            jobs.iter().all(|j| {
                events.iter().any(|e| {
                    e.job_id == Some(j.id)
                        && matches!(
                            e.event_type.as_str(),
                            "job.completed" | "job.failed" | "job.cancelled"
                        )
                })
            })
        })
        .await
    }

    /// Waits (up to `timeout`) until the job is final; answers it as it is then.
    pub async fn wait_final(&self, id: ferry_core::JobId, timeout: Duration) -> ferry_core::Job {
        self.queue
            .wait_final(ferry_core::DEFAULT_TENANT, id, timeout)
            .await
            .expect("read job")
    }

    /// One pass of every maintenance service, in a fixed order.
    pub async fn run_maintenance(&self) -> u64 {
        let q = &self.queue;
        let mut n = 0;
        n += LeaseRescuer::new(q.clone())
            .run_once()
            .await
            .expect("rescuer");
        n += TimeoutEnforcer::new(q.clone())
            .run_once()
            .await
            .expect("timeouts");
        n += Scheduler::new(q.clone())
            .run_once()
            .await
            .expect("scheduler");
        n += Cleaner::new(q.clone()).run_once().await.expect("cleaner");
        n
    }

    /// The SQLite database file, when the server runs on SQLite.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        self.database_url
            .is_none()
            .then(|| self._dir.path().join("ferry.db"))
    }

    /// A plain HTTP client for requests the typed client would never send.
    pub fn raw(&self) -> raw::Raw {
        raw::Raw {
            base: self.url.clone(),
        }
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

/// Raw requests (bad JSON, wrong tokens) go through a tiny helper built on
/// tokio, so tests can send bytes the typed client would refuse to produce.
pub mod raw {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[derive(Debug, Clone)]
    pub struct Raw {
        pub base: String,
    }

    /// An answer: status code and body parsed as JSON (`Null` when it is not JSON).
    #[derive(Debug, Clone)]
    pub struct RawAnswer {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: serde_json::Value,
    }

    impl RawAnswer {
        pub fn code(&self) -> &str {
            self.body["error"]["code"].as_str().unwrap_or("")
        }

        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    impl Raw {
        /// Sends one HTTP/1.1 request with `Connection: close` and reads the answer.
        pub async fn send(
            &self,
            method: &str,
            path: &str,
            headers: &[(&str, &str)],
            body: &[u8],
        ) -> RawAnswer {
            let host = self.base.trim_start_matches("http://");
            let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
            let mut head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await.expect("write head");
            stream.write_all(body).await.expect("write body");
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await.expect("read answer");
            let text = String::from_utf8_lossy(&raw);
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let mut lines = head.lines();
            let status = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect();
            RawAnswer {
                status,
                headers,
                body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
            }
        }

        /// A JSON request with the given bearer token.
        pub async fn json(&self, method: &str, path: &str, token: &str, body: &str) -> RawAnswer {
            let auth = format!("Bearer {token}");
            self.send(
                method,
                path,
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                body.as_bytes(),
            )
            .await
        }
    }
}

/// Server-Sent Events read off a raw connection.
pub mod sse {
    use crate::API_TOKEN;

    /// Reads Server-Sent Events from a raw connection until `n` events came (or 10 s).
    pub async fn read(
        base: &str,
        path: &str,
        last_event_id: Option<i64>,
        n: usize,
    ) -> Vec<(i64, String, serde_json::Value)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
        let mut head = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {API_TOKEN}\r\nAccept: text/event-stream\r\n"
        );
        if let Some(id) = last_event_id {
            head.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut text = String::new();
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut buf = [0u8; 8192];
        while events.len() < n {
            let read = tokio::time::timeout_at(deadline, stream.read(&mut buf))
                .await
                .expect("events in time")
                .expect("read");
            assert!(read > 0, "the stream ended early: {text}");
            text.push_str(&String::from_utf8_lossy(&buf[..read]));
            events = text
                .split("\n\n")
                .filter_map(|block| {
                    let field = |name: &str| {
                        block
                            .lines()
                            .find_map(|l| l.strip_prefix(name))
                            .map(|v| v.trim().to_owned())
                    };
                    let id = field("id:")?.parse().ok()?;
                    let data = serde_json::from_str(&field("data:")?).ok()?;
                    Some((id, field("event:")?, data))
                })
                .collect();
        }
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            text.to_lowercase()
                .contains("content-type: text/event-stream")
        );
        events.truncate(n);
        events
    }
}
