//! A forward proxy on 127.0.0.1 under one policy, for one browser context (or the
//! `http.request` jobs of one proxy): `CONNECT` (HTTPS, WebSockets) is tunnelled and plain
//! HTTP forwarded, each to an address the policy allows, resolved here — so the browser
//! never connects anywhere by itself — or through the job's own proxy (`upstream.rs`). A
//! refused request is answered `403` (the same whether or not anything listens there) and
//! recorded, so the run can tell a navigation that failed for it.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use ferry_core::{
    egress::{EgressDenied, EgressPolicy},
    proxy::{ProxyKind, Upstream},
};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::{Method, Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, task::JoinSet};

use crate::{EgressError, resolve, upstream};

type Body = BoxBody<Bytes, hyper::Error>;

/// Headers that belong to one hop, not forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The most refusals kept (the newest are what a failed navigation is matched with).
const MAX_DENIALS: usize = 100;

/// A running proxy; stopped (with its connections) when dropped.
#[derive(Debug)]
pub struct EgressProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    policy: EgressPolicy,
    upstream: Option<Upstream>,
    denials: Mutex<Vec<EgressDenied>>,
    /// Why the last connection that failed (not refused) failed.
    failure: Mutex<Option<String>>,
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EgressProxy {
    /// Starts a proxy under `policy` on a free port of 127.0.0.1, connecting directly or,
    /// given an `upstream`, through it.
    pub async fn start(policy: EgressPolicy, upstream: Option<Upstream>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            policy,
            upstream,
            denials: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            // Aborting this task drops the set, which aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let shared = serving.clone();
                        connections.spawn(async move {
                            let service = service_fn(move |req| handle(shared.clone(), req));
                            let _ = hyper::server::conn::http1::Builder::new()
                                .preserve_header_case(true)
                                .serve_connection(TokioIo::new(stream), service)
                                .with_upgrades()
                                .await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// Where it listens (`http://{addr}` is the browser's proxy server).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The policy it holds to.
    pub fn policy(&self) -> &EgressPolicy {
        &self.shared.policy
    }

    /// The refusals so far, oldest first (at most the last 100).
    pub fn denials(&self) -> Vec<EgressDenied> {
        self.shared.lock().clone()
    }

    /// How many requests were refused so far (to find those of one navigation).
    pub fn denial_count(&self) -> usize {
        self.shared.lock().len()
    }

    /// Why the last connection that could not be made failed (the job's proxy refused
    /// its credentials, say), to say more than "the tunnel failed".
    pub fn last_failure(&self) -> Option<String> {
        self.shared
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<EgressDenied>> {
        self.denials
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refused(&self, denied: EgressDenied) -> Response<Body> {
        tracing::debug!(host = %denied.host, reason = %denied.reason, "egress denied");
        let text = format!("{denied}\n");
        let mut denials = self.lock();
        if denials.len() >= MAX_DENIALS {
            denials.remove(0);
        }
        denials.push(denied);
        answer(StatusCode::FORBIDDEN, text)
    }

    fn failed(&self, message: String) -> Response<Body> {
        tracing::debug!(%message, "egress connection failed");
        *self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(message.trim().to_owned());
        answer(StatusCode::BAD_GATEWAY, message)
    }

    fn answer_for(&self, error: Connect) -> Response<Body> {
        match error {
            Connect::Denied(denied) => self.refused(denied),
            Connect::Failed(message) => self.failed(message),
        }
    }
}

fn answer(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let Some(authority) = req.uri().authority().cloned() else {
        return Ok(answer(
            StatusCode::BAD_REQUEST,
            "a proxy request names its host\n".into(),
        ));
    };
    let host = authority.host().to_owned();
    let is_connect = req.method() == Method::CONNECT;
    if !is_connect && req.uri().scheme_str() != Some("http") {
        return Ok(shared.refused(EgressDenied {
            host,
            reason: "only http and https are allowed".into(),
        }));
    }
    let port = authority
        .port_u16()
        .unwrap_or(if is_connect { 443 } else { 80 });
    let policy = &shared.policy;
    // Plain HTTP through an HTTP proxy: the request goes to it as it came, absolute-form.
    if let Some(up) = shared
        .upstream
        .as_ref()
        .filter(|u| u.kind == ProxyKind::Http)
        && !is_connect
    {
        let reached = match upstream::check_target(policy, &host, port).await {
            Ok(target) => upstream::to_proxy(policy, up)
                .await
                .map(|stream| (stream, target)),
            Err(e) => Err(e),
        };
        return Ok(match reached {
            Ok((stream, target)) => {
                let via = Via {
                    authority: upstream::authority(&target, port),
                    authorization: upstream::authorization(up),
                };
                forward(stream, req, Some(via))
                    .await
                    .unwrap_or_else(|e| shared.failed(format!("{e}\n")))
            }
            Err(e) => shared.answer_for(e),
        });
    }
    let reached = match &shared.upstream {
        Some(up) => upstream::tunnel(policy, up, &host, port).await,
        None => connect(policy, &host, port).await,
    };
    let stream = match reached {
        Ok(stream) => stream,
        Err(e) => return Ok(shared.answer_for(e)),
    };
    if is_connect {
        tokio::spawn(async move {
            if let Ok(upgraded) = hyper::upgrade::on(req).await {
                let mut client = TokioIo::new(upgraded);
                let mut server = stream;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
        return Ok(Response::new(
            Empty::new().map_err(|never| match never {}).boxed(),
        ));
    }
    Ok(forward(stream, req, None)
        .await
        .unwrap_or_else(|e| answer(StatusCode::BAD_GATEWAY, format!("{e}\n"))))
}

pub(crate) enum Connect {
    Denied(EgressDenied),
    Failed(String),
}

/// A connection to the first allowed address of `host` that answers.
pub(crate) async fn connect(
    policy: &EgressPolicy,
    host: &str,
    port: u16,
) -> Result<TcpStream, Connect> {
    let addrs = resolve(policy, host, port).await.map_err(|e| match e {
        EgressError::Denied(d) => Connect::Denied(d),
        EgressError::Resolve(m) => Connect::Failed(m),
    })?;
    let mut last = String::new();
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("cannot connect to {host}: {e}\n"),
        }
    }
    Err(Connect::Failed(last))
}

/// A plain HTTP request's way through an HTTP proxy: absolute-form, to the address
/// checked (its `Host` header still the name), with the proxy's credentials.
struct Via {
    authority: String,
    authorization: Option<String>,
}

/// Sends a plain HTTP request on `stream` without hop-by-hop headers: in origin form to the
/// target, or (`via`) absolute-form to an HTTP proxy.
async fn forward(
    stream: TcpStream,
    req: Request<Incoming>,
    via: Option<Via>,
) -> Result<Response<Body>, hyper::Error> {
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .preserve_header_case(true)
        .handshake(TokioIo::new(stream))
        .await?;
    tokio::spawn(connection);
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), ToString::to_string);
    parts.uri = match &via {
        None => hyper::Uri::try_from(path),
        Some(via) => hyper::Uri::try_from(format!("http://{}{path}", via.authority)),
    }
    .unwrap_or_else(|_| hyper::Uri::from_static("/"));
    for name in HOP_BY_HOP {
        parts.headers.remove(*name);
    }
    if let Some(auth) = via.and_then(|v| v.authorization)
        && let Ok(value) = hyper::header::HeaderValue::from_str(&auth)
    {
        parts
            .headers
            .insert(hyper::header::PROXY_AUTHORIZATION, value);
    }
    let response = sender
        .send_request(Request::from_parts(parts, body))
        .await?;
    let (mut parts, body) = response.into_parts();
    for name in HOP_BY_HOP.iter().filter(|n| **n != "transfer-encoding") {
        parts.headers.remove(*name);
    }
    Ok(Response::from_parts(parts, body.boxed()))
}
