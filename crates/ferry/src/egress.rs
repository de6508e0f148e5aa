//! `ferry egress show|set`: the tenant's egress rules through `GET|PUT /v1/tenant/egress`
//! (setting them takes an admin's key).

use std::{path::Path, process::ExitCode};

use anyhow::{Context, Result};
use ferry_core::egress::{EgressPolicy, EgressRule};

use crate::{
    cli::{EgressArgs, EgressCommand},
    config::api_client,
};

fn rules(rules: &[EgressRule]) -> String {
    if rules.is_empty() {
        return "-".to_owned();
    }
    rules
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn print(title: &str, p: &EgressPolicy) {
    println!("{title}:");
    println!("  allow:           {}", rules(&p.allow));
    println!("  deny:            {}", rules(&p.deny));
    println!(
        "  public:          {}",
        if p.allow_public {
            "allowed"
        } else {
            "only what allow names"
        }
    );
    println!(
        "  internal:        {}",
        if p.allow_private {
            "allowed (the operator's switch)"
        } else {
            "denied unless allowed"
        }
    );
    if !p.rate_limits.is_empty() {
        let rates: Vec<String> = p
            .rate_limits
            .iter()
            .map(|r| match (r.interval_ms, r.max, r.per_ms) {
                (Some(ms), None, _) => format!("{}: one start per {ms} ms", r.domain),
                (None, Some(max), Some(per)) => {
                    format!("{}: {max} starts per {per} ms", r.domain)
                }
                (Some(ms), Some(max), Some(per)) => {
                    format!("{}: one start per {ms} ms, {max} per {per} ms", r.domain)
                }
                _ => format!("{}", r.domain),
            })
            .collect();
        println!("  rate limits:     {}", rates.join("; "));
    }
    if let Some(proxy) = &p.proxy {
        println!("  proxy:           {proxy}");
    }
}

pub async fn egress(args: EgressArgs, config: Option<&Path>) -> Result<ExitCode> {
    let api = api_client(&args.connect, config)?;
    let answer = match args.command {
        EgressCommand::Show => api.tenant_egress().await?,
        EgressCommand::Set {
            allow,
            deny,
            only_allowed,
            rate,
            proxy,
        } => {
            let parse = |texts: Vec<String>| -> Result<Vec<EgressRule>> {
                texts
                    .iter()
                    .map(|t| {
                        t.parse::<EgressRule>()
                            .with_context(|| format!("bad rule {t:?}"))
                    })
                    .collect()
            };
            let policy = EgressPolicy {
                allow: parse(allow)?,
                deny: parse(deny)?,
                allow_public: !only_allowed,
                allow_private: false,
                rate_limits: rate.iter().map(|t| domain_rate(t)).collect::<Result<_>>()?,
                proxy: proxy
                    .map(|p| p.parse::<ferry_core::proxy::ProxyUrl>())
                    .transpose()?,
            };
            api.set_tenant_egress(&policy).await?
        }
    };
    if args.connect.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print("the tenant's rules", &answer.tenant);
        print("in effect (with the operator's)", &answer.effective);
    }
    Ok(ExitCode::SUCCESS)
}

/// `DOMAIN=MS` (an interval between starts) or `DOMAIN=MAX/MS` (at most MAX starts per MS).
fn domain_rate(text: &str) -> Result<ferry_core::domain_rate::DomainRate> {
    let bad = || anyhow::anyhow!("bad --rate {text:?}: give DOMAIN=MS or DOMAIN=MAX/MS");
    let (domain, rate) = text.split_once('=').ok_or_else(bad)?;
    let domain = domain
        .parse::<EgressRule>()
        .with_context(|| format!("bad --rate {text:?}"))?;
    let (interval_ms, max, per_ms) = match rate.split_once('/') {
        Some((max, per)) => (
            None,
            Some(max.trim().parse().map_err(|_| bad())?),
            Some(per.trim().parse().map_err(|_| bad())?),
        ),
        None => (Some(rate.trim().parse().map_err(|_| bad())?), None, None),
    };
    Ok(ferry_core::domain_rate::DomainRate {
        domain,
        interval_ms,
        max,
        per_ms,
    })
}
