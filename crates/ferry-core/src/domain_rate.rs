//! Per-domain politeness (issue #15): a tenant's rate limits per target domain, in its
//! egress policy (`rate_limits`), applied at submit to every `http.request` and
//! `browser.run` job aimed at a matching host that has no rate limit of its own — and to
//! the jobs its chain will enqueue. They become the job's rate key `domain:<rule>`, so
//! all jobs reaching one domain (its subdomains too) share it, admitted at claim like any
//! other rate key.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{FieldError, api::SubmitJob, egress::EgressRule, flow::RateLimit};

/// At most this many domain rate rules per policy.
pub const MAX_DOMAIN_RATES: usize = 200;

/// One domain's limit: an interval between starts (`interval_ms`), or at most `max` starts
/// per `per_ms`, or both — as a job's `rate_limit`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainRate {
    /// A domain (and its subdomains) or an address / CIDR block.
    pub domain: EgressRule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_ms: Option<u64>,
}

impl DomainRate {
    /// The rate limit jobs reaching this domain share.
    pub fn limit(&self) -> RateLimit {
        RateLimit {
            key: format!("domain:{}", self.domain),
            interval_ms: self.interval_ms,
            max: self.max,
            per_ms: self.per_ms,
        }
    }
}

/// Field errors of a list of domain rates (named `field[i]…`).
pub fn problems(rates: &[DomainRate], field: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if rates.len() > MAX_DOMAIN_RATES {
        errors.push(FieldError::new(
            field,
            format!("at most {MAX_DOMAIN_RATES} rules"),
        ));
    }
    for (i, rate) in rates.iter().enumerate() {
        crate::flow::rate_limit(&rate.limit(), &format!("{field}[{i}]"), &mut errors);
    }
    errors
}

/// The host a job of `kind` connects to first: an `http.request`'s `url`, a
/// `browser.run` recipe's first `goto` (its `{{input.NAME}}` filled from the recipe's
/// `inputs`). `None` for other kinds, or when the host holds a `{{secret.…}}`.
pub fn target_host(kind: &str, payload: &Value) -> Option<String> {
    let url = match kind {
        "http.request" => payload.get("url")?.as_str()?.to_owned(),
        "browser.run" => {
            let url = payload
                .get("steps")?
                .as_array()?
                .iter()
                .find_map(|step| step.get("goto")?.get("url")?.as_str())?;
            let inputs: std::collections::BTreeMap<String, String> = payload
                .get("inputs")
                .and_then(|i| serde_json::from_value(i.clone()).ok())
                .unwrap_or_default();
            crate::template::render(url, &inputs, &|_| None).ok()?
        }
        _ => return None,
    };
    let host = url::Url::parse(&url).ok()?.host_str()?.to_ascii_lowercase();
    (!host.contains("{{") && !host.contains("%7b")).then_some(host)
}

/// The limit of the first rule matching `host`.
pub fn rate_for(rates: &[DomainRate], host: &str) -> Option<RateLimit> {
    rates
        .iter()
        .find(|r| r.domain.matches_host(host))
        .map(DomainRate::limit)
}

/// Gives `spec` (and the specs its chain will enqueue) the domain rate of its target, if
/// it has no rate limit of its own.
pub fn apply_to_spec(rates: &[DomainRate], spec: &mut SubmitJob) {
    if spec.rate_limit.is_none()
        && let Some(host) = target_host(&spec.kind, &spec.payload)
    {
        spec.rate_limit = rate_for(rates, &host);
    }
    for child in spec.then.iter_mut().flatten() {
        apply_to_spec(rates, child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rate(domain: &str, interval_ms: u64) -> DomainRate {
        DomainRate {
            domain: domain.parse().expect("a rule"),
            interval_ms: Some(interval_ms),
            max: None,
            per_ms: None,
        }
    }

    #[test]
    fn the_target_is_the_url_or_the_first_goto() {
        assert_eq!(
            target_host(
                "http.request",
                &json!({"url": "https://API.shop.example/x"})
            ),
            Some("api.shop.example".into())
        );
        assert_eq!(
            target_host(
                "browser.run",
                &json!({"steps": [{"wait_for": {"delay_ms": 1}}, {"goto": {"url": "http://10.0.0.1:8080/"}}, {"goto": {"url": "https://other.example/"}}]})
            ),
            Some("10.0.0.1".into())
        );
        assert_eq!(
            target_host(
                "browser.run",
                &json!({"inputs": {"host": "Shop.example"}, "steps": [{"goto": {"url": "https://{{input.host}}/x"}}]})
            ),
            Some("shop.example".into()),
            "a recipe's inputs are known at submit"
        );
        assert_eq!(
            target_host(
                "browser.run",
                &json!({"steps": [{"goto": {"url": "https://{{secret.HOST}}/"}}]})
            ),
            None
        );
        assert_eq!(
            target_host("my.kind", &json!({"url": "https://x.example"})),
            None
        );
    }

    #[test]
    fn a_job_without_its_own_limit_gets_its_domains_and_so_does_its_chain() {
        let rates = [rate("shop.example", 1000), rate("10.0.0.0/8", 50)];
        let mut spec = SubmitJob::new("http.request", json!({"url": "https://a.shop.example/"}));
        spec.then = Some(vec![
            SubmitJob::new("http.request", json!({"url": "http://10.1.2.3/"})),
            SubmitJob::new("http.request", json!({"url": "https://elsewhere.example/"})),
        ]);
        apply_to_spec(&rates, &mut spec);
        let key = |s: &SubmitJob| s.rate_limit.as_ref().map(|r| r.key.clone());
        assert_eq!(key(&spec), Some("domain:shop.example".into()));
        assert_eq!(
            spec.rate_limit.as_ref().and_then(|r| r.interval_ms),
            Some(1000)
        );
        let then = spec.then.as_ref().expect("then");
        assert_eq!(key(&then[0]), Some("domain:10.0.0.0/8".into()));
        assert_eq!(key(&then[1]), None);

        let own = RateLimit {
            key: "mine".into(),
            interval_ms: Some(5),
            max: None,
            per_ms: None,
        };
        let mut spec = SubmitJob::new("http.request", json!({"url": "https://shop.example/"}));
        spec.rate_limit = Some(own.clone());
        apply_to_spec(&rates, &mut spec);
        assert_eq!(spec.rate_limit, Some(own), "a job's own limit is kept");
    }

    #[test]
    fn a_rule_needs_a_whole_rate() {
        let bad = DomainRate {
            domain: "shop.example".parse().expect("a rule"),
            interval_ms: None,
            max: Some(3),
            per_ms: None,
        };
        let errors = problems(&[rate("ok.example", 10), bad], "rate_limits");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "rate_limits[1].per_ms");
    }
}
