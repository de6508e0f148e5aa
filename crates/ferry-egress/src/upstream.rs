//! Reaching a target through the job's proxy ([`Upstream`]). The proxy's own address is
//! held to the policy like any connection's. A target whose name resolves here is judged
//! by where it leads, and the proxy is sent the address checked (not the name, which it
//! could resolve elsewhere: rebinding, or a record leading inside); the site still sees its
//! name in `Host` and TLS. A name that does not resolve here is the proxy's to resolve:
//! judged by the policy's rules (with `allow_public: false`, an allow rule must name it).

use base64::Engine;
use ferry_core::{
    egress::EgressPolicy,
    proxy::{ProxyKind, Upstream},
};
use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    EgressError,
    proxy::{Connect, connect},
    resolve,
};

/// The most of a proxy's answer to `CONNECT` read.
const MAX_HEAD: usize = 8 * 1024;

/// How long a proxy has to answer `CONNECT` or the SOCKS5 handshake.
const HANDSHAKE: Duration = Duration::from_secs(15);

/// Where to send the proxy for `host`: the first allowed address it resolves to here, or
/// (when it does not resolve here) the name, if the policy's rules let it through.
pub(crate) async fn check_target(
    policy: &EgressPolicy,
    host: &str,
    port: u16,
) -> Result<String, Connect> {
    match resolve(policy, host, port).await {
        Ok(addrs) => Ok(addrs
            .first()
            .map_or_else(|| host.to_owned(), |a| a.ip().to_string())),
        Err(EgressError::Resolve(_)) => policy
            .check_unresolved(host)
            .map(|()| host.to_owned())
            .map_err(Connect::Denied),
        Err(EgressError::Denied(denied)) => Err(Connect::Denied(denied)),
    }
}

/// A connection to the proxy itself (for plain HTTP through an HTTP proxy).
pub(crate) async fn to_proxy(policy: &EgressPolicy, up: &Upstream) -> Result<TcpStream, Connect> {
    connect(policy, &up.host, up.port).await
}

/// A stream to `host:port` through the proxy (a tunnel: `CONNECT` or SOCKS5).
pub(crate) async fn tunnel(
    policy: &EgressPolicy,
    up: &Upstream,
    host: &str,
    port: u16,
) -> Result<TcpStream, Connect> {
    let target = check_target(policy, host, port).await?;
    let stream = to_proxy(policy, up).await?;
    let failed = |e: &dyn std::fmt::Display| {
        Connect::Failed(format!(
            "the proxy {} did not reach {}: {e}\n",
            authority(&up.host, up.port),
            authority(host, port)
        ))
    };
    let handshake = async {
        match up.kind {
            ProxyKind::Http => http_connect(stream, up, &target, port).await,
            ProxyKind::Socks5 => {
                let bare = target.trim_start_matches('[').trim_end_matches(']');
                let socks = match &up.auth {
                    Some((user, password)) => {
                        tokio_socks::tcp::Socks5Stream::connect_with_password_and_socket(
                            stream,
                            (bare, port),
                            user,
                            password.expose(),
                        )
                        .await
                    }
                    None => {
                        tokio_socks::tcp::Socks5Stream::connect_with_socket(stream, (bare, port))
                            .await
                    }
                };
                socks.map(|s| s.into_inner()).map_err(|e| e.to_string())
            }
        }
    };
    match tokio::time::timeout(HANDSHAKE, handshake).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(failed(&e)),
        Err(_) => Err(failed(&format!(
            "no answer within {} s",
            HANDSHAKE.as_secs()
        ))),
    }
}

/// `Proxy-Authorization` for the proxy's credentials, if it has any.
pub fn authorization(up: &Upstream) -> Option<String> {
    let (user, password) = up.auth.as_ref()?;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
    Some(format!("Basic {token}"))
}

/// `host:port` as a request line writes it (an IPv6 address in brackets).
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Asks an HTTP proxy for a tunnel; the stream is the tunnel once it answers `2xx`.
async fn http_connect(
    mut stream: TcpStream,
    up: &Upstream,
    host: &str,
    port: u16,
) -> Result<TcpStream, String> {
    let target = authority(host, port);
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = authorization(up) {
        head.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    // Byte by byte: what follows the answer's head is the target's, not ours to read.
    let mut answer = Vec::with_capacity(128);
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= MAX_HEAD {
            return Err("its answer to CONNECT is too long".into());
        }
        let byte = stream.read_u8().await.map_err(|e| e.to_string())?;
        answer.push(byte);
    }
    let line = String::from_utf8_lossy(&answer);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("it did not answer CONNECT with HTTP")?;
    match status {
        200..=299 => Ok(stream),
        407 => Err("it refused the credentials (407 Proxy Authentication Required)".into()),
        other => Err(format!("it answered {other} to CONNECT")),
    }
}
