//! The only crate that speaks the DevTools protocol. [`Chromium`] launches Debian's
//! Chromium (never a downloaded one) with a fresh profile, and runs [`Recipe`]s, each in
//! its own browser context so cookies and storage never leak between jobs.
//! [`BrowserRun`] is the `browser.run` handler for the worker runtime.
//!
//! Every CDP call is bounded by a timeout; events the protocol crate cannot decode (it is
//! older than this Chromium) are logged and skipped, never fatal.

mod extract;
mod network;
mod session;
mod settle;

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
    Browser, BrowserConfig, Page,
    cdp::browser_protocol::page::CaptureScreenshotFormat,
    cdp::browser_protocol::target::{CreateTargetParams, GetTargetsParams, TargetId},
    cdp::browser_protocol::{browser::BrowserContextId, target::CreateBrowserContextParams},
    page::ScreenshotParams,
};
use ferry_core::recipe::{Recipe, SECRET_ENV_PREFIX, Step};
use futures_util::StreamExt;
use network::NetworkLog;
use serde_json::{Value, json};

pub use extract::clean_rows;

/// Where Debian installs Chromium.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// The longest any single CDP call may take.
const CDP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// How long a failed run may spend capturing its screenshot and HTML (documented in
/// `docs/recipes.md`): an attempt ends within its timeout plus this.
pub const FAILURE_CAPTURE_BUDGET: Duration = Duration::from_secs(2);

/// What went wrong running a recipe. `code()` is the job error code a user sees.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(
        "cannot start Chromium at {path}: {message} (install Debian's `chromium` package, or set FERRY_CHROMIUM)"
    )]
    Launch { path: String, message: String },
    #[error("step {step} ({action}): nothing matched `{selector}` within {timeout_ms} ms")]
    SelectorTimeout {
        step: usize,
        action: &'static str,
        selector: String,
        timeout_ms: u64,
    },
    #[error("step {step} (select): `{selector}` has no option `{value}`")]
    NoSuchOption {
        step: usize,
        selector: String,
        value: String,
    },
    #[error("step {step} (goto): {url} answered HTTP {status}{}", retry_after.map(|s| format!(" (Retry-After: {s} s)")).unwrap_or_default())]
    HttpStatus {
        step: usize,
        url: String,
        status: u16,
        /// The answer's `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    #[error("step {step} ({action}): {message}")]
    BadTemplate {
        step: usize,
        action: &'static str,
        message: String,
    },
    #[error("step {step} (switch_tab): no tab {index} within {timeout_ms} ms ({open} open)")]
    NoSuchTab {
        step: usize,
        index: i32,
        open: usize,
        timeout_ms: u64,
    },
    /// The server refused or could not serve a session or artifact call.
    #[error("{message}")]
    Host {
        code: String,
        message: String,
        retryable: bool,
    },
    #[error("step {step} (goto): {url} did not load within {timeout_ms} ms")]
    NavigationTimeout {
        step: usize,
        url: String,
        timeout_ms: u64,
    },
    #[error("step {step} (goto): could not load {url}: {message}")]
    Navigation {
        step: usize,
        url: String,
        message: String,
    },
    #[error("step {step} (extract): row {row} has no `{field}`, which is required")]
    ExtractMissing {
        step: usize,
        row: usize,
        field: String,
    },
    #[error(
        "step {step} (extract): `{list}` matched {found} rows, fewer than the {min_rows} expected (set min_rows: 0 if the page may be empty)"
    )]
    ExtractEmpty {
        step: usize,
        list: String,
        found: usize,
        min_rows: u32,
    },
    #[error("step {step} ({action}): the browser did not answer within {}s", CDP_TIMEOUT.as_secs())]
    Timeout { step: usize, action: &'static str },
    #[error("the browser failed: {0}")]
    Crashed(String),
}

impl BrowserError {
    pub fn code(&self) -> &str {
        match self {
            BrowserError::Launch { .. } | BrowserError::Crashed(_) => "BROWSER_CRASHED",
            BrowserError::SelectorTimeout { .. }
            | BrowserError::NoSuchOption { .. }
            | BrowserError::NoSuchTab { .. } => "SELECTOR_TIMEOUT",
            BrowserError::HttpStatus { .. } => "HTTP_STATUS",
            BrowserError::BadTemplate { .. } => "INVALID_RECIPE",
            BrowserError::Host { code, .. } => code,
            BrowserError::Navigation { .. } => "NAVIGATION_ERROR",
            BrowserError::NavigationTimeout { .. } => "NAVIGATION_TIMEOUT",
            BrowserError::ExtractMissing { .. } => "EXTRACT_MISSING",
            BrowserError::ExtractEmpty { .. } => "EXTRACT_EMPTY",
            BrowserError::Timeout { .. } => "TIMEOUT",
        }
    }

    /// Whether another attempt may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            BrowserError::HttpStatus { status, .. } => matches!(status, 429 | 503),
            BrowserError::Crashed(_)
            | BrowserError::Launch { .. }
            | BrowserError::Timeout { .. }
            | BrowserError::Navigation { .. }
            | BrowserError::NavigationTimeout { .. } => true,
            BrowserError::Host { retryable, .. } => *retryable,
            BrowserError::SelectorTimeout { .. }
            | BrowserError::NoSuchOption { .. }
            | BrowserError::NoSuchTab { .. }
            | BrowserError::BadTemplate { .. }
            | BrowserError::ExtractMissing { .. }
            | BrowserError::ExtractEmpty { .. } => false,
        }
    }

    /// How long to wait before another attempt, when the site said (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BrowserError::HttpStatus {
                retry_after: Some(s),
                ..
            } => Some(Duration::from_secs(*s)),
            _ => None,
        }
    }
}

fn crashed(e: impl std::fmt::Display) -> BrowserError {
    BrowserError::Crashed(e.to_string())
}

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
fn running_as_root() -> bool {
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
    browser: Arc<tokio::sync::RwLock<Browser>>,
    events: tokio::task::JoinHandle<()>,
    jobs: AtomicU32,
    _profile: tempfile::TempDir,
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
            .arg("disable-dev-shm-usage")
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
        let browser = self.browser.read().await;
        let context = bounded(
            0,
            "open",
            browser.create_browser_context(CreateBrowserContextParams::default()),
        )
        .await?;
        // Disposed however the run ends, also when its future is dropped (the job's
        // deadline or a cancellation stops the handler mid-step): guarded from the moment
        // it exists.
        let _context = ContextGuard {
            browser: self.browser.clone(),
            context: Some(context.clone()),
        };
        let params = CreateTargetParams::builder()
            .url("about:blank")
            .browser_context_id(context.clone())
            .build()
            .map_err(crashed)?;
        let page = bounded(0, "open", browser.new_page(params)).await?;
        drop(browser);
        let network = NetworkLog::start(&page).await;
        let mut run = Run {
            chromium: self,
            context,
            recipe,
            host,
            tabs: vec![page.target_id().clone()],
            pages: HashMap::from([(page.target_id().clone(), page.clone())]),
            page,
            networks: Vec::new(),
            network,
        };
        if let Some(name) = &recipe.use_session
            && let Some(state) = run.host.load_session(name).await?
        {
            let browser = self.browser.read().await;
            session::restore(&browser, &run.context, &run.page, &state).await?;
        }
        match run.steps().await {
            Ok(summary) => Ok(summary),
            Err(e) => {
                run.failure_artifacts().await;
                Err(e)
            }
        }
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
struct ContextGuard {
    /// Read-locked by every call (CDP calls run concurrently); write-locked to close.
    browser: Arc<tokio::sync::RwLock<Browser>>,
    context: Option<BrowserContextId>,
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

/// What a run reports to and asks of whoever runs it: the worker streams rows as partial
/// results, keeps sessions and artifacts on the server.
#[async_trait::async_trait]
pub trait Host: Send + Sync {
    /// Extracted rows, as they are found.
    async fn rows(&mut self, rows: Vec<Value>);
    /// The session named by the recipe's `use_session` (`None`: nothing saved yet).
    async fn load_session(&mut self, name: &str) -> Result<Option<Value>, BrowserError>;
    /// A `save_session` step's capture.
    async fn save_session(&mut self, name: &str, state: Value) -> Result<(), BrowserError>;
    /// A file the run made (a `screenshot` step, or what a failure left).
    async fn artifact(&mut self, name: &str, content_type: &str, bytes: Vec<u8>);
    /// `{{secret.NAME}}`: by default this process's `FERRY_SECRET_NAME`.
    fn secret(&self, name: &str) -> Option<String> {
        env_secret(name)
    }
}

/// A host that keeps everything in memory, for callers that run recipes without a server
/// (tests, `ferry bench browser`).
#[derive(Debug, Default)]
pub struct Collect {
    pub rows: Vec<Value>,
    pub sessions: HashMap<String, Value>,
    /// `(name, content type, bytes)`.
    pub artifacts: Vec<(String, String, Vec<u8>)>,
    /// Secrets by name, before the environment's `FERRY_SECRET_*`.
    pub secrets: HashMap<String, String>,
}

#[async_trait::async_trait]
impl Host for Collect {
    async fn rows(&mut self, rows: Vec<Value>) {
        self.rows.extend(rows);
    }

    async fn load_session(&mut self, name: &str) -> Result<Option<Value>, BrowserError> {
        Ok(self.sessions.get(name).cloned())
    }

    async fn save_session(&mut self, name: &str, state: Value) -> Result<(), BrowserError> {
        self.sessions.insert(name.to_owned(), state);
        Ok(())
    }

    async fn artifact(&mut self, name: &str, content_type: &str, bytes: Vec<u8>) {
        self.artifacts
            .push((name.to_owned(), content_type.to_owned(), bytes));
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).cloned().or_else(|| env_secret(name))
    }
}

/// `{{secret.NAME}}` from this process's environment (`FERRY_SECRET_NAME`).
pub fn env_secret(name: &str) -> Option<String> {
    std::env::var(format!("{SECRET_ENV_PREFIX}{name}")).ok()
}

/// Resident memory of `pid` and every process below it, from `/proc`.
fn process_tree_rss(pid: u32) -> u64 {
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

/// Awaits a CDP call with the timeout; maps its error to a crash.
async fn bounded<T, E: std::fmt::Display>(
    step: usize,
    action: &'static str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BrowserError> {
    match tokio::time::timeout(CDP_TIMEOUT, call).await {
        Ok(result) => result.map_err(crashed),
        Err(_) => Err(BrowserError::Timeout { step, action }),
    }
}

/// Evaluates `js` in the page and reads its value. A navigation can replace the page's
/// context under an evaluation ("Cannot find context with specified id"): retried once.
async fn eval(
    page: &Page,
    step: usize,
    action: &'static str,
    js: &str,
) -> Result<Value, BrowserError> {
    let mut tried = false;
    loop {
        match tokio::time::timeout(CDP_TIMEOUT, page.evaluate(js.to_owned())).await {
            Err(_) => return Err(BrowserError::Timeout { step, action }),
            Ok(Ok(result)) => return Ok(result.value().cloned().unwrap_or(Value::Null)),
            Ok(Err(e)) if !tried => {
                tracing::debug!(error = %e, "evaluate failed; retrying once");
                tried = true;
                tokio::time::sleep(POLL).await;
            }
            Ok(Err(e)) => return Err(crashed(e)),
        }
    }
}

/// A JS string literal.
fn js_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Polls until `selector` matches a visible element.
async fn wait_visible(
    page: &Page,
    step: usize,
    action: &'static str,
    selector: &str,
    timeout_ms: u64,
) -> Result<(), BrowserError> {
    let js = format!(
        "(() => {{ const el = document.querySelector({}); if (!el) return false; \
         const r = el.getBoundingClientRect(); const s = getComputedStyle(el); \
         return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; }})()",
        js_str(selector)
    );
    let until = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        if eval(page, step, action, &js).await? == Value::Bool(true) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= until {
            return Err(BrowserError::SelectorTimeout {
                step,
                action,
                selector: selector.to_owned(),
                timeout_ms,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One recipe run: the job's context, its tabs and the one steps act on.
struct Run<'a> {
    chromium: &'a Chromium,
    context: BrowserContextId,
    recipe: &'a Recipe,
    host: &'a mut dyn Host,
    /// The context's tabs in the order they were first seen.
    tabs: Vec<TargetId>,
    pages: HashMap<TargetId, Page>,
    /// The tab steps act on.
    page: Page,
    /// The current tab's requests.
    network: NetworkLog,
    /// Logs of tabs switched away from (kept recording).
    networks: Vec<NetworkLog>,
}

impl Run<'_> {
    /// `{{input.NAME}}` and `{{secret.NAME}}` (from this worker's `FERRY_SECRET_NAME`).
    fn render(
        &self,
        step: usize,
        action: &'static str,
        text: &str,
    ) -> Result<String, BrowserError> {
        ferry_core::recipe::render(text, &self.recipe.inputs, &|name| self.host.secret(name))
            .map_err(|message| BrowserError::BadTemplate {
                step,
                action,
                message,
            })
    }

    async fn steps(&mut self) -> Result<Value, BrowserError> {
        let recipe = self.recipe;
        let timeout_ms = recipe.step_timeout_ms();
        let mut rows = 0usize;
        let mut pages_seen = 0u32;
        let mut rows_per_page: Vec<usize> = Vec::new();
        let mut saved = Vec::new();
        let mut screenshots = Vec::new();
        for (i, step) in recipe.steps.iter().enumerate() {
            let action = step.name();
            let page = self.page.clone();
            match step {
                Step::Goto { url } => {
                    let url = self.render(i, action, url)?;
                    self.goto(i, &url).await?;
                }
                Step::Click { selector } => {
                    wait_visible(&page, i, action, selector, timeout_ms).await?;
                    let mark = settle::arm(&page, i, action).await?;
                    let element = bounded(i, action, page.find_element(selector.as_str())).await?;
                    bounded(i, action, element.click()).await?;
                    // A click on a link or a submit button loads a new document: later
                    // steps act on that one, once it has loaded.
                    let limit = recipe.navigation_timeout_ms();
                    settle::after_click(&page, i, action, &mark, None, limit).await?;
                }
                Step::Fill { selector, value } => {
                    let value = self.render(i, action, value)?;
                    wait_visible(&page, i, action, selector, timeout_ms).await?;
                    // As a user's typing ends: the value set, `input` and `change` fired.
                    let js = format!(
                        "(() => {{ const el = document.querySelector({}); el.focus(); el.value = {}; \
                         el.dispatchEvent(new Event('input', {{bubbles: true}})); \
                         el.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
                        js_str(selector),
                        js_str(&value)
                    );
                    eval(&page, i, action, &js).await?;
                }
                Step::WaitFor {
                    selector,
                    url_contains,
                    network_idle_ms,
                    delay_ms,
                    timeout_ms: own,
                } => {
                    let limit = own.unwrap_or(timeout_ms);
                    if let Some(selector) = selector {
                        wait_visible(&page, i, action, selector, limit).await?;
                    } else if let Some(part) = url_contains {
                        self.wait_url(i, part, limit).await?;
                    } else if let Some(idle) = network_idle_ms {
                        self.wait_idle(i, *idle, limit).await?;
                    } else if let Some(ms) = delay_ms {
                        tokio::time::sleep(Duration::from_millis(*ms)).await;
                    }
                }
                Step::Select { selector, value } => {
                    let value = self.render(i, action, value)?;
                    wait_visible(&page, i, action, selector, timeout_ms).await?;
                    let js = format!(
                        "(() => {{ const el = document.querySelector({}); el.value = {}; \
                         el.dispatchEvent(new Event('input', {{bubbles: true}})); \
                         el.dispatchEvent(new Event('change', {{bubbles: true}})); return el.value; }})()",
                        js_str(selector),
                        js_str(&value)
                    );
                    if eval(&page, i, action, &js).await? != Value::String(value.clone()) {
                        return Err(BrowserError::NoSuchOption {
                            step: i,
                            selector: selector.clone(),
                            value,
                        });
                    }
                }
                Step::Press { selector, key } => {
                    wait_visible(&page, i, action, selector, timeout_ms).await?;
                    let element = bounded(i, action, page.find_element(selector.as_str())).await?;
                    bounded(i, action, element.focus()).await?;
                    bounded(i, action, element.press_key(key)).await?;
                }
                Step::Scroll { selector } => {
                    let js = match selector {
                        Some(selector) => {
                            wait_visible(&page, i, action, selector, timeout_ms).await?;
                            format!(
                                "(() => {{ document.querySelector({}).scrollIntoView({{block: 'center'}}); return true; }})()",
                                js_str(selector)
                            )
                        }
                        None => "window.scrollTo(0, document.documentElement.scrollHeight); true"
                            .to_owned(),
                    };
                    eval(&page, i, action, &js).await?;
                }
                Step::Extract(what) => {
                    let want = what.min_rows();
                    settle::list(&page, i, &what.list, want, timeout_ms).await?;
                    rows += extract_page(&page, i, what, want, &mut *self.host).await?;
                }
                Step::Paginate {
                    next,
                    max_pages,
                    extract: what,
                } => {
                    let mut per_page = Vec::new();
                    loop {
                        // The list has settled before `next` is looked at, so a page whose
                        // link arrives last is not taken for the last page.
                        let want = what.min_rows();
                        let mut list =
                            settle::list(&page, i, &what.list, want.min(1), timeout_ms).await?;
                        let last = per_page.len() + 1 >= *max_pages as usize
                            || !next_enabled(&page, i, next).await?;
                        // Every page but the last has at least `min_rows`.
                        let at_least = if last { want.min(1) } else { want };
                        if list.count < u64::from(at_least) {
                            list = settle::list(&page, i, &what.list, at_least, timeout_ms).await?;
                        }
                        let n = extract_page(&page, i, what, at_least, &mut *self.host).await?;
                        per_page.push(n);
                        rows += n;
                        if last {
                            break;
                        }
                        let mark = settle::arm(&page, i, action).await?;
                        let element = bounded(i, action, page.find_element(next.as_str())).await?;
                        bounded(i, action, element.click()).await?;
                        let limit = recipe.navigation_timeout_ms().max(timeout_ms);
                        let changed = settle::after_click(
                            &page,
                            i,
                            action,
                            &mark,
                            Some((&what.list, &list.sig)),
                            limit,
                        )
                        .await?;
                        if !changed {
                            return Err(BrowserError::SelectorTimeout {
                                step: i,
                                action,
                                selector: format!(
                                    "{} (after clicking {next}, the list did not change)",
                                    what.list
                                ),
                                timeout_ms: limit,
                            });
                        }
                    }
                    pages_seen += per_page.len() as u32;
                    rows_per_page.extend(per_page);
                }
                Step::InfiniteScroll {
                    list,
                    until_items,
                    idle_ms,
                    max_scrolls,
                } => {
                    let count_js = format!("document.querySelectorAll({}).length", js_str(list));
                    let count = |v: Value| v.as_u64().unwrap_or(0);
                    let mut seen = count(eval(&page, i, action, &count_js).await?);
                    let mut changed = tokio::time::Instant::now();
                    let idle = Duration::from_millis(*idle_ms);
                    for _ in 0..*max_scrolls {
                        if until_items.is_some_and(|n| seen >= u64::from(n)) {
                            break;
                        }
                        eval(
                            &page,
                            i,
                            action,
                            "window.scrollTo(0, document.documentElement.scrollHeight); true",
                        )
                        .await?;
                        tokio::time::sleep(POLL).await;
                        let now = count(eval(&page, i, action, &count_js).await?);
                        if now > seen {
                            seen = now;
                            changed = tokio::time::Instant::now();
                        } else if changed.elapsed() >= idle {
                            break;
                        }
                    }
                }
                Step::SwitchTab { index } => self.switch_tab(i, *index, timeout_ms).await?,
                Step::Screenshot { name, full_page } => {
                    let name = name.clone().unwrap_or_else(|| format!("step-{i}.png"));
                    let png = screenshot(&page, i, *full_page).await?;
                    self.host.artifact(&name, "image/png", png).await;
                    screenshots.push(name);
                }
                Step::SaveSession(name) => {
                    let pages: Vec<Page> = self
                        .tabs
                        .iter()
                        .filter_map(|t| self.pages.get(t).cloned())
                        .collect();
                    let browser = self.chromium.browser.read().await;
                    let state = session::capture(&browser, &self.context, &pages, i).await?;
                    drop(browser);
                    self.host.save_session(name, state).await?;
                    saved.push(name.clone());
                }
            }
        }
        let mut summary = json!({"rows": rows, "steps": recipe.steps.len()});
        if pages_seen > 0 {
            summary["pages"] = json!(pages_seen);
            summary["rows_per_page"] = json!(rows_per_page);
        }
        if !saved.is_empty() {
            summary["sessions_saved"] = json!(saved);
        }
        if !screenshots.is_empty() {
            summary["screenshots"] = json!(screenshots);
        }
        Ok(summary)
    }

    async fn goto(&mut self, i: usize, url: &str) -> Result<(), BrowserError> {
        // A page that never answers fails the step after the navigation timeout.
        let limit_ms = self.recipe.navigation_timeout_ms();
        let navigation = |message: String| BrowserError::Navigation {
            step: i,
            url: url.to_owned(),
            message,
        };
        match tokio::time::timeout(Duration::from_millis(limit_ms), self.page.goto(url)).await {
            Err(_) => {
                // Stop the hung load so the failure capture reads the page as it is.
                let _ = tokio::time::timeout(
                    Duration::from_millis(500),
                    self.page.execute(
                        chromiumoxide::cdp::browser_protocol::page::StopLoadingParams::default(),
                    ),
                )
                .await;
                return Err(BrowserError::NavigationTimeout {
                    step: i,
                    url: url.to_owned(),
                    timeout_ms: limit_ms,
                });
            }
            Ok(Err(e)) => return Err(navigation(e.to_string())),
            Ok(Ok(_)) => {}
        }
        // The main document's status, as the page saw it.
        let status = eval(
            &self.page,
            i,
            "goto",
            "(() => { const n = performance.getEntriesByType('navigation')[0]; \
             return n ? n.responseStatus : 0; })()",
        )
        .await?;
        let status = status.as_u64().unwrap_or(0) as u16;
        if status >= 400 {
            return Err(BrowserError::HttpStatus {
                step: i,
                url: url.to_owned(),
                status,
                retry_after: self.network.retry_after(status),
            });
        }
        Ok(())
    }

    async fn wait_url(&self, i: usize, part: &str, timeout_ms: u64) -> Result<(), BrowserError> {
        let until = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            let url = eval(&self.page, i, "wait_for", "location.href").await?;
            if url.as_str().is_some_and(|u| u.contains(part)) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                return Err(BrowserError::SelectorTimeout {
                    step: i,
                    action: "wait_for",
                    selector: format!("a URL containing {part:?} (at {url})"),
                    timeout_ms,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until no request of the current tab was in flight for `idle_ms`.
    async fn wait_idle(&self, i: usize, idle_ms: u64, timeout_ms: u64) -> Result<(), BrowserError> {
        let until = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        let mut quiet_since = tokio::time::Instant::now();
        let mut seen = self.network.seen();
        loop {
            let now_seen = self.network.seen();
            if self.network.in_flight() > 0 || now_seen != seen {
                quiet_since = tokio::time::Instant::now();
                seen = now_seen;
            } else if quiet_since.elapsed() >= Duration::from_millis(idle_ms) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= until {
                return Err(BrowserError::SelectorTimeout {
                    step: i,
                    action: "wait_for",
                    selector: format!("the network to stay idle for {idle_ms} ms"),
                    timeout_ms,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Makes the `index`-th tab of this job's context current, waiting for one a click
    /// opened to appear.
    async fn switch_tab(
        &mut self,
        i: usize,
        index: i32,
        timeout_ms: u64,
    ) -> Result<(), BrowserError> {
        let until = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            let browser = self.chromium.browser.read().await;
            let targets = bounded(
                i,
                "switch_tab",
                browser.execute(GetTargetsParams::default()),
            )
            .await?
            .result
            .target_infos;
            for t in targets {
                if t.r#type == "page"
                    && t.browser_context_id.as_ref() == Some(&self.context)
                    && !self.tabs.contains(&t.target_id)
                {
                    self.tabs.push(t.target_id);
                }
            }
            let at = if index < 0 {
                self.tabs.len().checked_sub(index.unsigned_abs() as usize)
            } else {
                Some(index as usize).filter(|n| *n < self.tabs.len())
            };
            if let Some(target) = at.map(|n| self.tabs[n].clone()) {
                let page = match self.pages.get(&target) {
                    Some(page) => Some(page.clone()),
                    None => tokio::time::timeout(CDP_TIMEOUT, browser.get_page(target.clone()))
                        .await
                        .ok()
                        .and_then(Result::ok),
                };
                if let Some(page) = page {
                    drop(browser);
                    self.pages.insert(target, page.clone());
                    let network = NetworkLog::start(&page).await;
                    self.networks
                        .push(std::mem::replace(&mut self.network, network));
                    self.page = page;
                    // A tab opened by a click may still be loading.
                    wait_ready(&self.page, i).await;
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= until {
                return Err(BrowserError::NoSuchTab {
                    step: i,
                    index,
                    open: self.tabs.len(),
                    timeout_ms,
                });
            }
            drop(browser);
            tokio::time::sleep(POLL).await;
        }
    }

    /// What a failed run leaves for a person to look at: a screenshot, the page's HTML and
    /// its network log. Best effort, all within [`FAILURE_CAPTURE_BUDGET`]: the page may
    /// be what failed, and an attempt must end soon after its timeout.
    async fn failure_artifacts(&mut self) {
        let until = tokio::time::Instant::now() + FAILURE_CAPTURE_BUDGET;
        let left = || until.saturating_duration_since(tokio::time::Instant::now());
        if let Ok(Ok(png)) = tokio::time::timeout(
            left(),
            self.page.screenshot(
                ScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Png)
                    .build(),
            ),
        )
        .await
        {
            self.host.artifact("failure.png", "image/png", png).await;
        }
        // `content()` waits for a loading document; the DOM as it is now is what helps.
        if let Ok(Ok(html)) = tokio::time::timeout(
            left(),
            self.page
                .evaluate("document.documentElement ? document.documentElement.outerHTML : ''"),
        )
        .await
            && let Some(html) = html.value().and_then(Value::as_str)
        {
            self.host
                .artifact(
                    "failure.html",
                    "text/html; charset=utf-8",
                    html.as_bytes().to_vec(),
                )
                .await;
        }
        let log = self.network.to_json();
        if let Ok(bytes) = serde_json::to_vec_pretty(&log) {
            self.host
                .artifact("failure-network.json", "application/json", bytes)
                .await;
        }
    }
}

/// A PNG of the page (the whole page when `full_page`).
async fn screenshot(page: &Page, step: usize, full_page: bool) -> Result<Vec<u8>, BrowserError> {
    bounded(
        step,
        "screenshot",
        page.screenshot(
            ScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .full_page(full_page)
                .build(),
        ),
    )
    .await
}

/// Waits (briefly, best effort) until the page's document has loaded.
async fn wait_ready(page: &Page, step: usize) {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < until {
        if let Ok(Value::String(state)) =
            eval(page, step, "switch_tab", "document.readyState").await
            && state == "complete"
            && let Ok(Value::String(url)) = eval(page, step, "switch_tab", "location.href").await
            && url != "about:blank"
        {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Extracts one page's rows (the caller has let it settle) and hands them to `host`;
/// answers how many. Fewer than `at_least` fail the step (`EXTRACT_EMPTY`).
async fn extract_page(
    page: &Page,
    step: usize,
    what: &ferry_core::recipe::Extract,
    at_least: u32,
    sink: &mut dyn Host,
) -> Result<usize, BrowserError> {
    let raw = eval(
        page,
        step,
        "extract",
        &extract::script(&what.list, &what.fields),
    )
    .await?;
    let found = clean_rows(step, raw, &what.fields)?;
    let n = found.len();
    if (n as u64) < u64::from(at_least) {
        return Err(BrowserError::ExtractEmpty {
            step,
            list: what.list.clone(),
            found: n,
            min_rows: at_least,
        });
    }
    if n > 0 {
        sink.rows(found).await;
    }
    Ok(n)
}

/// Whether `next` is there and not disabled (`disabled`, `aria-disabled`, a `disabled`
/// class).
async fn next_enabled(page: &Page, step: usize, next: &str) -> Result<bool, BrowserError> {
    let js = format!(
        "(() => {{ const el = document.querySelector({}); if (!el) return false; \
         return !(el.disabled || el.getAttribute('aria-disabled') === 'true' \
         || el.classList.contains('disabled')); }})()",
        js_str(next)
    );
    Ok(eval(page, step, "paginate", &js).await? == Value::Bool(true))
}

/// When a worker replaces its Chromium with a fresh one (long-lived browsers grow).
#[derive(Debug, Clone, Copy)]
pub struct Recycle {
    /// After this many jobs (default 200).
    pub after_jobs: u32,
    /// When the browser and its helpers use more than this much memory (default 2 GiB).
    pub above_bytes: u64,
}

impl Default for Recycle {
    fn default() -> Self {
        Self {
            after_jobs: 200,
            above_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// The `browser.run` handler: one Chromium per worker process, started with the first
/// browser job, a fresh context per job. A browser that fails is replaced for the next job,
/// and one past its [`Recycle`] limits is retired: new jobs get a fresh browser, and the
/// old one closes when its last job ends.
pub struct BrowserRun {
    config: ChromiumConfig,
    recycle: Recycle,
    secrets: Arc<HashMap<String, String>>,
    chromium: tokio::sync::Mutex<Option<Arc<Chromium>>>,
}

impl BrowserRun {
    /// Uses `chromium` (already started).
    pub fn new(chromium: Arc<Chromium>) -> Self {
        Self {
            config: ChromiumConfig::default(),
            recycle: Recycle::default(),
            secrets: Arc::default(),
            chromium: tokio::sync::Mutex::new(Some(chromium)),
        }
    }

    /// Starts Chromium from `config` when the first browser job arrives.
    pub fn lazy(config: ChromiumConfig) -> Self {
        Self {
            config,
            recycle: Recycle::default(),
            secrets: Arc::default(),
            chromium: tokio::sync::Mutex::new(None),
        }
    }

    /// Secrets for `{{secret.NAME}}`, before this process's `FERRY_SECRET_*` variables.
    pub fn with_secrets(mut self, secrets: HashMap<String, String>) -> Self {
        self.secrets = Arc::new(secrets);
        self
    }

    pub fn with_recycle(mut self, recycle: Recycle) -> Self {
        self.recycle = recycle;
        self
    }

    async fn browser(&self) -> Result<Arc<Chromium>, BrowserError> {
        let mut slot = self.chromium.lock().await;
        if let Some(chromium) = slot.as_ref() {
            return Ok(chromium.clone());
        }
        let chromium = Arc::new(Chromium::launch(&self.config).await?);
        *slot = Some(chromium.clone());
        Ok(chromium)
    }

    /// Drops a browser from the slot (it failed, or is retired), so the next job starts a
    /// new one.
    async fn forget(&self, failed: &Arc<Chromium>) {
        let mut slot = self.chromium.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, failed)) {
            *slot = None;
        }
    }

    /// After a job: retire the browser past its limits; the last job of a retired browser
    /// closes it (and waits for its processes).
    async fn after_job(&self, chromium: Arc<Chromium>) {
        if chromium.jobs_run() >= self.recycle.after_jobs
            || chromium.memory_bytes() > self.recycle.above_bytes
        {
            tracing::info!(
                jobs = chromium.jobs_run(),
                memory_mb = chromium.memory_bytes() / (1024 * 1024),
                "recycling Chromium"
            );
            self.forget(&chromium).await;
        }
        let current = self
            .chromium
            .lock()
            .await
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &chromium));
        if !current && let Ok(retired) = Arc::try_unwrap(chromium) {
            retired.close().await;
        }
    }

    /// The browser serving jobs now, if one is started.
    pub async fn current(&self) -> Option<Arc<Chromium>> {
        self.chromium.lock().await.clone()
    }
}

/// The worker's side of a run: rows stream as partial results; sessions and artifacts go
/// to the server under the job's lease. Artifacts are named per attempt.
struct WorkerHost<'a>(&'a ferry_worker::JobContext, &'a HashMap<String, String>);

fn host_error(e: ferry_worker::HandlerError) -> BrowserError {
    BrowserError::Host {
        code: e.code,
        message: e.message,
        retryable: e.retryable,
    }
}

#[async_trait::async_trait]
impl Host for WorkerHost<'_> {
    async fn rows(&mut self, rows: Vec<Value>) {
        self.0.push_items(rows).await;
    }

    async fn load_session(&mut self, _name: &str) -> Result<Option<Value>, BrowserError> {
        self.0.load_session().await.map_err(host_error)
    }

    async fn save_session(&mut self, name: &str, state: Value) -> Result<(), BrowserError> {
        self.0.save_session(name, state).await.map_err(host_error)
    }

    async fn artifact(&mut self, name: &str, content_type: &str, bytes: Vec<u8>) {
        let name = if name.starts_with("failure") {
            format!("attempt-{}-{name}", self.0.attempt)
        } else {
            name.to_owned()
        };
        if let Err(e) = self.0.upload_artifact(&name, content_type, bytes).await {
            tracing::warn!(job_id = %self.0.id, artifact = %name, error = %e, "artifact upload failed");
        }
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.1.get(name).cloned().or_else(|| env_secret(name))
    }
}

#[async_trait::async_trait]
impl ferry_worker::Handler for BrowserRun {
    async fn run(
        &self,
        ctx: ferry_worker::JobContext,
    ) -> Result<Value, ferry_worker::HandlerError> {
        let recipe = ferry_core::recipe::validate(&ctx.payload, "payload").map_err(|errors| {
            let first = errors
                .first()
                .map(|e| format!("{}: {}", e.field, e.message))
                .unwrap_or_default();
            ferry_worker::HandlerError::fatal("INVALID_RECIPE", first)
        })?;
        let to_handler_error = |e: BrowserError| {
            let error = if e.retryable() {
                ferry_worker::HandlerError::retryable(e.code(), e.to_string())
            } else {
                ferry_worker::HandlerError::fatal(e.code(), e.to_string())
            };
            match e.retry_after() {
                Some(after) => error.with_retry_after(after),
                None => error,
            }
        };
        let chromium = self.browser().await.map_err(to_handler_error)?;
        let mut host = WorkerHost(&ctx, &self.secrets);
        let outcome = chromium.run(&recipe, &mut host).await;
        // A browser that failed, or stopped answering a command for 30 s, is replaced for
        // the next job (jobs still running on it keep it until they end).
        if let Err(BrowserError::Crashed(_) | BrowserError::Timeout { .. }) = &outcome {
            self.forget(&chromium).await;
        }
        self.after_job(chromium).await;
        outcome.map_err(to_handler_error)
    }
}

/// Adds `browser.run` to `registry` when Chromium is installed (it starts with the first
/// browser job); answers whether it did.
pub fn register(registry: &mut ferry_worker::Registry, run: BrowserRun) -> bool {
    if !run.config.executable.exists() {
        tracing::warn!(
            path = %run.config.executable.display(),
            "Chromium not found: this worker takes no browser.run jobs (apt-get install chromium, or set FERRY_CHROMIUM)"
        );
        return false;
    }
    registry
        .register(ferry_core::recipe::BROWSER_RUN, run)
        .is_ok()
}
