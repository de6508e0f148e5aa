//! Looking for what a step names in its scope ([`Doc`]): an element shown in time
//! (`click`, `fill`, `wait_for`, `dismiss` …), and a value read into a var (`save_var`).

use std::time::Duration;

use serde_json::Value;

use crate::{POLL, dom::Doc, error::BrowserError, run::js_str, settle, waits::Ticks};

/// Whether `selector` matches a visible element within `within_ms` (polled).
pub(crate) async fn visible_within(
    doc: &Doc,
    step: usize,
    action: &'static str,
    selector: &str,
    within_ms: u64,
) -> Result<bool, BrowserError> {
    let js = format!(
        "(() => {{ const el = Q({}); if (!el) return false; \
         const r = el.getBoundingClientRect(); \
         const s = el.ownerDocument.defaultView.getComputedStyle(el); \
         return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; }})()",
        js_str(selector)
    );
    let mut ticks = Ticks::new(Duration::from_millis(within_ms), POLL);
    while ticks.next().await {
        if doc.eval(step, action, &js).await? == Value::Bool(true) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Polls until `selector` matches a visible element; `SELECTOR_TIMEOUT` after
/// `timeout_ms`.
pub(crate) async fn wait_visible(
    doc: &Doc,
    step: usize,
    action: &'static str,
    selector: &str,
    timeout_ms: u64,
) -> Result<(), BrowserError> {
    if visible_within(doc, step, action, selector, timeout_ms).await? {
        return Ok(());
    }
    Err(doc.timeout(step, action, selector, timeout_ms))
}

/// `save_var`: the text (or `attr`) of the first element matching `selector`, once the
/// page has settled, whitespace collapsed; with `regex`, what it matched.
pub(crate) async fn save_var(
    doc: &Doc,
    step: usize,
    selector: &str,
    attr: Option<&str>,
    regex: Option<&str>,
    timeout_ms: u64,
) -> Result<String, BrowserError> {
    const ACTION: &str = "save_var";
    settle::list(doc, step, ACTION, selector, 1, timeout_ms).await?;
    let js = format!(
        "(() => {{ const el = Q({}), a = {}; return !el ? null : a ? el.getAttribute(a) : el.textContent; }})()",
        js_str(selector),
        attr.map_or("null".to_owned(), js_str)
    );
    let Some(text) = doc
        .eval(step, ACTION, &js)
        .await?
        .as_str()
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
    else {
        return Err(doc.timeout(step, ACTION, selector, timeout_ms));
    };
    let Some(pattern) = regex else {
        return Ok(text);
    };
    let re = ferry_core::recipe::compile_regex(pattern).map_err(|e| BrowserError::BadTemplate {
        step,
        action: ACTION,
        message: e.to_string(),
    })?;
    match re
        .captures(&text)
        .and_then(|c| c.get(1).or_else(|| c.get(0)))
    {
        Some(m) => Ok(m.as_str().to_owned()),
        None => Err(doc.timeout(
            step,
            ACTION,
            &format!("{selector} (its text {text:?} does not match {pattern:?})"),
            timeout_ms,
        )),
    }
}
