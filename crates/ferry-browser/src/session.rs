//! A login kept between jobs: a context's cookies and each open page's localStorage and
//! sessionStorage, as JSON (`{"cookies": [...], "origins": [{origin, local, session}]}`),
//! captured by `save_session` and loaded into a fresh context by `use_session`.

use chromiumoxide::{
    Browser, Page,
    cdp::browser_protocol::{
        browser::BrowserContextId,
        network::CookieParam,
        page::AddScriptToEvaluateOnNewDocumentParams,
        storage::{GetCookiesParams, SetCookiesParams},
    },
};
use serde_json::{Value, json};

use crate::{BrowserError, run::bounded, run::eval};

/// Set in a tab's sessionStorage once its storage was restored (and never saved).
const RESTORED_FLAG: &str = "__ferry_restored";

/// The context's cookies and the storage of `pages`' origins.
pub(crate) async fn capture(
    browser: &Browser,
    context: &BrowserContextId,
    pages: &[Page],
    step: usize,
) -> Result<Value, BrowserError> {
    let params = GetCookiesParams {
        browser_context_id: Some(context.clone()),
    };
    let cookies = bounded(step, "save_session", browser.execute(params))
        .await?
        .result
        .cookies;
    let cookies: Vec<Value> = cookies
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .map(|c| {
            let mut keep = json!({
                "name": c["name"], "value": c["value"], "domain": c["domain"], "path": c["path"],
                "secure": c["secure"], "httpOnly": c["httpOnly"],
            });
            if let Some(same_site) = c.get("sameSite") {
                keep["sameSite"] = same_site.clone();
            }
            if c["session"] != Value::Bool(true) && c["expires"].as_f64().is_some_and(|e| e > 0.0) {
                keep["expires"] = c["expires"].clone();
            }
            keep
        })
        .collect();
    let script = format!(
        "(() => {{ if (!/^https?:/.test(location.protocol)) return null; \
         const dump = s => {{ const o = {{}}; for (let i = 0; i < s.length; i++) {{ const k = s.key(i); \
         if (k !== '{RESTORED_FLAG}') o[k] = s.getItem(k); }} return o; }}; \
         return {{origin: location.origin, local: dump(localStorage), session: dump(sessionStorage)}}; }})()"
    );
    let mut origins: Vec<Value> = Vec::new();
    for page in pages {
        let found = eval(page, step, "save_session", &script).await?;
        if found.is_object() && !origins.iter().any(|o| o["origin"] == found["origin"]) {
            origins.push(found);
        }
    }
    Ok(json!({"cookies": cookies, "origins": origins}))
}

/// Loads a captured session into a fresh context before its first page loads anything.
pub(crate) async fn restore(
    browser: &Browser,
    context: &BrowserContextId,
    page: &Page,
    state: &Value,
) -> Result<(), BrowserError> {
    let cookies: Vec<CookieParam> = state["cookies"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|c| serde_json::from_value(c.clone()).ok())
                .collect()
        })
        .unwrap_or_default();
    if !cookies.is_empty() {
        let params = SetCookiesParams {
            cookies,
            browser_context_id: Some(context.clone()),
        };
        bounded(0, "use_session", browser.execute(params)).await?;
    }
    let origins = state["origins"].clone();
    if origins.as_array().is_some_and(|o| !o.is_empty()) {
        let script = format!(
            "(() => {{ const all = {origins}; const o = all.find(x => x.origin === location.origin); \
             if (!o) return; try {{ if (sessionStorage.getItem('{RESTORED_FLAG}')) return; \
             for (const [k, v] of Object.entries(o.local || {{}})) localStorage.setItem(k, v); \
             for (const [k, v] of Object.entries(o.session || {{}})) sessionStorage.setItem(k, v); \
             sessionStorage.setItem('{RESTORED_FLAG}', '1'); }} catch (e) {{}} }})()"
        );
        bounded(
            0,
            "use_session",
            page.evaluate_on_new_document(AddScriptToEvaluateOnNewDocumentParams::new(script)),
        )
        .await?;
    }
    Ok(())
}
