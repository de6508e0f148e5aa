//! The steps that walk a list: `paginate` page by page or by a "load more" button, and
//! `infinite_scroll`; and what they share (one page's extraction, whether `next` is there
//! to click).

use std::time::Duration;

use chromiumoxide::Page;
use ferry_core::recipe::Extract;
use serde_json::Value;

use crate::{
    POLL,
    error::BrowserError,
    extract::{self, clean_rows},
    host::Host,
    run::{bounded, eval, js_str},
    settle::{self, Settled},
};

const ACTION: &str = "paginate";

/// A list walked by `paginate` in step `step`: `timeout_ms` for its list to settle,
/// `limit_ms` for what a click on `next` loads.
pub(crate) struct Walk<'p> {
    pub(crate) page: &'p Page,
    pub(crate) step: usize,
    pub(crate) timeout_ms: u64,
    pub(crate) limit_ms: u64,
}

impl Walk<'_> {
    /// Clicks `next` and waits for what it loads: another document, or the list changed
    /// from `before` (a script-paged list).
    async fn click_next(
        &self,
        next: &str,
        what: &Extract,
        before: &Settled,
    ) -> Result<(), BrowserError> {
        let (page, step) = (self.page, self.step);
        let mark = settle::arm(page, step, ACTION).await?;
        let element = bounded(step, ACTION, page.find_element(next)).await?;
        bounded(step, ACTION, element.click()).await?;
        let changed = settle::after_click(
            page,
            step,
            ACTION,
            &mark,
            Some((&what.list, &before.sig)),
            self.limit_ms,
        )
        .await?;
        if changed {
            return Ok(());
        }
        Err(BrowserError::SelectorTimeout {
            step,
            action: ACTION,
            selector: format!(
                "{} (after clicking {next}, the list did not change)",
                what.list
            ),
            timeout_ms: self.limit_ms,
        })
    }

    /// Page by page: extracts, clicks `next`, again, until `next` is missing or disabled
    /// or after `max_pages`; the rows of each page.
    pub(crate) async fn paginate(
        &self,
        next: &str,
        max_pages: u32,
        what: &Extract,
        host: &mut dyn Host,
    ) -> Result<Vec<usize>, BrowserError> {
        let (page, step, timeout_ms) = (self.page, self.step, self.timeout_ms);
        let mut per_page = Vec::new();
        loop {
            // The list has settled before `next` is looked at, so a page whose link
            // arrives last is not taken for the last page.
            let want = what.min_rows();
            let mut list = settle::list(page, step, &what.list, want.min(1), timeout_ms).await?;
            let last =
                per_page.len() + 1 >= max_pages as usize || !next_enabled(page, step, next).await?;
            // Every page but the last has at least `min_rows`.
            let at_least = if last { want.min(1) } else { want };
            if list.count < u64::from(at_least) {
                list = settle::list(page, step, &what.list, at_least, timeout_ms).await?;
            }
            per_page.push(extract_page(page, step, what, at_least, host).await?);
            if last {
                return Ok(per_page);
            }
            self.click_next(next, what, &list).await?;
        }
    }

    /// By a button that appends to the list: clicks `next` while it is there and enabled
    /// (at most `max_pages - 1` times), each time until the list has grown and settled,
    /// then extracts once, so every row comes once. The rows each load added.
    pub(crate) async fn load_more(
        &self,
        next: &str,
        max_pages: u32,
        what: &Extract,
        host: &mut dyn Host,
    ) -> Result<Vec<usize>, BrowserError> {
        let (page, step, timeout_ms) = (self.page, self.step, self.timeout_ms);
        let want = what.min_rows();
        let mut list = settle::list(page, step, &what.list, want.min(1), timeout_ms).await?;
        let mut added = vec![list.count as usize];
        while added.len() < max_pages as usize && next_enabled(page, step, next).await? {
            let before = list.count;
            self.click_next(next, what, &list).await?;
            let grown = u32::try_from(before + 1).unwrap_or(u32::MAX);
            list = settle::list(page, step, &what.list, grown, timeout_ms).await?;
            added.push(list.count.saturating_sub(before) as usize);
        }
        let n = extract_page(page, step, what, want, host).await?;
        if added.iter().sum::<usize>() != n {
            // Rows the extraction dropped (or a list that shrank): say what was extracted.
            added = vec![n];
        }
        Ok(added)
    }
}

/// Scrolls to the bottom until the page holds `until_items` elements matching `list`, or
/// none came for `idle_ms`, or after `max_scrolls`.
pub(crate) async fn infinite_scroll(
    page: &Page,
    step: usize,
    list: &str,
    until_items: Option<u32>,
    idle_ms: u64,
    max_scrolls: u32,
) -> Result<(), BrowserError> {
    const ACTION: &str = "infinite_scroll";
    let count_js = format!("document.querySelectorAll({}).length", js_str(list));
    let count = |v: Value| v.as_u64().unwrap_or(0);
    let mut seen = count(eval(page, step, ACTION, &count_js).await?);
    let mut changed = tokio::time::Instant::now();
    let idle = Duration::from_millis(idle_ms);
    for _ in 0..max_scrolls {
        if until_items.is_some_and(|n| seen >= u64::from(n)) {
            break;
        }
        eval(
            page,
            step,
            ACTION,
            "window.scrollTo(0, document.documentElement.scrollHeight); true",
        )
        .await?;
        tokio::time::sleep(POLL).await;
        let now = count(eval(page, step, ACTION, &count_js).await?);
        if now > seen {
            seen = now;
            changed = tokio::time::Instant::now();
        } else if changed.elapsed() >= idle {
            break;
        }
    }
    Ok(())
}

/// Extracts one page's rows (the caller has let it settle) and hands them to `host`;
/// answers how many. Fewer than `at_least` fail the step (`EXTRACT_EMPTY`).
pub(crate) async fn extract_page(
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
pub(crate) async fn next_enabled(
    page: &Page,
    step: usize,
    next: &str,
) -> Result<bool, BrowserError> {
    let js = format!(
        "(() => {{ const el = document.querySelector({}); if (!el) return false; \
         return !(el.disabled || el.getAttribute('aria-disabled') === 'true' \
         || el.classList.contains('disabled')); }})()",
        js_str(next)
    );
    Ok(eval(page, step, "paginate", &js).await? == Value::Bool(true))
}
