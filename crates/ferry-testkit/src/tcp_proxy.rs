//! A TCP proxy that can go silent: between an instance and its database it forwards bytes
//! both ways until [`TcpProxy::freeze`], then holds every connection open without passing
//! anything on, as a network that drops packets does (no reset, no close). The other side's
//! kernel still acknowledges what it is sent, so only timeouts in the programs notice.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tokio_util::sync::CancellationToken;

/// A running proxy; its connections end when it is dropped.
#[derive(Debug)]
pub struct TcpProxy {
    pub addr: SocketAddr,
    frozen: watch::Sender<bool>,
    stop: CancellationToken,
}

impl TcpProxy {
    /// Listens on 127.0.0.1 and forwards each connection to `upstream`.
    pub async fn spawn(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (frozen, _) = watch::channel(false);
        let stop = CancellationToken::new();
        let (until, flag) = (stop.clone(), frozen.clone());
        tokio::spawn(async move {
            loop {
                let client = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => continue,
                    },
                    _ = until.cancelled() => return,
                };
                let (until, flag) = (until.clone(), flag.subscribe());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = pipe(client, server, flag) => {}
                        _ = until.cancelled() => {}
                    }
                });
            }
        });
        Ok(Self { addr, frozen, stop })
    }

    /// Stops passing bytes on every connection, open or new, keeping them all open.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Passes bytes again, including those held while frozen.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }

    /// `url` (`postgres://user@host:port/db`) with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("url with a scheme");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let user = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}{}/{path}", self.addr)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Copies both ways until either side closes.
async fn pipe(client: TcpStream, server: TcpStream, frozen: watch::Receiver<bool>) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = copy(client_read, server_write, frozen.clone()) => {}
        _ = copy(server_read, client_write, frozen) => {}
    }
}

async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        if frozen.wait_for(|f| !f).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // What was read while freezing waits until thawed.
        if frozen.wait_for(|f| !f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The address of the host and port in `url` (`postgres://user@host:port/db`).
pub fn url_addr(url: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .expect("a resolvable host:port")
}
