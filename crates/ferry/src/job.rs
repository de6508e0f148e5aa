//! `ferry job submit|get|list|wait|items|cancel|retry`: human output by default, `--json`
//! for scripts. `wait` shows progress; exit codes say how a job ended (`exit.rs`).

use std::{io::Read, path::Path, process::ExitCode, time::Duration};

use anyhow::{Context, Result, bail};
use ferry_client::{Client, ClientError, ListQuery};
use ferry_core::{ErrorCode, Job, JobId, JobState, api::SubmitJob};
use serde_json::Value;
use tokio::time::Instant;

use crate::{
    cli::{
        JobArgs, JobCommand, KindsArgs, KindsCommand, ScheduleArgs, ScheduleCommand, SubmitArgs,
    },
    config::{FileConfig, client_settings},
    exit::{self, StillWaiting},
};

/// The longest `POST /v1/jobs?wait=` a server takes by default; a longer `--wait` goes on
/// by polling the job.
const SERVER_MAX_WAIT: Duration = Duration::from_secs(60);

/// Items asked for per request (the server's largest page).
const ITEMS_PAGE: u32 = 1_000;

/// `ferry schedule add|list|run|rm`.
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
            payload_file,
            inputs,
            timezone,
            no_catch_up,
        } => {
            let mut payload = read_payload(payload.as_deref(), payload_file.as_deref())?;
            set_inputs(&mut payload, &inputs)?;
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
        ScheduleCommand::Run { name } => {
            let job = client.run_schedule(&name).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&job)?);
            } else {
                println!("{}", job.id);
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
                    parent: list.parent,
                    search: list.search,
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
            let deadline = match timeout {
                Some(secs) => Some(Instant::now() + seconds(secs, "--timeout")?),
                None => None,
            };
            let job = wait(&client, parse_id(&id)?, deadline, !json).await?;
            print_job(&job, json);
            Ok(exit_for(&job))
        }
        JobCommand::Items { id, after, limit } => {
            print_items(&client, parse_id(&id)?, after, limit, json).await?;
            Ok(ExitCode::SUCCESS)
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

/// A number of seconds from the command line: finite and not negative.
pub fn seconds(secs: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| d.as_secs() < 100 * 365 * 24 * 3600)
        .with_context(|| format!("{flag} {secs}: expected a number of seconds, 0 or more"))
}

/// Prints the job's items after `after`, page by page, at most `limit`.
async fn print_items(
    client: &Client,
    id: JobId,
    mut after: i64,
    limit: Option<u64>,
    json: bool,
) -> Result<()> {
    use std::io::Write;
    let mut left = limit.unwrap_or(u64::MAX);
    let mut out = std::io::stdout().lock();
    while left > 0 {
        let page_size = u32::try_from(left.min(u64::from(ITEMS_PAGE))).unwrap_or(ITEMS_PAGE);
        let page = client.items(id, after, page_size).await?;
        for item in &page.items {
            let line = if json {
                serde_json::to_string(item)?
            } else {
                serde_json::to_string(&item.data)?
            };
            match writeln!(out, "{line}") {
                Ok(()) => {}
                // `ferry job items … | head`: the reader has what it wanted.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                Err(e) => return Err(e).context("cannot write to standard output"),
            }
        }
        left = left.saturating_sub(page.items.len() as u64);
        if page.items.len() < page_size as usize || page.next_after <= after {
            break;
        }
        after = page.next_after;
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

/// Sets each `NAME=VALUE` of `--input` in the recipe's `inputs`.
fn set_inputs(payload: &mut Value, inputs: &[String]) -> Result<()> {
    if inputs.is_empty() {
        return Ok(());
    }
    let Some(object) = payload.as_object_mut() else {
        bail!("--input needs a payload that is an object (a recipe)")
    };
    let entry = object
        .entry("inputs")
        .or_insert_with(|| Value::Object(Default::default()));
    let Some(map) = entry.as_object_mut() else {
        bail!("--input: the payload's `inputs` is not an object")
    };
    for input in inputs {
        let Some((name, value)) = input.split_once('=') else {
            bail!("--input {input:?}: expected NAME=VALUE")
        };
        map.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    Ok(())
}

/// The payload of `--payload TEXT` or `--payload-file FILE`; `{}` without either.
fn read_payload(payload: Option<&str>, payload_file: Option<&Path>) -> Result<Value> {
    let text = match (payload, payload_file) {
        (Some(text), _) => text.to_owned(),
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
    parse_payload(&text, payload_file)
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
    let mut payload = read_payload(args.payload.as_deref(), args.payload_file.as_deref())?;
    set_inputs(&mut payload, &args.inputs)?;
    let deadline = match args.wait {
        Some(secs) => Some(Instant::now() + seconds(secs, "--wait")?),
        None => None,
    };
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
                max_gone: args.max_gone,
            }),
            _ => None,
        },
    };
    let (job, created) = submit_and_wait(client, &spec, deadline).await?;
    let dedupe_note = (!created).then(|| {
        format!(
            "deduplicated: dedupe key {:?} matched {} ({}), which answers in place of a new job",
            spec.dedupe_key.as_deref().unwrap_or(""),
            job.id,
            job.status
        )
    });
    if json {
        let mut value = serde_json::to_value(&job)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("deduplicated".to_owned(), Value::Bool(!created));
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else if deadline.is_some() {
        if let Some(note) = &dedupe_note {
            println!("{note}");
        }
        print_job(&job, false);
    } else if let Some(note) = &dedupe_note {
        println!("{note}");
    } else {
        println!("{} submitted ({}, {})", job.id, job.kind, job.status);
    }
    if deadline.is_none() {
        return Ok(ExitCode::SUCCESS);
    }
    if !job.status.is_final() {
        return Err(still_waiting(&job).into());
    }
    Ok(exit_for(&job))
}

/// Submits `spec`; with a deadline, waits for the job to finish until then: first in the
/// submit itself (the server waits up to 60 s), then by polling the job. Also says whether
/// a job was created or a dedupe key matched an existing one.
async fn submit_and_wait(
    client: &Client,
    spec: &SubmitJob,
    deadline: Option<Instant>,
) -> Result<(Job, bool)> {
    let Some(deadline) = deadline else {
        let submitted = client.submit_detailed(spec).await?;
        return Ok((submitted.job, submitted.created));
    };
    // With a server-side wait a `200` also means "finished", so a submit that may be
    // deduplicated is sent without one: then `200` means the key matched.
    let first = if spec.dedupe_key.is_some() {
        let submitted = client.submit_detailed(spec).await?;
        (submitted.job, submitted.created)
    } else {
        let server_wait = deadline.saturating_duration_since(Instant::now());
        match client
            .submit_and_wait(spec, server_wait.min(SERVER_MAX_WAIT))
            .await
        {
            Ok(job) => (job, true),
            // A server configured with a shorter longest wait refuses `wait` (and creates
            // nothing): submit without it and poll.
            Err(ClientError::Api {
                code: ErrorCode::ValidationFailed,
                fields,
                ..
            }) if fields.iter().any(|f| f.field == "wait") => {
                let submitted = client.submit_detailed(spec).await?;
                (submitted.job, submitted.created)
            }
            Err(e) => return Err(e.into()),
        }
    };
    let (job, created) = first;
    if job.status.is_final() || Instant::now() >= deadline {
        return Ok((job, created));
    }
    match wait(client, job.id, Some(deadline), false).await {
        Ok(job) => Ok((job, created)),
        // The deadline passed: answer the job as it is; the caller reports the timeout.
        Err(e) if e.is::<StillWaiting>() => Ok((client.job(job.id).await?, created)),
        Err(e) => Err(e),
    }
}

fn still_waiting(job: &Job) -> StillWaiting {
    StillWaiting(format!(
        "{} is still {} after the wait (exit code {})",
        job.id,
        job.status,
        exit::TIMED_OUT
    ))
}

/// Polls until the job is final, printing progress changes to stderr; after `deadline`,
/// fails with [`StillWaiting`].
pub async fn wait(
    client: &Client,
    id: JobId,
    deadline: Option<Instant>,
    show: bool,
) -> Result<Job> {
    let started = Instant::now();
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
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Err(still_waiting(&job).into());
        }
        // Quick at first, then once a second for long waits.
        let pause = if now - started < Duration::from_secs(60) {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(1)
        };
        let wake = deadline.map_or(now + pause, |d| d.min(now + pause));
        tokio::time::sleep_until(wake).await;
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

/// 0 for a completed job, [`exit::JOB_FAILED`] for one that failed or was cancelled.
fn exit_for(job: &Job) -> ExitCode {
    exit::for_outcome(job.status == JobState::Completed)
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
