//! `ferry status` and `ferry workers`: what an operator watches, from `GET /v1/stats` and
//! `GET /v1/workers`; text by default, `--json` for scripts.

use std::{collections::BTreeMap, path::Path, process::ExitCode};

use anyhow::Result;
use chrono::{DateTime, Utc};
use ferry_core::JobState;

use crate::{cli::ConnectArgs, config::api_client as client};

/// `ferry status`: counts by kind and state, the last hour's throughput and failure rate,
/// the oldest waiting job, paused kinds, connected workers.
pub async fn status(args: ConnectArgs, config: Option<&Path>) -> Result<ExitCode> {
    let stats = client(&args.connect, config)?.stats().await?;
    if args.connect.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(ExitCode::SUCCESS);
    }
    let columns = [
        JobState::Scheduled,
        JobState::Pending,
        JobState::Running,
        JobState::Failed,
    ];
    let mut rows: BTreeMap<&str, [u64; 4]> = BTreeMap::new();
    for k in &stats.jobs.kinds {
        if let Some(i) = columns.iter().position(|s| *s == k.state) {
            rows.entry(k.kind.as_str()).or_default()[i] += k.count;
        }
    }
    let width = rows.keys().map(|k| k.len()).max().unwrap_or(4).max(4);
    println!(
        "{:width$}  {:>9}  {:>9}  {:>9}  {:>9}",
        "kind", "scheduled", "pending", "running", "failed"
    );
    for (kind, n) in &rows {
        println!(
            "{kind:width$}  {:>9}  {:>9}  {:>9}  {:>9}",
            n[0], n[1], n[2], n[3]
        );
    }
    if rows.is_empty() {
        println!("(no unfinished or failed jobs)");
    }
    let rate = stats
        .failure_rate
        .map(|r| format!(", {:.1}% failed", r * 100.0))
        .unwrap_or_default();
    println!(
        "last hour: {} completed, {} failed{rate}",
        stats.completed, stats.failed
    );
    if let Some(oldest) = stats.jobs.oldest_pending_at {
        println!("oldest waiting job: {} old", age(oldest, Utc::now()));
    }
    if !stats.paused_kinds.is_empty() {
        println!("paused: {}", stats.paused_kinds.join(" "));
    }
    println!("workers connected: {}", stats.workers_connected);
    Ok(ExitCode::SUCCESS)
}

/// `ferry workers`: the workers heard from in the last day.
pub async fn workers(args: ConnectArgs, config: Option<&Path>) -> Result<ExitCode> {
    let list = client(&args.connect, config)?.workers().await?;
    if args.connect.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.workers.is_empty() {
        println!("no worker has claimed in the last day");
        return Ok(ExitCode::SUCCESS);
    }
    let now = Utc::now();
    let width = list
        .workers
        .iter()
        .map(|w| w.id.len())
        .max()
        .unwrap_or(2)
        .max(2);
    println!(
        "{:width$}  {:<12}  {:>4}  {:>9}  {:<15}  kinds",
        "id", "status", "jobs", "last seen", "address"
    );
    for w in &list.workers {
        println!(
            "{:width$}  {:<12}  {:>4}  {:>9}  {:<15}  {}",
            w.id,
            if w.connected { "connected" } else { "gone" },
            w.jobs_in_hand,
            age(w.last_seen_at, now),
            w.address.as_deref().unwrap_or("-"),
            w.kinds.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How long ago `at` was, in the largest whole unit: `42s`, `7m`, `3h`, `2d`.
fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m", secs / 60),
        3_600..86_400 => format!("{}h", secs / 3_600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::age;

    #[test]
    fn ages_read_in_their_largest_unit() {
        let now = Utc
            .with_ymd_and_hms(2030, 1, 2, 0, 0, 0)
            .single()
            .expect("time");
        let ago = |s: i64| age(now - chrono::Duration::seconds(s), now);
        assert_eq!(
            [ago(-5), ago(42), ago(420), ago(7_200), ago(200_000)],
            ["0s", "42s", "7m", "2h", "2d"]
        );
    }
}
