//! What `browser.run` adds to a worker's metrics (issue #18): pages open now, Chromium's
//! resident memory (the browser and its helper processes, read at each scrape), launches,
//! and how long each recipe step took by its action and whether it succeeded.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntGauge, Opts};

/// Step durations, in seconds: a click to a slow page's load.
const STEP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The browser's metrics, registered in a worker's registry; clones share them.
#[derive(Debug, Clone)]
pub struct BrowserMetrics {
    pages: IntGauge,
    launches: IntCounter,
    steps: HistogramVec,
    /// The running Chromium's process id (0: none yet), whose memory a scrape reads.
    pid: Arc<AtomicU32>,
}

impl BrowserMetrics {
    /// Registers the browser's families in `worker`'s registry.
    pub fn register(worker: &ferry_worker::WorkerMetrics) -> prometheus::Result<Self> {
        let registry = worker.registry();
        let pages = IntGauge::with_opts(Opts::new(
            "ferry_browser_pages_open",
            "Browser pages (a job's context each) open in this worker now.",
        ))?;
        let memory = IntGauge::with_opts(Opts::new(
            "ferry_browser_memory_bytes",
            "Resident memory of this worker's Chromium and its helper processes.",
        ))?;
        let launches = IntCounter::with_opts(Opts::new(
            "ferry_browser_launches_total",
            "Chromium processes this worker started (the first, and each replacement).",
        ))?;
        let steps = HistogramVec::new(
            HistogramOpts::new(
                "ferry_browser_step_duration_seconds",
                "How long recipe steps took, by action and outcome (ok, error).",
            )
            .buckets(STEP_BUCKETS.to_vec()),
            &["action", "outcome"],
        )?;
        registry.register(Box::new(pages.clone()))?;
        registry.register(Box::new(memory.clone()))?;
        registry.register(Box::new(launches.clone()))?;
        registry.register(Box::new(steps.clone()))?;
        let pid = Arc::new(AtomicU32::new(0));
        let of = pid.clone();
        worker.before_scrape(move || {
            let pid = of.load(Ordering::Relaxed);
            let bytes = if pid == 0 {
                0
            } else {
                crate::chromium::process_tree_rss(pid)
            };
            memory.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        });
        Ok(Self {
            pages,
            launches,
            steps,
            pid,
        })
    }

    pub(crate) fn launched(&self, pid: Option<u32>) {
        self.launches.inc();
        self.pid.store(pid.unwrap_or(0), Ordering::Relaxed);
    }

    /// Counts a page open until the guard is dropped.
    pub(crate) fn page_open(&self) -> PageOpen {
        self.pages.inc();
        PageOpen(self.pages.clone())
    }

    pub(crate) fn step(&self, action: &str, ok: bool, took: Duration) {
        self.steps
            .with_label_values(&[action, if ok { "ok" } else { "error" }])
            .observe(took.as_secs_f64());
    }
}

/// A page counted open; dropped, it is not.
#[derive(Debug)]
pub(crate) struct PageOpen(IntGauge);

impl Drop for PageOpen {
    fn drop(&mut self) {
        self.0.dec();
    }
}
