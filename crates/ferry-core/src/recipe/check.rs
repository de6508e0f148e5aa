//! Checking a `browser.run` payload before it is stored: every problem named by its JSON
//! path, beyond what the schema can say (regexes compile, inputs exist, bounds).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::*;
use crate::FieldError;

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
            "steps"
                | "step_timeout_ms"
                | "navigation_timeout_ms"
                | "use_session"
                | "inputs"
                | "proxy"
                | "pierce_shadow"
        ) {
            errors.push(FieldError::new(
                format!("{prefix}.{key}"),
                "unknown recipe field (expected steps, step_timeout_ms, navigation_timeout_ms, use_session, inputs, proxy, pierce_shadow)",
            ));
        }
    }
    let pierce_shadow = match object.get("pierce_shadow") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            errors.push(FieldError::new(
                format!("{prefix}.pierce_shadow"),
                "true or false",
            ));
            None
        }
    };
    let proxy = match object.get("proxy") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => match text.parse::<crate::proxy::ProxyUrl>() {
            Ok(proxy) => Some(proxy),
            Err(e) => {
                errors.push(FieldError::new(format!("{prefix}.proxy"), e.to_string()));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(
                format!("{prefix}.proxy"),
                "a proxy URL: http://host:port or socks5://host:port",
            ));
            None
        }
    };
    let use_session = match object.get("use_session") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) if session_name_ok(name) => Some(name.clone()),
        Some(_) => {
            errors.push(FieldError::new(
                format!("{prefix}.use_session"),
                "a session name: 1 to 200 letters, digits, `.`, `_`, `-`, `:`",
            ));
            None
        }
    };
    let inputs: BTreeMap<String, String> = match object.get("inputs") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(v) => match serde_json::from_value(v.clone()) {
            Ok(inputs) => inputs,
            Err(_) => {
                errors.push(FieldError::new(
                    format!("{prefix}.inputs"),
                    "an object of strings",
                ));
                BTreeMap::new()
            }
        },
    };
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
    let mut regexes = 0;
    let mut vars = BTreeSet::new();
    let (steps, optional) = parse_steps(
        raw_steps,
        &format!("{prefix}.steps"),
        &mut Known {
            inputs: &inputs,
            vars: &mut vars,
            regexes: &mut regexes,
            errors: &mut errors,
            nested: false,
        },
    );
    if errors.is_empty() {
        Ok(Recipe {
            steps,
            step_timeout_ms,
            navigation_timeout_ms,
            use_session,
            inputs,
            proxy,
            pierce_shadow,
            optional,
        })
    } else {
        Err(errors)
    }
}

/// What the steps checked so far know of, and what they found wrong.
struct Known<'a> {
    inputs: &'a BTreeMap<String, String>,
    /// The names `save_var` steps set so far (and `link` in a `follow`'s steps).
    vars: &'a mut BTreeSet<String>,
    regexes: &'a mut usize,
    errors: &'a mut Vec<FieldError>,
    /// In a `follow`'s steps.
    nested: bool,
}

/// Reads and checks a list of steps (the recipe's, or a `follow`'s) under `path`: the
/// steps, and which are optional for how long.
fn parse_steps(
    raw_steps: &[Value],
    path: &str,
    known: &mut Known,
) -> (Vec<Step>, BTreeMap<usize, u64>) {
    let mut steps = Vec::with_capacity(raw_steps.len());
    let mut optional = BTreeMap::new();
    for (i, raw) in raw_steps.iter().enumerate() {
        let path = format!("{path}[{i}]");
        // `"optional"` sits beside the action: taken off before the action is read.
        let mut raw = raw.clone();
        if let Some(marked) = raw.as_object_mut().and_then(|o| o.remove("optional")) {
            match marked {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    optional.insert(i, DEFAULT_OPTIONAL_MS);
                }
                Value::Number(n)
                    if n.as_u64()
                        .is_some_and(|ms| (1..=MAX_STEP_TIMEOUT_MS).contains(&ms)) =>
                {
                    optional.insert(i, n.as_u64().unwrap_or(DEFAULT_OPTIONAL_MS));
                }
                _ => known.errors.push(FieldError::new(
                    format!("{path}.optional"),
                    format!("true, false, or milliseconds from 1 to {MAX_STEP_TIMEOUT_MS}"),
                )),
            }
        }
        // A `follow`'s own steps are read as a list of steps like the recipe's.
        let nested = raw
            .get_mut("follow")
            .and_then(Value::as_object_mut)
            .and_then(|f| f.insert("steps".to_owned(), Value::Array(Vec::new())));
        match serde_json::from_value::<Step>(raw.clone()) {
            Ok(mut step) => {
                check_templates(&step, &path, known);
                check_step(&step, &path, known.regexes, known.errors);
                if let Step::Follow(follow) = &mut step {
                    check_follow(follow, nested, &path, known);
                }
                if let Step::SaveVar { name, .. } = &step {
                    known.vars.insert(name.clone());
                }
                steps.push(step);
            }
            Err(e) => known
                .errors
                .push(FieldError::new(path, step_error(&raw, &e.to_string()))),
        }
    }
    (steps, optional)
}

/// A `follow`: its own steps (`raw`), read and checked, with `{{vars.link}}` known.
fn check_follow(follow: &mut Follow, raw: Option<Value>, path: &str, known: &mut Known) {
    let path = format!("{path}.follow");
    if known.nested {
        known.errors.push(FieldError::new(
            path.clone(),
            "a follow's steps cannot follow links again",
        ));
    }
    let raw_steps = match raw.as_ref().and_then(Value::as_array) {
        Some(steps) if !steps.is_empty() && steps.len() <= MAX_STEPS => steps.as_slice(),
        _ => {
            known.errors.push(FieldError::new(
                format!("{path}.steps"),
                format!("a list of 1 to {MAX_STEPS} steps"),
            ));
            &[]
        }
    };
    let mut vars = known.vars.clone();
    vars.insert("link".to_owned());
    let (steps, optional) = parse_steps(
        raw_steps,
        &format!("{path}.steps"),
        &mut Known {
            inputs: known.inputs,
            vars: &mut vars,
            regexes: known.regexes,
            errors: known.errors,
            nested: true,
        },
    );
    for (i, step) in steps.iter().enumerate() {
        if matches!(step, Step::SwitchTab { .. } | Step::SaveSession(_)) {
            known.errors.push(FieldError::new(
                format!("{path}.steps[{i}]"),
                "a follow's steps run in their own tab: not switch_tab or save_session",
            ));
        }
    }
    follow.steps = steps;
    follow.optional = optional;
    if !(1..=MAX_LINKS).contains(&follow.max_links) {
        known.errors.push(FieldError::new(
            format!("{path}.max_links"),
            format!("from 1 to {MAX_LINKS}"),
        ));
    }
    if !(1..=MAX_FOLLOW_CONCURRENCY).contains(&follow.concurrency) {
        known.errors.push(FieldError::new(
            format!("{path}.concurrency"),
            format!("from 1 to {MAX_FOLLOW_CONCURRENCY}"),
        ));
    }
    if follow.url_field.as_deref().is_some_and(str::is_empty) {
        known
            .errors
            .push(FieldError::new(format!("{path}.url_field"), "a field name"));
    }
}

/// A serde message made to say which step shapes exist.
fn step_error(raw: &Value, message: &str) -> String {
    let known = "goto, click, fill, select, press, wait_for, scroll, infinite_scroll, paginate, \
                 extract, dismiss, frame, main_frame, save_var, follow, switch_tab, screenshot, \
                 save_session";
    match raw.as_object().map(|o| o.keys().collect::<Vec<_>>()) {
        Some(keys) if keys.len() == 1 => format!("{}: {message} (steps are {known})", keys[0]),
        _ => format!("a step is an object with one key, one of {known}"),
    }
}

fn check_step(step: &Step, path: &str, regexes: &mut usize, errors: &mut Vec<FieldError>) {
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
        | Step::Frame { selector: s }
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
            ..
        } => {
            selector("next", next);
            if !(1..=MAX_PAGES).contains(max_pages) {
                errors.push(FieldError::new(
                    format!("{path}.paginate.max_pages"),
                    format!("from 1 to {MAX_PAGES}"),
                ));
            }
            check_extract(
                extract,
                &format!("{path}.paginate.extract"),
                regexes,
                errors,
            );
        }
        Step::Dismiss {
            selector: s,
            within_ms,
        } => {
            selector("selector", s);
            if !(1..=MAX_STEP_TIMEOUT_MS).contains(within_ms) {
                errors.push(FieldError::new(
                    format!("{path}.dismiss.within_ms"),
                    format!("milliseconds from 1 to {MAX_STEP_TIMEOUT_MS}"),
                ));
            }
        }
        Step::InfiniteScroll {
            list,
            idle_ms,
            max_scrolls,
            container,
            extract,
            ..
        } => {
            selector("list", list);
            if let Some(c) = container {
                selector("container", c);
            }
            if let Some(extract) = extract {
                check_extract(
                    extract,
                    &format!("{path}.infinite_scroll.extract"),
                    regexes,
                    errors,
                );
            }
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
            url_contains,
            network_idle_ms,
            delay_ms,
            timeout_ms,
        } => {
            if let Some(s) = s {
                selector("selector", s);
            }
            let given = [
                s.is_some(),
                url_contains.is_some(),
                network_idle_ms.is_some(),
                delay_ms.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                errors.push(FieldError::new(
                    format!("{path}.wait_for"),
                    "exactly one of selector, url_contains, network_idle_ms, delay_ms",
                ));
            }
            for (name, ms) in [
                ("timeout_ms", timeout_ms),
                ("network_idle_ms", network_idle_ms),
                ("delay_ms", delay_ms),
            ] {
                if ms.is_some_and(|ms| !(1..=MAX_STEP_TIMEOUT_MS).contains(&ms)) {
                    errors.push(FieldError::new(
                        format!("{path}.wait_for.{name}"),
                        format!("milliseconds from 1 to {MAX_STEP_TIMEOUT_MS}"),
                    ));
                }
            }
        }
        Step::Scroll { selector: s } => {
            if let Some(s) = s {
                selector("selector", s);
            }
        }
        Step::MainFrame {} => {}
        Step::SaveVar {
            name: var,
            selector: s,
            regex,
            ..
        } => {
            selector("selector", s);
            if var.is_empty()
                || var.len() > 64
                || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                errors.push(FieldError::new(
                    format!("{path}.save_var.name"),
                    "1 to 64 letters, digits or `_`",
                ));
            }
            if let Some(pattern) = regex {
                *regexes += 1;
                if *regexes > MAX_REGEXES {
                    errors.push(FieldError::new(
                        format!("{path}.save_var.regex"),
                        format!("a recipe has at most {MAX_REGEXES} regexes"),
                    ));
                } else if let Err(e) = compile_regex(pattern) {
                    errors.push(FieldError::new(
                        format!("{path}.save_var.regex"),
                        format!("not a valid regex: {e}"),
                    ));
                }
            }
        }
        Step::Follow(follow) => selector("links", &follow.links),
        Step::SwitchTab { index } => {
            if !(-100..100).contains(index) {
                errors.push(FieldError::new(
                    format!("{path}.switch_tab.index"),
                    "a tab position from -100 to 99",
                ));
            }
        }
        Step::Screenshot { name, .. } => {
            if name.as_deref().is_some_and(|n| !artifact_name_ok(n)) {
                errors.push(FieldError::new(
                    format!("{path}.screenshot.name"),
                    "1 to 100 letters, digits, `.`, `_`, `-`",
                ));
            }
        }
        Step::SaveSession(name) => {
            if !session_name_ok(name) {
                errors.push(FieldError::new(
                    format!("{path}.save_session"),
                    "a session name: 1 to 200 letters, digits, `.`, `_`, `-`, `:`",
                ));
            }
        }
        Step::Extract(extract) => {
            check_extract(extract, &format!("{path}.extract"), regexes, errors)
        }
    }
}

/// An artifact name: 1 to 100 letters, digits, `.`, `_`, `-`.
pub fn artifact_name_ok(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `{{input.NAME}}` must name an input the recipe has, `{{vars.NAME}}` a var a step
/// before sets (secrets are the worker's to check).
fn check_templates(step: &Step, path: &str, known: &mut Known) {
    let (field, text) = match step {
        Step::Goto { url } => ("goto.url", url),
        Step::Fill { value, .. } => ("fill.value", value),
        Step::Select { value, .. } => ("select.value", value),
        _ => return,
    };
    let vars = known
        .vars
        .iter()
        .map(|v| (v.clone(), String::new()))
        .collect();
    if let Err(message) =
        crate::template::render_with_vars(text, known.inputs, &vars, &|_| Some(String::new()))
    {
        known
            .errors
            .push(FieldError::new(format!("{path}.{field}"), message));
    }
}

/// `regexes` counts the regexes the recipe compiled so far (at most [`MAX_REGEXES`]).
fn check_extract(extract: &Extract, path: &str, regexes: &mut usize, errors: &mut Vec<FieldError>) {
    if extract.min_rows.is_some_and(|n| n > MAX_MIN_ROWS) {
        errors.push(FieldError::new(
            format!("{path}.min_rows"),
            format!("from 0 to {MAX_MIN_ROWS}"),
        ));
    }
    if extract.allow_empty && extract.min_rows.is_some_and(|n| n > 0) {
        errors.push(FieldError::new(
            format!("{path}.allow_empty"),
            "allow_empty: true means min_rows: 0; give one or the other",
        ));
    }
    if !selector_ok(&extract.list) {
        errors.push(FieldError::new(
            format!("{path}.list"),
            "a CSS selector of 1 to 1024 bytes",
        ));
    }
    if let Some(key) = &extract.dedupe_by
        && !extract.fields.contains_key(key)
    {
        errors.push(FieldError::new(
            format!("{path}.dedupe_by"),
            format!("{key:?} is not one of the fields"),
        ));
    }
    if extract.fields.is_empty() || extract.fields.len() > MAX_FIELDS {
        errors.push(FieldError::new(
            format!("{path}.fields"),
            format!("from 1 to {MAX_FIELDS} fields"),
        ));
        return;
    }
    for (key, field) in &extract.fields {
        let at = format!("{path}.fields.{key}");
        if field.selector.as_deref().is_some_and(|s| !selector_ok(s)) {
            errors.push(FieldError::new(
                format!("{at}.selector"),
                "a CSS selector of 1 to 1024 bytes",
            ));
        }
        let patterns = [
            ("regex", field.regex.as_deref()),
            ("replace", field.replace.as_ref().map(|(p, _)| p.as_str())),
        ];
        for (name, pattern) in patterns {
            let Some(pattern) = pattern else { continue };
            *regexes += 1;
            let problem = if *regexes > MAX_REGEXES {
                format!("a recipe has at most {MAX_REGEXES} regexes")
            } else if let Err(e) = compile_regex(pattern) {
                format!("not a valid regex: {e}")
            } else {
                continue;
            };
            errors.push(FieldError::new(format!("{at}.{name}"), problem));
        }
        if !field.number.is_off() && field.date.is_some() {
            errors.push(FieldError::new(
                format!("{at}.date"),
                "a field is a number or a date, not both",
            ));
        }
        if let Some(format) = &field.date
            && (format.is_empty()
                || chrono::format::StrftimeItems::new(format)
                    .any(|item| matches!(item, chrono::format::Item::Error)))
        {
            errors.push(FieldError::new(
                format!("{at}.date"),
                "a strftime format such as %Y-%m-%d",
            ));
        }
    }
}
