//! `ferry secret put|list|rm`: the tenant's secrets vault through `PUT|GET|DELETE
//! /v1/secrets`. A value is asked for on the terminal (not echoed) or read from stdin, never
//! taken from the command line (it would be in the shell's history).

use std::{io::BufRead, path::Path, process::ExitCode};

use anyhow::{Context, Result, bail};
use ferry_core::{Secret, vault::SecretSpec};

use crate::{
    cli::{SecretArgs, SecretCommand},
    config::api_client as client,
};

fn read_value(from_stdin: bool) -> Result<Secret> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the value from stdin")?;
        return Ok(Secret::new(line.trim_end_matches(['\r', '\n'])));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("no terminal to ask for the value on: give it on stdin with --value-stdin");
    }
    let value = rpassword::prompt_password("value: ").context("reading the value")?;
    Ok(Secret::new(value))
}

pub async fn secret(args: SecretArgs, config: Option<&Path>) -> Result<ExitCode> {
    let api = client(&args.connect, config)?;
    let json = args.connect.json;
    match args.command {
        SecretCommand::Put {
            name,
            domains,
            value_stdin,
        } => {
            let value = read_value(value_stdin)?;
            let info = api
                .put_secret(&name, &SecretSpec { value, domains })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                let domains: Vec<String> = info.domains.iter().map(ToString::to_string).collect();
                println!("saved {} (sent only to {})", info.name, domains.join(", "));
            }
        }
        SecretCommand::List => {
            let list = api.secrets().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.secrets.is_empty() {
                println!("(no secrets)");
            } else {
                for s in &list.secrets {
                    let domains: Vec<String> = s.domains.iter().map(ToString::to_string).collect();
                    println!(
                        "{}  {}  updated {}",
                        s.name,
                        domains.join(","),
                        s.updated_at.format("%Y-%m-%d %H:%M:%S")
                    );
                }
            }
        }
        SecretCommand::Rm { name } => {
            api.delete_secret(&name).await?;
            if !json {
                println!("removed {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
