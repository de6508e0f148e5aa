//! The thinnest driver Chromium allows, for `ferry bench browser`'s baseline: a context
//! and a tab over the same connection the recipes use, then per page one `Page.navigate`
//! waited to its load event and one `Runtime.evaluate` that reads the rows and the next
//! link. No checks, no settling, no network log, no egress proxy: what a recipe's
//! `paginate` costs beyond it is Ferry's.

use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use serde::Deserialize;

use crate::{BrowserError, Chromium, chromium::ContextGuard, error::crashed, run::bounded};

/// What a walk saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Walked {
    pub pages: usize,
    pub rows: usize,
}

#[derive(Deserialize)]
struct Page {
    rows: Vec<serde_json::Value>,
    next: Option<String>,
}

/// Opens `start` in a fresh context and follows `next` (a selector of a link) for at most
/// `max_pages` pages, reading every `list` element's `data-id`, `.name` and `.price`.
pub async fn walk(
    chromium: &Chromium,
    start: &str,
    list: &str,
    next: &str,
    max_pages: usize,
) -> Result<Walked, BrowserError> {
    let context = {
        let browser = chromium.browser.read().await;
        bounded(
            0,
            "open",
            browser.create_browser_context(CreateBrowserContextParams::default()),
        )
        .await?
    };
    let _context = ContextGuard::new(chromium.browser.clone(), context.clone());
    let params = CreateTargetParams::builder()
        .url("about:blank")
        .browser_context_id(context)
        .build()
        .map_err(crashed)?;
    let tab = {
        let browser = chromium.browser.read().await;
        bounded(0, "open", browser.new_page(params)).await?
    };
    let read = format!(
        "(() => {{ const rows = [...document.querySelectorAll({list})].map(e => ({{ \
           id: e.dataset.id, name: e.querySelector('.name')?.textContent, \
           price: e.querySelector('.price')?.textContent }})); \
           const next = document.querySelector({next}); \
           return {{ rows, next: next ? next.href : null }}; }})()",
        list = serde_json::Value::from(list),
        next = serde_json::Value::from(next),
    );
    let mut walked = Walked::default();
    let mut url = Some(start.to_owned());
    while let Some(at) = url.take() {
        bounded(walked.pages, "goto", tab.goto(at)).await?;
        let page: Page = bounded(walked.pages, "evaluate", tab.evaluate(read.as_str()))
            .await?
            .into_value()
            .map_err(crashed)?;
        walked.pages += 1;
        walked.rows += page.rows.len();
        if walked.pages < max_pages {
            url = page.next;
        }
    }
    Ok(walked)
}
