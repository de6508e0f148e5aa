//! `ferry batch submit|get|wait|cancel`: one job per item, followed as a whole.

use std::{io::Read, path::Path, process::ExitCode, time::Duration};

use anyhow::{Context, Result, bail};
use ferry_client::Client;
use ferry_core::{
    BatchId,
    api::{Batch, BatchOptions, BatchState, CreateBatch},
};
use serde_json::Value;

use crate::{
    cli::{BatchArgs, BatchCommand},
    config::{FileConfig, client_settings},
    exit::{self, StillWaiting},
};

pub async fn run(args: BatchArgs, config: Option<&Path>) -> Result<ExitCode> {
    let file = FileConfig::load(config)?;
    let (url, token) = client_settings(args.connect.server, args.connect.data_dir, &file, false)?;
    let client = Client::new(&url, token)?;
    let json = args.connect.json;
    match args.command {
        BatchCommand::Submit {
            kind,
            items,
            items_file,
            options,
        } => {
            let items = read_items(items, items_file.as_deref())?;
            let options: BatchOptions = match options {
                Some(text) => serde_json::from_str(&text)
                    .context("--options is not valid batch options JSON")?,
                None => BatchOptions::default(),
            };
            let created = client
                .create_batch(&CreateBatch {
                    kind,
                    items,
                    options,
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                println!("{} submitted ({} items)", created.batch_id, created.total);
            }
            Ok(ExitCode::SUCCESS)
        }
        BatchCommand::Get { id } => {
            let batch = client.batch(parse_id(&id)?).await?;
            print_batch(&batch, json)?;
            Ok(ExitCode::SUCCESS)
        }
        BatchCommand::Wait { id, timeout } => {
            let id = parse_id(&id)?;
            let until = match timeout {
                Some(secs) => {
                    Some(tokio::time::Instant::now() + crate::job::seconds(secs, "--timeout")?)
                }
                None => None,
            };
            let mut last = String::new();
            let batch = loop {
                let batch = client.batch(id).await?;
                let bar = progress_bar(&batch);
                if !json && bar != last {
                    eprintln!("{bar}");
                    last = bar;
                }
                if batch.status != BatchState::Running {
                    break batch;
                }
                if until.is_some_and(|u| tokio::time::Instant::now() >= u) {
                    return Err(StillWaiting(format!(
                        "{id} is still running after the timeout (exit code {})",
                        exit::TIMED_OUT
                    ))
                    .into());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            print_batch(&batch, json)?;
            Ok(exit::for_outcome(batch.status == BatchState::Completed))
        }
        BatchCommand::Cancel { id } => {
            let batch = client.cancel_batch(parse_id(&id)?).await?;
            print_batch(&batch, json)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_id(id: &str) -> Result<BatchId> {
    id.parse()
        .with_context(|| format!("{id:?} is not a batch id"))
}

/// A JSON array, or one JSON value a line.
fn read_items(inline: Option<String>, file: Option<&Path>) -> Result<Vec<Value>> {
    let text = match (inline, file) {
        (Some(text), _) => text,
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read items from standard input")?;
            text
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        (None, None) => bail!("give the items with --items '[...]' or --items-file FILE"),
    };
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text) {
        return Ok(items);
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("item on line {} is not valid JSON", i + 1))
        })
        .collect()
}

fn progress_bar(batch: &Batch) -> String {
    let p = &batch.progress;
    let done = p.completed + p.failed + p.cancelled;
    let width = 30u64;
    let filled = (done * width).checked_div(p.total).unwrap_or(0).min(width);
    format!(
        "[{}{}] {done}/{} completed {} failed {} running {}",
        "#".repeat(filled as usize),
        ".".repeat((width - filled) as usize),
        p.total,
        p.completed,
        p.failed,
        p.running,
    )
}

fn print_batch(batch: &Batch, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(batch)?);
        return Ok(());
    }
    let p = &batch.progress;
    println!("id:       {}", batch.id);
    println!("kind:     {}", batch.kind);
    println!(
        "status:   {}",
        serde_json::to_value(batch.status)?.as_str().unwrap_or("?")
    );
    println!(
        "progress: {} total, {} pending, {} running, {} completed, {} failed, {} cancelled",
        p.total, p.pending, p.running, p.completed, p.failed, p.cancelled
    );
    Ok(())
}
