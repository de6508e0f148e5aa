//! Proxies as users run them, served by the test: an HTTP proxy (`CONNECT` and
//! absolute-form requests, Basic credentials, `407` without them) and a SOCKS5 proxy
//! (RFC 1928, username/password by RFC 1929). Each records what it was asked to reach and
//! whether the credentials were right, and reaches the names of its `routes` at the
//! addresses given there: a name that resolves nowhere else, so a request that arrives
//! went through the proxy.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
};

use base64::Engine;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// What a client asked the proxy for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `host:port` as asked.
    pub target: String,
    /// The credentials were right (or none were needed).
    pub authorized: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Http,
    Socks5,
}

#[derive(Debug)]
struct Shared {
    credentials: Option<(String, String)>,
    routes: HashMap<String, SocketAddr>,
    seen: Mutex<Vec<Seen>>,
}

/// A running proxy; stopped when dropped.
#[derive(Debug)]
pub struct TestProxy {
    pub addr: SocketAddr,
    flavor: Flavor,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestProxy {
    /// An HTTP proxy on 127.0.0.1 asking for `credentials` (user, password) if given.
    pub async fn http(
        credentials: Option<(&str, &str)>,
        routes: &[(&str, SocketAddr)],
    ) -> std::io::Result<Self> {
        Self::start(Flavor::Http, Ipv4Addr::LOCALHOST, credentials, routes).await
    }

    /// A SOCKS5 proxy on 127.0.0.1 asking for `credentials` (user, password) if given.
    pub async fn socks5(
        credentials: Option<(&str, &str)>,
        routes: &[(&str, SocketAddr)],
    ) -> std::io::Result<Self> {
        Self::start(Flavor::Socks5, Ipv4Addr::LOCALHOST, credentials, routes).await
    }

    /// An HTTP proxy on another loopback address (`127.0.0.3`, say), so a policy can allow
    /// the proxy without allowing 127.0.0.1.
    pub async fn http_on(
        ip: Ipv4Addr,
        credentials: Option<(&str, &str)>,
        routes: &[(&str, SocketAddr)],
    ) -> std::io::Result<Self> {
        Self::start(Flavor::Http, ip, credentials, routes).await
    }

    async fn start(
        flavor: Flavor,
        ip: Ipv4Addr,
        credentials: Option<(&str, &str)>,
        routes: &[(&str, SocketAddr)],
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind((ip, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
            routes: routes
                .iter()
                .map(|(name, addr)| ((*name).to_owned(), *addr))
                .collect(),
            seen: Mutex::new(Vec::new()),
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = serving.clone();
                tokio::spawn(async move {
                    let _ = match flavor {
                        Flavor::Http => serve_http(stream, &shared).await,
                        Flavor::Socks5 => serve_socks5(stream, &shared).await,
                    };
                });
            }
        });
        Ok(Self {
            addr,
            flavor,
            shared,
            task,
        })
    }

    /// Its URL with `userinfo` (`user:{{secret.NAME}}`, say) if given.
    pub fn url(&self, userinfo: Option<&str>) -> String {
        let scheme = match self.flavor {
            Flavor::Http => "http",
            Flavor::Socks5 => "socks5",
        };
        match userinfo {
            Some(u) => format!("{scheme}://{u}@{}", self.addr),
            None => format!("{scheme}://{}", self.addr),
        }
    }

    /// What it was asked for so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Shared {
    fn record(&self, target: &str, authorized: bool) {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Seen {
                target: target.to_owned(),
                authorized,
            });
    }

    /// A connection to `host:port`, or to where `routes` sends `host`.
    async fn reach(&self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        match self.routes.get(host) {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect((host.trim_matches(['[', ']']), port)).await,
        }
    }
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        head.push(stream.read_u8().await?);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn split_authority(authority: &str, default_port: u16) -> (String, u16) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') => {
            (host.to_owned(), port.parse().unwrap_or(default_port))
        }
        _ => (authority.to_owned(), default_port),
    }
}

async fn serve_http(mut client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let head = read_head(&mut client).await?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split_whitespace();
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let authorized = match &shared.credentials {
        None => true,
        Some((user, password)) => {
            let expected = format!(
                "basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            headers.iter().any(|h| {
                h.split_once(':').is_some_and(|(name, value)| {
                    name.eq_ignore_ascii_case("proxy-authorization")
                        && value.trim().eq_ignore_ascii_case(&expected)
                })
            })
        }
    };
    let (authority, path) = if method == "CONNECT" {
        (target.to_owned(), None)
    } else {
        let rest = target.strip_prefix("http://").unwrap_or(target);
        match rest.find('/') {
            Some(at) => (rest[..at].to_owned(), Some(rest[at..].to_owned())),
            None => (rest.to_owned(), Some("/".to_owned())),
        }
    };
    shared.record(&authority, authorized);
    if !authorized {
        client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\
                  Connection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    }
    let (host, port) = split_authority(&authority, if path.is_some() { 80 } else { 443 });
    let Ok(mut server) = shared.reach(&host, port).await else {
        client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    match path {
        None => {
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?;
        }
        Some(path) => {
            // One request per connection, in origin form, without the proxy's headers.
            let mut out = format!("{method} {path} {version}\r\n");
            for header in headers {
                let name = header.split(':').next().unwrap_or_default().trim();
                if !["proxy-authorization", "proxy-connection", "connection"]
                    .iter()
                    .any(|h| name.eq_ignore_ascii_case(h))
                {
                    out.push_str(header);
                    out.push_str("\r\n");
                }
            }
            out.push_str("Connection: close\r\n\r\n");
            server.write_all(out.as_bytes()).await?;
        }
    }
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

async fn serve_socks5(mut client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let bad = || std::io::Error::other("not SOCKS5");
    if client.read_u8().await? != 5 {
        return Err(bad());
    }
    let mut methods = vec![0; usize::from(client.read_u8().await?)];
    client.read_exact(&mut methods).await?;
    let mut authorized = true;
    match &shared.credentials {
        None => client.write_all(&[5, 0]).await?,
        Some((user, password)) => {
            if !methods.contains(&2) {
                client.write_all(&[5, 0xff]).await?;
                return Ok(());
            }
            client.write_all(&[5, 2]).await?;
            let _version = client.read_u8().await?;
            let mut given_user = vec![0; usize::from(client.read_u8().await?)];
            client.read_exact(&mut given_user).await?;
            let mut given_password = vec![0; usize::from(client.read_u8().await?)];
            client.read_exact(&mut given_password).await?;
            authorized = given_user == user.as_bytes() && given_password == password.as_bytes();
            client
                .write_all(&[1, if authorized { 0 } else { 1 }])
                .await?;
        }
    }
    if !authorized {
        shared.record("", false);
        return Ok(());
    }
    let mut request = [0; 4];
    client.read_exact(&mut request).await?;
    let host = match request[3] {
        1 => {
            let mut ip = [0; 4];
            client.read_exact(&mut ip).await?;
            std::net::Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut name = vec![0; usize::from(client.read_u8().await?)];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut ip = [0; 16];
            client.read_exact(&mut ip).await?;
            format!("[{}]", std::net::Ipv6Addr::from(ip))
        }
        _ => return Err(bad()),
    };
    let port = client.read_u16().await?;
    shared.record(&format!("{host}:{port}"), true);
    let Ok(mut server) = shared.reach(&host, port).await else {
        client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    };
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}
