//! The server's settings, with documented defaults. The binary fills this in from
//! flags, `FERRY_*` environment variables and `ferry.toml`.

use std::{sync::Arc, time::Duration};

use ferry_core::{
    Secret, TenantId,
    validate::{JobDefaults, LeaseBounds},
};

use object_store::ObjectStore;

use crate::{sealing::SealingKey, services::ServiceConfig};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The tenant the API and worker tokens act in (default `default`).
    pub tenant: TenantId,
    /// Bearer token of the client API (`/v1/jobs…`).
    pub api_token: Secret,
    /// Bearer token of the worker API (`/v1/worker/…`).
    pub worker_token: Secret,
    /// What a job spec leaves out.
    pub job_defaults: JobDefaults,
    /// Lease length and long-poll bounds of claims.
    pub lease: LeaseBounds,
    /// Largest request body accepted (default 8 MiB).
    pub max_body_bytes: usize,
    /// Most jobs in one `POST /v1/jobs/batch` (default 1,000).
    pub max_batch_jobs: usize,
    /// Most items in one `POST /v1/batches` (default 10,000).
    pub max_batch_items: usize,
    /// Longest `POST /v1/jobs?wait=` a client may ask for (default 60 s).
    pub max_sync_wait: Duration,
    /// Background maintenance.
    pub services: ServiceConfig,
    /// On a shared database (PostgreSQL), how often an idle long-poll re-checks even
    /// without a wake-up (default 2 s).
    pub shared_poll_interval: Duration,
    /// How often an idle event stream looks for new events without a wake-up (default
    /// 1 s). Writes through any instance wake streams at once; this catches the rest.
    pub event_poll_interval: Duration,
    /// Seals what the server keeps secret at rest: saved browser sessions and webhook
    /// secrets. Default: a random key for this process only; `ferry serve` keeps one in the
    /// data dir (`session.key`) or takes `FERRY_SESSION_KEY` (names kept from when it sealed
    /// sessions only). Every instance of one database must share it.
    pub sealing_key: SealingKey,
    /// Where job artifacts (screenshots, HTML, network logs) are kept; `ferry serve` uses
    /// `<data-dir>/artifacts`. `None` refuses uploads (`ARTIFACTS_DISABLED`).
    pub artifacts: Option<Arc<dyn ObjectStore>>,
    /// Largest artifact a worker may upload (default 25 MiB).
    pub max_artifact_bytes: usize,
    /// How long a client may take to send a request's headers (default 10 s); the
    /// connection is closed after that.
    pub header_read_timeout: Duration,
    /// Most event streams (`GET /v1/events` as `text/event-stream`) one client (its
    /// address) may hold open (default 100); one more is answered `429 TOO_MANY_STREAMS`.
    pub max_streams_per_client: usize,
    /// Most event streams open on this server in all (default 10,000).
    pub max_streams: usize,
    /// Most wrong credentials one client address may send per minute (default 60); more
    /// are answered `429 TOO_MANY_AUTH_FAILURES` until the minute is over.
    pub max_auth_failures_per_minute: u32,
    /// Mark the session cookie `Secure` (sent over HTTPS only): set it when users reach
    /// the server over HTTPS (default off, so a login over plain HTTP on a LAN works).
    pub secure_cookies: bool,
    /// Whether the configured API and worker tokens are honoured (default on). Switch them
    /// off once every client and worker uses a key or worker token of its own.
    pub configured_tokens: bool,
    /// Bearer token of `GET /metrics` (Prometheus' `authorization` in its scrape config).
    /// `None`: the configured API token reads them (when configured tokens are on).
    pub metrics_token: Option<Secret>,
    /// The operator's egress rules, added to every tenant's (`ferry-core::egress`): by
    /// default internal addresses are denied; `allow_private` allows them for the whole
    /// deployment, `allow` names internal hosts any tenant may reach.
    pub egress: ferry_core::egress::EgressPolicy,
}

impl ServerConfig {
    pub fn new(api_token: Secret, worker_token: Secret) -> Self {
        Self {
            tenant: TenantId::default(),
            api_token,
            worker_token,
            job_defaults: JobDefaults::default(),
            lease: LeaseBounds::default(),
            max_body_bytes: 8 * 1024 * 1024,
            max_batch_jobs: 1_000,
            max_batch_items: 10_000,
            max_sync_wait: Duration::from_secs(60),
            services: ServiceConfig::default(),
            shared_poll_interval: Duration::from_secs(2),
            event_poll_interval: Duration::from_secs(1),
            sealing_key: SealingKey::generate(),
            artifacts: None,
            max_artifact_bytes: 25 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            max_streams_per_client: 100,
            max_streams: 10_000,
            max_auth_failures_per_minute: 60,
            secure_cookies: false,
            configured_tokens: true,
            metrics_token: None,
            egress: ferry_core::egress::EgressPolicy::default(),
        }
    }
}
