//! `ferry demo`: the one-command tour. It starts a local site, a server on SQLite with
//! an embedded worker, and runs browser jobs in a real Chromium against the site: a login
//! that saves its session on the server, a review collection behind the login that reuses
//! it (script-paged), an infinite feed loaded over `fetch`; and a few `http.request` jobs
//! (a review API per shop, a flaky endpoint that answers 429 with Retry-After first). It
//! shows their progress, prints what they collected and exits 0.

use std::{process::ExitCode, sync::Arc, time::Duration};

use anyhow::{Context, Result, bail};
use ferry_client::Client;
use ferry_core::{JobState, SystemClock, api::SubmitJob, egress::EgressRule};
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

/// `ferry demo --site-only`: the site alone, until Ctrl-C or SIGTERM.
async fn site_only() -> Result<ExitCode> {
    let site = ferry_demo_site::spawn()
        .await
        .context("cannot start the demo site")?;
    println!("{}", site.url);
    eprintln!(
        "ferry demo: the demo site is on {}; sign in at {}/site/login as {} / {}",
        site.url,
        site.url,
        ferry_demo_site::DEMO_USER,
        ferry_demo_site::DEMO_PASSWORD
    );
    crate::worker::shutdown_signal().await;
    Ok(ExitCode::SUCCESS)
}

/// Where the demo's review collection keeps its rows.
const REVIEWS_DATASET: &str = "reviews:demo-shop";

pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    if args.site_only {
        return site_only().await;
    }
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let mut settings = serve_settings(Some(listen), Some(data_dir), None, &FileConfig::default())?;
    let site = ferry_demo_site::spawn()
        .await
        .context("cannot start the demo site")?;
    // Internal addresses are denied by default: the demo allows its own site, by address.
    settings
        .server
        .egress
        .allow
        .push(EgressRule::Net(site.addr.ip().into()));
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
    // The demo site's password is a worker secret: jobs say `{{secret.DEMO_PASSWORD}}`,
    // and the value never passes through the server (a real worker reads FERRY_SECRET_*).
    // It may be filled only into the demo site's pages.
    let secrets = [(
        "DEMO_PASSWORD".to_owned(),
        ferry_core::BoundSecret::new(
            ferry_demo_site::DEMO_PASSWORD,
            vec![EgressRule::Net(site.addr.ip().into())],
        ),
    )]
    .into();
    let worker = EmbeddedWorker::start(
        &url,
        worker_token,
        4,
        crate::worker::handlers_with_secrets(true, secrets)?,
    )?;
    let api = Client::new(&url, api_token.clone())?;

    let labelled = |kind: &str, label: &str, payload: serde_json::Value| {
        let mut spec = SubmitJob::new(kind, payload);
        spec.labels = Some([("demo".to_owned(), label.to_owned())].into());
        spec
    };
    let http = |label: &str, payload| labelled("http.request", label, payload);
    let browser = |label: &str, recipe| labelled(ferry_core::recipe::BROWSER_RUN, label, recipe);
    let mut specs = vec![browser(
        "login",
        json!({"inputs": {"user": ferry_demo_site::DEMO_USER}, "steps": [
            {"goto": {"url": site.url("/site/login")}},
            {"fill": {"selector": "#user", "value": "{{input.user}}"}},
            {"fill": {"selector": "#password", "value": "{{secret.DEMO_PASSWORD}}"}},
            {"click": {"selector": "#sign-in"}},
            {"wait_for": {"selector": "#who"}},
            {"save_session": "demo-shop"}
        ]}),
    )];
    specs.push(browser(
        "feed",
        json!({"steps": [
            {"goto": {"url": site.url("/site/feed")}},
            {"infinite_scroll": {"list": ".post", "idle_ms": 1000}},
            {"extract": {"list": ".post", "fields": {"post": {}}}}
        ]}),
    ));
    specs.extend(["shop-a", "shop-b"].iter().map(|shop| {
        http(
            "reviews-api",
            json!({"url": site.url(&format!("/reviews/{shop}"))}),
        )
    }));
    specs.push(http("flaky", json!({"url": site.url("/flaky/demo/1")})));
    let mut jobs = api.submit_batch(specs).await?;
    let login_id = jobs[0].id;
    println!(
        "submitted {} jobs (202 Accepted): a login that saves its session, an infinite feed, API calls",
        jobs.len()
    );
    // Once the login has saved the session, the review collection reuses it. Its rows go
    // to a dataset, keyed by review id: each run says what is new, changed or gone.
    let review_sync = || SubmitJob {
        output: Some(ferry_core::dataset::Output {
            dataset: REVIEWS_DATASET.to_owned(),
            key: "id".to_owned(),
            mode: ferry_core::dataset::OutputMode::Snapshot,
            max_gone: None,
        }),
        ..browser(
            "reviews",
            json!({"use_session": "demo-shop", "steps": [
                {"goto": {"url": site.url("/site/account/reviews")}},
                {"paginate": {"next": "#next", "extract": {"list": "li.review", "fields": {
                    "id": {"attr": "data-id"},
                    "author": {"selector": ".author", "replace": ["^by ", ""]},
                    "stars": {"selector": ".stars", "number": true},
                    "date": {"selector": "time", "date": "%Y.%m.%d"},
                    "text": {"selector": ".text"}}}}}
            ]}),
        )
    };
    let mut collect = Some(review_sync());

    let mut finished = Vec::new();
    let mut last: Vec<String> = Vec::new();
    let give_up = tokio::time::Instant::now() + Duration::from_secs(90);
    while collect.is_some() || finished.len() < jobs.len() {
        finished.clear();
        last.resize(jobs.len(), String::new());
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
        let login = finished.iter().find(|j| j.id == login_id);
        match (login.map(|j| j.status), collect.take()) {
            (Some(JobState::Completed), Some(spec)) => {
                let job = api.submit(&spec).await?;
                println!(
                    "  login saved session \"demo-shop\"; collecting reviews with it: {}",
                    job.id
                );
                jobs.push(job);
            }
            (Some(_), Some(_)) => bail!("the login job did not complete: {login:?}"),
            (_, pending) => collect = pending,
        }
        if tokio::time::Instant::now() > give_up {
            bail!("the demo jobs did not finish within 90 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    println!("\nwhat the jobs collected:");
    let mut failed = 0;
    for job in &finished {
        let label = job.labels.get("demo").map(String::as_str).unwrap_or("");
        match (job.status, &job.result) {
            (JobState::Completed, Some(result)) if label == "reviews-api" => {
                let shop = result["json"]["shop"].as_str().unwrap_or("?");
                let n = result["json"]["reviews"].as_array().map_or(0, Vec::len);
                println!("  review API of {shop}: {n} reviews");
            }
            (JobState::Completed, _) if label == "login" => {
                let sessions = api.sessions().await?.sessions;
                let sizes: Vec<String> = sessions
                    .iter()
                    .map(|s| format!("{} ({} bytes sealed)", s.name, s.size_bytes))
                    .collect();
                println!(
                    "  login (Chromium): signed in; sessions on the server: {}",
                    sizes.join(", ")
                );
            }
            (JobState::Completed, Some(result)) if label == "reviews" => {
                let items = api.items(job.id, 0, 100).await?;
                println!(
                    "  reviews behind the login (Chromium, saved session, {} pages): {} rows",
                    result["pages"], result["rows"]
                );
                for item in &items.items {
                    let r = &item.data;
                    println!(
                        "    {} {}★ {} {}: {}",
                        r["id"].as_str().unwrap_or("?"),
                        r["stars"].as_f64().unwrap_or(0.0),
                        r["date"].as_str().unwrap_or("?"),
                        r["author"].as_str().unwrap_or("?"),
                        r["text"].as_str().unwrap_or("")
                    );
                }
                let dataset = api.dataset(REVIEWS_DATASET).await?;
                if let Some(run) = &dataset.last_run {
                    println!(
                        "    dataset {REVIEWS_DATASET}: {} new, {} changed, {} gone ({} rows; export: ferry dataset export {REVIEWS_DATASET} --format csv)",
                        run.new, run.changed, run.gone, dataset.items
                    );
                }
            }
            (JobState::Completed, Some(result)) if label == "feed" => {
                let items = api.items(job.id, 0, 100).await?;
                let posts: Vec<&str> = items
                    .items
                    .iter()
                    .filter_map(|i| i.data["post"].as_str())
                    .collect();
                println!(
                    "  infinite feed (Chromium, loaded over fetch while scrolling): {} posts, {} … {}",
                    result["rows"],
                    posts.first().unwrap_or(&"?"),
                    posts.last().unwrap_or(&"?")
                );
            }
            (JobState::Completed, _) if label == "flaky" => {
                println!(
                    "  flaky endpoint: completed on attempt {} after a 429 with Retry-After",
                    job.attempt
                );
            }
            _ => {
                failed += 1;
                println!("  {} {} {}: {:?}", label, job.id, job.status, job.error);
            }
        }
    }
    // A review sync that runs by itself: every hour, the same collection with the saved login.
    let schedule = api
        .create_schedule(&ferry_core::schedule::ScheduleSpec {
            name: "hourly-review-sync".to_owned(),
            cron: "0 * * * *".to_owned(),
            timezone: "UTC".to_owned(),
            job: review_sync(),
            catch_up: true,
        })
        .await?;
    println!(
        "\nschedule {:?} ({} {}) will sync the reviews into {REVIEWS_DATASET} again at {}",
        schedule.name, schedule.cron, schedule.timezone, schedule.next_at
    );
    println!(
        "watch every change live: curl -N -H 'Accept: text/event-stream' -H 'Authorization: Bearer …' {url}/v1/events"
    );
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
        println!(
            "  curl -H 'Authorization: Bearer {}' '{url}/v1/events?after=0'   (every state change, in order)",
            api_token.expose()
        );
        println!(
            "  curl -H 'Authorization: Bearer {}' {url}/v1/sessions   (saved logins, never their contents)",
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
