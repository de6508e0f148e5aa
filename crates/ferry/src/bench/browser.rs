//! `ferry bench browser`: recipes in one real Chromium. By default the demo site's review
//! page, a fresh context per job and one context for 20 pages; with `--catalog`, the
//! catalog workload (pages of 40 items, each linked to the next, walked by `paginate`)
//! beside the raw-CDP baseline over the same connection, so their ratio comes from one run.

use std::{process::ExitCode, sync::Arc, time::Instant};

use anyhow::Result;
use serde_json::json;

use crate::cli::BenchBrowserArgs;

/// Resident memory (KiB) of every process whose command line mentions `needle`: Chromium's
/// browser, renderer, GPU and utility processes all carry the profile directory.
fn rss_kib_of(needle: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(needle) {
            continue;
        }
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        total += status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

/// Pages per job in the reused-context mode.
const REUSED_PAGES: usize = 20;

/// `ferry bench browser`: one Chromium, a fresh context per recipe (as the worker runs
/// them), the demo site's review page loaded and extracted, at each concurrency level.
pub(super) async fn run(args: BenchBrowserArgs) -> Result<ExitCode> {
    if args.catalog {
        return catalog(&args).await;
    }
    let site = ferry_demo_site::spawn().await?;
    let chromium =
        Arc::new(ferry_browser::Chromium::launch(&ferry_browser::ChromiumConfig::default()).await?);
    let profile = chromium.profile_dir().display().to_string();
    let recipe = ferry_core::recipe::validate(
        &json!({"steps": [
            {"goto": {"url": site.url("/site/reviews")}},
            {"extract": {"list": "li.review", "fields": {"title": {"selector": "h3"}}}}
        ]}),
        "payload",
    )
    .map_err(|e| anyhow::anyhow!("bench recipe: {e:?}"))?;
    let recipe = Arc::new(recipe);
    // The same page, REUSED_PAGES times in one job: one context for all of them.
    let mut steps = Vec::new();
    for _ in 0..REUSED_PAGES {
        steps.push(json!({"goto": {"url": site.url("/site/reviews")}}));
        steps.push(
            json!({"extract": {"list": "li.review", "fields": {"title": {"selector": "h3"}}}}),
        );
    }
    let reused = ferry_core::recipe::validate(&json!({ "steps": steps }), "payload")
        .map_err(|e| anyhow::anyhow!("bench recipe: {e:?}"))?;
    let reused = Arc::new(reused);
    let idle_kib = rss_kib_of(&profile);
    for (mode, recipe, per_job) in [
        ("fresh context per job", recipe, 1),
        ("one context, 20 pages per job", reused, REUSED_PAGES),
    ] {
        for &concurrency in &args.concurrency {
            let concurrency = concurrency.max(1);
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let started = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let (chromium, recipe, next) = (chromium.clone(), recipe.clone(), next.clone());
                let pages = args.pages;
                tasks.push(tokio::spawn(async move {
                    while next.fetch_add(per_job, std::sync::atomic::Ordering::Relaxed) < pages {
                        let mut rows = ferry_browser::Collect::default();
                        chromium.run(&recipe, &mut rows).await?;
                        anyhow::ensure!(
                            rows.rows.len() == 3 * per_job,
                            "expected {} rows, got {}",
                            3 * per_job,
                            rows.rows.len()
                        );
                    }
                    Ok(())
                }));
            }
            // Sample memory while the pages run.
            let sampler = {
                let (peak, profile) = (peak.clone(), profile.clone());
                tokio::spawn(async move {
                    loop {
                        peak.fetch_max(rss_kib_of(&profile), std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                })
            };
            for t in tasks {
                t.await??;
            }
            sampler.abort();
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{}",
                json!({
                    "bench": "browser",
                    "mode": mode,
                    "concurrency": concurrency,
                    "pages": args.pages.div_ceil(per_job) * per_job,
                    "pages_per_s": ((args.pages.div_ceil(per_job) * per_job) as f64 / secs * 10.0).round() / 10.0,
                    "chromium_rss_mib_idle": idle_kib / 1024,
                    "chromium_rss_mib_peak": peak.load(std::sync::atomic::Ordering::Relaxed) / 1024,
                })
            );
        }
    }
    if let Ok(chromium) = Arc::try_unwrap(chromium) {
        chromium.close().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--catalog`: the catalog workload. `--pages` pages in all, split over as many jobs as
/// the concurrency (200 pages: one job of 200 at c=1, four of 50 at c=4), each job walking
/// its pages of 40 items by their `next` links, first by the thinnest CDP driver
/// ([`ferry_browser::baseline::walk`]: navigate, wait for load, one evaluate), then as a
/// `paginate` recipe, alternately for `--rounds` rounds so the machine's drift falls on
/// both alike. Prints a line per mode and level (the median round) and their ratio.
async fn catalog(args: &BenchBrowserArgs) -> Result<ExitCode> {
    let site = ferry_demo_site::spawn().await?;
    let chromium =
        Arc::new(ferry_browser::Chromium::launch(&ferry_browser::ChromiumConfig::default()).await?);
    for &concurrency in &args.concurrency {
        let concurrency = concurrency.max(1);
        let per_job = args.pages.div_ceil(concurrency);
        let pages = per_job * concurrency;
        let start = site.url(&format!("/site/catalog?page=1&pages={per_job}&flush_ms=0"));
        let recipe = Arc::new(
            ferry_core::recipe::validate(
                &json!({"steps": [
                    {"goto": {"url": start}},
                    {"paginate": {"next": "#next", "max_pages": per_job, "extract": {
                        "list": "li.item",
                        "fields": {"id": {"attr": "data-id"}, "name": {"selector": ".name"},
                                   "price": {"selector": ".price"}}}}}
                ]}),
                "payload",
            )
            .map_err(|e| anyhow::anyhow!("bench recipe: {e:?}"))?,
        );
        let rows = per_job * ferry_demo_site::CATALOG_ROWS;
        let (mut raw, mut ferry) = (Vec::new(), Vec::new());
        for _ in 0..args.rounds.max(1) {
            raw.push(
                at_once(concurrency, pages, || {
                    let (chromium, start) = (chromium.clone(), start.clone());
                    async move {
                        let walked = ferry_browser::baseline::walk(
                            &chromium, &start, "li.item", "#next", per_job,
                        )
                        .await?;
                        anyhow::ensure!(
                            walked.rows == rows,
                            "raw CDP: {walked:?}, not {rows} rows"
                        );
                        Ok(())
                    }
                })
                .await?,
            );
            ferry.push(
                at_once(concurrency, pages, || {
                    let (chromium, recipe) = (chromium.clone(), recipe.clone());
                    async move {
                        let mut got = ferry_browser::Collect::default();
                        chromium.run(&recipe, &mut got).await?;
                        anyhow::ensure!(
                            got.rows.len() == rows,
                            "recipe: {} rows, not {rows}",
                            got.rows.len()
                        );
                        Ok(())
                    }
                })
                .await?,
            );
        }
        let (raw, ferry) = (median(raw), median(ferry));
        for (mode, rate) in [("raw CDP", raw), ("recipe (paginate)", ferry)] {
            println!(
                "{}",
                json!({"bench": "browser", "workload": "catalog", "mode": mode,
                       "concurrency": concurrency, "pages": pages, "rounds": args.rounds.max(1),
                       "pages_per_s": (rate * 10.0).round() / 10.0})
            );
        }
        println!(
            "{}",
            json!({"bench": "browser", "workload": "catalog", "concurrency": concurrency,
                   "recipe_over_raw": (ferry / raw * 100.0).round() / 100.0})
        );
    }
    if let Ok(chromium) = Arc::try_unwrap(chromium) {
        chromium.close().await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `concurrency` jobs made by `job` at once; answers pages per second.
async fn at_once<F, Fut>(concurrency: usize, pages: usize, job: F) -> Result<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency).map(|_| tokio::spawn(job())).collect();
    for t in tasks {
        t.await??;
    }
    Ok(pages as f64 / started.elapsed().as_secs_f64())
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or_default()
}
