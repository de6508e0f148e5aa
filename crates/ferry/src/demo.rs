//! `ferry demo`: the one-command tour. It starts a local site, a server on SQLite with
//! an embedded worker, runs browser jobs in a real Chromium against the site (a review
//! list, a search form rendered by script), a few `http.request` jobs (a review API per
//! shop, a flaky endpoint that answers 429 with Retry-After first, an echo), shows their
//! progress, prints what they collected and exits 0.

use std::{process::ExitCode, sync::Arc, time::Duration};

use anyhow::{Context, Result, bail};
use ferry_client::Client;
use ferry_core::{JobState, SystemClock, api::SubmitJob};
use ferry_server::StartOptions;
use ferry_store::Store;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    cli::DemoArgs,
    config::{FileConfig, serve_settings},
    job::progress_line,
    worker::{EmbeddedWorker, shutdown_signal},
};

pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let settings = serve_settings(Some(listen), Some(data_dir), None, &FileConfig::default())?;
    let site = ferry_testkit::fixture::spawn()
        .await
        .context("cannot start the demo site")?;
    let store = Store::open(&settings.database, settings.durability)
        .await
        .context("cannot open the database")?;
    let listener = TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let api_token = settings.server.api_token.clone();
    let worker_token = settings.server.worker_token.clone();
    let stop = CancellationToken::new();
    let server = ferry_server::start(StartOptions {
        listener,
        store,
        clock: Arc::new(SystemClock),
        config: settings.server,
        services: true,
        shutdown: stop.clone(),
    })?;
    let url = format!("http://{}", server.addr);
    println!(
        "ferry demo: server on {url}, embedded worker, demo site on {}",
        site.url
    );
    let chromium = ferry_browser::ChromiumConfig::default();
    if !chromium.executable.exists() {
        bail!(
            "Chromium is not installed at {}: run scripts/demo.sh (it installs it as root) or 'sudo apt-get install chromium'",
            chromium.executable.display()
        );
    }
    let worker = EmbeddedWorker::start(&url, worker_token, 4, crate::worker::handlers(true)?)?;
    let api = Client::new(&url, api_token.clone())?;

    let http = |label: &str, payload: serde_json::Value| {
        let mut spec = SubmitJob::new("http.request", payload);
        spec.labels = Some([("demo".to_owned(), label.to_owned())].into());
        spec
    };
    let mut specs: Vec<SubmitJob> = ["shop-a", "shop-b", "shop-c"]
        .iter()
        .map(|shop| {
            http(
                "reviews",
                json!({"url": site.url(&format!("/reviews/{shop}"))}),
            )
        })
        .collect();
    let browser = |label: &str, recipe: serde_json::Value| {
        let mut spec = SubmitJob::new(ferry_core::recipe::BROWSER_RUN, recipe);
        spec.labels = Some([("demo".to_owned(), label.to_owned())].into());
        spec
    };
    specs.push(browser(
        "browser-reviews",
        json!({"steps": [
            {"goto": {"url": site.url("/site/reviews")}},
            {"extract": {"list": "li.review", "fields": {
                "title": {"selector": "h3"},
                "stars": {"selector": ".stars", "regex": "(\\d+) stars", "number": true}}}}
        ]}),
    ));
    specs.push(browser(
        "browser-search",
        json!({"steps": [
            {"goto": {"url": site.url("/site/search")}},
            {"fill": {"selector": "#q", "value": "ferry"}},
            {"click": {"selector": "#go"}},
            {"wait_for": {"selector": ".result"}},
            {"extract": {"list": ".result", "fields": {"text": {}}}}
        ]}),
    ));
    specs.push(http("flaky", json!({"url": site.url("/flaky/demo/1")})));
    specs.push(http(
        "echo",
        json!({"method": "POST", "url": site.url("/echo"), "json": {"hello": "ferry"}}),
    ));
    let jobs = api.submit_batch(specs).await?;
    println!(
        "submitted {} jobs (202 Accepted); watching them:",
        jobs.len()
    );

    let mut finished = Vec::new();
    let mut last = vec![String::new(); jobs.len()];
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    while finished.len() < jobs.len() {
        finished.clear();
        for (i, j) in jobs.iter().enumerate() {
            let job = api.job(j.id).await?;
            let line = progress_line(&job);
            if line != last[i] {
                println!("  {line}");
                last[i] = line;
            }
            if job.status.is_final() {
                finished.push(job);
            }
        }
        if tokio::time::Instant::now() > give_up {
            bail!("the demo jobs did not finish within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    println!("\nwhat the jobs collected:");
    let mut failed = 0;
    for job in &finished {
        let label = job.labels.get("demo").map(String::as_str).unwrap_or("");
        match (job.status, &job.result) {
            (JobState::Completed, Some(result)) if label == "reviews" => {
                let shop = result["json"]["shop"].as_str().unwrap_or("?");
                let n = result["json"]["reviews"].as_array().map_or(0, Vec::len);
                println!("  {shop}: {n} reviews");
            }
            (JobState::Completed, Some(result)) if label.starts_with("browser") => {
                let items = api.items(job.id, 0, 100).await?;
                let rows: Vec<String> = items.items.iter().map(|i| i.data.to_string()).collect();
                println!(
                    "  {label} (Chromium): {} rows: {}",
                    result["rows"],
                    rows.join(", ")
                );
            }
            (JobState::Completed, _) if label == "flaky" => {
                println!(
                    "  flaky endpoint: completed on attempt {} after a 429 with Retry-After",
                    job.attempt
                );
            }
            (JobState::Completed, Some(result)) => {
                println!("  echo: the server saw {}", result["json"]["json"]);
            }
            _ => {
                failed += 1;
                println!("  {} {}: {:?}", job.id, job.status, job.error);
            }
        }
    }
    if args.keep_running {
        println!("\nthe server keeps running (Ctrl-C to stop). Try:");
        println!(
            "  curl -H 'Authorization: Bearer {}' {url}/v1/jobs",
            api_token.expose()
        );
        println!(
            "  FERRY_SERVER_URL={url} FERRY_API_TOKEN={} ferry job list",
            api_token.expose()
        );
        shutdown_signal().await;
    }
    worker.stop().await?;
    server.shutdown().await;
    if failed > 0 {
        bail!("{failed} demo job(s) did not complete");
    }
    println!("\ndemo done: {} jobs completed", finished.len());
    Ok(ExitCode::SUCCESS)
}
