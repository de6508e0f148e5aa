//! Starting and recycling Chromium (Debian's, with a fresh profile) and the browser
//! context each run gets, closed when the run ends.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use chromiumoxide::{
    Browser, BrowserConfig,
    cdp::browser_protocol::target::CreateTargetParams,
    cdp::browser_protocol::{browser::BrowserContextId, target::CreateBrowserContextParams},
};
use ferry_core::recipe::Recipe;
use futures_util::StreamExt;
use serde_json::Value;

use crate::{
    CDP_TIMEOUT, DEFAULT_CHROMIUM,
    error::{BrowserError, crashed},
    host::Host,
    network::NetworkLog,
    run::{Run, bounded},
    session,
};

/// How to start Chromium.
#[derive(Debug, Clone)]
pub struct ChromiumConfig {
    pub executable: PathBuf,
}

impl Default for ChromiumConfig {
    fn default() -> Self {
        Self {
            executable: std::env::var_os("FERRY_CHROMIUM")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM)),
        }
    }
}

/// Whether this process runs as root (Chromium's sandbox refuses to start then).
pub(crate) fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// One Chromium process with its own profile directory (removed when dropped).
pub struct Chromium {
    pid: Option<u32>,
    /// Read-locked by every call (CDP calls run concurrently); write-locked to close.
    pub(crate) browser: Arc<tokio::sync::RwLock<Browser>>,
    events: tokio::task::JoinHandle<()>,
    jobs: AtomicU32,
    _profile: tempfile::TempDir,
    /// Where its pages and steps are counted (set by `BrowserRun` after the launch).
    pub(crate) metrics: Option<crate::BrowserMetrics>,
}

impl Chromium {
    pub async fn launch(config: &ChromiumConfig) -> Result<Self, BrowserError> {
        let path = config.executable.display().to_string();
        let launch_error = |message: String| BrowserError::Launch {
            path: path.clone(),
            message,
        };
        if !config.executable.exists() {
            return Err(launch_error("no such file".into()));
        }
        let profile = tempfile::tempdir().map_err(|e| launch_error(e.to_string()))?;
        // chromiumoxide adds the leading `--` to each argument itself.
        let mut builder = BrowserConfig::builder()
            .chrome_executable(&config.executable)
            .user_data_dir(profile.path())
            .new_headless_mode()
            // A busy machine (a CI run, many jobs) can take well over 20 s to start it.
            .launch_timeout(Duration::from_secs(60))
            // Our own timeouts bound every call (`bounded`, `goto`'s navigation timeout);
            // the driver's may not cut a long navigation short.
            .request_timeout(Duration::from_millis(
                ferry_core::recipe::MAX_STEP_TIMEOUT_MS + 30_000,
            ))
            .arg("disable-gpu")
            // WebRTC may not send UDP around the context's proxy (the egress policy).
            .arg("force-webrtc-ip-handling-policy=disable_non_proxied_udp")
            .arg("disable-dev-shm-usage")
            // Tabs a job runs side by side (`follow`) keep their timers and rendering at
            // full speed: the waits that settle a page run in it.
            .arg("disable-background-timer-throttling")
            .arg("disable-renderer-backgrounding")
            .arg("disable-backgrounding-occluded-windows")
            .arg("no-first-run");
        if running_as_root() {
            builder = builder.no_sandbox();
        }
        let browser_config = builder.build().map_err(launch_error)?;
        let (mut browser, mut handler) = Browser::launch(browser_config)
            .await
            .map_err(|e| launch_error(e.to_string()))?;
        let pid = browser.get_mut_child().and_then(|c| c.inner.id());
        let events = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if let Err(e) = event {
                    // Typically an event newer than the protocol crate: keep going.
                    tracing::debug!(error = %e, "undecodable CDP message");
                }
            }
        });
        Ok(Self {
            pid,
            browser: Arc::new(tokio::sync::RwLock::new(browser)),
            events,
            jobs: AtomicU32::new(0),
            _profile: profile,
            metrics: None,
        })
    }

    /// The browser process.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The profile directory (on every Chromium process's command line; removed on close).
    pub fn profile_dir(&self) -> &std::path::Path {
        self._profile.path()
    }

    /// Closes the browser and waits for its process to exit (no zombies).
    pub async fn close(self) {
        let mut browser = self.browser.write().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), browser.close()).await;
        if tokio::time::timeout(Duration::from_secs(5), browser.wait())
            .await
            .is_err()
        {
            let _ = browser.kill().await;
            let _ = browser.wait().await;
        }
        self.events.abort();
    }

    /// Runs `recipe` in a fresh browser context; extracted rows, saved sessions and
    /// artifacts go to `host`. When a step fails, a screenshot, the page's HTML and its
    /// network log are handed to `host` as artifacts before the error is returned.
    pub async fn run(&self, recipe: &Recipe, host: &mut dyn Host) -> Result<Value, BrowserError> {
        self.jobs.fetch_add(1, Ordering::Relaxed);
        let _page_open = self.metrics.as_ref().map(crate::BrowserMetrics::page_open);
        // Every request of the context goes through a proxy holding the job's egress
        // policy, loopback too (Chromium would go to loopback directly otherwise), and
        // from there through the job's own proxy if it has one.
        let policy = host.egress();
        let upstream = match recipe.proxy.as_ref().or(policy.proxy.as_ref()) {
            Some(proxy) => Some(proxy.render(&|name| host.secret(name)).map_err(|e| {
                let message = e.to_string();
                match e {
                    ferry_core::proxy::ProxyRefused::Missing(_) => BrowserError::BadTemplate {
                        step: 0,
                        action: "proxy",
                        message,
                    },
                    ferry_core::proxy::ProxyRefused::Unbound(_) => BrowserError::SecretRefused {
                        step: 0,
                        action: "proxy",
                        message,
                    },
                }
            })?),
            None => None,
        };
        let egress = ferry_egress::EgressProxy::start(policy, upstream)
            .await
            .map_err(crashed)?;
        let browser = self.browser.read().await;
        let context = bounded(
            0,
            "open",
            browser.create_browser_context(
                CreateBrowserContextParams::builder()
                    .proxy_server(format!("http://{}", egress.addr()))
                    .proxy_bypass_list("<-loopback>")
                    .build(),
            ),
        )
        .await?;
        // Disposed however the run ends, also when its future is dropped (the job's
        // deadline or a cancellation stops the handler mid-step): guarded from the moment
        // it exists.
        let _context = ContextGuard::new(self.browser.clone(), context.clone());
        drop(browser);
        let (page, network) = self.open_tab(&context, 0, "open").await?;
        let mut run = Run {
            chromium: self,
            context,
            recipe,
            host,
            tabs: vec![page.target_id().clone()],
            pages: HashMap::from([(page.target_id().clone(), page.clone())]),
            page,
            scope: crate::dom::Scope {
                frames: Vec::new(),
                pierce: recipe.pierce_shadow(),
            },
            networks: Vec::new(),
            network,
            egress: &egress,
            vars: std::collections::BTreeMap::new(),
            secrets_used: std::sync::Mutex::default(),
            shared_proxy: false,
        };
        if let Some(name) = &recipe.use_session
            && let Some(state) = run.host.load_session(name).await?
        {
            let browser = self.browser.read().await;
            session::restore(&browser, &run.context, &run.page, &state).await?;
        }
        match run.steps().await {
            Ok(summary) => Ok(summary),
            // A link's failure left what its own tab showed.
            Err(e @ BrowserError::Follow { .. }) => Err(e),
            Err(e) => {
                run.failure_artifacts().await;
                Err(e)
            }
        }
    }

    /// A new blank tab in `context` (a run's first, or one `follow` opens), with its
    /// request log.
    pub(crate) async fn open_tab(
        &self,
        context: &BrowserContextId,
        step: usize,
        action: &'static str,
    ) -> Result<(chromiumoxide::Page, NetworkLog), BrowserError> {
        let params = CreateTargetParams::builder()
            .url("about:blank")
            .browser_context_id(context.clone())
            .build()
            .map_err(crashed)?;
        let page = {
            let browser = self.browser.read().await;
            bounded(step, action, browser.new_page(params)).await?
        };
        crate::settle::watch(&page).await;
        let network = NetworkLog::start(&page).await;
        Ok((page, network))
    }

    /// Jobs run by this browser so far (for recycling).
    pub fn jobs_run(&self) -> u32 {
        self.jobs.load(Ordering::Relaxed)
    }

    /// Resident memory of the browser and its helpers, in bytes (Linux; 0 elsewhere).
    pub fn memory_bytes(&self) -> u64 {
        let Some(pid) = self.pid else { return 0 };
        process_tree_rss(pid)
    }

    /// Browser contexts open now besides the default one (each job has one while it runs).
    pub async fn open_contexts(&self) -> Result<usize, BrowserError> {
        let browser = self.browser.read().await;
        let contexts = bounded(
            0,
            "contexts",
            browser.execute(
                chromiumoxide::cdp::browser_protocol::target::GetBrowserContextsParams::default(),
            ),
        )
        .await?;
        Ok(contexts.result.browser_context_ids.len())
    }
}

/// Disposes a job's browser context (and so its pages) when dropped.
pub(crate) struct ContextGuard {
    /// Read-locked by every call (CDP calls run concurrently); write-locked to close.
    browser: Arc<tokio::sync::RwLock<Browser>>,
    context: Option<BrowserContextId>,
}

impl ContextGuard {
    pub(crate) fn new(
        browser: Arc<tokio::sync::RwLock<Browser>>,
        context: BrowserContextId,
    ) -> Self {
        Self {
            browser,
            context: Some(context),
        }
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        let (Some(context), Ok(runtime)) =
            (self.context.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let browser = self.browser.clone();
        runtime.spawn(async move {
            let browser = browser.read().await;
            if let Ok(Err(e)) =
                tokio::time::timeout(CDP_TIMEOUT, browser.dispose_browser_context(context)).await
            {
                tracing::debug!(error = %e, "disposing a browser context failed");
            }
        });
    }
}

/// Resident memory of `pid` and every process below it, from `/proc`.
pub(crate) fn process_tree_rss(pid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut parents: Vec<(u32, u32, u64)> = Vec::new();
    for entry in entries.flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        };
        parents.push((
            p,
            field("PPid:").unwrap_or(0) as u32,
            field("VmRSS:").unwrap_or(0) * 1024,
        ));
    }
    let mut tree = vec![pid];
    let mut total = 0;
    let mut i = 0;
    while i < tree.len() {
        let at = tree[i];
        for (p, parent, rss) in &parents {
            if *p == at {
                total += rss;
            }
            if *parent == at && !tree.contains(p) {
                tree.push(*p);
            }
        }
        i += 1;
    }
    total
}
