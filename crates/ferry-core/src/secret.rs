//! A string that must not leak into logs: `Debug` and `Display` print a placeholder; and
//! a worker's secret bound to the domains it may be sent to.

use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used (an `Authorization` header, a
    /// constant-time comparison, the token file).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A secret a recipe may use (`{{secret.NAME}}`) and the hosts it may go to: it is filled
/// only into pages of those hosts (and put only into URLs of them), so a recipe cannot hand
/// it to a page of its own choosing. A secret bound to no domain is used nowhere.
#[derive(Clone, PartialEq, Eq)]
pub struct BoundSecret {
    pub value: Secret,
    pub domains: Vec<crate::egress::EgressRule>,
}

impl std::fmt::Debug for BoundSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundSecret")
            .field("value", &self.value)
            .field("domains", &self.domains)
            .finish()
    }
}

impl BoundSecret {
    pub fn new(value: impl Into<String>, domains: Vec<crate::egress::EgressRule>) -> Self {
        Self {
            value: Secret::new(value),
            domains,
        }
    }

    /// Whether the secret may go to `host` (as a URL names it).
    pub fn may_go_to(&self, host: &str) -> bool {
        self.domains.iter().any(|d| d.matches_host(host))
    }

    /// Why it may not go to `host`, naming the secret and, when it is unbound, the
    /// variable that binds a worker's own secret.
    pub fn refusal(&self, name: &str, host: &str) -> Option<String> {
        if self.domains.is_empty() {
            return Some(format!(
                "secret `{name}` is bound to no domain, so it is sent nowhere \
                 (a worker's own secret: set {}{name}=shop.example)",
                crate::recipe::SECRET_DOMAINS_ENV_PREFIX
            ));
        }
        (!self.may_go_to(host)).then(|| {
            let allowed: Vec<String> = self.domains.iter().map(ToString::to_string).collect();
            format!(
                "secret `{name}` may go only to {}, not to {host:?}",
                allowed.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_bound_secret_goes_only_to_its_domains() {
        let rules = vec![
            "shop.example".parse().expect("a rule"),
            "127.0.0.1".parse().expect("a rule"),
        ];
        let s = BoundSecret::new("hunter2", rules);
        assert!(s.may_go_to("shop.example"));
        assert!(s.may_go_to("login.shop.example"));
        assert!(s.may_go_to("127.0.0.1"));
        assert!(!s.may_go_to("evil.example"));
        assert!(!s.may_go_to("shop.example.evil.example"));
        assert!(s.refusal("PW", "evil.example").is_some());
        assert!(s.refusal("PW", "shop.example").is_none());
        let unbound = BoundSecret::new("hunter2", Vec::new());
        let why = unbound.refusal("PW", "shop.example").unwrap_or_default();
        assert!(why.contains("FERRY_SECRET_DOMAINS_PW"), "{why}");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
