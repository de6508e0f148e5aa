//! The steps that walk a list: `paginate` page by page or by a "load more" button, and
//! `infinite_scroll`; and what they share (one page's extraction, whether `next` is there
//! to click).

use std::{collections::HashSet, time::Duration};

use ferry_core::recipe::Extract;
use serde_json::Value;

use crate::{
    POLL,
    dom::Doc,
    error::BrowserError,
    extract::{self, clean_rows},
    host::Host,
    run::js_str,
    settle::{self, Settled},
};

const ACTION: &str = "paginate";

/// A list walked by `paginate` in step `step`: `timeout_ms` for its list to settle,
/// `limit_ms` for what a click on `next` loads.
pub(crate) struct Walk<'p> {
    pub(crate) doc: &'p Doc,
    pub(crate) step: usize,
    pub(crate) timeout_ms: u64,
    pub(crate) limit_ms: u64,
}

impl Walk<'_> {
    /// Clicks `next` and waits for what it loads: another document, or the list changed
    /// from `before` (a script-paged list). With `also`, what the look that saw the change
    /// read when it found the page settled (see [`settle::after_click`]).
    async fn click_next(
        &self,
        next: &str,
        what: &Extract,
        before: &Settled,
        also: Option<&str>,
    ) -> Result<Option<(Settled, Value)>, BrowserError> {
        let (doc, step) = (self.doc, self.step);
        let Some(mark) = settle::click(doc, step, ACTION, next).await? else {
            return Err(doc.timeout(step, ACTION, next, self.limit_ms));
        };
        let clicked = settle::after_click(
            doc,
            step,
            ACTION,
            mark,
            Some((&what.list, &before.sig)),
            also,
            self.limit_ms,
        )
        .await?;
        match clicked {
            settle::Clicked::Changed(read) => Ok(read),
            settle::Clicked::Unchanged => Err(doc.timeout(
                step,
                ACTION,
                &format!(
                    "{} (after clicking {next}, the list did not change)",
                    what.list
                ),
                self.limit_ms,
            )),
        }
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
        let (doc, step, timeout_ms) = (self.doc, self.step, self.timeout_ms);
        let mut per_page = Vec::new();
        let mut seen = Seen::default();
        // Whether `next` is enabled and the page's rows, read in the look that settles
        // the page when it can be (one evaluation a page instead of three).
        let also = format!(
            "{{ next: {}, rows: {} }}",
            enabled_script(next),
            extract::script(&what.list, &what.fields)
        );
        // What the look after the last click read, when it found the page settled.
        let mut carried: Option<(Settled, Value)> = None;
        loop {
            // The list has settled before `next` is looked at, so a page whose link
            // arrives last is not taken for the last page.
            let want = what.min_rows();
            let (mut list, read) = match carried.take() {
                Some((list, read)) if list.count >= u64::from(want.min(1)) => (list, Some(read)),
                _ => {
                    settle::list_reading(
                        doc,
                        step,
                        ACTION,
                        &what.list,
                        want.min(1),
                        timeout_ms,
                        Some(&also),
                    )
                    .await?
                }
            };
            let mut read = read.and_then(|v| serde_json::from_value::<PageRead>(v).ok());
            let enabled = match &read {
                Some(read) => read.next,
                None => next_enabled(doc, step, next).await?,
            };
            let last = per_page.len() + 1 >= max_pages as usize || !enabled;
            // Every page but the last has at least `min_rows`.
            let at_least = if last { want.min(1) } else { want };
            if list.count < u64::from(at_least) {
                list = settle::list(doc, step, ACTION, &what.list, at_least, timeout_ms).await?;
                read = None;
            }
            let rows = read.map(|r| r.rows);
            per_page.push(extract_page(doc, step, what, at_least, rows, &mut seen, host).await?);
            if last {
                return Ok(per_page);
            }
            carried = self.click_next(next, what, &list, Some(&also)).await?;
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
        let (doc, step, timeout_ms) = (self.doc, self.step, self.timeout_ms);
        let want = what.min_rows();
        let mut list = settle::list(doc, step, ACTION, &what.list, want.min(1), timeout_ms).await?;
        let mut added = vec![list.count as usize];
        while added.len() < max_pages as usize && next_enabled(doc, step, next).await? {
            let before = list.count;
            match self.click_next(next, what, &list, None).await {
                Ok(_) => {}
                // The button stays but loads nothing more: the end of the list.
                Err(BrowserError::SelectorTimeout { .. }) => break,
                Err(e) => return Err(e),
            }
            let grown = u32::try_from(before + 1).unwrap_or(u32::MAX);
            list = settle::list(doc, step, ACTION, &what.list, grown, timeout_ms).await?;
            if list.count <= before {
                // The click replaced the list instead of adding to it: extracting once at
                // the end would lose every page but the last.
                return Err(doc.timeout(
                    step,
                    ACTION,
                    &format!(
                        "{} (after clicking {next}, the list did not grow: for a list that is \
                         replaced page by page, use paginate without mode: load_more)",
                        what.list
                    ),
                    timeout_ms,
                ));
            }
            added.push(list.count.saturating_sub(before) as usize);
        }
        let n = extract_page(doc, step, what, want, None, &mut Seen::default(), host).await?;
        if added.iter().sum::<usize>() != n {
            // Rows the extraction dropped (or a list that shrank): say what was extracted.
            added = vec![n];
        }
        Ok(added)
    }
}

/// Scrolls the page (or `container`) to the bottom until the page holds `until_items`
/// elements matching `list`, or none came for `idle_ms`, or after `max_scrolls`.
pub(crate) async fn infinite_scroll(
    doc: &Doc,
    step: usize,
    list: &str,
    container: Option<&str>,
    until_items: Option<u32>,
    idle_ms: u64,
    max_scrolls: u32,
) -> Result<(), BrowserError> {
    const ACTION: &str = "infinite_scroll";
    let count_js = format!("QA({}).length", js_str(list));
    let to_bottom = match container {
        Some(c) => format!(
            "(() => {{ const el = Q({}); \
               if (el) el.scrollTop = el.scrollHeight; return true; }})()",
            js_str(c)
        ),
        None => "D && D.defaultView.scrollTo(0, D.documentElement.scrollHeight)".to_owned(),
    };
    let count = |v: Value| v.as_u64().unwrap_or(0);
    let mut seen = count(doc.eval(step, ACTION, &count_js).await?);
    let mut changed = tokio::time::Instant::now();
    let idle = Duration::from_millis(idle_ms);
    for _ in 0..max_scrolls {
        if until_items.is_some_and(|n| seen >= u64::from(n)) {
            break;
        }
        doc.eval(step, ACTION, &to_bottom).await?;
        tokio::time::sleep(POLL).await;
        let now = count(doc.eval(step, ACTION, &count_js).await?);
        if now > seen {
            seen = now;
            changed = tokio::time::Instant::now();
        } else if changed.elapsed() >= idle {
            break;
        }
    }
    Ok(())
}

/// What `infinite_scroll` with `extract` collects, and until when.
pub(crate) struct Collecting<'a> {
    pub(crate) container: Option<&'a str>,
    pub(crate) what: &'a Extract,
    pub(crate) until_items: Option<u32>,
    pub(crate) idle_ms: u64,
    pub(crate) max_scrolls: u32,
    /// How long the list may take to show first.
    pub(crate) timeout_ms: u64,
}

/// Where a collecting scroll is.
#[derive(Debug, serde::Deserialize)]
struct Scrolled {
    /// It was at the end of the list before this scroll.
    end: bool,
    /// The `container` is not in the page.
    missing: bool,
}

/// `infinite_scroll` with `extract`: extracts after every scroll (a viewport of the page
/// or of `container` at a time) and keeps the rows not seen before, until `until_items`
/// rows, or the end of the list once nothing new came for `idle_ms`, or `max_scrolls`.
/// Fewer than the extraction's `min_rows` in all fail the step. The rows it kept.
pub(crate) async fn collect_scrolling(
    doc: &Doc,
    step: usize,
    how: Collecting<'_>,
    host: &mut dyn Host,
) -> Result<usize, BrowserError> {
    const ACTION: &str = "infinite_scroll";
    let Collecting {
        container,
        what,
        until_items,
        idle_ms,
        max_scrolls,
        timeout_ms,
    } = how;
    // Answers once the page has drawn two frames since the scroll, so its scroll
    // handlers (a virtualized list's re-render) have run before the next extraction: a
    // list read too early would be the old rows, and the next scroll would skip some.
    let scroll_js = format!(
        "(async () => {{ const c = {container}; \
           const el = c ? Q(c) : D && D.scrollingElement; \
           if (!el) return {{end: true, missing: true}}; \
           const w = D.defaultView; \
           const end = el.scrollTop + el.clientHeight >= el.scrollHeight - 2; \
           const by = Math.max(1, Math.floor((c ? el.clientHeight : w.innerHeight) * 0.8)); \
           if (c) el.scrollTop += by; else w.scrollBy(0, by); \
           await Promise.race([ \
             new Promise(r => w.requestAnimationFrame(() => w.requestAnimationFrame(r))), \
             new Promise(r => setTimeout(r, 1000))]); \
           return {{end, missing: false}}; }})()",
        container = container.map_or("null".to_owned(), js_str),
    );
    // The list first shows as any extraction's would (the step's timeout applies).
    settle::list(
        doc,
        step,
        ACTION,
        &what.list,
        what.min_rows().min(1),
        timeout_ms,
    )
    .await?;
    let script = extract::script(&what.list, &what.fields);
    let mut seen = Seen::always();
    let mut rows = 0;
    let mut scrolls = 0;
    let mut fresh_at = tokio::time::Instant::now();
    let idle = Duration::from_millis(idle_ms);
    loop {
        let found = clean_rows(step, doc.eval(step, ACTION, &script).await?, &what.fields)?;
        let kept = seen.fresh(what, found);
        if !kept.is_empty() {
            rows += kept.len();
            fresh_at = tokio::time::Instant::now();
            host.rows(kept).await;
        }
        if until_items.is_some_and(|n| rows >= n as usize) || scrolls == max_scrolls {
            break;
        }
        // Answers once the page has drawn two frames since the scroll, so its scroll
        // handlers (a virtualized list's re-render) have run before the next read.
        let scrolled: Scrolled = serde_json::from_value(doc.eval(step, ACTION, &scroll_js).await?)
            .unwrap_or(Scrolled {
                end: true,
                missing: true,
            });
        scrolls += 1;
        if scrolled.missing {
            return Err(doc.timeout(step, ACTION, container.unwrap_or("the page"), timeout_ms));
        }
        if scrolled.end {
            if fresh_at.elapsed() >= idle {
                break;
            }
            // At the end: give a list that loads more on scroll the time to.
            tokio::time::sleep(POLL).await;
        }
    }
    let want = what.min_rows();
    if rows < want as usize {
        return Err(BrowserError::ExtractEmpty {
            step,
            list: doc.scope.describe(&what.list),
            found: rows,
            min_rows: want,
        });
    }
    Ok(rows)
}

/// Extracts one page's rows (the caller has let it settle; `raw`, when it read them
/// already) and hands them to `host`; answers how many. Fewer than `at_least` fail the
/// step (`EXTRACT_EMPTY`).
pub(crate) async fn extract_page(
    doc: &Doc,
    step: usize,
    what: &ferry_core::recipe::Extract,
    at_least: u32,
    raw: Option<Value>,
    seen: &mut Seen,
    sink: &mut dyn Host,
) -> Result<usize, BrowserError> {
    let raw = match raw {
        Some(raw) => raw,
        None => {
            doc.eval(step, "extract", &extract::script(&what.list, &what.fields))
                .await?
        }
    };
    let found = clean_rows(step, raw, &what.fields)?;
    if (found.len() as u64) < u64::from(at_least) {
        return Err(BrowserError::ExtractEmpty {
            step,
            list: doc.scope.describe(&what.list),
            found: found.len(),
            min_rows: at_least,
        });
    }
    let kept = seen.fresh(what, found);
    let n = kept.len();
    if n > 0 {
        sink.rows(kept).await;
    }
    Ok(n)
}

/// The rows a step has given, by `dedupe_by` (only kept when the extraction names one,
/// or — collecting while scrolling — always, by the whole row).
#[derive(Debug, Default)]
pub(crate) struct Seen {
    keys: HashSet<String>,
    /// Whole rows count as keys without `dedupe_by` (collecting while scrolling).
    whole_rows: bool,
}

impl Seen {
    /// For collecting while scrolling: every row is told apart, by `dedupe_by` or whole.
    pub(crate) fn always() -> Self {
        Self {
            keys: HashSet::new(),
            whole_rows: true,
        }
    }

    /// `rows` without those seen before.
    pub(crate) fn fresh(&mut self, what: &Extract, rows: Vec<Value>) -> Vec<Value> {
        if what.dedupe_by.is_none() && !self.whole_rows {
            return rows;
        }
        rows.into_iter()
            .filter(|row| {
                let key = match what.dedupe_by.as_ref().map(|f| row.get(f)) {
                    // A row without the value tells itself apart by all of it.
                    Some(None | Some(Value::Null)) | None => row.to_string(),
                    Some(Some(value)) => value.to_string(),
                };
                self.keys.insert(key)
            })
            .collect()
    }
}

/// What a settling look at a page of `paginate` read as well.
#[derive(Debug, serde::Deserialize)]
struct PageRead {
    next: bool,
    rows: Value,
}

/// Whether `next` is there, shown and not disabled (`disabled`, `aria-disabled`, a
/// `disabled` class).
pub(crate) async fn next_enabled(doc: &Doc, step: usize, next: &str) -> Result<bool, BrowserError> {
    Ok(doc.eval(step, "paginate", &enabled_script(next)).await? == Value::Bool(true))
}

/// The script [`next_enabled`] evaluates.
fn enabled_script(next: &str) -> String {
    format!(
        "(() => {{ const el = Q({}); if (!el) return false; \
         if (el.getClientRects().length === 0) return false; \
         return !(el.disabled || el.getAttribute('aria-disabled') === 'true' \
         || el.classList.contains('disabled')); }})()",
        js_str(next)
    )
}
