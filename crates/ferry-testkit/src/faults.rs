//! A reverse proxy that breaks chosen requests between a worker (or client) and a real
//! server: it can refuse a request without passing it on, pass it on and then answer an
//! error as if the answer was lost on the way back, or return the answer late. Tests point the worker at
//! [`FaultyProxy::url`] to check that nothing reported is lost and nothing is applied twice.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use tokio_util::sync::CancellationToken;

pub use axum::http::Method;

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Passes it on and returns the answer.
    Pass,
    /// Answers this status without passing the request on.
    Refuse(u16),
    /// Passes it on, then answers this status instead of the server's answer.
    LoseAnswer(u16),
    /// Passes it on and returns the answer this many milliseconds late (an answer on its
    /// way back when the caller changes its mind).
    DelayAnswer(u64),
}

/// One request, as a [`Rule`] sees it.
#[derive(Debug)]
pub struct Seen<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub body: &'a [u8],
    /// How many requests to this method and path came so far (1 for the first).
    pub n: u32,
}

impl Seen<'_> {
    /// A `POST` to a path ending in `suffix`.
    pub fn is_post_to(&self, suffix: &str) -> bool {
        *self.method == Method::POST && self.path.ends_with(suffix)
    }

    /// Whether the body holds `needle`.
    pub fn body_has(&self, needle: &str) -> bool {
        self.body
            .windows(needle.len().max(1))
            .any(|w| w == needle.as_bytes())
    }
}

/// Decides what happens to each request.
pub type Rule = dyn Fn(&Seen<'_>) -> Fault + Send + Sync;

struct Inner {
    upstream: String,
    http: reqwest::Client,
    rule: Box<Rule>,
    seen: Mutex<HashMap<String, u32>>,
    faults: Mutex<Vec<(String, Fault)>>,
}

/// A running proxy; stops when dropped.
pub struct FaultyProxy {
    pub addr: SocketAddr,
    pub url: String,
    inner: Arc<Inner>,
    stop: CancellationToken,
}

impl std::fmt::Debug for FaultyProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyProxy")
            .field("url", &self.url)
            .finish()
    }
}

impl FaultyProxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream` (`http://127.0.0.1:port`).
    pub async fn spawn(
        upstream: &str,
        rule: impl Fn(&Seen<'_>) -> Fault + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            rule: Box::new(rule),
            seen: Mutex::default(),
            faults: Mutex::default(),
        });
        let app = Router::new().fallback(forward).with_state(inner.clone());
        let stop = CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(until.cancelled_owned())
                .await;
        });
        Ok(Self {
            addr,
            url: format!("http://{addr}"),
            inner,
            stop,
        })
    }

    /// The faults injected so far: `(method path, fault)`.
    pub fn faults(&self) -> Vec<(String, Fault)> {
        self.inner
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn forward(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let key = format!("{method} {path}");
    let n = {
        let mut seen = inner.seen.lock().unwrap_or_else(|e| e.into_inner());
        let n = seen.entry(key.clone()).or_default();
        *n += 1;
        *n
    };
    let fault = (inner.rule)(&Seen {
        method: &method,
        path: &path,
        body: &body,
        n,
    });
    if fault != Fault::Pass {
        inner
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, fault));
    }
    let refused = |status: u16| {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        (
            status,
            [("content-type", "application/json")],
            r#"{"error":{"code":"SERVER_UNAVAILABLE","message":"injected by the test proxy"}}"#,
        )
            .into_response()
    };
    if let Fault::Refuse(status) = fault {
        return refused(status);
    }
    let target = format!(
        "{}{}",
        inner.upstream,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut request = inner.http.request(method, target).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(_) => return refused(502),
    };
    if let Fault::LoseAnswer(status) = fault {
        let _ = answer.bytes().await;
        return refused(status);
    }
    if let Fault::DelayAnswer(ms) = fault {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = Response::builder().status(status);
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    out.body(Body::from(bytes)).unwrap_or_else(|_| refused(502))
}
