//! Browser jobs under load: every page's rows, exactly, at concurrency 4 while a CPU hog
//! keeps both cores busy. The catalog pages flush their HTML in parts (as many real
//! servers do), so a list read before its document has settled comes back short.
//!
//! Runs through a real server and worker, so the report path (items streamed as partial
//! results, acknowledged, de-duplicated by offset) is part of what is checked.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use ferry_browser::{BrowserRun, Chromium, ChromiumConfig};
use ferry_core::{JobId, JobState, Secret};
use ferry_testkit::{
    TestServer, WORKER_TOKEN,
    fixture::{self, CATALOG_ROWS},
};
use ferry_worker::{Registry, Worker, WorkerConfig};
use serde_json::{Value, json};

/// Processes spinning on every core until dropped.
struct CpuHog(Vec<std::process::Child>);

impl CpuHog {
    fn start() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self(
            (0..cores)
                .map(|_| {
                    std::process::Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .expect("start a CPU hog")
                })
                .collect(),
        )
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A catalog crawl from page `first` over `pages` pages.
fn crawl(site: &fixture::Fixture, first: u32, pages: u32, last: u32) -> Value {
    json!({"steps": [
        {"goto": {"url": site.url(&format!("/site/catalog?page={first}&pages={last}"))}},
        {"paginate": {"next": "#next", "max_pages": pages, "extract": {
            "list": "li.item",
            "fields": {"id": {"attr": "data-id"}, "price": {"selector": ".price", "number": true}}}}}
    ]})
}

/// Every item of a job, in order.
async fn items(server: &TestServer, id: JobId) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = server.api.items(id, after, 1000).await.expect("items");
        if page.items.is_empty() {
            return out;
        }
        after = page.next_after;
        out.extend(page.items.into_iter().map(|i| i.data));
    }
}

/// Runs `jobs` (first page, pages) at once and checks each job's rows page by page.
async fn run_and_check(
    server: &TestServer,
    site: &fixture::Fixture,
    jobs: &[(u32, u32)],
    round: &str,
) {
    let last = jobs
        .iter()
        .map(|(first, n)| first + n - 1)
        .max()
        .unwrap_or(1);
    let mut ids = Vec::new();
    for (first, pages) in jobs {
        let job = server
            .api
            .submit(&ferry_testkit::job(
                "browser.run",
                crawl(site, *first, *pages, last),
            ))
            .await
            .expect("submit");
        ids.push((job.id, *first, *pages));
    }
    let mut problems = Vec::new();
    for (id, first, pages) in ids {
        let done = server.wait_final(id, Duration::from_secs(300)).await;
        if done.status != JobState::Completed {
            problems.push(format!(
                "job from page {first}: {:?} {:?}",
                done.status, done.error
            ));
            continue;
        }
        let rows = items(server, id).await;
        let mut want = BTreeSet::new();
        for page in first..first + pages {
            for i in 0..CATALOG_ROWS {
                want.insert(format!("p{page}-{i}"));
            }
        }
        let got: Vec<String> = rows
            .iter()
            .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        let got_set: BTreeSet<String> = got.iter().cloned().collect();
        if got.len() != want.len() || got_set != want {
            let missing: Vec<_> = want.difference(&got_set).take(5).collect();
            problems.push(format!(
                "job from page {first} ({pages} pages): {} rows, {} distinct, want {}; missing e.g. {missing:?}",
                got.len(),
                got_set.len(),
                want.len()
            ));
        }
        let result = done.result.unwrap_or_default();
        if result["pages"] != json!(pages) {
            problems.push(format!("job from page {first}: result {result}"));
        }
    }
    assert!(problems.is_empty(), "{round}: {problems:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_exact_at_concurrency_4_under_a_cpu_hog() {
    let site = fixture::spawn().await.expect("fixture");
    let server = TestServer::builder().with_services().spawn().await;
    let chromium = Arc::new(
        Chromium::launch(&ChromiumConfig::default())
            .await
            .expect("Chromium starts (scripts/chromium.sh installs it)"),
    );
    let mut registry = Registry::new();
    registry
        .register("browser.run", BrowserRun::new(chromium.clone()))
        .expect("register");
    let client = ferry_client::Client::new(&server.url, Secret::new(WORKER_TOKEN)).expect("client");
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(
            client,
            registry,
            WorkerConfig {
                worker_id: "load".into(),
                concurrency: 4,
                ..Default::default()
            },
        )
        .run(stop.clone()),
    );

    let hog = CpuHog::start();
    // Four jobs of 50 pages at once, four times.
    for round in 0..4 {
        let jobs: Vec<(u32, u32)> = (0..4).map(|j| (1 + j * 50, 50)).collect();
        run_and_check(
            &server,
            &site,
            &jobs,
            &format!("4 × 50 pages, round {round}"),
        )
        .await;
    }
    // Forty jobs of 5 pages, each in its fresh context, four at a time.
    let jobs: Vec<(u32, u32)> = (0..40).map(|j| (1 + j * 5, 5)).collect();
    run_and_check(&server, &site, &jobs, "40 × 5 pages").await;
    drop(hog);

    stop.cancel();
    worker.await.expect("worker task").expect("clean stop");
    if let Ok(chromium) = Arc::try_unwrap(chromium) {
        chromium.close().await;
    }
}
