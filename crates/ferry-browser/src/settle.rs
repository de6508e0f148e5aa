//! Waiting for a page to settle before anything is read from it: after a click the
//! document it loaded (not the one before it), after its load event, and a list once it
//! has stopped changing. Under load a new document is committed — its URL already the
//! new one — while its HTML is still arriving and being parsed, so a list read then comes
//! back short or empty; these waits are why every page's rows are whole.
//!
//! A document is told from the next one by a mark this module leaves on its `window`
//! (a new document has none), and a navigation a click started by the Navigation API's
//! `navigate` event, which the old document fires before it is replaced.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use chromiumoxide::Page;
use serde::Deserialize;

use crate::{BrowserError, CDP_TIMEOUT, dom::Doc, run::eval, run::js_str, waits::Ticks};

/// How often a settling page is looked at.
const POLL: Duration = Duration::from_millis(25);

/// The mark left on a document before a click.
#[derive(Debug, Clone)]
pub(crate) struct Mark(String);

static MARKS: AtomicU64 = AtomicU64::new(0);

/// Marks the current document (and, in a frame, the top one: a click there may load
/// another top document) and notes any navigation either starts from now on.
pub(crate) async fn arm(
    doc: &Doc,
    step: usize,
    action: &'static str,
) -> Result<Mark, BrowserError> {
    let mark = format!(
        "m{}-{}",
        std::process::id(),
        MARKS.fetch_add(1, Ordering::Relaxed)
    );
    let js = format!(
        "(() => {{ const w = D && D.defaultView; if (!w) return false; \
         for (const v of new Set([w, window])) {{ \
           v.__ferryMark = {mark}; v.__ferryLeaving = false; \
           if (v.navigation && !v.__ferryHooked) {{ v.__ferryHooked = true; \
             v.navigation.addEventListener('navigate', e => {{ \
               if (!e.destination.sameDocument) v.__ferryLeaving = true; }}); }} }} \
         return true; }})()",
        mark = js_str(&mark)
    );
    doc.eval(step, action, &js).await?;
    Ok(Mark(mark))
}

/// What a look at the page found.
#[derive(Debug, Deserialize)]
struct Look {
    /// Still the marked document.
    same: bool,
    /// The marked document started a navigation to another document.
    leaving: bool,
    ready: String,
    count: u64,
    /// The list's rows' text (empty without a list).
    sig: String,
}

/// Looks at the page (the scope's document) once; `None` while it cannot be asked (its
/// document is being replaced). A frame that went away is a document being replaced
/// (a click in it may have loaded another top document): the top's readiness tells.
async fn look(doc: &Doc, mark: Option<&Mark>, list: Option<&str>) -> Option<Look> {
    let js = doc.scope.wrap(&format!(
        "(() => {{ const rows = {list} ? QA({list}) : []; const w = D && D.defaultView; \
         const mark = {mark}; \
         return {{ same: !!w && w.__ferryMark === mark && window.__ferryMark === mark, \
           leaving: (!!w && !!w.__ferryLeaving) || !!window.__ferryLeaving, \
           ready: D ? D.readyState : document.readyState, \
           count: rows.length, sig: rows.map(e => e.textContent).join('\\u0001') }}; }})()",
        list = list.map_or("null".to_owned(), js_str),
        mark = mark.map_or("null".to_owned(), |m| js_str(&m.0)),
    ));
    let result = tokio::time::timeout(CDP_TIMEOUT, doc.page.evaluate(js))
        .await
        .ok()?
        .ok()?;
    serde_json::from_value(result.value()?.clone()).ok()
}

/// After a click on a document marked with `mark`: when the click started a navigation
/// to another document, waits until that document has loaded. With `list` (a
/// `paginate`: its selector and its rows' text before the click), a click that loads no
/// document must change the list instead (a script-paged list): waits for that. Answers
/// whether the page changed; `false` only when a change was expected and did not come
/// within `timeout_ms`.
pub(crate) async fn after_click(
    doc: &Doc,
    step: usize,
    action: &'static str,
    mark: &Mark,
    list: Option<(&str, &str)>,
    timeout_ms: u64,
) -> Result<bool, BrowserError> {
    let mut navigating = false;
    let mut ticks = Ticks::new(Duration::from_millis(timeout_ms), POLL);
    while ticks.next().await {
        let Some(look) = look(doc, Some(mark), list.map(|(selector, _)| selector)).await else {
            continue;
        };
        if !look.same {
            navigating = true;
            if look.ready == "complete" {
                return Ok(true);
            }
        } else if look.leaving {
            navigating = true;
        } else {
            match list {
                None => return Ok(true),
                Some((_, before)) if look.sig != before => return Ok(true),
                Some(_) => {}
            }
        }
    }
    if navigating {
        return Err(BrowserError::Navigation {
            step,
            url: current_url(&doc.page).await,
            message: format!("{action}: the page it opened did not load within {timeout_ms} ms"),
        });
    }
    Ok(false)
}

async fn current_url(page: &Page) -> String {
    eval(page, 0, "goto", "location.href")
        .await
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A settled list: its rows' text and how many.
#[derive(Debug, Clone)]
pub(crate) struct Settled {
    pub(crate) sig: String,
    pub(crate) count: u64,
}

/// Waits until the document has loaded and the elements matching `list` are at least
/// `at_least` and the same on two looks in a row. Past `timeout_ms`, a parsed document
/// (`interactive`, a subresource still loading) with a stable list is taken as it is —
/// the caller counts its rows — and one still being parsed fails the step.
pub(crate) async fn list(
    doc: &Doc,
    step: usize,
    action: &'static str,
    list: &str,
    at_least: u32,
    timeout_ms: u64,
) -> Result<Settled, BrowserError> {
    let timeout = Duration::from_millis(timeout_ms);
    let started = tokio::time::Instant::now();
    let mut previous: Option<(String, u64)> = None;
    // Past the timeout, a little grace for a parsed document's list to hold still.
    let grace = Duration::from_millis(timeout_ms.min(2_000));
    let mut ticks = Ticks::new(timeout + grace, POLL);
    while ticks.next().await {
        let Some(look) = look(doc, None, Some(list)).await else {
            continue;
        };
        let stable = previous
            .as_ref()
            .is_some_and(|(sig, count)| *sig == look.sig && *count == look.count);
        let parsed = look.ready != "loading";
        let timed_out = started.elapsed() >= timeout;
        if stable
            && ((look.ready == "complete" && look.count >= u64::from(at_least))
                || (timed_out && parsed))
        {
            return Ok(Settled {
                sig: look.sig,
                count: look.count,
            });
        }
        previous = Some((look.sig, look.count));
    }
    Err(doc.timeout(
        step,
        action,
        &format!("{list} (the page did not finish loading)"),
        timeout_ms,
    ))
}
