//! Browser recipes: the payload of a `browser.run` job, a list of steps described as data.
//! The server validates a recipe when the job is submitted (so a bad one is refused with
//! the JSON path of the problem, never found out by a worker); `ferry-browser` runs it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::FieldError;

/// The kind whose payload is a [`Recipe`].
pub const BROWSER_RUN: &str = "browser.run";

pub const MAX_STEPS: usize = 200;
pub const MAX_STEP_TIMEOUT_MS: u64 = 5 * 60 * 1000;
/// How long a step waits for its selector unless it says otherwise.
pub const DEFAULT_STEP_TIMEOUT_MS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub steps: Vec<Step>,
    /// How long a step waits for its selector (default 10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timeout_ms: Option<u64>,
    /// How long `goto` waits for the page to load (default 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub navigation_timeout_ms: Option<u64>,
}

/// How long `goto` waits for a page unless the recipe says otherwise.
pub const DEFAULT_NAVIGATION_TIMEOUT_MS: u64 = 30_000;

impl Recipe {
    pub fn step_timeout_ms(&self) -> u64 {
        self.step_timeout_ms.unwrap_or(DEFAULT_STEP_TIMEOUT_MS)
    }

    pub fn navigation_timeout_ms(&self) -> u64 {
        self.navigation_timeout_ms
            .unwrap_or(DEFAULT_NAVIGATION_TIMEOUT_MS)
    }
}

/// One step: `{"goto": {"url": …}}`, `{"click": {"selector": …}}`, …
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Loads `url` and waits for the page to load. A `4xx`/`5xx` answer fails the job
    /// (`HTTP_STATUS`; `429` and `503` are retryable).
    Goto { url: String },
    /// Clicks the first element matching `selector`, waiting for it to appear.
    Click { selector: String },
    /// Types `value` into the element matching `selector` (its old value is cleared).
    Fill { selector: String, value: String },
    /// Waits until `selector` matches a visible element.
    WaitFor {
        selector: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// Picks `value` in the `<select>` matching `selector`.
    Select { selector: String, value: String },
    /// Presses `key` (`Enter`, `Tab`, `a`, …) in the element matching `selector`.
    Press { selector: String, key: String },
    /// Rows from the elements matching `list`, one per element, with `fields` read relative
    /// to it, in one round trip per page. Rows stream to the server as partial results.
    Extract(Extract),
    /// Extracts, then follows `next` (a link or a script button) and extracts again, until
    /// `next` is missing or disabled, or after `max_pages` pages.
    Paginate {
        next: String,
        #[serde(default = "default_max_pages")]
        max_pages: u32,
        extract: Extract,
    },
    /// Scrolls to the bottom until the page holds `until_items` elements matching `list`, or
    /// no new ones came for `idle_ms`, or after `max_scrolls`; then extract as usual.
    InfiniteScroll {
        list: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_items: Option<u32>,
        #[serde(default = "default_idle_ms")]
        idle_ms: u64,
        #[serde(default = "default_max_scrolls")]
        max_scrolls: u32,
    },
}

/// What `extract` (and each page of `paginate`) reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extract {
    pub list: String,
    pub fields: BTreeMap<String, Field>,
}

pub const MAX_PAGES: u32 = 1_000;
pub const MAX_SCROLLS: u32 = 10_000;

fn default_max_pages() -> u32 {
    50
}

fn default_idle_ms() -> u64 {
    1_500
}

fn default_max_scrolls() -> u32 {
    200
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Goto { .. } => "goto",
            Step::Click { .. } => "click",
            Step::Fill { .. } => "fill",
            Step::WaitFor { .. } => "wait_for",
            Step::Select { .. } => "select",
            Step::Press { .. } => "press",
            Step::Extract(_) => "extract",
            Step::Paginate { .. } => "paginate",
            Step::InfiniteScroll { .. } => "infinite_scroll",
        }
    }
}

/// What a field reads from its element.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Read {
    #[default]
    Text,
    Html,
}

/// A field of an extracted row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Relative to the row's element; absent: the element itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// An attribute to read instead of the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attr: Option<String>,
    #[serde(default)]
    pub read: Read,
    /// Collapse whitespace runs and trim (default true).
    #[serde(default = "yes")]
    pub trim: bool,
    /// Keep what this regex matched: its first group if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Parse as a number (`1,234.5` → 1234.5).
    #[serde(default)]
    pub number: bool,
    /// A row without this field fails the job (`SELECTOR_TIMEOUT` is for steps; this is
    /// `EXTRACT_MISSING`); an optional one is `null`.
    #[serde(default)]
    pub required: bool,
}

fn yes() -> bool {
    true
}

fn selector_ok(s: &str) -> bool {
    !s.trim().is_empty() && s.len() <= 1024
}

/// Validates a `browser.run` payload; problems are named by JSON path under `prefix`
/// (`payload` or `jobs[2].payload`).
pub fn validate(payload: &Value, prefix: &str) -> Result<Recipe, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(object) = payload.as_object() else {
        return Err(vec![FieldError::new(
            prefix,
            "a recipe is an object with `steps`",
        )]);
    };
    for key in object.keys() {
        if !matches!(
            key.as_str(),
            "steps" | "step_timeout_ms" | "navigation_timeout_ms"
        ) {
            errors.push(FieldError::new(
                format!("{prefix}.{key}"),
                "unknown recipe field (expected steps, step_timeout_ms, navigation_timeout_ms)",
            ));
        }
    }
    let mut timeout = |name: &str| match object.get(name) {
        None => None,
        Some(v) => match v.as_u64() {
            Some(ms) if (1..=MAX_STEP_TIMEOUT_MS).contains(&ms) => Some(ms),
            _ => {
                errors.push(FieldError::new(
                    format!("{prefix}.{name}"),
                    format!("milliseconds from 1 to {MAX_STEP_TIMEOUT_MS}"),
                ));
                None
            }
        },
    };
    let step_timeout_ms = timeout("step_timeout_ms");
    let navigation_timeout_ms = timeout("navigation_timeout_ms");
    let raw_steps = match object.get("steps").and_then(Value::as_array) {
        Some(steps) if !steps.is_empty() && steps.len() <= MAX_STEPS => steps.as_slice(),
        _ => {
            errors.push(FieldError::new(
                format!("{prefix}.steps"),
                format!("a list of 1 to {MAX_STEPS} steps"),
            ));
            &[]
        }
    };
    let mut steps = Vec::with_capacity(raw_steps.len());
    for (i, raw) in raw_steps.iter().enumerate() {
        let path = format!("{prefix}.steps[{i}]");
        match serde_json::from_value::<Step>(raw.clone()) {
            Ok(step) => {
                check_step(&step, &path, &mut errors);
                steps.push(step);
            }
            Err(e) => errors.push(FieldError::new(path, step_error(raw, &e.to_string()))),
        }
    }
    if errors.is_empty() {
        Ok(Recipe {
            steps,
            step_timeout_ms,
            navigation_timeout_ms,
        })
    } else {
        Err(errors)
    }
}

/// A serde message made to say which step shapes exist.
fn step_error(raw: &Value, message: &str) -> String {
    let known = "goto, click, fill, select, press, wait_for, extract, paginate, infinite_scroll";
    match raw.as_object().map(|o| o.keys().collect::<Vec<_>>()) {
        Some(keys) if keys.len() == 1 => format!("{}: {message} (steps are {known})", keys[0]),
        _ => format!("a step is an object with one key, one of {known}"),
    }
}

fn check_step(step: &Step, path: &str, errors: &mut Vec<FieldError>) {
    let name = step.name();
    let mut selector = |field: &str, s: &str| {
        if !selector_ok(s) {
            errors.push(FieldError::new(
                format!("{path}.{name}.{field}"),
                "a CSS selector of 1 to 1024 bytes",
            ));
        }
    };
    match step {
        Step::Goto { url } => {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 8192 {
                errors.push(FieldError::new(
                    format!("{path}.goto.url"),
                    "an http(s) URL",
                ));
            }
        }
        Step::Click { selector: s }
        | Step::Fill { selector: s, .. }
        | Step::Select { selector: s, .. } => selector("selector", s),
        Step::Press { selector: s, key } => {
            selector("selector", s);
            if key.is_empty() || key.len() > 32 {
                errors.push(FieldError::new(
                    format!("{path}.press.key"),
                    "a key name such as Enter, Tab or a",
                ));
            }
        }
        Step::Paginate {
            next,
            max_pages,
            extract,
        } => {
            selector("next", next);
            if !(1..=MAX_PAGES).contains(max_pages) {
                errors.push(FieldError::new(
                    format!("{path}.paginate.max_pages"),
                    format!("from 1 to {MAX_PAGES}"),
                ));
            }
            check_extract(extract, &format!("{path}.paginate.extract"), errors);
        }
        Step::InfiniteScroll {
            list,
            idle_ms,
            max_scrolls,
            ..
        } => {
            selector("list", list);
            if !(1..=MAX_STEP_TIMEOUT_MS).contains(idle_ms) {
                errors.push(FieldError::new(
                    format!("{path}.infinite_scroll.idle_ms"),
                    format!("milliseconds from 1 to {MAX_STEP_TIMEOUT_MS}"),
                ));
            }
            if !(1..=MAX_SCROLLS).contains(max_scrolls) {
                errors.push(FieldError::new(
                    format!("{path}.infinite_scroll.max_scrolls"),
                    format!("from 1 to {MAX_SCROLLS}"),
                ));
            }
        }
        Step::WaitFor {
            selector: s,
            timeout_ms,
        } => {
            selector("selector", s);
            if timeout_ms.is_some_and(|ms| !(1..=MAX_STEP_TIMEOUT_MS).contains(&ms)) {
                errors.push(FieldError::new(
                    format!("{path}.wait_for.timeout_ms"),
                    format!("milliseconds from 1 to {MAX_STEP_TIMEOUT_MS}"),
                ));
            }
        }
        Step::Extract(extract) => check_extract(extract, &format!("{path}.extract"), errors),
    }
}

fn check_extract(extract: &Extract, path: &str, errors: &mut Vec<FieldError>) {
    if !selector_ok(&extract.list) {
        errors.push(FieldError::new(
            format!("{path}.list"),
            "a CSS selector of 1 to 1024 bytes",
        ));
    }
    if extract.fields.is_empty() {
        errors.push(FieldError::new(
            format!("{path}.fields"),
            "at least one field",
        ));
    }
    for (key, field) in &extract.fields {
        let at = format!("{path}.fields.{key}");
        if field.selector.as_deref().is_some_and(|s| !selector_ok(s)) {
            errors.push(FieldError::new(
                format!("{at}.selector"),
                "a CSS selector of 1 to 1024 bytes",
            ));
        }
        if let Some(pattern) = &field.regex
            && let Err(e) = regex::Regex::new(pattern)
        {
            errors.push(FieldError::new(
                format!("{at}.regex"),
                format!("not a valid regex: {e}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(payload: Value) -> Vec<String> {
        validate(&payload, "payload")
            .expect_err("invalid")
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_good_recipe_parses() {
        let recipe = validate(
            &json!({"steps": [
                {"goto": {"url": "http://127.0.0.1/reviews"}},
                {"fill": {"selector": "#q", "value": "ferries"}},
                {"click": {"selector": "button"}},
                {"wait_for": {"selector": ".row", "timeout_ms": 2000}},
                {"extract": {"list": ".row", "fields": {
                    "title": {"selector": "h3"},
                    "stars": {"selector": ".stars", "regex": "(\\d+) stars", "number": true, "required": true},
                    "link": {"selector": "a", "attr": "href"}}}}
            ]}),
            "payload",
        )
        .expect("valid");
        assert_eq!(recipe.steps.len(), 5);
        assert_eq!(recipe.step_timeout_ms(), DEFAULT_STEP_TIMEOUT_MS);
    }

    #[test]
    fn problems_are_named_by_path() {
        assert_eq!(fields(json!([])), ["payload"]);
        assert_eq!(fields(json!({"steps": []})), ["payload.steps"]);
        assert_eq!(
            fields(json!({"steps": [{"goto": {"url": "ftp://x"}}, {"hover": {}}], "x": 1})),
            ["payload.x", "payload.steps[0].goto.url", "payload.steps[1]"]
        );
        assert_eq!(
            fields(
                json!({"steps": [{"extract": {"list": ".r", "fields": {"a": {"regex": "("}}}}]})
            ),
            ["payload.steps[0].extract.fields.a.regex"]
        );
        assert_eq!(
            fields(json!({"steps": [{"wait_for": {"selector": " ", "timeout_ms": 0}}]})),
            [
                "payload.steps[0].wait_for.selector",
                "payload.steps[0].wait_for.timeout_ms"
            ]
        );
    }
}
