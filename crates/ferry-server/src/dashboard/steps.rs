//! A `browser.run` job's steps on its page: each step's action and target, how long it
//! took (the result's `step_ms`) and, for a failed attempt, the step it failed at (the
//! error message's `step N (action)`), so a recipe run from the builder shows where its
//! time went and where it stopped. Read from the job's payload as JSON, so a recipe this
//! build would refuse still shows.

use ferry_core::{Job, JobState, recipe::BROWSER_RUN};
use maud::{Markup, html};
use serde_json::Value;

/// One step as the page shows it.
#[derive(Debug, PartialEq)]
struct Row {
    action: String,
    target: String,
    ms: Option<u64>,
    state: &'static str,
}

/// The longest target text shown.
const TARGET_CHARS: usize = 80;

/// The recipe's steps with the result's timings, or with where the attempt failed
/// (`failure`: the error message of a job that did not complete).
fn rows(payload: &Value, result: Option<&Value>, failure: Option<&str>) -> Vec<Row> {
    let Some(steps) = payload.get("steps").and_then(Value::as_array) else {
        return Vec::new();
    };
    let timings = result
        .and_then(|r| r.get("step_ms"))
        .and_then(Value::as_array);
    let failed_at = failure.and_then(failed_step);
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let (action, args) = step
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| *k != "optional"))
                .map(|(k, v)| (k.clone(), v))
                .unwrap_or_else(|| ("?".to_owned(), step));
            let ms = timings.and_then(|t| t.get(i)).and_then(Value::as_u64);
            let state = match failed_at {
                Some(f) if i == f => "failed here",
                Some(f) if i > f => "not reached",
                Some(_) => "done",
                None if ms.is_some() => "done",
                None => "",
            };
            Row {
                action,
                target: target(args),
                ms,
                state,
            }
        })
        .collect()
}

/// The step a browser error names: `step 3 (click): …` → 3.
fn failed_step(message: &str) -> Option<usize> {
    let rest = message.strip_prefix("step ")?;
    let end = rest.find(' ')?;
    rest[..end].parse().ok()
}

/// What a step acts on, in a few words: its URL, selector or first text argument.
fn target(args: &Value) -> String {
    let text = match args {
        Value::String(s) => s.clone(),
        Value::Object(o) => ["url", "selector", "list", "next", "name", "key", "value"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
            .or_else(|| {
                o.get("extract")
                    .and_then(|e| e.get("list"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default(),
        _ => String::new(),
    };
    if text.chars().count() > TARGET_CHARS {
        let cut: String = text.chars().take(TARGET_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// The steps of a `browser.run` job (nothing for other kinds).
pub(super) fn table(job: &Job) -> Markup {
    if job.kind != BROWSER_RUN {
        return html! {};
    }
    // The last attempt's error, while no other attempt runs (a running retry starts over).
    let failure = matches!(
        job.status,
        JobState::Failed | JobState::Cancelled | JobState::Pending | JobState::Scheduled
    )
    .then(|| job.error.as_ref().map(|e| e.message.as_str()))
    .flatten();
    let rows = rows(&job.payload, job.result.as_ref(), failure);
    html! {
        @if !rows.is_empty() {
            section.steps {
                h2 { "Steps" }
                table.jobs {
                    thead { tr { th { "#" } th { "Step" } th { "On" } th.num { "Took" } th { "" } } }
                    tbody {
                        @for (i, r) in rows.iter().enumerate() {
                            tr class=[(r.state == "failed here").then_some("failed")] {
                                td { (i) }
                                td { code { (r.action) } }
                                td { code { (r.target) } }
                                td.num { @if let Some(ms) = r.ms { (ms) " ms" } }
                                td { (r.state) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn recipe() -> Value {
        json!({"steps": [
            {"goto": {"url": "https://shop.example/reviews"}},
            {"click": {"selector": "#more"}, "optional": {"timeout_ms": 500}},
            {"extract": {"list": "li.review", "fields": {}}}
        ]})
    }

    #[test]
    fn a_completed_run_shows_each_steps_time() {
        let result = json!({"rows": 3, "steps": 3, "step_ms": [412, 38, 9]});
        let done = rows(&recipe(), Some(&result), None);
        let seen: Vec<_> = done
            .iter()
            .map(|r| (r.action.as_str(), r.target.as_str(), r.ms, r.state))
            .collect();
        assert_eq!(
            seen,
            [
                ("goto", "https://shop.example/reviews", Some(412), "done"),
                ("click", "#more", Some(38), "done"),
                ("extract", "li.review", Some(9), "done"),
            ]
        );
    }

    #[test]
    fn a_failed_run_shows_where_it_stopped() {
        let failed = rows(
            &recipe(),
            None,
            Some("step 1 (click): nothing matched `#more` within 500 ms"),
        );
        let states: Vec<_> = failed.iter().map(|r| r.state).collect();
        assert_eq!(states, ["done", "failed here", "not reached"]);
        assert!(failed.iter().all(|r| r.ms.is_none()));
        assert_eq!(failed_step("the browser crashed"), None);
        assert_eq!(target(&json!({"url": "x".repeat(200)})).chars().count(), 80);
    }
}
