//! `ferry job submit|get|list|wait|cancel|retry`: human output by default, `--json`
//! for scripts. `wait` shows progress and exits non-zero unless the job completed.

use std::{io::Read, path::Path, process::ExitCode, time::Duration};

use anyhow::{Context, Result, bail};
use ferry_client::{Client, ListQuery};
use ferry_core::{Job, JobId, JobState, api::SubmitJob};
use serde_json::Value;

use crate::{
    cli::{
        JobArgs, JobCommand, KindsArgs, KindsCommand, ScheduleArgs, ScheduleCommand, SubmitArgs,
    },
    config::{FileConfig, client_settings},
};

/// `ferry schedule add|list|rm`.
pub async fn schedule(args: ScheduleArgs, config: Option<&Path>) -> Result<ExitCode> {
    let file = FileConfig::load(config)?;
    let (url, token) = client_settings(args.connect.server, args.connect.data_dir, &file, false)?;
    let client = Client::new(&url, token)?;
    let json = args.connect.json;
    match args.command {
        ScheduleCommand::Add {
            name,
            cron,
            kind,
            payload,
            timezone,
            no_catch_up,
        } => {
            let payload = match payload {
                Some(text) => {
                    serde_json::from_str(&text).context("the payload is not valid JSON")?
                }
                None => Value::Object(Default::default()),
            };
            let job = SubmitJob::new(&kind, payload);
            let created = client
                .create_schedule(&ferry_core::schedule::ScheduleSpec {
                    name,
                    cron,
                    timezone,
                    job,
                    catch_up: !no_catch_up,
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                println!(
                    "{} {} ({}): next at {}",
                    created.name, created.cron, created.timezone, created.next_at
                );
            }
        }
        ScheduleCommand::List => {
            let list = client.schedules().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for s in &list.schedules {
                    println!(
                        "{}\t{}\t{}\t{}\tnext {}{}",
                        s.name,
                        s.cron,
                        s.timezone,
                        s.job.kind,
                        s.next_at,
                        if s.paused { " (paused)" } else { "" }
                    );
                }
            }
        }
        ScheduleCommand::Rm { name } => {
            client.delete_schedule(&name).await?;
            if !json {
                println!("removed {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(args: JobArgs, config: Option<&Path>) -> Result<ExitCode> {
    let file = FileConfig::load(config)?;
    let (url, token) = client_settings(args.connect.server, args.connect.data_dir, &file, false)?;
    let client = Client::new(&url, token)?;
    let json = args.connect.json;
    match args.command {
        JobCommand::Submit(submit) => submit_job(&client, submit, json).await,
        JobCommand::Get { id } => {
            let job = client.job(parse_id(&id)?).await?;
            print_job(&job, json);
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::List(list) => {
            let page = client
                .list(&ListQuery {
                    status: list.status,
                    kind: list.kind,
                    labels: list.labels,
                    limit: list.limit,
                    cursor: list.cursor,
                })
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                println!(
                    "{:<36}  {:<24}  {:<9}  {:>7}  CREATED",
                    "ID", "KIND", "STATUS", "ATTEMPT"
                );
                for j in &page.jobs {
                    let attempts = format!("{}/{}", j.attempt, j.max_attempts);
                    println!(
                        "{:<36}  {:<24}  {:<9}  {:>7}  {}",
                        j.id,
                        j.kind,
                        j.status,
                        attempts,
                        j.created_at.format("%Y-%m-%d %H:%M:%S")
                    );
                }
                if let Some(cursor) = page.next_cursor {
                    println!("more: --cursor {cursor}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Wait { id, timeout } => {
            let timeout = timeout.map(Duration::from_secs_f64);
            let job = wait(&client, parse_id(&id)?, timeout, !json).await?;
            print_job(&job, json);
            Ok(exit_for(&job))
        }
        JobCommand::Cancel { id } => {
            let job = client.cancel(parse_id(&id)?).await?;
            if json {
                print_job(&job, true);
            } else if job.status == JobState::Running {
                println!(
                    "asked {} to stop; it is cancelled when its worker notices",
                    job.id
                );
            } else {
                println!("{} is {}", job.id, job.status);
            }
            Ok(ExitCode::SUCCESS)
        }
        JobCommand::Retry { id } => {
            let job = client.retry(parse_id(&id)?).await?;
            if json {
                print_job(&job, true)
            } else {
                println!("{} is {} again", job.id, job.status)
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `ferry kinds pause|resume|list`.
pub async fn kinds(args: KindsArgs, config: Option<&Path>) -> Result<ExitCode> {
    let file = FileConfig::load(config)?;
    let (url, token) = client_settings(args.connect.server, args.connect.data_dir, &file, false)?;
    let client = Client::new(&url, token)?;
    let paused = match args.command {
        KindsCommand::Pause { pattern } => client.pause(&pattern).await?,
        KindsCommand::Resume { pattern } => client.resume(&pattern).await?,
        KindsCommand::List => client.paused().await?,
    };
    if args.connect.json {
        println!("{}", serde_json::to_string_pretty(&paused)?);
    } else if paused.paused.is_empty() {
        println!("nothing is paused");
    } else {
        println!("paused: {}", paused.paused.join(" "));
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_id(id: &str) -> Result<JobId> {
    id.parse()
        .with_context(|| format!("{id:?} is not a job id"))
}

fn read_payload(args: &SubmitArgs) -> Result<Value> {
    let text = match (&args.payload, &args.payload_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the payload from standard input")?;
            text
        }
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        (None, None) => return Ok(Value::Object(Default::default())),
    };
    parse_payload(&text, args.payload_file.as_deref())
}

/// JSON, or YAML when the file is `.yaml`/`.yml` (recipes are often written by hand).
fn parse_payload(text: &str, path: Option<&std::path::Path>) -> Result<Value> {
    let yaml = path
        .and_then(|p| p.extension())
        .is_some_and(|e| e == "yaml" || e == "yml");
    if yaml {
        serde_saphyr::from_str::<Value>(text)
            .map_err(|e| anyhow::anyhow!("the payload is not valid YAML: {e}"))
    } else {
        serde_json::from_str(text)
            .context("the payload is not valid JSON (a .yaml or .yml file is read as YAML)")
    }
}

async fn submit_job(client: &Client, args: SubmitArgs, json: bool) -> Result<ExitCode> {
    let payload = read_payload(&args)?;
    let mut labels = std::collections::BTreeMap::new();
    for label in &args.labels {
        let Some((k, v)) = label.split_once('=') else {
            bail!("--label {label:?}: expected KEY=VALUE")
        };
        labels.insert(k.to_owned(), v.to_owned());
    }
    let spec = SubmitJob {
        kind: args.kind,
        payload,
        labels: (!labels.is_empty()).then_some(labels),
        priority: args.priority,
        run_at: None,
        delay_ms: args.delay_ms,
        max_attempts: args.max_attempts,
        timeout_ms: args.timeout_ms,
        backoff: None,
        dedupe_key: args.dedupe_key,
        dedupe_ttl_ms: args.dedupe_ttl_ms,
        then: match &args.then {
            Some(text) => Some(
                serde_json::from_str(text).context("--then is not a JSON array of job specs")?,
            ),
            None => None,
        },
        concurrency: args
            .concurrency
            .map(|key| ferry_core::flow::ConcurrencySpec {
                key,
                limit: args.concurrency_limit,
            }),
        rate_limit: args.rate_limit.map(|key| ferry_core::flow::RateLimit {
            key,
            interval_ms: args.rate_interval_ms,
            max: args.rate_max,
            per_ms: args.rate_per_ms,
        }),
        output: match (args.dataset, args.dataset_key) {
            (Some(dataset), Some(key)) => Some(ferry_core::dataset::Output {
                dataset,
                key,
                mode: args.dataset_mode.unwrap_or_default(),
            }),
            _ => None,
        },
    };
    let job = match args.wait {
        Some(secs) => {
            client
                .submit_and_wait(&spec, Duration::from_secs_f64(secs.max(0.0)))
                .await?
        }
        None => client.submit(&spec).await?,
    };
    if json {
        print_job(&job, true);
    } else if args.wait.is_some() {
        print_job(&job, false);
    } else {
        println!("{} submitted ({}, {})", job.id, job.kind, job.status);
    }
    Ok(if args.wait.is_some() {
        exit_for(&job)
    } else {
        ExitCode::SUCCESS
    })
}

/// Polls until the job is final, printing progress changes to stderr.
pub async fn wait(
    client: &Client,
    id: JobId,
    timeout: Option<Duration>,
    show: bool,
) -> Result<Job> {
    let until = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut last = String::new();
    loop {
        let job = client.job(id).await?;
        if show {
            let line = progress_line(&job);
            if line != last {
                eprintln!("{line}");
                last = line;
            }
        }
        if job.status.is_final() {
            return Ok(job);
        }
        if until.is_some_and(|u| tokio::time::Instant::now() >= u) {
            bail!("{id} is still {} after the timeout", job.status);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn progress_line(job: &Job) -> String {
    let mut line = format!("{} {} {}", job.id, job.kind, job.status);
    if job.attempt > 1 {
        line.push_str(&format!(" (attempt {}/{})", job.attempt, job.max_attempts));
    }
    if let Some(p) = &job.progress {
        match (p.current, p.total) {
            (Some(c), Some(t)) => line.push_str(&format!(" {c}/{t}")),
            (Some(c), None) => line.push_str(&format!(" {c}")),
            _ => {}
        }
        if let Some(m) = &p.message {
            line.push_str(&format!(" {m}"));
        }
    }
    line
}

fn exit_for(job: &Job) -> ExitCode {
    if job.status == JobState::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_job(job: &Job, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(job).unwrap_or_default());
        return;
    }
    println!("id:       {}", job.id);
    println!("kind:     {}", job.kind);
    println!("status:   {}", job.status);
    println!("attempt:  {}/{}", job.attempt, job.max_attempts);
    println!("created:  {}", job.created_at.to_rfc3339());
    if !job.labels.is_empty() {
        let labels: Vec<_> = job.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("labels:   {}", labels.join(" "));
    }
    if let Some(p) = &job.progress {
        println!("progress: {}", serde_json::to_string(p).unwrap_or_default());
    }
    if let Some(e) = &job.error {
        println!(
            "error:    {}: {}{}",
            e.code,
            e.message,
            if e.retryable { " (retryable)" } else { "" }
        );
    }
    if let Some(r) = &job.result {
        println!(
            "result:   {}",
            serde_json::to_string_pretty(r).unwrap_or_default()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_may_be_yaml() {
        let yaml = "steps:\n  - goto: {url: 'http://127.0.0.1/site/reviews'}\n  - extract:\n      list: li.review\n      fields:\n        title: {selector: h3}\n        stars: {selector: .stars, number: true}\n";
        let value = parse_payload(yaml, Some(std::path::Path::new("reviews.yaml"))).expect("yaml");
        assert_eq!(
            value["steps"][1]["extract"]["fields"]["stars"],
            serde_json::json!({"selector": ".stars", "number": true})
        );
        assert!(ferry_core::recipe::validate(&value, "payload").is_ok());
        let err = parse_payload("steps: [", Some(std::path::Path::new("r.yml"))).expect_err("bad");
        assert!(err.to_string().contains("not valid YAML"), "{err}");
        assert!(parse_payload("{}", None).is_ok());
    }
}
