//! `ferry dataset list|runs|export|rm`.

use std::{io::Write, path::Path, process::ExitCode};

use anyhow::{Context, Result};
use ferry_client::Client;

use crate::{
    cli::{DatasetArgs, DatasetCommand},
    config::{FileConfig, client_settings},
};

pub async fn run(args: DatasetArgs, config: Option<&Path>) -> Result<ExitCode> {
    let file = FileConfig::load(config)?;
    let (url, token) = client_settings(args.connect.server, args.connect.data_dir, &file, false)?;
    let client = Client::new(&url, token)?;
    let json = args.connect.json;
    match args.command {
        DatasetCommand::List => {
            let list = client.datasets().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.datasets.is_empty() {
                println!("no datasets yet (a job with `output` makes one when it completes)");
            } else {
                for d in &list.datasets {
                    let last = d.last_run.as_ref().map_or(String::new(), |r| {
                        format!(
                            "\tlast run {}: {} new, {} changed, {} gone",
                            r.at, r.new, r.changed, r.gone
                        )
                    });
                    println!(
                        "{}\tkey {}\t{} items\t{} gone{last}",
                        d.name, d.key, d.items, d.gone
                    );
                }
            }
        }
        DatasetCommand::Runs { name } => {
            let runs = client.dataset_runs(&name).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                for r in &runs.runs {
                    println!(
                        "{}\tjob {}\t{}\t{} new\t{} changed\t{} unchanged\t{} gone",
                        r.at,
                        r.job_id,
                        r.mode.as_str(),
                        r.new,
                        r.changed,
                        r.unchanged,
                        r.gone
                    );
                }
            }
        }
        DatasetCommand::Export {
            name,
            format,
            output,
        } => match output {
            Some(path) => {
                let file = std::fs::File::create(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                let mut out = std::io::BufWriter::new(file);
                let bytes = client.export_dataset(&name, format, &mut out).await?;
                eprintln!("wrote {bytes} bytes to {}", path.display());
            }
            None => {
                let mut out = std::io::stdout().lock();
                client.export_dataset(&name, format, &mut out).await?;
                out.flush()?;
            }
        },
        DatasetCommand::Rm { name } => {
            client.delete_dataset(&name).await?;
            if !json {
                println!("removed {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
