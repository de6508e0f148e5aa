//! Running a recipe's steps on a page: every CDP call bounded, each step's waits, the
//! extraction and the failure capture.

use ferry_core::BoundSecret;
use std::{collections::HashMap, time::Duration};

use chromiumoxide::{
    Page,
    cdp::browser_protocol::browser::BrowserContextId,
    cdp::browser_protocol::page::CaptureScreenshotFormat,
    cdp::browser_protocol::target::{GetTargetsParams, TargetId},
    page::ScreenshotParams,
};
use ferry_core::recipe::{PaginateMode, Recipe, Step};
use serde_json::{Value, json};
use tracing::Instrument;

use crate::{
    CDP_TIMEOUT, FAILURE_CAPTURE_BUDGET, POLL,
    chromium::Chromium,
    dom::{self, Doc, Scope},
    error::{BrowserError, crashed},
    find::{save_var, visible_within, wait_visible},
    host::Host,
    lists,
    network::NetworkLog,
    session, settle,
    waits::Ticks,
};

/// Awaits a CDP call with the timeout; maps its error to a crash.
pub(crate) async fn bounded<T, E: std::fmt::Display>(
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
pub(crate) async fn eval(
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
pub(crate) fn js_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// One recipe run: the job's context, its tabs and the one steps act on.
pub(crate) struct Run<'a> {
    pub(crate) chromium: &'a Chromium,
    pub(crate) context: BrowserContextId,
    pub(crate) recipe: &'a Recipe,
    pub(crate) host: &'a mut dyn Host,
    /// The context's tabs in the order they were first seen.
    pub(crate) tabs: Vec<TargetId>,
    pub(crate) pages: HashMap<TargetId, Page>,
    /// The tab steps act on.
    pub(crate) page: Page,
    /// The frame steps act in (entered by `frame`), and whether selectors pierce shadow
    /// roots.
    pub(crate) scope: Scope,
    /// The current tab's requests.
    pub(crate) network: NetworkLog,
    /// Logs of tabs switched away from (kept recording).
    pub(crate) networks: Vec<NetworkLog>,
    /// The proxy every request of the context goes through (the job's egress policy).
    pub(crate) egress: &'a ferry_egress::EgressProxy,
    /// What `save_var` steps read (`{{vars.NAME}}`).
    pub(crate) vars: std::collections::BTreeMap<String, String>,
    /// Every secret a step has used so far: a value read from a page that holds one
    /// (a `{{vars.NAME}}`) still goes only where the secret may.
    pub(crate) secrets_used: std::sync::Mutex<Vec<(String, BoundSecret)>>,
    /// Other tabs (a `follow`'s) navigate through the same egress proxy at once.
    pub(crate) shared_proxy: bool,
}

impl Run<'_> {
    /// `{{input.NAME}}` and `{{secret.NAME}}` (the host's secrets, e.g. this worker's
    /// `FERRY_SECRET_NAME`), with the secrets it used: where the text goes must be a host
    /// each of them is bound to ([`bound_to`]).
    pub(crate) fn render(
        &self,
        step: usize,
        action: &'static str,
        text: &str,
    ) -> Result<(String, Vec<(String, BoundSecret)>), BrowserError> {
        let used = std::cell::RefCell::new(Vec::new());
        let inputs = &self.recipe.inputs;
        let out = ferry_core::template::render_with_vars(text, inputs, &self.vars, &|name| {
            let secret = self.host.secret(name)?;
            let value = secret.value.expose().to_owned();
            used.borrow_mut().push((name.to_owned(), secret));
            Some(value)
        })
        .map_err(|message| BrowserError::BadTemplate {
            step,
            action,
            message,
        })?;
        let mut used = used.into_inner();
        let mut all = self
            .secrets_used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A secret an earlier step used, come back in a value read from a page.
        for (name, secret) in all.iter() {
            let value = secret.value.expose();
            if value.len() >= 4 && out.contains(value) && !used.iter().any(|(n, _)| n == name) {
                used.push((name.clone(), secret.clone()));
            }
        }
        for (name, secret) in &used {
            if !all.iter().any(|(n, _)| n == name) {
                all.push((name.clone(), secret.clone()));
            }
        }
        Ok((out, used))
    }

    /// Refuses a step that would fill secrets into the current page unless its host is
    /// one each of them may go to.
    async fn bound_to_page(
        &self,
        doc: &Doc,
        step: usize,
        action: &'static str,
        used: &[(String, BoundSecret)],
    ) -> Result<(), BrowserError> {
        if used.is_empty() {
            return Ok(());
        }
        // The host of the document the value goes into: a frame's, in a frame.
        let host = doc
            .eval(step, action, "D ? D.location.hostname : ''")
            .await?;
        bound_to(step, action, used, host.as_str().unwrap_or_default())
    }

    pub(crate) async fn steps(&mut self) -> Result<Value, BrowserError> {
        let recipe = self.recipe;
        let step_timeout_ms = recipe.step_timeout_ms();
        let mut rows = 0usize;
        let mut pages_seen = 0u32;
        let mut rows_per_page: Vec<usize> = Vec::new();
        let mut saved = Vec::new();
        let mut screenshots = Vec::new();
        let mut dismissed = Vec::new();
        let mut skipped = Vec::new();
        let mut links = 0usize;
        // How long each step took, in ms (the recipe builder shows them).
        let mut step_ms: Vec<u64> = Vec::with_capacity(recipe.steps.len());
        for (i, step) in recipe.steps.iter().enumerate() {
            let action = step.name();
            // An optional step waits only as long as it says, and is skipped if it finds
            // nothing in that time.
            let optional = recipe.optional.get(&i).copied();
            let timeout_ms = optional.unwrap_or(step_timeout_ms);
            let page = self.page.clone();
            let doc = Doc {
                page: page.clone(),
                scope: self.scope.clone(),
            };
            // Each step is a span: in the job's trace, when traces are exported.
            let span = tracing::info_span!("step", index = i, action);
            let started = std::time::Instant::now();
            let done = async {
            match step {
                Step::Goto { url } => {
                    let (url, used) = self.render(i, action, url)?;
                    if !used.is_empty() {
                        let host = url::Url::parse(&url)
                            .ok()
                            .and_then(|u| u.host_str().map(str::to_owned))
                            .unwrap_or_default();
                        bound_to(i, action, &used, &host)?;
                    }
                    // A new document: the steps after it act on its top.
                    self.scope.frames.clear();
                    self.goto(i, &url).await?;
                }
                Step::Click { selector } => {
                    wait_visible(&doc, i, action, selector, timeout_ms).await?;
                    let Some(mark) = settle::click(&doc, i, action, selector).await? else {
                        return Err(doc.timeout(i, action, selector, timeout_ms));
                    };
                    // A click on a link or a submit button loads a new document: later
                    // steps act on that one, once it has loaded.
                    let limit = recipe.navigation_timeout_ms();
                    settle::after_click(&doc, i, action, mark, None, None, limit).await?;
                }
                Step::Frame { selector } => {
                    self.scope = dom::enter_frame(&doc, i, selector, timeout_ms).await?;
                }
                Step::MainFrame {} => self.scope.frames.clear(),
                Step::SaveVar {
                    name,
                    selector,
                    attr,
                    regex,
                } => {
                    let value = save_var(&doc, i, selector, attr.as_deref(), regex.as_deref(), timeout_ms)
                        .await?;
                    self.vars.insert(name.clone(), value);
                }
                Step::Follow(follow) => {
                    let (followed, n) = crate::follow::follow(self, &doc, i, follow, timeout_ms).await?;
                    rows += n;
                    links += followed;
                }
                Step::Fill { selector, value } => {
                    let (value, used) = self.render(i, action, value)?;
                    wait_visible(&doc, i, action, selector, timeout_ms).await?;
                    self.bound_to_page(&doc, i, action, &used).await?;
                    // As a user's typing ends: the value set, `input` and `change` fired.
                    let js = format!(
                        "(() => {{ const el = Q({}); if (!el) return false; el.focus(); el.value = {}; \
                         el.dispatchEvent(new Event('input', {{bubbles: true, composed: true}})); \
                         el.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
                        js_str(selector),
                        js_str(&value)
                    );
                    if doc.eval(i, action, &js).await? != Value::Bool(true) {
                        return Err(doc.timeout(i, action, selector, timeout_ms));
                    }
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
                        wait_visible(&doc, i, action, selector, limit).await?;
                    } else if let Some(part) = url_contains {
                        self.wait_url(i, part, limit).await?;
                    } else if let Some(idle) = network_idle_ms {
                        self.wait_idle(i, *idle, limit).await?;
                    } else if let Some(ms) = delay_ms {
                        tokio::time::sleep(Duration::from_millis(*ms)).await;
                    }
                }
                Step::Select { selector, value } => {
                    let (value, used) = self.render(i, action, value)?;
                    wait_visible(&doc, i, action, selector, timeout_ms).await?;
                    self.bound_to_page(&doc, i, action, &used).await?;
                    let js = format!(
                        "(() => {{ const el = Q({}); if (!el) return null; el.value = {}; \
                         el.dispatchEvent(new Event('input', {{bubbles: true, composed: true}})); \
                         el.dispatchEvent(new Event('change', {{bubbles: true}})); return el.value; }})()",
                        js_str(selector),
                        js_str(&value)
                    );
                    if doc.eval(i, action, &js).await? != Value::String(value.clone()) {
                        return Err(BrowserError::NoSuchOption {
                            step: i,
                            selector: selector.clone(),
                            value,
                        });
                    }
                }
                Step::Press { selector, key } => {
                    wait_visible(&doc, i, action, selector, timeout_ms).await?;
                    if !doc.press(i, action, selector, key).await? {
                        return Err(doc.timeout(i, action, selector, timeout_ms));
                    }
                }
                Step::Scroll { selector } => {
                    let js = match selector {
                        Some(selector) => {
                            wait_visible(&doc, i, action, selector, timeout_ms).await?;
                            format!(
                                "(() => {{ const el = Q({}); if (el) el.scrollIntoView({{block: 'center'}}); return true; }})()",
                                js_str(selector)
                            )
                        }
                        None => "(() => { if (D) D.defaultView.scrollTo(0, D.documentElement.scrollHeight); return true; })()"
                            .to_owned(),
                    };
                    doc.eval(i, action, &js).await?;
                }
                Step::Extract(what) => {
                    let want = what.min_rows();
                    // The rows read in the look that settles the list, when it can be.
                    let script = crate::extract::script(&what.list, &what.fields);
                    let (_, raw) = settle::list_reading(
                        &doc,
                        i,
                        action,
                        &what.list,
                        want,
                        timeout_ms,
                        Some(&script),
                    )
                    .await?;
                    let mut seen = lists::Seen::default();
                    rows += lists::extract_page(&doc, i, what, want, raw, &mut seen, &mut *self.host)
                        .await?;
                }
                Step::Paginate {
                    next,
                    max_pages,
                    extract: what,
                    mode,
                } => {
                    let limit = recipe.navigation_timeout_ms().max(timeout_ms);
                    let walk = lists::Walk {
                        doc: &doc,
                        step: i,
                        timeout_ms,
                        limit_ms: limit,
                    };
                    let per_page = match mode {
                        PaginateMode::Pages => {
                            walk.paginate(next, *max_pages, what, &mut *self.host).await?
                        }
                        PaginateMode::LoadMore => {
                            walk.load_more(next, *max_pages, what, &mut *self.host).await?
                        }
                    };
                    rows += per_page.iter().sum::<usize>();
                    pages_seen += per_page.len() as u32;
                    rows_per_page.extend(per_page);
                }
                Step::InfiniteScroll {
                    list: _,
                    until_items,
                    idle_ms,
                    max_scrolls,
                    container,
                    extract: Some(what),
                } => {
                    let how = lists::Collecting {
                        container: container.as_deref(),
                        what,
                        until_items: *until_items,
                        idle_ms: *idle_ms,
                        max_scrolls: *max_scrolls,
                        timeout_ms,
                    };
                    rows += lists::collect_scrolling(&doc, i, how, &mut *self.host).await?;
                }
                Step::InfiniteScroll {
                    list,
                    until_items,
                    idle_ms,
                    max_scrolls,
                    container,
                    extract: None,
                } => {
                    let container = container.as_deref();
                    lists::infinite_scroll(&doc, i, list, container, *until_items, *idle_ms, *max_scrolls)
                        .await?;
                }
                Step::Dismiss { selector, within_ms } => {
                    if visible_within(&doc, i, action, selector, *within_ms).await? {
                        // An overlay gone between the look and the click was dismissed
                        // by itself: go on.
                        if let Ok(Some(mark)) = settle::click(&doc, i, action, selector).await {
                            let limit = recipe.navigation_timeout_ms();
                            settle::after_click(&doc, i, action, mark, None, None, limit).await?;
                            // A fading overlay still takes clicks: wait (a while) for it to go.
                            let by = tokio::time::Instant::now() + Duration::from_millis(*within_ms);
                            while tokio::time::Instant::now() < by
                                && visible_within(&doc, i, action, selector, 1).await?
                            {
                                tokio::time::sleep(POLL).await;
                            }
                            dismissed.push(i);
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
            Ok::<(), BrowserError>(())
            }
            .instrument(span)
            .await;
            let took = started.elapsed();
            step_ms.push(u64::try_from(took.as_millis()).unwrap_or(u64::MAX));
            if let Some(metrics) = &self.chromium.metrics {
                metrics.step(action, done.is_ok(), took);
            }
            match done {
                Err(e) if optional.is_some() && e.found_nothing() => {
                    tracing::debug!(step = i, action, error = %e, "an optional step found nothing; skipped");
                    skipped.push(i);
                    // A skipped `save_var` leaves its var empty, not missing.
                    if let Step::SaveVar { name, .. } = step {
                        self.vars.entry(name.clone()).or_default();
                    }
                }
                other => other?,
            }
        }
        let mut summary = json!({"rows": rows, "steps": recipe.steps.len(), "step_ms": step_ms});
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
        if !dismissed.is_empty() {
            summary["dismissed"] = json!(dismissed);
        }
        if !skipped.is_empty() {
            summary["skipped"] = json!(skipped);
        }
        if links > 0 {
            summary["links_followed"] = json!(links);
        }
        Ok(summary)
    }

    pub(crate) async fn goto(&mut self, i: usize, url: &str) -> Result<(), BrowserError> {
        // A page that never answers fails the step after the navigation timeout.
        let limit_ms = self.recipe.navigation_timeout_ms();
        let navigation = |message: String| BrowserError::Navigation {
            step: i,
            url: url.to_owned(),
            message,
        };
        let denied = |denied: ferry_core::egress::EgressDenied| BrowserError::EgressDenied {
            step: i,
            url: url.to_owned(),
            message: denied.to_string(),
        };
        // What can be told before navigating (an address in the URL, a denied name); the
        // proxy decides every request, redirects and what names resolve to included.
        if let Ok(parsed) = url::Url::parse(url) {
            ferry_egress::check_url(self.egress.policy(), &parsed).map_err(denied)?;
        }
        let denials_before = self.egress.denial_count();
        // The proxy's refusal made this navigation fail (or answer its 403).
        // With `follow`'s tabs side by side on the one proxy, only a refusal of this
        // URL's own host counts as this navigation's.
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        let refused = |run: &Self| {
            let denials = run.egress.denials();
            let mut new = denials.into_iter().skip(denials_before);
            if run.shared_proxy {
                new.rfind(|d| host.as_deref() == Some(d.host.as_str()))
            } else {
                new.next_back()
            }
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
            Ok(Err(e)) => {
                return Err(match refused(self) {
                    Some(d) => denied(d),
                    None => navigation(e.to_string()),
                });
            }
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
        if status == 403
            && let Some(d) = refused(self)
        {
            return Err(denied(d));
        }
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

    pub(crate) async fn wait_url(
        &self,
        i: usize,
        part: &str,
        timeout_ms: u64,
    ) -> Result<(), BrowserError> {
        let mut url = Value::Null;
        let mut ticks = Ticks::new(Duration::from_millis(timeout_ms), POLL);
        while ticks.next().await {
            url = eval(&self.page, i, "wait_for", "location.href").await?;
            if url.as_str().is_some_and(|u| u.contains(part)) {
                return Ok(());
            }
        }
        Err(BrowserError::SelectorTimeout {
            step: i,
            action: "wait_for",
            selector: format!("a URL containing {part:?} (at {url})"),
            timeout_ms,
        })
    }

    /// Waits until no request of the current tab was in flight for `idle_ms`.
    pub(crate) async fn wait_idle(
        &self,
        i: usize,
        idle_ms: u64,
        timeout_ms: u64,
    ) -> Result<(), BrowserError> {
        let mut quiet_since = tokio::time::Instant::now();
        let mut seen = self.network.seen();
        let mut ticks = Ticks::new(Duration::from_millis(timeout_ms), Duration::from_millis(50));
        while ticks.next().await {
            let now_seen = self.network.seen();
            if self.network.in_flight() > 0 || now_seen != seen {
                quiet_since = tokio::time::Instant::now();
                seen = now_seen;
            } else if quiet_since.elapsed() >= Duration::from_millis(idle_ms) {
                return Ok(());
            }
        }
        Err(BrowserError::SelectorTimeout {
            step: i,
            action: "wait_for",
            selector: format!("the network to stay idle for {idle_ms} ms"),
            timeout_ms,
        })
    }

    /// Makes the `index`-th tab of this job's context current, waiting for one a click
    /// opened to appear.
    pub(crate) async fn switch_tab(
        &mut self,
        i: usize,
        index: i32,
        timeout_ms: u64,
    ) -> Result<(), BrowserError> {
        let mut ticks = Ticks::new(Duration::from_millis(timeout_ms), POLL);
        let mut switched = None;
        while switched.is_none() && ticks.next().await {
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
            let Some(target) = at.map(|n| self.tabs[n].clone()) else {
                continue;
            };
            let page = match self.pages.get(&target) {
                Some(page) => Some(page.clone()),
                None => tokio::time::timeout(CDP_TIMEOUT, browser.get_page(target.clone()))
                    .await
                    .ok()
                    .and_then(Result::ok),
            };
            switched = page.map(|page| (target, page));
        }
        let Some((target, page)) = switched else {
            return Err(BrowserError::NoSuchTab {
                step: i,
                index,
                open: self.tabs.len(),
                timeout_ms,
            });
        };
        self.pages.insert(target, page.clone());
        let network = NetworkLog::start(&page).await;
        self.networks
            .push(std::mem::replace(&mut self.network, network));
        self.page = page;
        self.scope.frames.clear();
        // A tab opened by a click may still be loading.
        wait_ready(&self.page, i).await;
        Ok(())
    }

    /// What a failed run leaves for a person to look at: a screenshot, the page's HTML and
    /// its network log. Best effort, all within [`FAILURE_CAPTURE_BUDGET`]: the page may
    /// be what failed, and an attempt must end soon after its timeout.
    pub(crate) async fn failure_artifacts(&mut self) {
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
pub(crate) async fn screenshot(
    page: &Page,
    step: usize,
    full_page: bool,
) -> Result<Vec<u8>, BrowserError> {
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
pub(crate) async fn wait_ready(page: &Page, step: usize) {
    let mut ticks = Ticks::new(Duration::from_secs(10), POLL);
    while ticks.next().await {
        if let Ok(Value::String(state)) =
            eval(page, step, "switch_tab", "document.readyState").await
            && state == "complete"
            && let Ok(Value::String(url)) = eval(page, step, "switch_tab", "location.href").await
            && url != "about:blank"
        {
            return;
        }
    }
    tracing::debug!(step, "the tab had not loaded after 10 s; going on");
}

/// Refuses to send `used` secrets to `host` unless each is bound to it.
fn bound_to(
    step: usize,
    action: &'static str,
    used: &[(String, BoundSecret)],
    host: &str,
) -> Result<(), BrowserError> {
    match used.iter().find_map(|(name, s)| s.refusal(name, host)) {
        Some(message) => Err(BrowserError::SecretRefused {
            step,
            action,
            message,
        }),
        None => Ok(()),
    }
}
