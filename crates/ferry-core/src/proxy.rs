//! A proxy that a job's connections go through: the tenant's (`proxy` in its egress
//! policy, or the operator's for a whole deployment) or the job's own (`proxy` in an
//! `http.request` payload or a recipe). Written as a URL whose password comes from a
//! secret, so no credential is stored or listed in clear:
//! `http://user:{{secret.PROXY_PW}}@proxy.example:8080` or `socks5://proxy.example:1080`.
//! The secret must be bound to the proxy's host, like any secret and where it goes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{BoundSecret, Secret, template};

/// How the proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// HTTP: `CONNECT` for HTTPS (and WebSockets), absolute-form requests for plain HTTP.
    Http,
    /// SOCKS5 (RFC 1928, username/password by RFC 1929); names are resolved by the proxy.
    Socks5,
}

/// A proxy as written (the password still a `{{secret.NAME}}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(with = "String")]
pub struct ProxyUrl {
    text: String,
    kind: ProxyKind,
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
}

/// Why text is not a proxy URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proxy {text:?}: {why}")]
pub struct BadProxy {
    pub text: String,
    pub why: String,
}

impl std::str::FromStr for ProxyUrl {
    type Err = BadProxy;

    fn from_str(text: &str) -> Result<Self, BadProxy> {
        let bad = |why: &str| BadProxy {
            text: redacted(text),
            why: why.to_owned(),
        };
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("write it as http://host:port or socks5://host:port"))?;
        let (kind, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "http" => (ProxyKind::Http, 80),
            // The proxy resolves names either way: a name is never resolved here.
            "socks5" | "socks5h" => (ProxyKind::Socks5, 1080),
            _ => return Err(bad("only http, socks5 and socks5h proxies are known")),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(bad("a proxy URL has no path, query or fragment"));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, password) = match u.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (u, None),
                };
                if let Some(p) = password
                    && !is_one_secret(p)
                {
                    return Err(bad(
                        "the password must be a secret, written {{secret.NAME}} \
                         (ferry secret put NAME --domain <the proxy's host>), never in clear",
                    ));
                }
                if kind == ProxyKind::Socks5 && password.is_none() {
                    return Err(bad(
                        "a SOCKS5 login needs a password (user:{{secret.NAME}})",
                    ));
                }
                (Some(user.to_owned()), password.map(str::to_owned))
            }
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| bad("no host:port"))?;
        let port = match port {
            Some(p) => p
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("bad port"))?,
            None => default_port,
        };
        let name_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !name_ok && host.parse::<std::net::IpAddr>().is_err() {
            return Err(bad("bad host"));
        }
        Ok(ProxyUrl {
            text: text.to_owned(),
            kind,
            host: host.to_ascii_lowercase(),
            port,
            user,
            password,
        })
    }
}

/// `text` with its userinfo hidden (for messages about a URL that is not a proxy's).
fn redacted(text: &str) -> String {
    match (text.split_once("://"), text.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &text[at..]),
        _ => text.to_owned(),
    }
}

/// Whether `text` is exactly one `{{secret.NAME}}`.
fn is_one_secret(text: &str) -> bool {
    text.trim()
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .and_then(|t| t.trim().strip_prefix("secret."))
        .is_some_and(|name| !name.is_empty() && !name.contains(['{', '}']))
}

fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port))),
        None => Some((text, None)),
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for ProxyUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ProxyUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Why a proxy's credentials could not be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyRefused {
    /// A secret it names is nowhere (`INVALID_PAYLOAD`).
    #[error("the proxy's credentials: {0}")]
    Missing(String),
    /// A secret it names is not bound to the proxy's host (`SECRET_REFUSED`).
    #[error("the proxy's credentials: {0}")]
    Unbound(String),
}

/// A proxy ready to be used: its credentials filled in.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Upstream {
    pub kind: ProxyKind,
    pub host: String,
    pub port: u16,
    /// Username and password.
    pub auth: Option<(String, Secret)>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("auth", &self.auth.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ProxyUrl {
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The secrets it names (its username's and password's).
    pub fn secret_names(&self) -> Vec<String> {
        let text = [self.user.as_deref(), self.password.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        template::secret_names(&serde_json::Value::String(text))
    }

    /// The proxy with its secrets filled in from `lookup`, each of which must be bound to
    /// the proxy's host.
    pub fn render(
        &self,
        lookup: &dyn Fn(&str) -> Option<BoundSecret>,
    ) -> Result<Upstream, ProxyRefused> {
        let refused = std::cell::RefCell::new(None);
        let value = |name: &str| {
            let secret = lookup(name)?;
            if let Some(why) = secret.refusal(name, &self.host) {
                refused.borrow_mut().get_or_insert(why);
            }
            Some(secret.value.expose().to_owned())
        };
        let fill = |text: &str| {
            template::render_secrets(text, &value)
                .map(|(out, _)| out)
                .map_err(ProxyRefused::Missing)
        };
        let user = self.user.as_deref().map(fill).transpose()?;
        let password = self.password.as_deref().map(fill).transpose()?;
        if let Some(why) = refused.into_inner() {
            return Err(ProxyRefused::Unbound(why));
        }
        Ok(Upstream {
            kind: self.kind,
            host: self.host.clone(),
            port: self.port,
            auth: user.map(|u| (u, Secret::new(password.unwrap_or_default()))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProxyUrl, BadProxy> {
        text.parse()
    }

    #[test]
    fn proxies_parse_with_their_secrets_named() {
        let p = parse("http://user-1:{{secret.PROXY_PW}}@Proxy.Example:8080").expect("parses");
        assert_eq!(p.host(), "proxy.example");
        assert_eq!(p.port, 8080);
        assert_eq!(p.kind, ProxyKind::Http);
        assert_eq!(p.secret_names(), vec!["PROXY_PW".to_owned()]);
        let s = parse("socks5h://[::1]").expect("parses");
        assert_eq!(
            (s.kind, s.host.as_str(), s.port),
            (ProxyKind::Socks5, "::1", 1080)
        );
        assert!(s.secret_names().is_empty());
        assert_eq!(
            parse("socks5://10.0.0.1:1081/")
                .expect("parses")
                .to_string(),
            "socks5://10.0.0.1:1081/"
        );
    }

    #[test]
    fn a_password_in_clear_is_refused_and_not_repeated() {
        let e = parse("http://me:hunter2@proxy.example:8080").expect_err("clear password");
        assert!(e.why.contains("{{secret.NAME}}"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        for bad in [
            "proxy.example:8080",
            "ftp://proxy.example",
            "http://proxy.example:0",
            "http://proxy.example:99999",
            "http://proxy.example/path",
            "http://:8080",
            "socks5://user@proxy.example",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rendering_needs_secrets_bound_to_the_proxy() {
        let p = parse("http://u:{{secret.PW}}@proxy.example:3128").expect("parses");
        let bound = |domain: &str| {
            let domain = domain.to_owned();
            move |name: &str| {
                (name == "PW")
                    .then(|| BoundSecret::new("s3cret", vec![domain.parse().expect("rule")]))
            }
        };
        let up = p.render(&bound("proxy.example")).expect("renders");
        assert_eq!(
            up.auth.as_ref().map(|(u, p)| (u.as_str(), p.expose())),
            Some(("u", "s3cret"))
        );
        assert!(!format!("{up:?}").contains("s3cret"));
        let why = p
            .render(&bound("shop.example"))
            .expect_err("bound elsewhere");
        assert!(matches!(why, ProxyRefused::Unbound(_)), "{why}");
        assert!(why.to_string().contains("proxy.example"), "{why}");
        let missing = p.render(&|_| None).expect_err("missing");
        assert!(matches!(missing, ProxyRefused::Missing(_)), "{missing}");
        assert!(missing.to_string().contains("PW"), "{missing}");
    }
}
