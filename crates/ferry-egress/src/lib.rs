//! Where Ferry's outgoing connections may go, enforced where they are made: the
//! [`EgressPolicy`] of `ferry-core` decided for every address a name resolves to (so
//! spellings of an address and names that lead inside are judged by where they lead) and
//! on every redirect hop.
//!
//! - [`guarded`]: a reqwest client whose resolver drops the addresses the policy denies
//!   (and refuses a name with none left), whose redirects are checked hop by hop, and which
//!   ignores the environment's proxies; [`check_url`] checks the first hop (an address
//!   written in the URL is not resolved); [`Clients`] keeps one client per policy.
//! - [`EgressProxy`] (`proxy.rs`): a forward proxy on 127.0.0.1 that a browser context is
//!   pointed at, so every request of a page (navigations, redirects, sub-resources,
//!   WebSockets) is decided the same way. Given the job's own proxy (an [`Upstream`]), it
//!   reaches every target through that (`upstream.rs`: HTTP `CONNECT` or SOCKS5, with
//!   credentials); [`Clients::via`] points an `http.request` client at one.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

pub use ferry_core::{
    egress::{EgressDenied, EgressPolicy, EgressRule},
    proxy::Upstream,
};
use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

mod proxy;
mod upstream;

pub use proxy::EgressProxy;
pub use upstream::authorization;

/// Why a client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Client(#[from] reqwest::Error),
    #[error("no local proxy: {0}")]
    Proxy(#[from] std::io::Error),
}

/// Why a connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error(transparent)]
    Denied(#[from] EgressDenied),
    #[error("{0}")]
    Resolve(String),
}

/// Checks what can be checked of a URL before connecting: its scheme (http or https), an
/// address written in it, and a denied name.
pub fn check_url(policy: &EgressPolicy, url: &Url) -> Result<(), EgressDenied> {
    let host = url.host_str().unwrap_or_default();
    if !matches!(url.scheme(), "http" | "https") {
        return Err(EgressDenied {
            host: host.to_owned(),
            reason: format!("only http and https are allowed, not {}", url.scheme()),
        });
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => policy.check(host, ip.into()),
        Some(url::Host::Ipv6(ip)) => policy.check(host, ip.into()),
        Some(url::Host::Domain(name)) => policy.check_name(name),
        None => Err(EgressDenied {
            host: String::new(),
            reason: "the URL names no host".into(),
        }),
    }
}

/// Resolves `host` and keeps the addresses the policy allows; a name with none left is
/// refused with the first denial.
pub async fn resolve(
    policy: &EgressPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, EgressError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse() {
        policy.check(host, ip)?;
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    policy.check_name(host)?;
    let found = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|e| EgressError::Resolve(format!("cannot resolve {host}: {e}")))?;
    let mut allowed = Vec::new();
    let mut refused = None;
    for addr in found {
        match policy.check(host, addr.ip()) {
            Ok(()) => allowed.push(addr),
            Err(denied) => {
                refused.get_or_insert(denied);
            }
        }
    }
    match (allowed.is_empty(), refused) {
        (false, _) => Ok(allowed),
        (true, Some(denied)) => Err(denied.into()),
        (true, None) => Err(EgressError::Resolve(format!("{host} has no addresses"))),
    }
}

/// reqwest's resolver under a policy.
#[derive(Debug, Clone)]
struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve(&policy, &host, 0).await.map_err(|e| match e {
                EgressError::Denied(d) => Box::new(d) as Box<dyn std::error::Error + Send + Sync>,
                other => Box::new(other),
            })?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// How many redirects a guarded client follows.
pub const MAX_REDIRECTS: usize = 10;

/// `builder` made into a client under `policy`: names resolved through it, redirects (if
/// `follow_redirects`, up to [`MAX_REDIRECTS`]) checked hop by hop, no proxies from the
/// environment (a proxy would resolve the names itself). Check the first URL with
/// [`check_url`].
pub fn guarded(
    builder: reqwest::ClientBuilder,
    policy: Arc<EgressPolicy>,
    follow_redirects: bool,
) -> reqwest::Result<reqwest::Client> {
    // Err only means a provider is installed already (ring is the workspace's one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    builder
        .no_proxy()
        .redirect(redirects(policy.clone(), follow_redirects))
        .dns_resolver(GuardedResolver { policy })
        .build()
}

/// Redirects followed (up to [`MAX_REDIRECTS`]) only to URLs [`check_url`] lets through,
/// or none followed.
fn redirects(policy: Arc<EgressPolicy>, follow: bool) -> reqwest::redirect::Policy {
    if !follow {
        return reqwest::redirect::Policy::none();
    }
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match check_url(&policy, attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(denied) => attempt.error(denied),
        }
    })
}

/// The policy's refusal inside an error (a reqwest error from a guarded client), if that
/// is what it is.
pub fn denial_of(error: &(dyn std::error::Error + 'static)) -> Option<EgressDenied> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(d) = e.downcast_ref::<EgressDenied>() {
            return Some(d.clone());
        }
        if let Some(EgressError::Denied(d)) = e.downcast_ref::<EgressError>() {
            return Some(d.clone());
        }
        next = e.source();
    }
    None
}

/// The most clients [`Clients`] keeps (one per distinct policy; tenants rarely differ).
const MAX_CLIENTS: usize = 64;

/// Guarded clients by policy, built once each (so connections are reused across jobs of
/// the same policy), and clients through a proxy by policy and proxy.
pub struct Clients {
    make: Box<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>,
    follow_redirects: bool,
    clients: Mutex<HashMap<EgressPolicy, reqwest::Client>>,
}

/// A client through the job's proxy, and the [`EgressProxy`] on its way there: one job's
/// own, so its refusals are that job's (stopped when dropped).
#[derive(Debug)]
pub struct Proxied {
    pub client: reqwest::Client,
    pub proxy: EgressProxy,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("follow_redirects", &self.follow_redirects)
            .finish_non_exhaustive()
    }
}

impl Clients {
    /// `make` gives the builder each client starts from (timeouts, user agent).
    pub fn new(
        make: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static,
        follow_redirects: bool,
    ) -> Self {
        Self {
            make: Box::new(make),
            follow_redirects,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// A client for one job under `policy` through `upstream`: its requests pass an
    /// [`EgressProxy`] holding the policy (targets, redirects and the proxy's own address
    /// are decided there), which reaches them through `upstream`.
    pub async fn via(
        &self,
        policy: &EgressPolicy,
        upstream: &Upstream,
    ) -> Result<Proxied, ClientError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let proxy = EgressProxy::start(policy.clone(), Some(upstream.clone())).await?;
        let client = (self.make)()
            .no_proxy()
            .proxy(reqwest::Proxy::all(format!("http://{}", proxy.addr()))?)
            .redirect(redirects(Arc::new(policy.clone()), self.follow_redirects))
            .build()?;
        Ok(Proxied { client, proxy })
    }

    /// The client for `policy`.
    pub fn get(&self, policy: &EgressPolicy) -> reqwest::Result<reqwest::Client> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(policy) {
            return Ok(client.clone());
        }
        let client = guarded(
            (self.make)(),
            Arc::new(policy.clone()),
            self.follow_redirects,
        )?;
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(policy.clone(), client.clone());
        Ok(client)
    }
}
