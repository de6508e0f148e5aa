//! `ferry bench dashboard`: how long the dashboard's pages take with a large table. It
//! starts a server (SQLite in a temporary directory unless told otherwise), fills the
//! default tenant with `--jobs` completed jobs finished half an hour ago (inside the
//! overview's window, so its throughput read covers them all), plus waiting and failed jobs
//! of twenty kinds through the real protocol, logs a user in, and times `--requests` GETs of
//! each page with the session cookie. One JSON line per page: p50, p95 and the slowest, in
//! milliseconds.

use std::{process::ExitCode, time::Instant};

use anyhow::{Context, Result, bail};
use ferry_core::{
    Role, Secret, TenantId,
    api::{ClaimRequest, FailError, SubmitJob},
    identity::UserCreateRequest,
};
use serde_json::json;

use super::bench_server;
use crate::cli::BenchDashboardArgs;

const KINDS: usize = 20;
const PASSWORD: &str = "bench password";

pub(super) async fn run(args: BenchDashboardArgs) -> Result<ExitCode> {
    if args.requests == 0 || args.waiting < args.failed {
        bail!("need --requests >= 1 and --waiting >= --failed");
    }
    let b = bench_server(args.database_url.as_deref()).await?;
    let backend = b.store.backend_name();
    let tenant = TenantId::default();
    eprintln!("filling: {} completed jobs", args.jobs);
    let at = chrono::Utc::now() - chrono::Duration::minutes(30);
    b.store
        .job_insert_history(&tenant, "bench.done", args.jobs, at)
        .await?;
    eprintln!(
        "filling: {} waiting jobs, {} of them then failed",
        args.waiting, args.failed
    );
    let mut left = args.waiting;
    let mut n = 0usize;
    while left > 0 {
        let batch = left.min(1000);
        let jobs = (0..batch)
            .map(|_| {
                n += 1;
                let mut spec = SubmitJob::new(format!("bench.kind{}", n % KINDS), json!({}));
                spec.max_attempts = Some(1);
                spec
            })
            .collect();
        b.api.submit_batch(jobs).await?;
        left -= batch;
    }
    let worker = ferry_client::Client::new(&b.base, b.worker_token.clone())?;
    let mut failed = 0;
    while failed < args.failed {
        let claimed = worker
            .claim(&ClaimRequest {
                worker_id: "bench".into(),
                kinds: vec!["bench.*".into()],
                max_jobs: Some(50.min((args.failed - failed) as u32)),
                wait_ms: Some(0),
                lease_ms: None,
            })
            .await?
            .jobs;
        for job in claimed {
            worker
                .fail(
                    job.id,
                    &job.lease,
                    FailError {
                        code: format!("E{}", failed % 7),
                        message: "bench".into(),
                        retryable: false,
                        retry_after_ms: None,
                    },
                )
                .await?;
            failed += 1;
        }
    }

    let admin = ferry_server::Principal::new(tenant, Role::Admin, "bench");
    b.server
        .queue
        .users()
        .create(
            &admin,
            UserCreateRequest {
                name: "bench@example.com".into(),
                password: Secret::new(PASSWORD),
                role: Role::Editor,
            },
        )
        .await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let login = http
        .post(format!("{}/v1/auth/login", b.base))
        .json(&json!({"name": "bench@example.com", "password": PASSWORD}))
        .send()
        .await?;
    let cookie = login
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("the login set no cookie")?
        .to_owned();
    let some_job = b
        .store
        .job_list(&ferry_store::ListParams {
            tenant_id: TenantId::default().to_string(),
            status: Some(ferry_core::JobState::Failed),
            kind: None,
            labels: vec![],
            before: None,
            limit: 1,
            ..Default::default()
        })
        .await?
        .first()
        .map(|j| j.id)
        .context("no failed job")?;
    let pages = [
        "/overview".to_owned(),
        "/jobs".to_owned(),
        "/jobs?state=failed".to_owned(),
        "/jobs?kind=bench.kind7".to_owned(),
        // Text search (kinds and dedupe keys): a few matches, then none at all, the worst
        // case (every row read to fill no page); a label no job has; made before a time.
        "/jobs?q=kind7".to_owned(),
        "/jobs?q=no-such-text".to_owned(),
        "/jobs?label=team%3Dnone".to_owned(),
        format!(
            "/jobs?until={}",
            (at + chrono::Duration::minutes(1)).format("%Y-%m-%dT%H:%M")
        ),
        "/dead".to_owned(),
        format!("/jobs/{some_job}"),
    ];
    for page in pages {
        let mut took = Vec::with_capacity(args.requests);
        for _ in 0..args.requests {
            let started = Instant::now();
            let answer = http
                .get(format!("{}{page}", b.base))
                .header(reqwest::header::COOKIE, &cookie)
                .send()
                .await?;
            let status = answer.status();
            answer.bytes().await?;
            if !status.is_success() {
                bail!("{page} answered {status}");
            }
            took.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let line = json!({
            "bench": "dashboard",
            "backend": backend,
            "completed_jobs": args.jobs,
            "waiting_jobs": args.waiting - args.failed,
            "failed_jobs": args.failed,
            "page": page,
            "requests": args.requests,
        });
        println!("{}", super::with_percentiles(line, took));
    }
    Ok(ExitCode::SUCCESS)
}
