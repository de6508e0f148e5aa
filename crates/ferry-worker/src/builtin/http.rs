//! `http.request`: one HTTP call, under the job's egress policy (`EGRESS_DENIED`, not
//! retried, for a hop it refuses). `429` and `503` are retryable and honour
//! `Retry-After` (seconds); other `5xx` are retryable; other `4xx` are not; network
//! errors and timeouts are retryable.

use std::{collections::BTreeMap, time::Duration};

use ferry_core::error::job_codes;
use reqwest::{Method, header::HeaderMap};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;

use crate::{Handler, HandlerError, JobContext};

/// The payload of an `http.request` job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A text body.
    #[serde(default)]
    pub body: Option<String>,
    /// A JSON body (sets `Content-Type: application/json`).
    #[serde(default)]
    pub json: Option<Value>,
    /// Per-request timeout (default 30 s).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The most of the answer's body kept (default and at most [`MAX_BODY`]); the rest is
    /// not read and the result says `"truncated": true`.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// The proxy this request goes through, instead of the tenant's (its egress policy's
    /// `proxy`): `http://user:{{secret.NAME}}@host:port` or `socks5://host:port`.
    #[serde(default)]
    pub proxy: Option<ferry_core::proxy::ProxyUrl>,
}

fn default_method() -> String {
    "GET".to_owned()
}

/// The most of an answer's body kept in the result (4 MiB): read as it streams in and
/// cut there, so a huge answer neither fills the worker's memory nor makes a result the
/// server cannot take (its request limit is 8 MiB by default).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Runs `http.request` jobs, each under its job's egress policy: the address of every hop
/// (the URL's, each redirect's, whatever a name resolves to) is checked before connecting.
#[derive(Debug, Clone)]
pub struct HttpRequestHandler {
    clients: std::sync::Arc<ferry_egress::Clients>,
    /// For requests carrying a secret: a redirect is not followed (it would take the
    /// secret's headers to another host).
    direct: std::sync::Arc<ferry_egress::Clients>,
}

impl HttpRequestHandler {
    pub fn new() -> Result<Self, reqwest::Error> {
        ferry_client::install_crypto_provider();
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .user_agent(concat!("ferry-worker/", env!("CARGO_PKG_VERSION")))
        };
        let clients = ferry_egress::Clients::new(builder, true);
        let direct = ferry_egress::Clients::new(builder, false);
        // A client that cannot be built shows here, not at the first job.
        clients.get(&ferry_core::egress::EgressPolicy::default())?;
        Ok(Self {
            clients: std::sync::Arc::new(clients),
            direct: std::sync::Arc::new(direct),
        })
    }
}

fn egress_denied(denied: ferry_core::egress::EgressDenied) -> HandlerError {
    HandlerError::fatal(job_codes::EGRESS_DENIED, denied.to_string())
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(24 * 3600)))
}

#[async_trait::async_trait]
impl Handler for HttpRequestHandler {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        let req: HttpRequest = ctx.payload_as()?;
        let method =
            Method::from_bytes(req.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                HandlerError::fatal(
                    job_codes::INVALID_PAYLOAD,
                    format!("unknown HTTP method {:?}", req.method),
                )
            })?;
        let url = reqwest::Url::parse(&req.url).map_err(|e| {
            HandlerError::fatal(
                job_codes::INVALID_PAYLOAD,
                format!("bad url {:?}: {e}", req.url),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HandlerError::fatal(
                job_codes::INVALID_PAYLOAD,
                "url must be http or https",
            ));
        }
        ferry_egress::check_url(&ctx.egress, &url).map_err(egress_denied)?;
        // Secrets in the request itself (not in its proxy's credentials).
        let mut request_part = ctx.payload.clone();
        if let Some(fields) = request_part.as_object_mut() {
            fields.remove("proxy");
        }
        let carries_secrets = !ferry_core::template::secret_names(&request_part).is_empty();
        let proxy = match req.proxy.as_ref().or(ctx.egress.proxy.as_ref()) {
            Some(proxy) => Some(upstream(&ctx, proxy).await?),
            None => None,
        };
        let req = if carries_secrets {
            with_secrets(&ctx, req, url.host_str().unwrap_or_default()).await?
        } else {
            req
        };
        let clients = if carries_secrets {
            &self.direct
        } else {
            &self.clients
        };
        let no_client = |e: &dyn std::fmt::Display| {
            HandlerError::retryable(job_codes::HANDLER_ERROR, format!("no HTTP client: {e}"))
        };
        let via = match &proxy {
            Some(up) => Some(
                clients
                    .via(&ctx.egress, up)
                    .await
                    .map_err(|e| no_client(&e))?,
            ),
            None => None,
        };
        let client = match &via {
            Some(via) => via.client.clone(),
            None => clients.get(&ctx.egress).map_err(|e| no_client(&e))?,
        };
        // Through a proxy, the local proxy on the way decides where the request may go:
        // a refusal there is this job's (the proxy is its own).
        let refused_on_the_way = || {
            via.as_ref()
                .and_then(|v| v.proxy.denials().pop())
                .map(egress_denied)
        };
        let failed = |e: reqwest::Error| {
            refused_on_the_way().unwrap_or_else(|| {
                let failure = via.as_ref().and_then(|v| v.proxy.last_failure());
                network_error(e, failure)
            })
        };
        // The call is a span (in the job's trace, when traces are exported).
        let span = tracing::info_span!(
            "http",
            method = %method,
            host = url.host_str().unwrap_or_default(),
            status = tracing::field::Empty
        );
        let mut builder = client
            .request(method, url)
            .timeout(Duration::from_millis(req.timeout_ms.unwrap_or(30_000)));
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        builder = match (&req.json, &req.body) {
            (Some(_), Some(_)) => {
                return Err(HandlerError::fatal(
                    job_codes::INVALID_PAYLOAD,
                    "give body or json, not both",
                ));
            }
            (Some(json), None) => builder.json(json),
            (None, Some(body)) => builder.body(body.clone()),
            (None, None) => builder,
        };
        let response = async {
            Ok::<_, HandlerError>(tokio::select! {
                r = builder.send() => r.map_err(failed)?,
                _ = ctx.cancelled() => return Err(HandlerError::retryable("STOPPED", "stopped before the answer came")),
            })
        }
        .instrument(span.clone())
        .await?;
        let status = response.status();
        span.record("status", status.as_u16());
        if status == reqwest::StatusCode::FORBIDDEN
            && let Some(denied) = refused_on_the_way()
        {
            return Err(denied);
        }
        // A plain HTTP request the proxies on the way could not carry: the local proxy's
        // 502 (it says why) or the job's proxy refusing its credentials.
        if let Some(via) = &via {
            let failure = via.proxy.last_failure();
            match status.as_u16() {
                502 if failure.is_some() => {
                    return Err(HandlerError::retryable(
                        job_codes::NETWORK_ERROR,
                        failure.unwrap_or_default(),
                    ));
                }
                407 => {
                    return Err(HandlerError::retryable(
                        job_codes::NETWORK_ERROR,
                        "the proxy refused the credentials (407 Proxy Authentication Required)",
                    ));
                }
                _ => {}
            }
        }
        let headers = response.headers().clone();
        let after = retry_after(&headers);
        let cap = req.max_body_bytes.unwrap_or(MAX_BODY).min(MAX_BODY);
        let (bytes, truncated) = tokio::select! {
            b = read_capped(response, cap) => b.map_err(failed)?,
            _ = ctx.cancelled() => return Err(HandlerError::retryable("STOPPED", "stopped while reading the answer")),
        };
        // U+0000 cannot be stored (PostgreSQL refuses it): it becomes U+FFFD.
        let text: String = String::from_utf8_lossy(&bytes).replace('\0', "\u{FFFD}");
        if !status.is_success() && !status.is_redirection() {
            let snippet: String = text.chars().take(300).collect();
            let message = format!("{} answered {status}: {snippet}", req.url);
            let code = status.as_u16();
            let error = if code == 429 || code == 503 || status.is_server_error() {
                HandlerError::retryable(job_codes::HTTP_STATUS, message)
            } else {
                HandlerError::fatal(job_codes::HTTP_STATUS, message)
            };
            return Err(match (code, after) {
                (429 | 503, Some(after)) => error.with_retry_after(after),
                _ => error,
            });
        }
        let header_map: BTreeMap<String, String> = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let is_json = headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        let mut result = json!({"status": status.as_u16(), "headers": header_map});
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) if is_json && !truncated => result["json"] = without_nul(value),
            _ => result["body"] = Value::String(text),
        }
        if truncated {
            result["truncated"] = json!(true);
        }
        Ok(result)
    }
}

/// `{{secret.NAME}}`: the tenant's vault's, then the worker's own (`FERRY_SECRET_NAME`);
/// its value is kept out of what the job reports from now on.
fn secret(
    ctx: &JobContext,
    vault: &std::collections::HashMap<String, ferry_core::BoundSecret>,
    name: &str,
) -> Option<ferry_core::BoundSecret> {
    let secret = vault
        .get(name)
        .cloned()
        .or_else(|| crate::env_secret(name))?;
    ctx.redact(secret.value.expose());
    Some(secret)
}

/// The job's proxy with its credentials filled in: from the tenant's vault, then the
/// worker's own secrets, each only if bound to the proxy's host.
async fn upstream(
    ctx: &JobContext,
    proxy: &ferry_core::proxy::ProxyUrl,
) -> Result<ferry_core::proxy::Upstream, HandlerError> {
    let vault = if proxy.secret_names().is_empty() {
        Default::default()
    } else {
        ctx.vault_secrets().await?
    };
    let upstream = proxy
        .render(&|name| secret(ctx, &vault, name))
        .map_err(|e| match e {
            ferry_core::proxy::ProxyRefused::Missing(_) => {
                HandlerError::fatal(job_codes::INVALID_PAYLOAD, e.to_string())
            }
            ferry_core::proxy::ProxyRefused::Unbound(_) => {
                HandlerError::fatal("SECRET_REFUSED", e.to_string())
            }
        })?;
    // The credentials as they travel (`Proxy-Authorization: Basic …`) are kept out too.
    if let Some(token) = ferry_egress::authorization(&upstream) {
        ctx.redact(token.trim_start_matches("Basic "));
    }
    Ok(upstream)
}

/// `req` with `{{secret.NAME}}` in its headers and body replaced: from the tenant's vault,
/// then the worker's own (`FERRY_SECRET_NAME`), each only if bound to `host`
/// (`SECRET_REFUSED` otherwise); their values are kept out of what the job reports.
async fn with_secrets(
    ctx: &JobContext,
    mut req: HttpRequest,
    host: &str,
) -> Result<HttpRequest, HandlerError> {
    let vault = ctx.vault_secrets().await?;
    let refused = std::cell::RefCell::new(None);
    let lookup = |name: &str| {
        let secret = secret(ctx, &vault, name)?;
        match secret.refusal(name, host) {
            Some(why) => {
                refused.borrow_mut().get_or_insert(why);
                Some(String::new())
            }
            None => Some(secret.value.expose().to_owned()),
        }
    };
    let render = |text: &str| {
        ferry_core::template::render_secrets(text, &lookup)
            .map(|(out, _)| out)
            .map_err(|e| HandlerError::fatal(job_codes::INVALID_PAYLOAD, e))
    };
    for value in req.headers.values_mut() {
        *value = render(value)?;
    }
    if let Some(body) = &req.body {
        req.body = Some(render(body)?);
    }
    if let Some(json) = req.json.take() {
        req.json = Some(map_strings(json, &render)?);
    }
    match refused.into_inner() {
        Some(why) => Err(HandlerError::fatal("SECRET_REFUSED", why)),
        None => Ok(req),
    }
}

/// `value` with `f` applied to every string in it.
fn map_strings(
    value: Value,
    f: &dyn Fn(&str) -> Result<String, HandlerError>,
) -> Result<Value, HandlerError> {
    Ok(match value {
        Value::String(s) => Value::String(f(&s)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| map_strings(v, f))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| Ok((k, map_strings(v, f)?)))
                .collect::<Result<_, HandlerError>>()?,
        ),
        other => other,
    })
}

/// The body, up to `cap` bytes (`true`: there was more, left unread).
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// `value` with U+0000 in strings and keys replaced by U+FFFD (it cannot be stored).
fn without_nul(value: Value) -> Value {
    let clean = |s: String| {
        if s.contains('\0') {
            s.replace('\0', "\u{FFFD}")
        } else {
            s
        }
    };
    match value {
        Value::String(s) => Value::String(clean(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (clean(k), without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

/// A request that failed; `failure` is why the proxy on the way could not connect, if it
/// says.
fn network_error(e: reqwest::Error, failure: Option<String>) -> HandlerError {
    if let Some(denied) = ferry_egress::denial_of(&e) {
        return egress_denied(denied);
    }
    if let Some(failure) = failure {
        return HandlerError::retryable(job_codes::NETWORK_ERROR, failure);
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    HandlerError::retryable(job_codes::NETWORK_ERROR, format!("the request {what}: {e}"))
}
