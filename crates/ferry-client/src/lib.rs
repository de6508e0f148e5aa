//! A typed HTTP client for Ferry's client API (`/v1/jobs…`) and worker API
//! (`/v1/worker/…`). The worker runtime, the CLI and the tests all speak the API
//! through it, so the protocol has one Rust implementation.

use std::{
    sync::{
        Arc, Once,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
    time::Duration,
};

mod security;

use ferry_core::{
    ErrorCode, FieldError, Job, JobId, Secret,
    api::{
        ApiErrorBody, BatchCompleteEntry, BatchCompleteRequest, BatchCompleteResponse,
        ClaimRequest, ClaimResponse, ClaimedJob, CompleteRequest, FailError, FailRequest, Health,
        HeartbeatRequest, ItemPage, JobPage, JobsCreated, LeaseStatus, PausedKinds,
        ProgressRequest, SubmitBatch, SubmitJob,
    },
    api::{
        ArtifactInfo, ArtifactList, SessionList, SessionLoadRequest, SessionLoadResponse,
        SessionSaveRequest,
    },
};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body (every bad field named, when there are
    /// several).
    #[error("{code} ({status}): {}", api_message(message, fields))]
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
        fields: Vec<FieldError>,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the ferry server: {0}")]
    Transport(#[source] reqwest::Error),
    /// The server answered something that is not Ferry's API.
    #[error("unexpected answer from the server ({status}): {message}")]
    Protocol { status: u16, message: String },
    #[error("invalid server URL {0:?}: expected http(s)://host:port")]
    InvalidUrl(String),
    /// A download could not be written where it was asked to go.
    #[error("cannot write the download: {0}")]
    Write(#[source] std::io::Error),
}

/// The message, or with several bad fields each of them (`field: message; …`).
fn api_message(message: &str, fields: &[FieldError]) -> String {
    if fields.len() < 2 {
        return message.to_owned();
    }
    fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ClientError {
    /// The API error code, if the server answered one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The HTTP status the server answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Protocol { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth trying again later: the server or the network is having a moment.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport(_) => true,
            ClientError::Api { status, .. } | ClientError::Protocol { status, .. } => {
                *status == 429 || *status >= 500
            }
            ClientError::InvalidUrl(_) | ClientError::Write(_) => false,
        }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// What [`Client::submit_detailed`] answers.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub job: Job,
    /// `false` when a dedupe key matched: `job` is the existing one, nothing was created.
    pub created: bool,
}

/// Filters of `GET /v1/jobs`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub status: Option<String>,
    pub kind: Option<String>,
    /// `key:value` pairs; all must match.
    pub labels: Vec<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// Only the jobs this job's chain enqueued.
    pub parent: Option<String>,
    /// Only jobs whose kind or dedupe key contains this text (any case).
    pub search: Option<String>,
}

/// One connection to one Ferry server with one token (an API token for the client
/// calls, a worker token for the worker calls).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// One or more instances of the same Ferry deployment.
    bases: Arc<Vec<String>>,
    /// Which of `bases` requests go to; moves on when one cannot be reached or keeps
    /// answering `503`.
    current: Arc<AtomicUsize>,
    /// `503` answers in a row from the current instance.
    unavailable: Arc<AtomicU32>,
    token: Secret,
    timeout: Duration,
}

static CRYPTO: Once = Once::new();

/// How many `503` answers in a row from one instance make a client with several instances
/// move to the next one.
pub const UNAVAILABLE_IN_A_ROW: u32 = 3;

/// The error a non-2xx answer stands for.
fn error_answer(status: StatusCode, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<ApiErrorBody>(bytes) {
        Ok(body) => ClientError::Api {
            status: status.as_u16(),
            code: body.error.code,
            message: body.error.message,
            fields: body.error.fields,
        },
        Err(_) => ClientError::Protocol {
            status: status.as_u16(),
            message: String::from_utf8_lossy(bytes).chars().take(200).collect(),
        },
    }
}

/// Installs ring as the process's TLS crypto provider (Ferry uses exactly one). Called
/// by [`Client::new`]; call it yourself before building another rustls-based client.
pub fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        // Err only means another provider was installed first; that one is used then.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Client {
    /// A client for the server at `base_url`, or for several instances of one deployment
    /// given as a comma-separated list (`http://a:7878,http://b:7878`): requests go to one
    /// of them and move to the next when it cannot be reached, or after it answered
    /// [`UNAVAILABLE_IN_A_ROW`] `503`s in a row (an instance cut off from its database).
    pub fn new(base_url: &str, token: Secret) -> ClientResult<Self> {
        let mut bases = Vec::new();
        for url in base_url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let base = url.trim_end_matches('/').to_owned();
            if !(base.starts_with("http://") || base.starts_with("https://"))
                || base.len() < "http://x".len()
            {
                return Err(ClientError::InvalidUrl(url.to_owned()));
            }
            bases.push(base);
        }
        if bases.is_empty() {
            return Err(ClientError::InvalidUrl(base_url.to_owned()));
        }
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Transport)?;
        Ok(Self {
            http,
            bases: Arc::new(bases),
            current: Arc::default(),
            unavailable: Arc::default(),
            token,
            timeout: Duration::from_secs(30),
        })
    }

    /// The base URL requests go to now.
    pub fn base_url(&self) -> &str {
        &self.bases[self.current.load(Ordering::Relaxed) % self.bases.len()]
    }

    /// The next request goes to the instance after `was` (the one a failed request went
    /// to); requests that failed together on one instance move on once.
    fn fail_over(&self, was: usize, why: &'static str) {
        if self.bases.len() < 2 {
            return;
        }
        let next = was.wrapping_add(1);
        if self
            .current
            .compare_exchange(was, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.unavailable.store(0, Ordering::Relaxed);
            let from = &self.bases[was % self.bases.len()];
            let to = &self.bases[next % self.bases.len()];
            tracing::warn!(%from, %to, why, "failing over to the next server");
        }
    }

    /// Counts a `503` from instance `was`; fails over after enough in a row.
    fn unavailable_answer(&self, was: usize) {
        if self.current.load(Ordering::Relaxed) != was {
            return;
        }
        if self.unavailable.fetch_add(1, Ordering::Relaxed) + 1 >= UNAVAILABLE_IN_A_ROW {
            self.fail_over(was, "server answers 503");
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url()))
            .bearer_auth(self.token.expose())
            .timeout(self.timeout)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
    ) -> ClientResult<(StatusCode, T)> {
        let (status, bytes) = self.send_raw(req).await?;
        let value = serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
            status: status.as_u16(),
            message: format!("cannot decode the answer: {e}"),
        })?;
        Ok((status, value))
    }

    /// Sends and reads the whole answer; a non-2xx answer is an error.
    async fn send_raw(&self, req: RequestBuilder) -> ClientResult<(StatusCode, bytes::Bytes)> {
        let was = self.current.load(Ordering::Relaxed);
        let response = req.send().await.map_err(|e| {
            self.fail_over(was, "server unreachable");
            ClientError::Transport(e)
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            self.fail_over(was, "server unreachable");
            ClientError::Transport(e)
        })?;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            self.unavailable_answer(was);
        } else if self.current.load(Ordering::Relaxed) == was {
            self.unavailable.store(0, Ordering::Relaxed);
        }
        if status.is_success() {
            return Ok((status, bytes));
        }
        Err(error_answer(status, &bytes))
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> ClientResult<T> {
        Ok(self
            .send(self.request(Method::POST, path).json(body))
            .await?
            .1)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> ClientResult<T> {
        Ok(self.send(self.request(Method::GET, path)).await?.1)
    }

    // ---- client API ----

    /// `POST /v1/schedules`
    pub async fn create_schedule(
        &self,
        spec: &ferry_core::schedule::ScheduleSpec,
    ) -> ClientResult<ferry_core::schedule::Schedule> {
        self.post("/v1/schedules", spec).await
    }

    /// `GET /v1/schedules`
    pub async fn schedules(&self) -> ClientResult<ferry_core::schedule::ScheduleList> {
        self.get("/v1/schedules").await
    }

    /// `GET /v1/batches`: the newest `limit` batches, older than `before` if given.
    pub async fn batches(
        &self,
        before: Option<ferry_core::BatchId>,
        limit: u32,
    ) -> ClientResult<ferry_core::api::BatchList> {
        let mut path = format!("/v1/batches?limit={limit}");
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        self.get(&path).await
    }

    /// `POST /v1/schedules/{name}/run`: the schedule's job, enqueued now.
    pub async fn run_schedule(&self, name: &str) -> ClientResult<ferry_core::Job> {
        self.post(&format!("/v1/schedules/{name}/run"), &serde_json::json!({}))
            .await
    }

    /// `DELETE /v1/schedules/{name}`
    pub async fn delete_schedule(&self, name: &str) -> ClientResult<()> {
        self.send_raw(self.request(Method::DELETE, &format!("/v1/schedules/{name}")))
            .await
            .map(|_| ())
    }

    /// `GET /v1/datasets`
    pub async fn datasets(&self) -> ClientResult<ferry_core::dataset::DatasetList> {
        self.get("/v1/datasets").await
    }

    /// `GET /v1/datasets/{name}`
    pub async fn dataset(&self, name: &str) -> ClientResult<ferry_core::dataset::DatasetInfo> {
        self.get(&format!("/v1/datasets/{name}")).await
    }

    /// `GET /v1/datasets/{name}/items`: present items with `seq > after`.
    pub async fn dataset_items(
        &self,
        name: &str,
        after: i64,
        limit: u32,
    ) -> ClientResult<ferry_core::dataset::DatasetItemPage> {
        self.get(&format!(
            "/v1/datasets/{name}/items?after={after}&limit={limit}"
        ))
        .await
    }

    /// `GET /v1/datasets/{name}/runs`: newest first.
    pub async fn dataset_runs(
        &self,
        name: &str,
    ) -> ClientResult<ferry_core::dataset::DatasetRunList> {
        self.get(&format!("/v1/datasets/{name}/runs")).await
    }

    /// `DELETE /v1/datasets/{name}`
    pub async fn delete_dataset(&self, name: &str) -> ClientResult<()> {
        self.send_raw(self.request(Method::DELETE, &format!("/v1/datasets/{name}")))
            .await
            .map(|_| ())
    }

    /// `GET /v1/datasets/{name}/export`: writes the export to `out` as it arrives (never
    /// whole in memory); answers how many bytes were written.
    pub async fn export_dataset(
        &self,
        name: &str,
        format: ferry_core::dataset::ExportFormat,
        out: &mut dyn std::io::Write,
    ) -> ClientResult<u64> {
        // A large export may take longer than one API call is given.
        let req = self
            .request(Method::GET, &format!("/v1/datasets/{name}/export"))
            .query(&[("format", format.as_str())])
            .timeout(Duration::from_secs(6 * 3600));
        let mut response = req.send().await.map_err(ClientError::Transport)?;
        if !response.status().is_success() {
            let status = response.status();
            let bytes = response.bytes().await.map_err(ClientError::Transport)?;
            return Err(error_answer(status, &bytes));
        }
        let mut written = 0;
        while let Some(chunk) = response.chunk().await.map_err(ClientError::Transport)? {
            out.write_all(&chunk).map_err(ClientError::Write)?;
            written += chunk.len() as u64;
        }
        out.flush().map_err(ClientError::Write)?;
        Ok(written)
    }

    /// `GET /v1/sessions`: names and sizes of saved sessions (never their contents).
    pub async fn sessions(&self) -> ClientResult<SessionList> {
        self.get("/v1/sessions").await
    }

    /// `DELETE /v1/sessions/{name}`
    pub async fn delete_session(&self, name: &str) -> ClientResult<()> {
        self.send_raw(self.request(Method::DELETE, &format!("/v1/sessions/{name}")))
            .await
            .map(|_| ())
    }

    /// `GET /v1/jobs/{id}/artifacts`
    pub async fn artifacts(&self, id: JobId) -> ClientResult<ArtifactList> {
        self.get(&format!("/v1/jobs/{id}/artifacts")).await
    }

    /// `GET /v1/jobs/{id}/artifacts/{name}`: the file's bytes.
    pub async fn artifact(&self, id: JobId, name: &str) -> ClientResult<Vec<u8>> {
        let req = self.request(Method::GET, &format!("/v1/jobs/{id}/artifacts/{name}"));
        Ok(self.send_raw(req).await?.1.to_vec())
    }

    pub async fn health(&self) -> ClientResult<Health> {
        self.get("/healthz").await
    }

    /// `POST /v1/jobs`: answers at once with the accepted job.
    pub async fn submit(&self, spec: &SubmitJob) -> ClientResult<Job> {
        self.post("/v1/jobs", spec).await
    }

    /// `POST /v1/jobs`, saying whether it created a job (`202`) or a dedupe key matched a
    /// job that answers in its place (`200`).
    pub async fn submit_detailed(&self, spec: &SubmitJob) -> ClientResult<Submitted> {
        let (status, job) = self
            .send(self.request(Method::POST, "/v1/jobs").json(spec))
            .await?;
        Ok(Submitted {
            job,
            created: status != StatusCode::OK,
        })
    }

    /// `POST /v1/jobs?wait=`: the job, finished if it finished within `wait`.
    pub async fn submit_and_wait(&self, spec: &SubmitJob, wait: Duration) -> ClientResult<Job> {
        let req = self
            .request(Method::POST, "/v1/jobs")
            .query(&[("wait", wait.as_secs_f64().to_string())])
            .timeout(wait + self.timeout)
            .json(spec);
        Ok(self.send(req).await?.1)
    }

    /// `POST /v1/jobs/batch`: all or none, in one transaction.
    pub async fn submit_batch(&self, jobs: Vec<SubmitJob>) -> ClientResult<Vec<Job>> {
        let created: JobsCreated = self.post("/v1/jobs/batch", &SubmitBatch { jobs }).await?;
        Ok(created.jobs)
    }

    pub async fn job(&self, id: JobId) -> ClientResult<Job> {
        self.get(&format!("/v1/jobs/{id}")).await
    }

    pub async fn list(&self, query: &ListQuery) -> ClientResult<JobPage> {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        pairs.extend(query.status.clone().map(|v| ("status", v)));
        pairs.extend(query.kind.clone().map(|v| ("kind", v)));
        pairs.extend(query.labels.iter().map(|v| ("label", v.clone())));
        pairs.extend(query.limit.map(|v| ("limit", v.to_string())));
        pairs.extend(query.cursor.clone().map(|v| ("cursor", v)));
        pairs.extend(query.parent.clone().map(|v| ("parent", v)));
        pairs.extend(query.search.clone().map(|v| ("search", v)));
        Ok(self
            .send(self.request(Method::GET, "/v1/jobs").query(&pairs))
            .await?
            .1)
    }

    pub async fn items(&self, id: JobId, after: i64, limit: u32) -> ClientResult<ItemPage> {
        self.get(&format!("/v1/jobs/{id}/items?after={after}&limit={limit}"))
            .await
    }

    /// `GET /v1/events`: the event record after `after`, oldest first.
    pub async fn events(&self, after: i64, limit: u32) -> ClientResult<ferry_core::api::EventPage> {
        self.get(&format!("/v1/events?after={after}&limit={limit}"))
            .await
    }

    /// Every event of the record after `after`, page by page.
    pub async fn all_events(&self, mut after: i64) -> ClientResult<Vec<ferry_core::api::Event>> {
        let mut all = Vec::new();
        loop {
            let page = self.events(after, 1_000).await?;
            if page.events.is_empty() {
                return Ok(all);
            }
            after = page.next_after;
            all.extend(page.events);
        }
    }

    pub async fn cancel(&self, id: JobId) -> ClientResult<Job> {
        self.post(&format!("/v1/jobs/{id}/cancel"), &serde_json::json!({}))
            .await
    }

    pub async fn retry(&self, id: JobId) -> ClientResult<Job> {
        self.post(&format!("/v1/jobs/{id}/retry"), &serde_json::json!({}))
            .await
    }

    /// `POST /v1/kinds/{pattern}/pause`: answers every paused pattern.
    pub async fn pause(&self, pattern: &str) -> ClientResult<PausedKinds> {
        self.post(
            &format!("/v1/kinds/{pattern}/pause"),
            &serde_json::json!({}),
        )
        .await
    }

    pub async fn resume(&self, pattern: &str) -> ClientResult<PausedKinds> {
        self.post(
            &format!("/v1/kinds/{pattern}/resume"),
            &serde_json::json!({}),
        )
        .await
    }

    pub async fn paused(&self) -> ClientResult<PausedKinds> {
        self.get("/v1/kinds/paused").await
    }

    /// `GET /v1/workers`: the tenant's workers heard from in the last day.
    pub async fn workers(&self) -> ClientResult<ferry_core::observe::WorkerList> {
        self.get("/v1/workers").await
    }

    /// `GET /v1/stats`: the tenant's jobs at a glance over the last hour.
    pub async fn stats(&self) -> ClientResult<ferry_core::observe::Stats> {
        self.get("/v1/stats").await
    }

    /// `POST /v1/jobs/batch` with the per-job `created` flags (false: a dedupe key matched).
    pub async fn submit_batch_detailed(&self, jobs: Vec<SubmitJob>) -> ClientResult<JobsCreated> {
        self.post("/v1/jobs/batch", &SubmitBatch { jobs }).await
    }

    /// `POST /v1/batches`.
    pub async fn create_batch(
        &self,
        batch: &ferry_core::api::CreateBatch,
    ) -> ClientResult<ferry_core::api::BatchCreated> {
        self.post("/v1/batches", batch).await
    }

    pub async fn batch(&self, id: ferry_core::BatchId) -> ClientResult<ferry_core::api::Batch> {
        self.get(&format!("/v1/batches/{id}")).await
    }

    /// Finished items after the cursor `after` (`None`: from the start).
    pub async fn batch_results(
        &self,
        id: ferry_core::BatchId,
        after: Option<&str>,
        limit: u32,
    ) -> ClientResult<ferry_core::api::BatchResultPage> {
        let mut pairs = vec![("limit", limit.to_string())];
        pairs.extend(after.map(|a| ("after", a.to_owned())));
        let req = self
            .request(Method::GET, &format!("/v1/batches/{id}/results"))
            .query(&pairs);
        Ok(self.send(req).await?.1)
    }

    pub async fn cancel_batch(
        &self,
        id: ferry_core::BatchId,
    ) -> ClientResult<ferry_core::api::Batch> {
        self.post(&format!("/v1/batches/{id}/cancel"), &serde_json::json!({}))
            .await
    }

    // ---- worker API ----

    /// `POST /v1/worker/claim`; long-polls up to `wait_ms` on the server.
    ///
    /// Each claimed job is decoded on its own: one this client cannot decode (a payload
    /// nested deeper than JSON decoding allows, stored before the server refused such
    /// bodies or by `ferry.enqueue`) is failed on the server at once (`INVALID_PAYLOAD`,
    /// not retried) and left out of the answer, so one bad job never stops a worker.
    pub async fn claim(&self, req: &ClaimRequest) -> ClientResult<ClaimResponse> {
        /// The answer with each job still as text.
        #[derive(serde::Deserialize)]
        struct RawClaim {
            jobs: Vec<Box<serde_json::value::RawValue>>,
        }
        /// What is needed to fail a job that does not decode (the rest is skipped
        /// without recursion).
        #[derive(serde::Deserialize)]
        struct JobRef {
            id: JobId,
            lease: String,
        }
        let wait = Duration::from_millis(req.wait_ms.unwrap_or(0));
        let request = self
            .request(Method::POST, "/v1/worker/claim")
            .timeout(wait + self.timeout)
            .json(req);
        let (status, bytes) = self.send_raw(request).await?;
        let undecodable = |e: serde_json::Error| ClientError::Protocol {
            status: status.as_u16(),
            message: format!("cannot decode the answer: {e}"),
        };
        let raw: RawClaim = serde_json::from_slice(&bytes).map_err(undecodable)?;
        let mut jobs = Vec::with_capacity(raw.jobs.len());
        for one in raw.jobs {
            match serde_json::from_str::<ClaimedJob>(one.get()) {
                Ok(job) => jobs.push(job),
                Err(e) => {
                    let job: JobRef = serde_json::from_str(one.get()).map_err(undecodable)?;
                    tracing::error!(job_id = %job.id, error = %e, "a claimed job does not decode; failing it");
                    let error = FailError {
                        code: ferry_core::error::job_codes::INVALID_PAYLOAD.to_owned(),
                        message: format!("the worker cannot decode this job: {e}"),
                        retryable: false,
                        retry_after_ms: None,
                    };
                    if let Err(e) = self.fail(job.id, &job.lease, error).await {
                        // Its lease runs out and the server retries it (and fails it
                        // again here) until its attempts are spent.
                        tracing::warn!(job_id = %job.id, error = %e, "cannot fail the undecodable job");
                    }
                }
            }
        }
        Ok(ClaimResponse { jobs })
    }

    pub async fn heartbeat(&self, id: JobId, lease: &str) -> ClientResult<LeaseStatus> {
        self.post(
            &format!("/v1/worker/jobs/{id}/heartbeat"),
            &HeartbeatRequest {
                lease: lease.to_owned(),
            },
        )
        .await
    }

    pub async fn progress(&self, id: JobId, req: &ProgressRequest) -> ClientResult<LeaseStatus> {
        self.post(&format!("/v1/worker/jobs/{id}/progress"), req)
            .await
    }

    pub async fn complete(&self, id: JobId, lease: &str, result: Value) -> ClientResult<Job> {
        self.post(
            &format!("/v1/worker/jobs/{id}/complete"),
            &CompleteRequest {
                lease: lease.to_owned(),
                result,
            },
        )
        .await
    }

    pub async fn complete_batch(
        &self,
        jobs: Vec<BatchCompleteEntry>,
    ) -> ClientResult<BatchCompleteResponse> {
        self.post("/v1/worker/complete", &BatchCompleteRequest { jobs })
            .await
    }

    /// The session the job's recipe loads (`use_session`); `state` is `None` when nothing
    /// is saved under its name yet.
    pub async fn session_load(&self, id: JobId, lease: &str) -> ClientResult<SessionLoadResponse> {
        self.post(
            &format!("/v1/worker/jobs/{id}/session/load"),
            &SessionLoadRequest {
                lease: lease.to_owned(),
            },
        )
        .await
    }

    /// Saves a session the job's recipe names in a `save_session` step.
    pub async fn session_save(
        &self,
        id: JobId,
        lease: &str,
        name: &str,
        state: Value,
    ) -> ClientResult<()> {
        let req = self
            .request(Method::POST, &format!("/v1/worker/jobs/{id}/session/save"))
            .json(&SessionSaveRequest {
                lease: lease.to_owned(),
                name: name.to_owned(),
                state,
            });
        self.send_raw(req).await.map(|_| ())
    }

    /// Uploads a file the job made (a screenshot, a page's HTML, a network log).
    pub async fn upload_artifact(
        &self,
        id: JobId,
        lease: &str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> ClientResult<ArtifactInfo> {
        let req = self
            .request(
                Method::PUT,
                &format!("/v1/worker/jobs/{id}/artifacts/{name}"),
            )
            .header("ferry-lease", lease)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes);
        Ok(self.send(req).await?.1)
    }

    pub async fn fail(&self, id: JobId, lease: &str, error: FailError) -> ClientResult<Job> {
        self.post(
            &format!("/v1/worker/jobs/{id}/fail"),
            &FailRequest {
                lease: lease.to_owned(),
                error,
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists() {
        let c = Client::new("http://a:1/, http://b:2", Secret::new("t")).expect("valid");
        assert_eq!(c.base_url(), "http://a:1");
        c.fail_over(0, "test");
        assert_eq!(c.base_url(), "http://b:2");
        // A second failure seen on the instance already left does not move on again.
        c.fail_over(0, "test");
        assert_eq!(c.base_url(), "http://b:2");
        c.fail_over(1, "test");
        assert_eq!(c.base_url(), "http://a:1");
        for bad in ["", "ftp://x", "http://a:1,nope", ","] {
            assert!(Client::new(bad, Secret::new("t")).is_err(), "{bad:?}");
        }
    }
}
