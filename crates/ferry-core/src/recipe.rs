//! Browser recipes: the payload of a `browser.run` job, a list of steps described as data.
//! The server validates a recipe when the job is submitted (so a bad one is refused with
//! the JSON path of the problem, never found out by a worker); `ferry-browser` runs it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kind whose payload is a [`Recipe`].
pub const BROWSER_RUN: &str = "browser.run";

pub const MAX_STEPS: usize = 200;
pub const MAX_STEP_TIMEOUT_MS: u64 = 5 * 60 * 1000;
/// How long a step waits for its selector unless it says otherwise.
pub const DEFAULT_STEP_TIMEOUT_MS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub steps: Vec<Step>,
    /// How long a step waits for its selector (default 10 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_timeout_ms: Option<u64>,
    /// How long `goto` waits for the page to load (default 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub navigation_timeout_ms: Option<u64>,
    /// A session saved by an earlier job (`save_session`): its cookies and storage are
    /// loaded into the fresh context before the first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_session: Option<String>,
    /// Values the steps may use as `{{input.NAME}}` (in `goto.url`, `fill.value`,
    /// `select.value`). `{{secret.NAME}}` reads the worker's `FERRY_SECRET_NAME` instead,
    /// so a password never passes through the server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    /// The proxy the run's every request goes through, instead of the tenant's:
    /// `http://user:{{secret.NAME}}@host:port` or `socks5://user:{{secret.NAME}}@host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<crate::proxy::ProxyUrl>,
    /// Whether selectors also match inside open shadow roots (default true, as
    /// Playwright's locators do); `false` keeps them to the document itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pierce_shadow: Option<bool>,
    /// The steps written with `"optional": true` (or a number of milliseconds), by index,
    /// and how long each waits: one that finds nothing in time is skipped.
    #[serde(skip)]
    pub optional: BTreeMap<usize, u64>,
}

/// How long an optional step waits (`"optional": true`) unless it says otherwise.
pub const DEFAULT_OPTIONAL_MS: u64 = 2_000;

pub use crate::template::{SECRET_DOMAINS_ENV_PREFIX, SECRET_ENV_PREFIX, render};

mod check;

pub use check::{artifact_name_ok, validate};

/// The JSON Schema of a recipe (served at `GET /v1/recipes/schema`). The server checks
/// more than the schema can say (regexes compile, inputs exist, bounds), always with the
/// JSON path of the problem.
pub fn schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(Recipe)).unwrap_or(Value::Null);
    // Any step may be marked optional, beside its action (not a field of the action).
    let optional = serde_json::json!({
        "description": "true (or how many milliseconds to wait, default 2000): a step that finds nothing in time is skipped",
        "type": ["boolean", "integer"]
    });
    if let Some(variants) = schema
        .pointer_mut("/$defs/Step/oneOf")
        .and_then(Value::as_array_mut)
    {
        for variant in variants {
            if let Some(properties) = variant.get_mut("properties").and_then(Value::as_object_mut) {
                properties.insert("optional".to_owned(), optional.clone());
            }
        }
    }
    schema
}

/// A session name: 1 to 200 of letters, digits, `.`, `_`, `-`, `:`.
pub fn session_name_ok(name: &str) -> bool {
    (1..=200).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
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

    pub fn pierce_shadow(&self) -> bool {
        self.pierce_shadow.unwrap_or(true)
    }
}

/// One step: `{"goto": {"url": …}}`, `{"click": {"selector": …}}`, …
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Loads `url` and waits for the page to load. A `4xx`/`5xx` answer fails the job
    /// (`HTTP_STATUS`; `429` and `503` are retryable).
    Goto { url: String },
    /// Clicks the first element matching `selector`, waiting for it to appear.
    Click { selector: String },
    /// Types `value` into the element matching `selector` (its old value is cleared).
    Fill { selector: String, value: String },
    /// Waits for one thing: `selector` visible, the URL containing `url_contains`, no
    /// network request for `network_idle_ms`, or just `delay_ms`.
    WaitFor {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url_contains: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        network_idle_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// Scrolls `selector` into view, or the page to the bottom.
    Scroll {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selector: Option<String>,
    },
    /// Reads the first element matching `selector` — its text, or `attr` — into
    /// `{{vars.NAME}}` for the steps after it (`goto.url`, `fill.value`, `select.value`).
    /// With `regex`, keeps what it matched (its first group if it has one).
    SaveVar {
        name: String,
        selector: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attr: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        regex: Option<String>,
    },
    /// Visits each link of a list and runs `steps` there, in tabs of this job's context.
    Follow(Follow),
    /// Continues in the `<iframe>` matching `selector` (in the current frame, so frames
    /// nest): the steps after it act and extract inside the frame's document, once it
    /// has loaded. Same-origin frames only (`FRAME_UNREACHABLE` otherwise).
    Frame { selector: String },
    /// Continues in the tab's top document again (after `frame`). `goto` and
    /// `switch_tab` also return to it.
    MainFrame {},
    /// Continues in another tab of this job: `index` in opening order (0 is the first),
    /// negative from the newest (-1). Waits for a tab opened by a click to appear.
    SwitchTab { index: i32 },
    /// Saves a PNG of the page as an artifact of the job (`name`, default `step-N`).
    Screenshot {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default)]
        full_page: bool,
    },
    /// Stores this context's cookies, localStorage and sessionStorage on the server under
    /// the name (encrypted at rest), for later jobs' `use_session`.
    SaveSession(String),
    /// Picks `value` in the `<select>` matching `selector`.
    Select { selector: String, value: String },
    /// Presses `key` (`Enter`, `Tab`, `a`, …) in the element matching `selector`.
    Press { selector: String, key: String },
    /// Rows from the elements matching `list`, one per element, with `fields` read relative
    /// to it, in one round trip per page. Rows stream to the server as partial results.
    Extract(Extract),
    /// Extracts, then follows `next` (a link or a script button) and extracts again, until
    /// `next` is missing or disabled, or after `max_pages` pages. With `mode: load_more`
    /// (a "Load more" button that appends to the list), clicks `next` until it is gone or
    /// disabled (at most `max_pages - 1` times), each time waiting for the list to grow,
    /// and extracts once at the end: every row once.
    Paginate {
        next: String,
        #[serde(default = "default_max_pages")]
        max_pages: u32,
        extract: Extract,
        #[serde(default, skip_serializing_if = "PaginateMode::is_pages")]
        mode: PaginateMode,
    },
    /// Clicks `selector` if it shows within `within_ms` (default 2 s) — a consent banner, a
    /// newsletter modal — and goes on either way.
    Dismiss {
        selector: String,
        #[serde(default = "default_dismiss_ms")]
        within_ms: u64,
    },
    /// Scrolls the page (or the `container` that scrolls, a selector) to the bottom until
    /// the page holds `until_items` elements matching `list`, or no new ones came for
    /// `idle_ms`, or after `max_scrolls`; then extract as usual.
    ///
    /// With `extract`, collects while scrolling instead — for lists that recycle their
    /// elements (virtualized lists keep only the rows in view): extracts after every
    /// scroll, keeps the rows it has not seen (by `extract.dedupe_by`, or the whole row),
    /// and stops at `until_items` rows, or at the end of the list once nothing new came
    /// for `idle_ms`. It scrolls a viewport at a time, the page or the `container` that
    /// scrolls (a selector).
    InfiniteScroll {
        list: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until_items: Option<u32>,
        #[serde(default = "default_idle_ms")]
        idle_ms: u64,
        #[serde(default = "default_max_scrolls")]
        max_scrolls: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        extract: Option<Extract>,
    },
}

/// `follow`: the links are the elements matching `links` (their `href`, or `attr`),
/// resolved against the page, each once, in page order, at most `max_links`. Each is
/// loaded in a new tab of the job's context (`concurrency` at a time) and `steps` run
/// there, with `{{vars.link}}` its URL; their rows come in the links' order. A link whose
/// steps fail fails the job, naming the link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Follow {
    pub links: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attr: Option<String>,
    #[serde(default = "default_max_links")]
    pub max_links: u32,
    #[serde(default = "default_follow_concurrency")]
    pub concurrency: u32,
    /// A field added to every row the steps extract: the link's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_field: Option<String>,
    /// Not `follow`, `switch_tab` or `save_session`.
    pub steps: Vec<Step>,
    /// The steps marked optional, as [`Recipe::optional`].
    #[serde(skip)]
    pub optional: BTreeMap<usize, u64>,
}

pub const MAX_LINKS: u32 = 1_000;
pub const MAX_FOLLOW_CONCURRENCY: u32 = 8;

fn default_max_links() -> u32 {
    100
}

fn default_follow_concurrency() -> u32 {
    4
}

/// How `paginate` walks a list: page by page (`pages`, the default), or by a button that
/// appends to it (`load_more`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PaginateMode {
    #[default]
    Pages,
    LoadMore,
}

impl PaginateMode {
    fn is_pages(&self) -> bool {
        *self == PaginateMode::Pages
    }
}

/// What `extract` (and each page of `paginate`) reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Extract {
    pub list: String,
    pub fields: BTreeMap<String, Field>,
    /// The fewest rows a page must yield (default 1): an extraction that matches fewer
    /// fails the job with `EXTRACT_EMPTY` (a signed-out page, a changed layout), so it
    /// never completes — or empties a dataset — with rows missing. The last page of a
    /// `paginate` may have fewer, but not none. `0` allows an empty page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rows: Option<u32>,
    /// `true`: a page may yield no rows (the same as `min_rows: 0`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_empty: bool,
    /// A field whose value tells rows apart: a row whose value came before (on this page,
    /// an earlier page of the `paginate`, an earlier scroll) is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedupe_by: Option<String>,
}

impl Extract {
    pub fn min_rows(&self) -> u32 {
        if self.allow_empty {
            return 0;
        }
        self.min_rows.unwrap_or(1)
    }
}

/// The largest `min_rows`.
pub const MAX_MIN_ROWS: u32 = 100_000;
/// The most fields one extraction reads.
pub const MAX_FIELDS: usize = 100;
/// The most a field's regex may grow to once compiled (256 KiB): an innocent-looking
/// pattern with nested repetition can take seconds of CPU and megabytes to compile, at
/// submit on the server and again on every page on the worker.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// The most regexes (`regex` and `replace` of every field of every step) one recipe has:
/// each compiles at submit and on the worker.
pub const MAX_REGEXES: usize = 100;

/// Compiles a recipe's regex within [`REGEX_SIZE_LIMIT`].
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
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

fn default_dismiss_ms() -> u64 {
    2_000
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
            Step::Dismiss { .. } => "dismiss",
            Step::InfiniteScroll { .. } => "infinite_scroll",
            Step::Scroll { .. } => "scroll",
            Step::SwitchTab { .. } => "switch_tab",
            Step::Frame { .. } => "frame",
            Step::SaveVar { .. } => "save_var",
            Step::Follow(_) => "follow",
            Step::MainFrame {} => "main_frame",
            Step::Screenshot { .. } => "screenshot",
            Step::SaveSession(_) => "save_session",
        }
    }
}

/// What a field reads from its element.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Read {
    #[default]
    Text,
    Html,
}

/// A field of an extracted row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Replace every match of the regex `[0]` with `[1]` (`$1` refers to a group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<(String, String)>,
    /// Parse as a number: `true` gives a whole number as an integer (`₩5,000` → 5000) and
    /// any other as a float (`1,234.5` → 1234.5); `"integer"` or `"float"` say which.
    #[serde(default, skip_serializing_if = "Number::is_off")]
    pub number: Number,
    /// Parse as a date in this `strftime` format (`%Y.%m.%d`) and give it as ISO 8601
    /// (`2026-11-22`, or `2026-11-22T09:30:00` when the format has a time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// A row without this field fails the job (`SELECTOR_TIMEOUT` is for steps; this is
    /// `EXTRACT_MISSING`); an optional one is `null`.
    #[serde(default)]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// How a field parses as a number: `true`/`false`, or `"integer"`/`"float"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Number {
    /// `true`: whole numbers as integers, others as floats; `false`: not a number.
    Auto(bool),
    As(NumberType),
}

/// An explicit number type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NumberType {
    /// A whole number (text with a fractional part gives `null`).
    Integer,
    /// Always a float (`5` → `5.0`).
    Float,
}

impl Default for Number {
    fn default() -> Self {
        Number::Auto(false)
    }
}

impl Number {
    pub fn is_off(&self) -> bool {
        *self == Number::Auto(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regex_that_compiles_to_megabytes_is_refused() {
        let pattern = "(?:\\w+\\s*){100}";
        // Accepted by the regex crate's own (10 MB) limit, after a long compile...
        assert!(regex::Regex::new(pattern).is_ok());
        // ... but not within a recipe's.
        assert!(compile_regex(pattern).is_err());
        assert!(compile_regex("(\\d+) stars").is_ok());
    }

    #[test]
    fn a_recipe_has_a_bounded_number_of_regexes() {
        let step = |n: usize| {
            let fields: serde_json::Map<String, Value> = (0..n)
                .map(|i| (format!("f{i}"), json!({"regex": "(\\d+)"})))
                .collect();
            json!({"extract": {"list": ".r", "fields": fields}})
        };
        let at_limit = json!({"steps": [step(MAX_REGEXES / 2), step(MAX_REGEXES / 2)]});
        assert!(validate(&at_limit, "payload").is_ok());
        let over = json!({"steps": [step(MAX_REGEXES / 2), step(MAX_REGEXES / 2), step(1)]});
        assert_eq!(fields(over), ["payload.steps[2].extract.fields.f0.regex"]);
    }
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
    fn new_steps_and_templates_are_checked() {
        let recipe = validate(
            &json!({"use_session": "shop-1", "inputs": {"user": "demo"}, "steps": [
                {"goto": {"url": "http://127.0.0.1/login"}},
                {"fill": {"selector": "#user", "value": "{{input.user}}"}},
                {"fill": {"selector": "#password", "value": "{{ secret.SHOP_PASSWORD }}"}},
                {"wait_for": {"url_contains": "/account"}},
                {"scroll": {}},
                {"switch_tab": {"index": -1}},
                {"screenshot": {"name": "after-login.png"}},
                {"save_session": "shop-1"}
            ]}),
            "payload",
        )
        .expect("valid");
        assert_eq!(recipe.use_session.as_deref(), Some("shop-1"));
        assert_eq!(
            fields(json!({"use_session": "a b", "steps": [
                {"fill": {"selector": "#u", "value": "{{input.nope}}"}},
                {"wait_for": {"selector": "#a", "delay_ms": 5}},
                {"save_session": ""},
                {"screenshot": {"name": "../x"}},
                {"extract": {"list": ".r", "fields": {"d": {"date": "%Y", "number": true}}}}
            ]})),
            [
                "payload.use_session",
                "payload.steps[0].fill.value",
                "payload.steps[1].wait_for",
                "payload.steps[2].save_session",
                "payload.steps[3].screenshot.name",
                "payload.steps[4].extract.fields.d.date"
            ]
        );
    }

    #[test]
    fn the_schema_names_every_step() {
        let schema = schema().to_string();
        for step in [
            "goto",
            "click",
            "fill",
            "select",
            "press",
            "wait_for",
            "scroll",
            "infinite_scroll",
            "paginate",
            "extract",
            "switch_tab",
            "screenshot",
            "save_session",
        ] {
            assert!(schema.contains(&format!("\"{step}\"")), "{step} missing");
        }
        assert!(schema.contains("use_session") && schema.contains("inputs"));
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

    #[test]
    fn dismiss_and_load_more_are_checked() {
        let ok = validate(
            &json!({"steps": [
                {"dismiss": {"selector": "#consent .accept"}},
                {"paginate": {"next": "#more", "mode": "load_more",
                              "extract": {"list": "li", "fields": {"a": {}}}}}
            ]}),
            "payload",
        )
        .expect("valid");
        assert!(matches!(
            ok.steps[0],
            Step::Dismiss {
                within_ms: 2_000,
                ..
            }
        ));
        assert!(matches!(
            ok.steps[1],
            Step::Paginate {
                mode: PaginateMode::LoadMore,
                ..
            }
        ));
        assert_eq!(
            fields(json!({"steps": [{"dismiss": {"selector": "#c", "within_ms": 0}}]})),
            ["payload.steps[0].dismiss.within_ms"]
        );
        assert_eq!(
            fields(
                json!({"steps": [{"paginate": {"next": "#m", "mode": "sideways",
                "extract": {"list": "li", "fields": {"a": {}}}}}]})
            ),
            ["payload.steps[0]"]
        );
    }

    #[test]
    fn any_step_may_be_optional_and_the_schema_says_so() {
        let ok = validate(
            &json!({"steps": [
                {"goto": {"url": "https://shop.example/"}},
                {"click": {"selector": "#x"}, "optional": true},
                {"wait_for": {"selector": "#y"}, "optional": 500},
                {"click": {"selector": "#z"}, "optional": false}
            ]}),
            "payload",
        )
        .expect("valid");
        assert_eq!(
            ok.optional,
            BTreeMap::from([(1, DEFAULT_OPTIONAL_MS), (2, 500)])
        );
        assert_eq!(
            fields(json!({"steps": [{"click": {"selector": "#x"}, "optional": "yes"}]})),
            ["payload.steps[0].optional"]
        );
        assert_eq!(
            fields(json!({"steps": [{"click": {"selector": "#x"}, "optinal": true}]})),
            ["payload.steps[0]"]
        );
        let schema = schema();
        let click = schema["$defs"]["Step"]["oneOf"]
            .as_array()
            .and_then(|v| v.iter().find(|s| s["properties"].get("click").is_some()))
            .expect("the click step");
        assert!(click["properties"].get("optional").is_some(), "{click}");
    }
}
