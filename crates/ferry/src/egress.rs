//! `ferry egress show|set`: the tenant's egress rules through `GET|PUT /v1/tenant/egress`
//! (setting them takes an admin's key).

use std::{path::Path, process::ExitCode};

use anyhow::{Context, Result};
use ferry_client::Client;
use ferry_core::egress::{EgressPolicy, EgressRule};

use crate::{
    cli::{EgressArgs, EgressCommand},
    config::{FileConfig, client_settings},
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
}

pub async fn egress(args: EgressArgs, config: Option<&Path>) -> Result<ExitCode> {
    let file = FileConfig::load(config)?;
    let (url, token) = client_settings(
        args.connect.server.clone(),
        args.connect.data_dir.clone(),
        &file,
        false,
    )?;
    let api = Client::new(&url, token)?;
    let answer = match args.command {
        EgressCommand::Show => api.tenant_egress().await?,
        EgressCommand::Set {
            allow,
            deny,
            only_allowed,
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
