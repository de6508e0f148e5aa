//! The overview: how many jobs wait, run and failed, how old the oldest waiting one is,
//! what finished in the last hour (a bar chart drawn as inline SVG, five minutes a bar),
//! the same by kind, the paused kinds and how many workers are connected.

use std::collections::BTreeMap;

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Duration, Utc};
use ferry_core::{
    JobState,
    observe::{FinishedBucket, Stats},
};
use maud::{Markup, html};

use super::layout::{error_page, page};
use super::session::PageUser;
use crate::app::STATS_WINDOW;
use crate::http::AppState;

const BARS: i64 = 12;
const BAR_MINUTES: i64 = 5;

/// `3 s`, `4 min`, `2 h`, `3 d`.
fn age(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min", s / 60),
        3_600..86_400 => format!("{} h", s / 3_600),
        _ => format!("{} d", s / 86_400),
    }
}

/// The last hour's finished jobs as bars, oldest left; each bar a five-minute bucket.
fn chart(finished: &[FinishedBucket], now: DateTime<Utc>) -> Markup {
    let bucket_ms = BAR_MINUTES * 60_000;
    let last = now.timestamp_millis() - now.timestamp_millis() % bucket_ms;
    let bars: Vec<(u64, u64)> = (0..BARS)
        .map(|i| {
            let start = last - (BARS - 1 - i) * bucket_ms;
            finished
                .iter()
                .find(|b| b.at.timestamp_millis() == start)
                .map_or((0, 0), |b| (b.completed, b.failed))
        })
        .collect();
    let most = bars.iter().map(|(c, f)| c + f).max().unwrap_or(0).max(1);
    let (width, height, gap) = (24u64, 80u64, 4u64);
    let total_width = BARS as u64 * (width + gap);
    html! {
        svg.chart viewBox={ "0 0 " (total_width) " " (height) } preserveAspectRatio="none"
            role="img" aria-label="jobs finished per five minutes over the last hour" {
            @for (i, (completed, failed)) in bars.iter().enumerate() {
                @let x = i as u64 * (width + gap);
                @let ok_h = completed * height / most;
                @let bad_h = failed * height / most;
                rect.ok x=(x) y=(height - ok_h) width=(width) height=(ok_h) {
                    title { (completed) " completed" }
                }
                rect.bad x=(x) y=(height - ok_h - bad_h) width=(width) height=(bad_h) {
                    title { (failed) " failed" }
                }
            }
            line.axis x1="0" y1=(height) x2=(total_width) y2=(height) {}
        }
        p.axis { span { (BARS * BAR_MINUTES) " min ago" } span { "now" } }
    }
}

fn render(user: &PageUser, summary: &Stats, now: DateTime<Utc>) -> Markup {
    let (stats, paused) = (&summary.jobs, &summary.paused_kinds);
    let total = |state: JobState| -> u64 {
        stats
            .kinds
            .iter()
            .filter(|k| k.state == state)
            .map(|k| k.count)
            .sum()
    };
    let mut by_kind: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
    for k in &stats.kinds {
        let slot = match k.state {
            JobState::Scheduled => 0,
            JobState::Pending => 1,
            JobState::Running => 2,
            _ => 3,
        };
        by_kind.entry(k.kind.as_str()).or_default()[slot] += k.count;
    }
    let (completed, failed) = (summary.completed, summary.failed);
    let rate = summary.failure_rate.map(|r| (r * 100.0).round());
    page(
        "Overview",
        Some(user),
        html! {
            h1 { "Overview" }
            div.cards {
                div.card { span.n { (total(JobState::Pending) + total(JobState::Scheduled)) } " waiting" }
                div.card { span.n { (total(JobState::Running)) } " running" }
                div.card { a href="/dead" { span.n { (total(JobState::Failed)) } " failed" } }
                div.card {
                    span.n { @if let Some(at) = stats.oldest_pending_at { (age(now - at)) } @else { "—" } }
                    " oldest waiting"
                }
                div.card {
                    span.n { (completed + failed) } " finished in the last "
                    (STATS_WINDOW.num_minutes()) " min"
                    @if let Some(rate) = rate { br; small { (rate) " % failed" } }
                }
                div.card { a href="/workers" { span.n { (summary.workers_connected) } " workers connected" } }
            }
            h2 { "Finished per five minutes" }
            (chart(&stats.finished, now))
            h2 { "By kind" }
            @if by_kind.is_empty() {
                p.empty { "No waiting, running or failed jobs." }
            } @else {
                table.jobs {
                    thead { tr { th { "Kind" } th { "Scheduled" } th { "Pending" } th { "Running" } th { "Failed" } } }
                    tbody {
                        @for (kind, n) in &by_kind {
                            @let link = |state: &str| form_urlencoded::Serializer::new(String::new())
                                .append_pair("state", state)
                                .append_pair("kind", kind)
                                .finish();
                            tr {
                                td { (kind) }
                                td { a href={ "/jobs?" (link("scheduled")) } { (n[0]) } }
                                td { a href={ "/jobs?" (link("pending")) } { (n[1]) } }
                                td { a href={ "/jobs?" (link("running")) } { (n[2]) } }
                                td { a href={ "/jobs?" (link("failed")) } { (n[3]) } }
                            }
                        }
                    }
                }
            }
            @if !paused.is_empty() {
                h2 { "Paused kinds" }
                ul.paused { @for p in paused { li { code { (p) } } } }
            }
        },
    )
}

pub async fn show(State(queue): State<AppState>, user: PageUser) -> Response {
    match queue.stats_summary(&user.principal).await {
        Ok(summary) => render(&user, &summary, queue.now()).into_response(),
        Err(e) => error_page(&e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_in_the_largest_unit() {
        use chrono::Duration;
        assert_eq!(super::age(Duration::seconds(5)), "5 s");
        assert_eq!(super::age(Duration::seconds(125)), "2 min");
        assert_eq!(super::age(Duration::hours(3)), "3 h");
        assert_eq!(super::age(Duration::days(2)), "2 d");
        assert_eq!(super::age(Duration::seconds(-4)), "0 s");
    }
}
