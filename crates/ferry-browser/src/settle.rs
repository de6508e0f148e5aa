//! Waiting for a page to settle before anything is read from it: after a click the
//! document it loaded (not the one before it), after its load event, and a list once it
//! has stopped changing. Under load a new document is committed — its URL already the
//! new one — while its HTML is still arriving and being parsed, so a list read then comes
//! back short or empty; these waits are why every page's rows are whole.
//!
//! A document is told from the next one by a mark this module leaves on its `window`
//! (a new document has none), and a navigation a click started by the Navigation API's
//! `navigate` event, which the old document fires before it is replaced.
//!
//! A tab Ferry opens notes, in every document it loads, when its DOM last changed (a
//! `MutationObserver` installed before the page's own scripts run, [`watch`]). A list is
//! then settled in one look once its document has loaded and nothing in it has changed for
//! [`QUIET`] — the look waits in the page for that much quiet — instead of two looks a
//! poll apart; a loaded top document that never held a script or an inline handler
//! (nothing can change it) at once. Where
//! that cannot be told (a tab the page opened, rows inside shadow roots), two equal looks
//! in a row still decide. After a click, the tab's load event wakes the wait for the next
//! document at once.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use chromiumoxide::{Page, cdp::browser_protocol::page::EventLoadEventFired};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::{
    BrowserError, CDP_TIMEOUT,
    dom::{self, Doc},
    run::{eval, js_str},
    waits::Ticks,
};

/// How often a settling page is looked at.
const POLL: Duration = Duration::from_millis(25);

/// How long a loaded document's DOM must have held still for its list to be read.
const QUIET: Duration = Duration::from_millis(25);

/// Installed in every document of a tab Ferry opens, before the page's scripts: notes
/// when the DOM last changed or the document loaded (`window.__ferryChanged`, the page's
/// clock; quiet counts from the load event at the earliest, so work a page's load code
/// starts has its time), and whether a script element ever entered the document
/// (`__ferryScripted`, for [`Look::fixed`]). Guarded per document: a frame's window
/// outlives its first `about:blank` document.
const WATCH_CHANGES: &str = "(() => { try { const w = window, d = document; \
    if (d.__ferryWatched) return; d.__ferryWatched = true; \
    const note = () => { w.__ferryChanged = w.performance.now(); }; note(); \
    w.__ferryScripted = !!d.querySelector('script'); \
    new MutationObserver(records => { note(); \
      if (!w.__ferryScripted) for (const r of records) for (const n of r.addedNodes) \
        if (n.nodeName === 'SCRIPT' || (n.querySelector && n.querySelector('script'))) \
          w.__ferryScripted = true; \
    }).observe(d, { subtree: true, childList: true, characterData: true, attributes: true }); \
    w.addEventListener('load', note); \
  } catch (e) {} })()";

/// Has every document `page` loads from now on note when its DOM last changed. Best
/// effort: without it, lists settle by two equal looks.
pub(crate) async fn watch(page: &Page) {
    let add =
        chromiumoxide::cdp::browser_protocol::page::AddScriptToEvaluateOnNewDocumentParams::new(
            WATCH_CHANGES,
        );
    if let Ok(Err(e)) = tokio::time::timeout(CDP_TIMEOUT, page.execute(add)).await {
        tracing::debug!(error = %e, "cannot watch the tab's documents for changes");
    }
}

/// The mark left on a document before a click, and the tab's load events from then on
/// (a new top document's load wakes the wait at once instead of at the next poll).
pub(crate) struct Mark {
    id: String,
    loads: Option<chromiumoxide::listeners::EventStream<EventLoadEventFired>>,
}

static MARKS: AtomicU64 = AtomicU64::new(0);

/// Marks the current document (and, in a frame, the top one: a click there may load
/// another top document) and notes any navigation either starts from now on; in the same
/// evaluation, answers `also` (an expression), or `null` when the scope's document is not
/// there.
async fn arm(
    doc: &Doc,
    step: usize,
    action: &'static str,
    also: &str,
) -> Result<(Mark, serde_json::Value), BrowserError> {
    let mark = format!(
        "m{}-{}",
        std::process::id(),
        MARKS.fetch_add(1, Ordering::Relaxed)
    );
    let js = format!(
        "(() => {{ const w = D && D.defaultView; if (!w) return null; \
         for (const v of new Set([w, window])) {{ \
           v.__ferryMark = {mark}; v.__ferryLeaving = false; \
           if (v.navigation && !v.__ferryHooked) {{ v.__ferryHooked = true; \
             v.navigation.addEventListener('navigate', e => {{ \
               if (!e.destination.sameDocument) v.__ferryLeaving = true; }}); }} }} \
         return ({also}); }})()",
        mark = js_str(&mark)
    );
    let loads = doc.page.event_listener::<EventLoadEventFired>().await.ok();
    let also = doc.eval(step, action, &js).await?;
    Ok((Mark { id: mark, loads }, also))
}

/// Clicks the first element matching `selector` as a user would (a plain link on top at
/// its centre in the page, anything else by trusted mouse events there: see
/// `dom::place_script`), the document marked first (see [`after_click`]); marking,
/// placing and a link's click are one evaluation. The mark, or `None` when the element
/// is not there.
pub(crate) async fn click(
    doc: &Doc,
    step: usize,
    action: &'static str,
    selector: &str,
) -> Result<Option<Mark>, BrowserError> {
    let (mark, at) = arm(doc, step, action, &dom::place_script(selector)).await?;
    Ok(doc.click_at(step, action, at).await?.then_some(mark))
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
    /// Milliseconds since the document's DOM last changed; none where it is not watched.
    #[serde(default)]
    quiet: Option<f64>,
    /// Every row is in the document itself (none in a shadow root, whose changes the
    /// document's observer does not see).
    #[serde(default)]
    own: bool,
    /// The document is the top one, watched, and never held a script element or an
    /// inline event handler: once loaded, nothing changes it.
    #[serde(default)]
    fixed: bool,
    /// What the look was asked to read as well, read only when the document settled by
    /// its own account (loaded, and fixed or quiet for [`QUIET`]) and is not the marked
    /// one; none when reading it threw (the caller reads for itself and meets the error).
    #[serde(default)]
    also: Option<serde_json::Value>,
}

/// Looks at the page (the scope's document) once; `None` while it cannot be asked (its
/// document is being replaced). A frame that went away is a document being replaced
/// (a click in it may have loaded another top document): the top's readiness tells.
/// With `quiet`, a loaded, watched document (not the one marked with `mark`) is first
/// given up to [`QUIET`] (a few times over, while it keeps changing) to hold still.
async fn look(
    doc: &Doc,
    mark: Option<&Mark>,
    list: Option<&str>,
    quiet: bool,
    also: Option<&str>,
) -> Option<Look> {
    let js = doc.scope.wrap(&format!(
        "(async () => {{ const w = D && D.defaultView; \
         const since = () => (w && typeof w.__ferryChanged === 'number') \
           ? w.performance.now() - w.__ferryChanged : null; \
         const fixed = !!D && D === document && window.__ferryScripted === false \
           && D.readyState === 'complete' && D.scripts.length === 0 \
           && ![...D.querySelectorAll('*')].some(e => e.getAttributeNames().some(a => a.startsWith('on'))); \
         const mark = {mark}; \
         const marked = () => !!w && w.__ferryMark === mark && window.__ferryMark === mark; \
         for (let i = 0; {quiet} && !fixed && (mark === null || !marked()) && i < 4 && D && D.readyState === 'complete'; i++) {{ \
           const q = since(); if (q === null || q >= {ms}) break; \
           await new Promise(r => setTimeout(r, {ms} - q)); }} \
         const rows = {list} ? QA({list}) : []; \
         const q = since(), own = rows.every(e => e.getRootNode() === D); \
         const settled = own && !!D && D.readyState === 'complete' && (fixed || (q !== null && q >= {ms})); \
         return {{ same: marked(), \
           leaving: (!!w && !!w.__ferryLeaving) || !!window.__ferryLeaving, \
           ready: D ? D.readyState : document.readyState, \
           count: rows.length, sig: rows.map(e => e.textContent).join('\\u0001'), \
           quiet: q, own, fixed, \
           also: settled && (mark === null || !marked()) ? (() => {{ try {{ return ({also}); }} catch (e) {{ return null; }} }})() : null }}; }})()",
        list = list.map_or("null".to_owned(), js_str),
        mark = mark.map_or("null".to_owned(), |m| js_str(&m.id)),
        ms = QUIET.as_millis(),
        also = also.unwrap_or("null"),
    ));
    let result = tokio::time::timeout(CDP_TIMEOUT, doc.page.evaluate(js))
        .await
        .ok()?
        .ok()?;
    serde_json::from_value(result.value()?.clone()).ok()
}

/// What a click changed.
pub(crate) enum Clicked {
    /// Nothing, where a change was expected.
    Unchanged,
    /// The page changed. With `also`, what the look that saw it read when it found the
    /// page settled by its own account: its list, and `also`'s value.
    Changed(Option<(Settled, serde_json::Value)>),
}

/// After a click on a document marked with `mark`: when the click started a navigation
/// to another document, waits until that document has loaded. With `list` (a
/// `paginate`: its selector and its rows' text before the click), a click that loads no
/// document must change the list instead (a script-paged list): waits for that; with
/// `also` as well, the look that sees another document loaded waits for it to settle, as
/// [`list_reading`] does, and reads `also` there (not in the marked document, changed or
/// not: the caller settles that one itself). `Unchanged` only when a change was
/// expected and did not come within `timeout_ms`.
pub(crate) async fn after_click(
    doc: &Doc,
    step: usize,
    action: &'static str,
    mut mark: Mark,
    list: Option<(&str, &str)>,
    also: Option<&str>,
    timeout_ms: u64,
) -> Result<Clicked, BrowserError> {
    let mut navigating = false;
    let mut ticks = Ticks::new(Duration::from_millis(timeout_ms), POLL);
    let mut awake = ticks.next().await;
    while awake {
        let selector = list.map(|(selector, _)| selector);
        if let Some(look) = look(doc, Some(&mark), selector, also.is_some(), also).await {
            let read = |look: Look| {
                look.also.map(|also| {
                    let settled = Settled {
                        sig: look.sig,
                        count: look.count,
                    };
                    (settled, also)
                })
            };
            if !look.same {
                navigating = true;
                if look.ready == "complete" {
                    return Ok(Clicked::Changed(read(look)));
                }
            } else if look.leaving {
                navigating = true;
            } else {
                match list {
                    None => return Ok(Clicked::Changed(None)),
                    Some((_, before)) if look.sig != before => {
                        return Ok(Clicked::Changed(read(look)));
                    }
                    Some(_) => {}
                }
            }
        }
        // The next look: at the next beat, or as soon as a document loads.
        awake = match mark.loads.as_mut() {
            Some(loads) => tokio::select! {
                more = ticks.next() => more,
                Some(_) = loads.next() => true,
            },
            None => ticks.next().await,
        };
    }
    if navigating {
        return Err(BrowserError::Navigation {
            step,
            url: current_url(&doc.page).await,
            message: format!("{action}: the page it opened did not load within {timeout_ms} ms"),
        });
    }
    Ok(Clicked::Unchanged)
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
    Ok(
        list_reading(doc, step, action, list, at_least, timeout_ms, None)
            .await?
            .0,
    )
}

/// [`list`], and `also` (an expression) read in the look that found the list settled
/// when the document settled by its own account (so one evaluation both settles and
/// reads); `None` when the list settled otherwise (by two equal looks, or past the
/// timeout) and the caller reads for itself.
pub(crate) async fn list_reading(
    doc: &Doc,
    step: usize,
    action: &'static str,
    list: &str,
    at_least: u32,
    timeout_ms: u64,
    also: Option<&str>,
) -> Result<(Settled, Option<serde_json::Value>), BrowserError> {
    let timeout = Duration::from_millis(timeout_ms);
    let started = tokio::time::Instant::now();
    let mut previous: Option<(String, u64)> = None;
    // Past the timeout, a little grace for a parsed document's list to hold still.
    let grace = Duration::from_millis(timeout_ms.min(2_000));
    let mut ticks = Ticks::new(timeout + grace, POLL);
    while ticks.next().await {
        let Some(look) = look(doc, None, Some(list), true, also).await else {
            continue;
        };
        // A document without scripts, loaded; one that held still for QUIET by its own
        // account; or the same list on two looks.
        let quiet =
            look.own && (look.fixed || look.quiet.is_some_and(|q| q >= QUIET.as_millis() as f64));
        let stable = quiet
            || previous
                .as_ref()
                .is_some_and(|(sig, count)| *sig == look.sig && *count == look.count);
        let parsed = look.ready != "loading";
        let timed_out = started.elapsed() >= timeout;
        if stable
            && ((look.ready == "complete" && look.count >= u64::from(at_least))
                || (timed_out && parsed))
        {
            return Ok((
                Settled {
                    sig: look.sig,
                    count: look.count,
                },
                look.also,
            ));
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
