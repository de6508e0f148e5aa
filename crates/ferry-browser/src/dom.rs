//! Where a recipe's selectors look: the document of the current frame (a same-origin
//! `<iframe>` entered by a `frame` step, nestable) and, unless the recipe sets
//! `pierce_shadow: false`, inside open shadow roots, as Playwright's locators do.
//!
//! Every script that reads or acts on the page is written against three names the
//! prelude ([`Scope::wrap`]) defines: `D`, the scope's document (`null` while a frame on
//! its path is missing or out of reach), `Q(selector, root?)`, the first match (in the
//! document itself first, then in shadow roots), and
//! `QA(selector, root?)`, every match in tree order (`root` defaults to `D`; a row's
//! element as `root` searches its own shadow tree too). A selector whose descendant
//! combinators cross into a shadow root (`shop-grid product-card .price`) matches across
//! it; `>`, `+` and `~` keep to one tree. A page without shadow roots takes the browser's
//! own `querySelectorAll`, so a plain page pays one pass over its elements per look.

use chromiumoxide::{
    Page,
    cdp::browser_protocol::input::{
        DispatchKeyEventParams, DispatchKeyEventType, DispatchMouseEventParams,
        DispatchMouseEventType, MouseButton,
    },
};
use serde::Deserialize;
use serde_json::Value;

use crate::{
    BrowserError,
    run::{bounded, eval, js_str},
};

/// The frames a recipe has entered (outermost first) and whether its selectors pierce
/// shadow roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub(crate) frames: Vec<String>,
    pub(crate) pierce: bool,
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            frames: Vec::new(),
            pierce: true,
        }
    }
}

/// The prelude: `PIERCE` and `FRAMES` are filled in per scope.
const PRELUDE: &str = r#"const PIERCE = %PIERCE%, FRAMES = %FRAMES%;
const parts = (s, sep) => {
  const out = []; let depth = 0, quote = null, cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) { cur += c; if (c === '\\') cur += s[++i] ?? ''; else if (c === quote) quote = null; continue; }
    if (c === '"' || c === "'") { quote = c; cur += c; continue; }
    if (c === '\\') { cur += c + (s[++i] ?? ''); continue; }
    if (c === '(' || c === '[') depth++;
    if (c === ')' || c === ']') depth--;
    if (depth === 0 && (sep === ',' ? c === ',' : /\s/.test(c))) { out.push(cur); cur = ''; continue; }
    cur += c;
  }
  out.push(cur);
  if (sep === ',') return out.map(p => p.trim()).filter(Boolean);
  const groups = [];
  for (const t of out.filter(Boolean)) {
    if (groups.length && (/^[>+~]/.test(t) || /[>+~]$/.test(groups[groups.length - 1]))) groups[groups.length - 1] += ' ' + t;
    else groups.push(t);
  }
  return groups;
};
const chains = new Map();
const alts = s => { let a = chains.get(s); if (!a) { a = parts(s, ',').map(p => parts(p, ' ')); chains.set(s, a); } return a; };
const up = e => e.parentElement || (e.parentNode && e.parentNode.host) || null;
const chain = (e, g) => {
  if (!e.matches(g[g.length - 1])) return false;
  let i = g.length - 2, cur = e;
  while (i >= 0) { cur = up(cur); if (!cur) return false; if (cur.matches(g[i])) i--; }
  return true;
};
const deep = (e, s) => alts(s).some(g => chain(e, g));
const walk = (root, f) => {
  const kids = n => {
    for (let c = n.firstElementChild; c; c = c.nextElementSibling) {
      if (f(c) || inside(c)) return true;
    }
    return false;
  };
  const inside = n => (n.shadowRoot ? kids(n.shadowRoot) : false) || kids(n);
  return inside(root);
};
const hosts = new Map();
const shadowed = root => {
  let has = hosts.get(root);
  if (has === undefined) {
    has = !!root.shadowRoot;
    if (!has) for (const e of root.querySelectorAll('*')) if (e.shadowRoot) { has = true; break; }
    hosts.set(root, has);
  }
  return has;
};
const QA = (s, root) => {
  root = root || D; if (!root) return [];
  if (!PIERCE || !shadowed(root)) return Array.from(root.querySelectorAll(s));
  const out = []; walk(root, e => { if (deep(e, s)) out.push(e); return false; }); return out;
};
const Q = (s, root) => {
  root = root || D; if (!root) return null;
  const light = root.querySelector(s);
  if (light || !PIERCE || !shadowed(root)) return light;
  let found = null; walk(root, e => deep(e, s) && (found = e, true)); return found;
};
let D = document, FRAME = null, MISSING = null;
for (let i = 0; i < FRAMES.length; i++) {
  const el = Q(FRAMES[i], D);
  if (!el) { MISSING = {at: i, found: false}; D = null; break; }
  if (!el.contentDocument) { MISSING = {at: i, found: true}; D = null; break; }
  FRAME = el; D = el.contentDocument;
}
"#;

impl Scope {
    /// `body` (an expression) evaluated after the prelude, in the page.
    pub(crate) fn wrap(&self, body: &str) -> String {
        let frames = Value::from(self.frames.clone()).to_string();
        let prelude = PRELUDE
            .replace("%PIERCE%", if self.pierce { "true" } else { "false" })
            .replace("%FRAMES%", &frames);
        format!("(() => {{ {prelude} return ({body}); }})()")
    }

    /// `selector` as an error names it: with the frame it was looked for in.
    pub(crate) fn describe(&self, selector: &str) -> String {
        if self.frames.is_empty() {
            selector.to_owned()
        } else {
            format!("{selector} (in frame {})", self.frames.join(" > "))
        }
    }

    /// This scope with `frame` entered.
    pub(crate) fn enter(&self, frame: &str) -> Scope {
        let mut frames = self.frames.clone();
        frames.push(frame.to_owned());
        Scope {
            frames,
            pierce: self.pierce,
        }
    }
}

/// A tab and the scope its steps act in.
#[derive(Debug, Clone)]
pub(crate) struct Doc {
    pub(crate) page: Page,
    pub(crate) scope: Scope,
}

/// Where a click lands, in the tab's viewport.
#[derive(Debug, Deserialize)]
struct At {
    x: f64,
    y: f64,
}

/// A script that clicks the first element matching `selector` when it is (in) a plain
/// link (an `<a href>` in the top document, opening in its own frame — its `target` or
/// the document's `<base target>` — the element a click at its centre would hit):
/// `el.click()` runs the element's handlers and the link's own activation, as a user's
/// click does, with no mouse event to wait on (a mouse move waits for the page's next
/// frame); answers `{clicked: true}`. Otherwise it answers where a user's click lands (`{x, y}`, the element
/// scrolled into view — at once, whatever the page's `scroll-behavior` — only when its
/// centre is outside the viewport of its document or of a frame around it), for trusted
/// mouse events; `null` when the element is not there.
pub(crate) fn place_script(selector: &str) -> String {
    format!(
        "(() => {{ const el = Q({}); if (!el) return null; \
         const place = () => {{ \
           const r = el.getClientRects()[0] || el.getBoundingClientRect(); \
           const lx = r.left + r.width / 2, ly = r.top + r.height / 2; \
           let x = lx, y = ly, shown = true; \
           for (let w = el.ownerDocument.defaultView; ; w = w.parent) {{ \
             if (x < 0 || y < 0 || x > w.innerWidth || y > w.innerHeight) shown = false; \
             const f = w.frameElement; if (!f) break; \
             const fr = f.getBoundingClientRect(), cs = f.ownerDocument.defaultView.getComputedStyle(f); \
             x += fr.left + f.clientLeft + parseFloat(cs.paddingLeft); \
             y += fr.top + f.clientTop + parseFloat(cs.paddingTop); }} \
           return {{x, y, lx, ly, shown}}; }}; \
         let at = place(); \
         if (!at.shown) {{ el.scrollIntoView({{block: 'center', inline: 'center', behavior: 'instant'}}); at = place(); }} \
         const link = el.closest('a[href]'), base = el.ownerDocument.querySelector('base[target]'); \
         const own = t => !t || t === '_self'; \
         if (link && el.ownerDocument === document && own(link.target || (base && base.target)) \
             && !link.hasAttribute('download') && !/^\\s*javascript:/i.test(link.getAttribute('href'))) {{ \
           const root = el.getRootNode(), hit = (root.elementFromPoint ? root : el.ownerDocument).elementFromPoint(at.lx, at.ly); \
           if (hit && (hit === el || el.contains(hit) || link.contains(hit))) {{ el.click(); return {{clicked: true}}; }} }} \
         return {{x: at.x, y: at.y}}; }})()",
        js_str(selector)
    )
}

impl Doc {
    /// Evaluates `body` after the scope's prelude.
    pub(crate) async fn eval(
        &self,
        step: usize,
        action: &'static str,
        body: &str,
    ) -> Result<Value, BrowserError> {
        eval(&self.page, step, action, &self.scope.wrap(body)).await
    }

    /// The step's "nothing matched `selector` in time" error, naming the frame.
    pub(crate) fn timeout(
        &self,
        step: usize,
        action: &'static str,
        selector: &str,
        timeout_ms: u64,
    ) -> BrowserError {
        BrowserError::SelectorTimeout {
            step,
            action,
            selector: self.scope.describe(selector),
            timeout_ms,
        }
    }

    /// Clicks as [`place_script`] answered `at`: nothing more when the script clicked a
    /// link itself; otherwise trusted mouse events where it said, the mouse moved there,
    /// pressed and released, the three sent at once (Chromium handles a target's commands
    /// in order). `false` when the script found nothing to click.
    pub(crate) async fn click_at(
        &self,
        step: usize,
        action: &'static str,
        at: Value,
    ) -> Result<bool, BrowserError> {
        if at.get("clicked") == Some(&Value::Bool(true)) {
            return Ok(true);
        }
        let Ok(At { x, y }) = serde_json::from_value::<At>(at) else {
            return Ok(false);
        };
        let event = |kind: DispatchMouseEventType| {
            let moved = kind == DispatchMouseEventType::MouseMoved;
            let mut e = DispatchMouseEventParams::new(kind, x, y);
            if !moved {
                e.button = Some(MouseButton::Left);
                e.click_count = Some(1);
            }
            e
        };
        let sent = futures_util::future::try_join3(
            self.page.execute(event(DispatchMouseEventType::MouseMoved)),
            self.page
                .execute(event(DispatchMouseEventType::MousePressed)),
            self.page
                .execute(event(DispatchMouseEventType::MouseReleased)),
        );
        bounded(step, action, sent).await?;
        Ok(true)
    }

    /// Focuses the element matching `selector` and presses `key` there (trusted key
    /// events). `false` when it is not there.
    pub(crate) async fn press(
        &self,
        step: usize,
        action: &'static str,
        selector: &str,
        key: &str,
    ) -> Result<bool, BrowserError> {
        let js = format!(
            "(() => {{ const el = Q({}); if (!el) return false; el.focus(); return true; }})()",
            js_str(selector)
        );
        if self.eval(step, action, &js).await? != Value::Bool(true) {
            return Ok(false);
        }
        let Some(def) = chromiumoxide::keys::get_key_definition(key) else {
            return Err(BrowserError::BadTemplate {
                step,
                action,
                message: format!("there is no key named {key:?}"),
            });
        };
        let text = def
            .text
            .or((def.key.chars().count() == 1).then_some(def.key));
        let event = |kind| {
            let mut e = DispatchKeyEventParams::new(kind);
            e.key = Some(def.key.to_owned());
            e.code = Some(def.code.to_owned());
            e.windows_virtual_key_code = Some(def.key_code);
            e.native_virtual_key_code = Some(def.key_code);
            e
        };
        let down = match text {
            Some(text) => {
                let mut e = event(DispatchKeyEventType::KeyDown);
                e.text = Some(text.to_owned());
                e
            }
            None => event(DispatchKeyEventType::RawKeyDown),
        };
        bounded(step, action, self.page.execute(down)).await?;
        bounded(
            step,
            action,
            self.page.execute(event(DispatchKeyEventType::KeyUp)),
        )
        .await?;
        Ok(true)
    }
}

/// What a look at a frame being entered found.
#[derive(Debug, Deserialize)]
struct FrameLook {
    /// The frame on the path that is missing or out of reach.
    missing: Option<Missing>,
    ready: bool,
}

#[derive(Debug, Deserialize)]
struct Missing {
    /// Its place on the path.
    at: usize,
    /// The element is there, but its document cannot be reached (another origin, or
    /// not a frame).
    found: bool,
}

/// Waits until `frame` (a selector of an `<iframe>` in `doc`'s scope) is there with its
/// document loaded; the scope inside it.
pub(crate) async fn enter_frame(
    doc: &Doc,
    step: usize,
    frame: &str,
    timeout_ms: u64,
) -> Result<Scope, BrowserError> {
    const ACTION: &str = "frame";
    let inner = Doc {
        page: doc.page.clone(),
        scope: doc.scope.enter(frame),
    };
    // The initial `about:blank` of a frame whose `src` is still loading is complete
    // too: it is not the frame's document yet. A lazy frame loads once it is in view.
    let js = "(() => { if (MISSING) return {missing: MISSING, ready: false}; \
              const src = FRAME.getAttribute('src'); \
              const ready = D.readyState === 'complete' \
                && (D.URL !== 'about:blank' || !src || src === 'about:blank'); \
              if (!ready && FRAME.loading === 'lazy') FRAME.scrollIntoView({block: 'center', behavior: 'instant'}); \
              return {missing: null, ready}; })()";
    let mut ticks =
        crate::waits::Ticks::new(std::time::Duration::from_millis(timeout_ms), crate::POLL);
    while ticks.next().await {
        let look: FrameLook = serde_json::from_value(inner.eval(step, ACTION, js).await?)
            .map_err(|e| BrowserError::Crashed(format!("a frame look: {e}")))?;
        if look.ready {
            return Ok(inner.scope);
        }
        // There, but with a document out of reach: it will not come within reach.
        if let Some(Missing { at, found: true }) = look.missing {
            let path = &inner.scope.frames[..=at.min(inner.scope.frames.len() - 1)];
            return Err(BrowserError::FrameUnreachable {
                step,
                frame: path.join(" > "),
            });
        }
    }
    Err(doc.timeout(step, ACTION, &format!("{frame} (a frame)"), timeout_ms))
}
