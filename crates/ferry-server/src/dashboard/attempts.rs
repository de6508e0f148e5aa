//! A job's history on its page: each attempt (its worker, when it started and ended, how,
//! and the error with what usually causes it), read from the job's own events; and the jobs its
//! chain enqueued.

use chrono::{DateTime, Utc};
use ferry_core::{Job, api::Event};
use maud::{Markup, html};

use super::jobs::{badge, short, time};

/// One attempt as its events tell it.
#[derive(Debug, Default)]
struct Attempt {
    number: u32,
    started: Option<DateTime<Utc>>,
    ended: Option<DateTime<Utc>>,
    /// `completed`, `failed`, `retrying`, `cancelled`; none while it runs.
    outcome: Option<&'static str>,
    /// The worker that took it (recorded on `job.started` since migration 28).
    worker: Option<String>,
    code: Option<String>,
    message: Option<String>,
}

fn attempts_of(events: &[Event]) -> Vec<Attempt> {
    let mut out: Vec<Attempt> = Vec::new();
    for e in events {
        let number = e.attempt.unwrap_or(0);
        let outcome = match e.event_type.as_str() {
            "job.started" => {
                out.push(Attempt {
                    number,
                    started: Some(e.at),
                    worker: data_text(e, "worker_id"),
                    ..Attempt::default()
                });
                continue;
            }
            "job.completed" => "completed",
            "job.failed" => "failed",
            "job.retrying" => "retrying",
            "job.cancelled" => "cancelled",
            _ => continue,
        };
        // The end of the attempt that is open. None is when a finished job was retried by
        // hand (its attempts count from 1 again) or a waiting one cancelled: a row of its
        // own says so.
        let open_now = out
            .last()
            .is_some_and(|a| a.outcome.is_none() && a.number == number);
        if !open_now {
            out.push(Attempt {
                number: 0,
                ended: Some(e.at),
                outcome: Some(match outcome {
                    "retrying" => "retried by hand",
                    "cancelled" => "cancelled while waiting",
                    other => other,
                }),
                ..Attempt::default()
            });
            continue;
        }
        let Some(open) = out.last_mut() else {
            continue;
        };
        open.ended = Some(e.at);
        open.outcome = Some(outcome);
        open.code = data_text(e, "code");
        open.message = data_text(e, "message");
    }
    out
}

/// A text field of the event's data.
fn data_text(e: &Event, key: &str) -> Option<String> {
    e.data
        .as_ref()
        .and_then(|d| d.get(key))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// What usually causes an error code, and what to do about it.
fn guidance(code: &str) -> Option<&'static str> {
    Some(match code {
        "NAVIGATION_ERROR" => {
            "The page could not be loaded at all: the site was down or refused the connection, or the URL is wrong. Retried automatically."
        }
        "NAVIGATION_TIMEOUT" => {
            "The page did not finish loading in time (navigation_timeout_ms): a slow site, or one that never answers. Retried automatically."
        }
        "SELECTOR_TIMEOUT" => {
            "A step waited for an element that never showed: the page changed its layout, shows something else (a login, a consent banner), or renders later than the step waited. See the failure screenshot and HTML."
        }
        "EXTRACT_EMPTY" => {
            "The list matched fewer rows than min_rows: often a signed-out page or a changed layout. Set min_rows: 0 (or allow_empty) where a page may be empty."
        }
        "EXTRACT_MISSING" => {
            "A required field was missing in a row: the layout changed for some rows."
        }
        "HTTP_STATUS" => {
            "The site answered with an error status. 429 (too many requests) and 503 are retried, after the site's Retry-After; set a per-domain rate limit to stay under it."
        }
        "HTTP_429" => {
            "Too many requests: the site is rate limiting. Retried after its Retry-After; a rate limit on the job (or the tenant's per-domain limits) keeps under it."
        }
        "EGRESS_DENIED" => {
            "The egress policy refused where the job connects (an internal address, or a host not allowed). See the Egress page."
        }
        "SECRET_REFUSED" => {
            "A secret would have gone to a host it is not bound to. Bind it to that domain on the Secrets page, or change the step."
        }
        "TIMEOUT" => {
            "The attempt ran past its timeout (timeout_ms) and was stopped, or the browser stopped answering a command. Retried automatically."
        }
        "LEASE_EXPIRED" => {
            "The worker stopped reporting (it died, or lost the network): the job was rescued, and runs again if it has attempts left."
        }
        "BROWSER_CRASHED" => "Chromium failed; the worker starts a new one. Retried automatically.",
        "FRAME_UNREACHABLE" => {
            "A frame step found a frame of another origin: open its URL with goto instead."
        }
        _ => return None,
    })
}

/// The job's attempts, newest last.
pub(super) fn history(events: &[Event]) -> Markup {
    let attempts = attempts_of(events);
    html! {
        @if !attempts.is_empty() {
            section.attempts {
                h2 { "Attempts" }
                table.jobs {
                    thead { tr { th { "#" } th.worker { "Worker" } th { "Started" } th { "Ended" } th { "Outcome" } th { "Error" } } }
                    tbody {
                        @for a in &attempts {
                            tr {
                                td { @if a.number > 0 { (a.number) } @else { "—" } }
                                td.worker { @if let Some(w) = &a.worker { code { (w) } } }
                                td { (a.started.map(time).unwrap_or_default()) }
                                td { (a.ended.map(time).unwrap_or_default()) }
                                td { (a.outcome.unwrap_or("running")) }
                                td {
                                    @if let Some(code) = &a.code {
                                        code { (code) } " " (a.message.as_deref().unwrap_or(""))
                                        @if let Some(hint) = guidance(code) { p.muted.hint { (hint) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The jobs the job's chain enqueued.
pub(super) fn children(jobs: &[Job]) -> Markup {
    html! {
        @if !jobs.is_empty() {
            section.children {
                h2 { "Enqueued by this job" }
                ul {
                    @for j in jobs {
                        li { a href={ "/jobs/" (j.id) } { code { (short(j.id)) } } " " (j.kind) " " (badge(j.status)) }
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

    fn event(id: i64, kind: &str, attempt: u32, data: Option<serde_json::Value>) -> Event {
        Event {
            id,
            event_type: kind.to_owned(),
            job_id: None,
            kind: Some("shop.sync".into()),
            attempt: Some(attempt),
            data,
            at: DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap_or_default(),
        }
    }

    #[test]
    fn attempts_are_read_from_the_events() {
        let events = [
            event(1, "job.created", 0, None),
            event(2, "job.started", 1, Some(json!({"worker_id": "laptop-1"}))),
            event(
                3,
                "job.retrying",
                1,
                Some(json!({"code": "HTTP_429", "message": "slow down"})),
            ),
            event(4, "job.started", 2, Some(json!({"worker_id": "vm-2"}))),
            event(5, "job.completed", 2, None),
        ];
        let attempts = attempts_of(&events);
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0].worker.as_deref(), Some("laptop-1"));
        assert_eq!(attempts[1].worker.as_deref(), Some("vm-2"));
        assert_eq!(attempts[0].outcome, Some("retrying"));
        assert_eq!(attempts[0].code.as_deref(), Some("HTTP_429"));
        assert_eq!(attempts[1].outcome, Some("completed"));
        assert!(attempts[1].code.is_none());
        // A manual retry of a finished job (its attempts count from 1 again) is a row of
        // its own, then the attempts it started.
        let retried = [
            event(1, "job.started", 1, None),
            event(
                2,
                "job.failed",
                1,
                Some(json!({"code": "X", "message": "m"})),
            ),
            event(3, "job.retrying", 0, None),
            event(4, "job.started", 1, None),
        ];
        let attempts = attempts_of(&retried);
        assert_eq!(attempts.len(), 3);
        assert_eq!(attempts[0].outcome, Some("failed"));
        assert_eq!(
            (attempts[1].number, attempts[1].outcome),
            (0, Some("retried by hand"))
        );
        assert_eq!((attempts[2].number, attempts[2].outcome), (1, None));
        assert!(guidance("SELECTOR_TIMEOUT").is_some());
    }
}
