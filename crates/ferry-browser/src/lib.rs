//! The only crate that speaks the DevTools protocol. [`Chromium`] launches Debian's
//! Chromium (never a downloaded one) with a fresh profile, and runs [`Recipe`]s, each in
//! its own browser context so cookies and storage never leak between jobs.
//! [`BrowserRun`] is the `browser.run` handler for the worker runtime.
//!
//! Every CDP call is bounded by a timeout; events the protocol crate cannot decode (it is
//! older than this Chromium) are logged and skipped, never fatal.

mod extract;

use std::{path::PathBuf, sync::Arc, time::Duration};

use chromiumoxide::{
    Browser, BrowserConfig, Page,
    cdp::browser_protocol::target::CreateTargetParams,
    cdp::browser_protocol::{browser::BrowserContextId, target::CreateBrowserContextParams},
};
use ferry_core::recipe::{Recipe, Step};
use futures_util::StreamExt;
use serde_json::{Value, json};

pub use extract::clean_rows;

/// Where Debian installs Chromium.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// The longest any single CDP call may take.
const CDP_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

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
    #[error("step {step} (goto): {url} answered HTTP {status}")]
    HttpStatus {
        step: usize,
        url: String,
        status: u16,
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
    #[error("step {step} ({action}): the browser did not answer within {}s", CDP_TIMEOUT.as_secs())]
    Timeout { step: usize, action: &'static str },
    #[error("the browser failed: {0}")]
    Crashed(String),
}

impl BrowserError {
    pub fn code(&self) -> &'static str {
        match self {
            BrowserError::Launch { .. } | BrowserError::Crashed(_) => "BROWSER_CRASHED",
            BrowserError::SelectorTimeout { .. } | BrowserError::NoSuchOption { .. } => {
                "SELECTOR_TIMEOUT"
            }
            BrowserError::HttpStatus { .. } => "HTTP_STATUS",
            BrowserError::Navigation { .. } => "NAVIGATION_ERROR",
            BrowserError::ExtractMissing { .. } => "EXTRACT_MISSING",
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
            | BrowserError::Navigation { .. } => true,
            BrowserError::SelectorTimeout { .. }
            | BrowserError::NoSuchOption { .. }
            | BrowserError::ExtractMissing { .. } => false,
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
            .launch_timeout(Duration::from_secs(20))
            .request_timeout(CDP_TIMEOUT)
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

    /// Runs `recipe` in a fresh browser context; extracted rows go to `sink` step by step.
    pub async fn run(
        &self,
        recipe: &Recipe,
        sink: &mut (dyn RowSink + Send),
    ) -> Result<Value, BrowserError> {
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
            .browser_context_id(context)
            .build()
            .map_err(crashed)?;
        let page = bounded(0, "open", browser.new_page(params)).await?;
        drop(browser);
        run_steps(&page, recipe, sink).await
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

/// Where extracted rows go as they are found (the worker streams them as partial results).
#[async_trait::async_trait]
pub trait RowSink {
    async fn rows(&mut self, rows: Vec<Value>);
}

/// A sink that keeps everything, for tests and callers that want the rows at the end.
#[derive(Debug, Default)]
pub struct Collect(pub Vec<Value>);

#[async_trait::async_trait]
impl RowSink for Collect {
    async fn rows(&mut self, rows: Vec<Value>) {
        self.0.extend(rows);
    }
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

async fn run_steps(
    page: &Page,
    recipe: &Recipe,
    sink: &mut (dyn RowSink + Send),
) -> Result<Value, BrowserError> {
    let timeout_ms = recipe.step_timeout_ms();
    let mut rows = 0usize;
    let mut pages_seen = 0u32;
    for (i, step) in recipe.steps.iter().enumerate() {
        let action = step.name();
        match step {
            Step::Goto { url } => {
                // A page that never answers fails the step after the navigation timeout.
                let limit_ms = recipe.navigation_timeout_ms();
                match tokio::time::timeout(Duration::from_millis(limit_ms), page.goto(url.as_str()))
                    .await
                {
                    Err(_) => {
                        return Err(BrowserError::Navigation {
                            step: i,
                            url: url.clone(),
                            message: format!("no answer within {limit_ms} ms"),
                        });
                    }
                    Ok(Err(e)) => {
                        return Err(BrowserError::Navigation {
                            step: i,
                            url: url.clone(),
                            message: e.to_string(),
                        });
                    }
                    Ok(Ok(_)) => {}
                }
                // The main document's status, as the page saw it.
                let status = eval(
                    page,
                    i,
                    action,
                    "(() => { const n = performance.getEntriesByType('navigation')[0]; \
                     return n ? n.responseStatus : 0; })()",
                )
                .await?;
                let status = status.as_u64().unwrap_or(0) as u16;
                if status >= 400 {
                    return Err(BrowserError::HttpStatus {
                        step: i,
                        url: url.clone(),
                        status,
                    });
                }
            }
            Step::Click { selector } => {
                wait_visible(page, i, action, selector, timeout_ms).await?;
                let element = bounded(i, action, page.find_element(selector.as_str())).await?;
                bounded(i, action, element.click()).await?;
            }
            Step::Fill { selector, value } => {
                wait_visible(page, i, action, selector, timeout_ms).await?;
                // As a user's typing ends: the value set, `input` and `change` fired.
                let js = format!(
                    "(() => {{ const el = document.querySelector({}); el.focus(); el.value = {}; \
                     el.dispatchEvent(new Event('input', {{bubbles: true}})); \
                     el.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
                    js_str(selector),
                    js_str(value)
                );
                eval(page, i, action, &js).await?;
            }
            Step::WaitFor {
                selector,
                timeout_ms: own,
            } => {
                wait_visible(page, i, action, selector, own.unwrap_or(timeout_ms)).await?;
            }
            Step::Select { selector, value } => {
                wait_visible(page, i, action, selector, timeout_ms).await?;
                let js = format!(
                    "(() => {{ const el = document.querySelector({}); el.value = {}; \
                     el.dispatchEvent(new Event('input', {{bubbles: true}})); \
                     el.dispatchEvent(new Event('change', {{bubbles: true}})); return el.value; }})()",
                    js_str(selector),
                    js_str(value)
                );
                if eval(page, i, action, &js).await? != Value::String(value.clone()) {
                    return Err(BrowserError::NoSuchOption {
                        step: i,
                        selector: selector.clone(),
                        value: value.clone(),
                    });
                }
            }
            Step::Press { selector, key } => {
                wait_visible(page, i, action, selector, timeout_ms).await?;
                let element = bounded(i, action, page.find_element(selector.as_str())).await?;
                bounded(i, action, element.focus()).await?;
                bounded(i, action, element.press_key(key)).await?;
            }
            Step::Extract(what) => rows += extract_page(page, i, what, sink).await?,
            Step::Paginate {
                next,
                max_pages,
                extract: what,
            } => {
                let mut pages = 0;
                loop {
                    pages += 1;
                    rows += extract_page(page, i, what, sink).await?;
                    if pages >= *max_pages || !next_enabled(page, i, next).await? {
                        break;
                    }
                    let before = signature(page, &what.list).await;
                    let element = bounded(i, action, page.find_element(next.as_str())).await?;
                    bounded(i, action, element.click()).await?;
                    wait_changed(page, i, next, &what.list, before, timeout_ms).await?;
                }
                pages_seen += pages;
            }
            Step::InfiniteScroll {
                list,
                until_items,
                idle_ms,
                max_scrolls,
            } => {
                let count_js = format!("document.querySelectorAll({}).length", js_str(list));
                let count = |v: Value| v.as_u64().unwrap_or(0);
                let mut seen = count(eval(page, i, action, &count_js).await?);
                let mut changed = tokio::time::Instant::now();
                let idle = Duration::from_millis(*idle_ms);
                for _ in 0..*max_scrolls {
                    if until_items.is_some_and(|n| seen >= u64::from(n)) {
                        break;
                    }
                    eval(
                        page,
                        i,
                        action,
                        "window.scrollTo(0, document.documentElement.scrollHeight); true",
                    )
                    .await?;
                    tokio::time::sleep(POLL).await;
                    let now = count(eval(page, i, action, &count_js).await?);
                    if now > seen {
                        seen = now;
                        changed = tokio::time::Instant::now();
                    } else if changed.elapsed() >= idle {
                        break;
                    }
                }
            }
        }
    }
    let mut summary = json!({"rows": rows, "steps": recipe.steps.len()});
    if pages_seen > 0 {
        summary["pages"] = json!(pages_seen);
    }
    Ok(summary)
}

/// Extracts one page's rows and hands them to `sink`; answers how many.
async fn extract_page(
    page: &Page,
    step: usize,
    what: &ferry_core::recipe::Extract,
    sink: &mut (dyn RowSink + Send),
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

/// What the page's list looks like now (its URL and rows' text), to see a page change.
async fn signature(page: &Page, list: &str) -> Option<Value> {
    let js = format!(
        "location.href + '\\u0001' + Array.from(document.querySelectorAll({})).map(e => e.textContent).join('\\u0001')",
        js_str(list)
    );
    let result = tokio::time::timeout(CDP_TIMEOUT, page.evaluate(js))
        .await
        .ok()?
        .ok()?;
    result.value().cloned()
}

/// Waits until the list differs from `before` (a navigation or a script re-render).
async fn wait_changed(
    page: &Page,
    step: usize,
    next: &str,
    list: &str,
    before: Option<Value>,
    timeout_ms: u64,
) -> Result<(), BrowserError> {
    let until = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        tokio::time::sleep(POLL).await;
        // Errors while the next page loads are expected: look again.
        if let Some(now) = signature(page, list).await
            && Some(&now) != before.as_ref()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= until {
            return Err(BrowserError::SelectorTimeout {
                step,
                action: "paginate",
                selector: format!("{list} (after clicking {next}, the list did not change)"),
                timeout_ms,
            });
        }
    }
}

/// The `browser.run` handler: one Chromium per worker process, started with the first
/// browser job, a fresh context per job. A browser that fails is replaced for the next job.
pub struct BrowserRun {
    config: ChromiumConfig,
    chromium: tokio::sync::Mutex<Option<Arc<Chromium>>>,
}

impl BrowserRun {
    /// Uses `chromium` (already started).
    pub fn new(chromium: Arc<Chromium>) -> Self {
        Self {
            config: ChromiumConfig::default(),
            chromium: tokio::sync::Mutex::new(Some(chromium)),
        }
    }

    /// Starts Chromium from `config` when the first browser job arrives.
    pub fn lazy(config: ChromiumConfig) -> Self {
        Self {
            config,
            chromium: tokio::sync::Mutex::new(None),
        }
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

    /// Drops a browser that failed, so the next job starts a new one.
    async fn forget(&self, failed: &Arc<Chromium>) {
        let mut slot = self.chromium.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, failed)) {
            *slot = None;
        }
    }
}

struct ItemSink<'a>(&'a ferry_worker::JobContext);

#[async_trait::async_trait]
impl RowSink for ItemSink<'_> {
    async fn rows(&mut self, rows: Vec<Value>) {
        self.0.push_items(rows).await;
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
            if e.retryable() {
                ferry_worker::HandlerError::retryable(e.code(), e.to_string())
            } else {
                ferry_worker::HandlerError::fatal(e.code(), e.to_string())
            }
        };
        let chromium = self.browser().await.map_err(to_handler_error)?;
        let mut sink = ItemSink(&ctx);
        let outcome = chromium.run(&recipe, &mut sink).await;
        if let Err(BrowserError::Crashed(_)) = &outcome {
            self.forget(&chromium).await;
        }
        outcome.map_err(to_handler_error)
    }
}

/// Adds `browser.run` to `registry` when Chromium is installed (it starts with the first
/// browser job); answers whether it did.
pub fn register(registry: &mut ferry_worker::Registry, config: ChromiumConfig) -> bool {
    if !config.executable.exists() {
        tracing::warn!(
            path = %config.executable.display(),
            "Chromium not found: this worker takes no browser.run jobs (apt-get install chromium, or set FERRY_CHROMIUM)"
        );
        return false;
    }
    registry
        .register(ferry_core::recipe::BROWSER_RUN, BrowserRun::lazy(config))
        .is_ok()
}
