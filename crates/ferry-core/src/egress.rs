//! The egress policy: where a job's connections may go. Decided per address *after* DNS
//! resolution (by whoever makes the connection: the worker for `http.request` and the
//! browser, the server for webhooks), so alternative spellings of an address and names that
//! resolve to internal addresses are judged by where they really lead.
//!
//! By default every public address is allowed and every other one is denied: loopback,
//! private (RFC 1918, unique local), shared (CGNAT), link-local (with the cloud metadata
//! services), unspecified, multicast, broadcast, documentation and reserved ranges. A
//! tenant's policy adds `deny` rules (always refused), `allow` rules (reachable even when
//! internal) and may turn public addresses off (`allow_public: false`: only `allow`). An
//! operator may allow internal addresses for a whole deployment (`allow_private`); cloud
//! metadata addresses stay denied unless an `allow` rule names them by address.

use std::{fmt, net::IpAddr, str::FromStr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The most rules a policy holds (allow and deny each).
pub const MAX_RULES: usize = 200;

/// Where a job's connections may go. The default allows public addresses only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressPolicy {
    /// Domains (a name and its subdomains) or addresses/CIDR blocks reachable even when
    /// they are internal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<EgressRule>,
    /// Domains or addresses/CIDR blocks never reached, whatever else allows them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<EgressRule>,
    /// Public addresses are reachable (default). `false`: only what `allow` names.
    #[serde(default = "yes")]
    pub allow_public: bool,
    /// Internal addresses (loopback, private, link-local …) are reachable: the operator's
    /// switch for a deployment that needs it. Cloud metadata addresses still need an
    /// `allow` rule naming their address.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_private: bool,
    /// Rate limits per target domain, given at submit to the jobs aimed at each
    /// (`domain_rate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<crate::domain_rate::DomainRate>,
    /// The proxy every `http.request` and `browser.run` connection goes through, unless a
    /// job names its own (`proxy`): `http://user:{{secret.NAME}}@host:port` or
    /// `socks5://host:port`. The proxy's address is held to the policy like any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<crate::proxy::ProxyUrl>,
}

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            deny: Vec::new(),
            allow_public: true,
            allow_private: false,
            rate_limits: Vec::new(),
            proxy: None,
        }
    }
}

/// One rule: a domain (matching itself and its subdomains) or an address block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[schemars(with = "String")]
pub enum EgressRule {
    Domain(String),
    Net(IpNet),
}

/// Why text is not an egress rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither a domain (example.com) nor an address or CIDR block (10.0.0.0/8)")]
pub struct BadRule(pub String);

impl FromStr for EgressRule {
    type Err = BadRule;

    fn from_str(text: &str) -> Result<Self, BadRule> {
        let t = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if let Ok(net) = t.parse::<IpNet>() {
            return Ok(EgressRule::Net(net.trunc()));
        }
        let bare = t.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(EgressRule::Net(IpNet::from(ip)));
        }
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        // A domain whose last label is all digits would be an address spelled oddly.
        let numeric_tail = t
            .rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
        if t.len() <= 253 && t.split('.').all(label_ok) && !numeric_tail {
            Ok(EgressRule::Domain(t))
        } else {
            Err(BadRule(text.to_owned()))
        }
    }
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EgressRule::Domain(d) => f.write_str(d),
            EgressRule::Net(n) if n.prefix_len() == n.max_prefix_len() => {
                write!(f, "{}", n.addr())
            }
            EgressRule::Net(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for EgressRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EgressRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl EgressRule {
    /// Whether the rule covers `host` (a domain name as written in the URL, lowercased; or
    /// `None` for an address) or the address it leads to.
    fn covers(&self, host: Option<&str>, ip: Option<IpAddr>) -> bool {
        match self {
            EgressRule::Domain(d) => host.is_some_and(|h| {
                let h = h.trim_end_matches('.');
                h.eq_ignore_ascii_case(d)
                    || (h.len() > d.len()
                        && h[h.len() - d.len()..].eq_ignore_ascii_case(d)
                        && h.as_bytes()[h.len() - d.len() - 1] == b'.')
            }),
            EgressRule::Net(n) => ip.is_some_and(|ip| n.contains(&canonical(ip))),
        }
    }

    /// Whether the rule covers a host as a URL names it: a domain rule the name or its
    /// subdomains, an address rule an address written as the host.
    pub fn matches_host(&self, host: &str) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(ip) => self.covers(None, Some(ip)),
            Err(_) => self.covers(Some(bare), None),
        }
    }

    /// An address rule naming exactly this address (how a metadata address is allowed).
    fn names(&self, ip: IpAddr) -> bool {
        matches!(self, EgressRule::Net(n) if n.prefix_len() == n.max_prefix_len() && n.addr() == canonical(ip))
    }
}

/// A connection the policy refuses: the job fails with `EGRESS_DENIED`, not retried.
/// The same whether or not anything listens there (it is decided before connecting).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("egress to {host} is denied: {reason} (see the tenant's egress policy)")]
pub struct EgressDenied {
    /// The host as the URL named it.
    pub host: String,
    pub reason: String,
}

impl EgressPolicy {
    /// The operator's switch.
    pub fn allowing_private() -> Self {
        Self {
            allow_private: true,
            ..Self::default()
        }
    }

    /// This policy with `other`'s rules added (the operator's and a tenant's): denials of
    /// either hold; allows of either hold; public addresses only if both allow them.
    pub fn merged(&self, other: &EgressPolicy) -> EgressPolicy {
        let join = |a: &[EgressRule], b: &[EgressRule]| {
            let mut all = a.to_vec();
            all.extend(b.iter().filter(|r| !a.contains(r)).cloned());
            all
        };
        EgressPolicy {
            allow: join(&self.allow, &other.allow),
            deny: join(&self.deny, &other.deny),
            allow_public: self.allow_public && other.allow_public,
            allow_private: self.allow_private || other.allow_private,
            // The tenant's (`other`) first: the first rule matching a host applies.
            rate_limits: other
                .rate_limits
                .iter()
                .chain(&self.rate_limits)
                .cloned()
                .collect(),
            proxy: other.proxy.clone().or_else(|| self.proxy.clone()),
        }
    }

    /// Field errors of a policy a tenant sets.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, rules) in [("allow", &self.allow), ("deny", &self.deny)] {
            if rules.len() > MAX_RULES {
                out.push((name.to_owned(), format!("at most {MAX_RULES} rules")));
            }
        }
        out.extend(
            crate::domain_rate::problems(&self.rate_limits, "rate_limits")
                .into_iter()
                .map(|e| (e.field, e.message)),
        );
        out
    }

    /// Decides before resolving a name: what `deny` names and, without public access, a
    /// name no `allow` rule covers. `Ok` still needs [`EgressPolicy::check`] on each
    /// address the name resolves to.
    pub fn check_name(&self, host: &str) -> Result<(), EgressDenied> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
            return self.check(&host, ip);
        }
        if self.deny.iter().any(|r| r.covers(Some(&host), None)) {
            return Err(denied(&host, "the policy denies it"));
        }
        Ok(())
    }

    /// Decides a name that cannot be resolved here (a proxy resolves it): its deny rules,
    /// and with `allow_public: false` an allow rule naming it.
    pub fn check_unresolved(&self, host: &str) -> Result<(), EgressDenied> {
        self.check_name(host)?;
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if !self.allow_public && !self.allow.iter().any(|r| r.covers(Some(&name), None)) {
            return Err(denied(
                &name,
                "only what the allow list names is reachable, and it does not name this",
            ));
        }
        Ok(())
    }

    /// Decides one connection: `host` as the URL named it, `ip` where it leads.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), EgressDenied> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let literal = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok();
        let domain = (!literal).then_some(name.as_str());
        let ip = canonical(ip);
        if self.deny.iter().any(|r| r.covers(domain, Some(ip))) {
            return Err(denied(&name, "the policy denies it"));
        }
        let allowed = self.allow.iter().any(|r| r.covers(domain, Some(ip)));
        match classify(ip) {
            Some(Class::Metadata) if !self.allow.iter().any(|r| r.names(ip)) => Err(denied(
                &name,
                &leads_to(literal, "a cloud metadata address"),
            )),
            Some(class) if !allowed && !self.allow_private => {
                Err(denied(&name, &leads_to(literal, class.describe())))
            }
            None if !allowed && !self.allow_public => {
                Err(denied(&name, "it is not on the allow list"))
            }
            _ => Ok(()),
        }
    }
}

fn leads_to(literal: bool, what: &str) -> String {
    if literal {
        format!("it is {what}")
    } else {
        format!("it resolves to {what}")
    }
}

fn denied(host: &str, reason: &str) -> EgressDenied {
    EgressDenied {
        host: host.to_owned(),
        reason: reason.to_owned(),
    }
}

/// What kind of internal address an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Loopback,
    Private,
    Shared,
    LinkLocal,
    Metadata,
    Unspecified,
    Multicast,
    Reserved,
}

impl Class {
    pub fn describe(self) -> &'static str {
        match self {
            Class::Loopback => "a loopback address",
            Class::Private => "a private address",
            Class::Shared => "a shared (carrier-grade NAT) address",
            Class::LinkLocal => "a link-local address",
            Class::Metadata => "a cloud metadata address",
            Class::Unspecified => "an unspecified address",
            Class::Multicast => "a multicast address",
            Class::Reserved => "a reserved address",
        }
    }
}

/// An IPv6 address that carries an IPv4 one (mapped, compatible, NAT64, 6to4) as that
/// IPv4 address; others as they are.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let embedded = |hi: u16, lo: u16| {
        IpAddr::V4(std::net::Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ))
    };
    match s {
        // IPv4-compatible (deprecated), but not :: and ::1.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => embedded(hi, lo),
        // NAT64 well-known prefix.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
        // 6to4.
        [0x2002, hi, lo, ..] => embedded(hi, lo),
        _ => ip,
    }
}

/// `None` for a public address; otherwise what kind of internal address it is.
pub fn classify(ip: IpAddr) -> Option<Class> {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            match (a, b) {
                _ if [a, b, c, d] == [169, 254, 169, 254] => Some(Class::Metadata),
                _ if [a, b, c, d] == [100, 100, 100, 200] => Some(Class::Metadata),
                (0, _) => Some(Class::Unspecified),
                (127, _) => Some(Class::Loopback),
                (10, _) | (192, 168) => Some(Class::Private),
                (172, 16..=31) => Some(Class::Private),
                (100, 64..=127) => Some(Class::Shared),
                (169, 254) => Some(Class::LinkLocal),
                (224..=239, _) => Some(Class::Multicast),
                (240..=255, _) => Some(Class::Reserved),
                // IETF protocol assignments, documentation, benchmarking.
                (192, 0) if c == 0 || c == 2 => Some(Class::Reserved),
                (198, 51) if c == 100 => Some(Class::Reserved),
                (203, 0) if c == 113 => Some(Class::Reserved),
                (198, 18..=19) => Some(Class::Reserved),
                _ => None,
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if v6.is_unspecified() {
                Some(Class::Unspecified)
            } else if v6.is_loopback() {
                Some(Class::Loopback)
            } else if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
                Some(Class::Metadata)
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some(Class::Private)
            } else if s[0] & 0xffc0 == 0xfe80 || s[0] & 0xffc0 == 0xfec0 {
                Some(Class::LinkLocal)
            } else if s[0] & 0xff00 == 0xff00 {
                Some(Class::Multicast)
            } else if (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
                || s[0] == 0
            {
                Some(Class::Reserved)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn rule(s: &str) -> EgressRule {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn internal_addresses_are_classified() {
        for (addr, class) in [
            ("127.0.0.1", Class::Loopback),
            ("127.255.0.9", Class::Loopback),
            ("0.0.0.0", Class::Unspecified),
            ("10.1.2.3", Class::Private),
            ("172.31.0.1", Class::Private),
            ("192.168.0.1", Class::Private),
            ("100.64.0.1", Class::Shared),
            ("169.254.1.1", Class::LinkLocal),
            ("169.254.169.254", Class::Metadata),
            ("100.100.100.200", Class::Metadata),
            ("224.0.0.1", Class::Multicast),
            ("255.255.255.255", Class::Reserved),
            ("::1", Class::Loopback),
            ("::", Class::Unspecified),
            ("::ffff:127.0.0.1", Class::Loopback),
            ("::ffff:10.0.0.1", Class::Private),
            ("::127.0.0.1", Class::Loopback),
            ("64:ff9b::7f00:1", Class::Loopback),
            ("2002:a9fe:a9fe::", Class::Metadata),
            ("fd00:ec2::254", Class::Metadata),
            ("fd12::1", Class::Private),
            ("fe80::1", Class::LinkLocal),
            ("ff02::1", Class::Multicast),
            ("2001:db8::1", Class::Reserved),
        ] {
            assert_eq!(classify(ip(addr)), Some(class), "{addr}");
        }
        for public in ["1.1.1.1", "8.8.8.8", "172.32.0.1", "2606:4700::1111"] {
            assert_eq!(classify(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn the_default_denies_internal_addresses_and_allows_public_ones() {
        let p = EgressPolicy::default();
        assert!(p.check("example.com", ip("93.184.216.34")).is_ok());
        let e = p.check("localhost", ip("127.0.0.1")).expect_err("denied");
        assert_eq!(e.host, "localhost");
        assert!(e.reason.contains("resolves to a loopback"), "{e}");
        let e = p.check("127.0.0.1", ip("127.0.0.1")).expect_err("denied");
        assert!(e.reason.contains("it is a loopback"), "{e}");
        assert!(
            p.check("[::ffff:127.0.0.1]", ip("::ffff:127.0.0.1"))
                .is_err()
        );
        assert!(p.check_name("10.0.0.1").is_err());
        assert!(p.check_name("example.com").is_ok());
    }

    #[test]
    fn allow_and_deny_rules_match_names_and_blocks() {
        let p = EgressPolicy {
            allow: vec![rule("intranet.example"), rule("10.9.0.0/16")],
            deny: vec![
                rule("evil.example"),
                rule("203.0.113.0/24"),
                rule("8.8.8.8"),
            ],
            ..EgressPolicy::default()
        };
        assert!(p.check("a.intranet.example", ip("10.0.0.1")).is_ok());
        assert!(p.check("intranet.example", ip("192.168.1.1")).is_ok());
        assert!(p.check("xintranet.example", ip("10.0.0.1")).is_err());
        assert!(p.check("x.example", ip("10.9.3.4")).is_ok());
        assert!(p.check("x.example", ip("10.8.3.4")).is_err());
        assert!(p.check_name("www.evil.example").is_err());
        assert!(p.check("dns.example", ip("8.8.8.8")).is_err());
        // Metadata needs its own address named.
        assert!(p.check("10.9.0.1", ip("169.254.169.254")).is_err());
        let only = EgressPolicy {
            allow: vec![rule("shop.example")],
            allow_public: false,
            ..EgressPolicy::default()
        };
        assert!(only.check("shop.example", ip("93.184.216.34")).is_ok());
        let e = only
            .check("other.example", ip("93.184.216.34"))
            .expect_err("denied");
        assert!(e.reason.contains("allow list"), "{e}");
    }

    #[test]
    fn the_operator_switch_allows_internal_addresses_but_not_metadata() {
        let p = EgressPolicy::allowing_private();
        assert!(p.check("localhost", ip("127.0.0.1")).is_ok());
        assert!(p.check("10.0.0.1", ip("10.0.0.1")).is_ok());
        assert!(p.check("169.254.169.254", ip("169.254.169.254")).is_err());
        let named = EgressPolicy {
            allow: vec![rule("169.254.169.254")],
            ..EgressPolicy::default()
        };
        assert!(
            named
                .check("169.254.169.254", ip("169.254.169.254"))
                .is_ok()
        );
        let tenant = EgressPolicy {
            deny: vec![rule("127.0.0.1")],
            ..EgressPolicy::default()
        };
        let merged = p.merged(&tenant);
        assert!(merged.allow_private);
        assert!(merged.check("localhost", ip("127.0.0.1")).is_err());
        assert!(merged.check("localhost", ip("127.0.0.2")).is_ok());
    }

    #[test]
    fn rules_parse_and_print() {
        for (text, shown) in [
            ("Example.COM.", "example.com"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("127.0.0.1", "127.0.0.1"),
            ("[::1]", "::1"),
            ("fd00::/8", "fd00::/8"),
        ] {
            assert_eq!(rule(text).to_string(), shown, "{text}");
        }
        for bad in ["", "a b", "-x.com", "http://x.com", "1.2.3", "x..com"] {
            assert!(bad.parse::<EgressRule>().is_err(), "{bad}");
        }
        let p: EgressPolicy =
            serde_json::from_str(r#"{"allow":["127.0.0.1","shop.example"]}"#).unwrap_or_default();
        assert_eq!(p.allow.len(), 2);
        assert!(p.allow_public);
        assert!(serde_json::from_str::<EgressPolicy>(r#"{"allow":["a b"]}"#).is_err());
    }
}
