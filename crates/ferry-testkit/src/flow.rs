//! Checks flow-control guarantees against the server's own event record (never against
//! what workers say they did): replaying the record in id order, no concurrency key ever
//! has more running jobs than its limit, and the starts of one rate key are never closer
//! than its interval nor more than `max` in any `per_ms` window.
//!
//! Clock tolerance: none. The claim that admits a job records the very timestamp it was
//! admitted against, and every instance in the tests reads the same machine clock, so the
//! record must honour the limits exactly.

use std::collections::{BTreeMap, HashMap, HashSet};

use ferry_core::{
    Job, JobId,
    api::Event,
    flow::{Concurrency, RateLimit},
};

/// The keys of each job, as the server stored them.
pub struct Keys {
    jobs: HashMap<JobId, (Option<Concurrency>, Option<RateLimit>)>,
}

impl Keys {
    pub fn of(jobs: &[Job]) -> Self {
        Self {
            jobs: jobs
                .iter()
                .map(|j| (j.id, (j.concurrency.clone(), j.rate_limit.clone())))
                .collect(),
        }
    }
}

/// What the record showed: the highest number of jobs seen running at once per
/// concurrency key, and the starts per rate key (in ms).
#[derive(Debug, Default)]
pub struct Replay {
    pub peak: BTreeMap<String, u32>,
    pub starts: BTreeMap<String, Vec<i64>>,
}

/// Replays `events` (the whole record of the jobs in `keys`, any order) and answers the
/// first violated guarantee.
pub fn check(events: &[Event], keys: &Keys) -> Result<Replay, String> {
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by_key(|e| e.id);
    let mut running: HashMap<String, u32> = HashMap::new();
    let mut live: HashSet<JobId> = HashSet::new();
    let mut replay = Replay::default();
    for e in events {
        let Some((concurrency, rate)) = e.job_id.and_then(|id| keys.jobs.get(&id)) else {
            continue;
        };
        let id = e.job_id.unwrap_or_default();
        match e.event_type.as_str() {
            "job.started" => {
                if !live.insert(id) {
                    return Err(format!("event {}: {id} started twice", e.id));
                }
                if let Some(c) = concurrency {
                    let n = running.entry(c.key.clone()).or_default();
                    *n += 1;
                    if *n > c.limit {
                        return Err(format!(
                            "event {}: {} jobs of key {} running, limit {}",
                            e.id, n, c.key, c.limit
                        ));
                    }
                    let peak = replay.peak.entry(c.key.clone()).or_default();
                    *peak = (*peak).max(*n);
                }
                if let Some(r) = rate {
                    replay
                        .starts
                        .entry(r.key.clone())
                        .or_default()
                        .push(e.at.timestamp_millis());
                }
            }
            "job.completed" | "job.failed" | "job.cancelled" | "job.retrying" => {
                if live.remove(&id)
                    && let Some(c) = concurrency
                    && let Some(n) = running.get_mut(&c.key)
                {
                    *n -= 1;
                }
            }
            _ => {}
        }
    }
    let rules: HashMap<&str, &RateLimit> = keys
        .jobs
        .values()
        .filter_map(|(_, r)| r.as_ref().map(|r| (r.key.as_str(), r)))
        .collect();
    for (key, starts) in &replay.starts {
        let rule = rules[key.as_str()];
        // On PostgreSQL a claim that read the clock before waiting for the admission lock
        // records an earlier time than the claim it waited for: compare in time order.
        // (Admission counts starts after `now - window`, later ones included, so the
        // guarantees hold in time order.)
        let mut sorted = starts.clone();
        sorted.sort_unstable();
        if let Some(interval) = rule.interval_ms
            && let Some(w) = sorted.windows(2).find(|w| w[1] - w[0] < interval as i64)
        {
            return Err(format!(
                "key {key}: starts at {} and {} are closer than {interval} ms",
                w[0], w[1]
            ));
        }
        if let (Some(max), Some(per)) = (rule.max, rule.per_ms) {
            let max = max as usize;
            // Starts i and i+max (max+1 starts) must not fit in one window: the window
            // is (t - per, t], so they must be at least `per` apart.
            if let Some(w) = sorted.windows(max + 1).find(|w| w[max] - w[0] < per as i64) {
                return Err(format!(
                    "key {key}: {} starts within {per} ms ({} .. {})",
                    max + 1,
                    w[0],
                    w[max]
                ));
            }
        }
    }
    Ok(replay)
}

/// `flow.work`: sleeps `payload.ms`; with `payload.push_back` its first attempt fails as a
/// `429` with a Retry-After of [`PUSH_BACK_MS`] (a worker pushing back on the rate key).
pub struct Work;

/// How long a push-back of [`Work`] holds its rate key.
pub const PUSH_BACK_MS: u64 = 40;

#[async_trait::async_trait]
impl ferry_worker::Handler for Work {
    async fn run(
        &self,
        ctx: ferry_worker::JobContext,
    ) -> Result<serde_json::Value, ferry_worker::HandlerError> {
        let ms = ctx.payload["ms"].as_u64().unwrap_or(1);
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        if ctx.payload["push_back"].as_bool() == Some(true) && ctx.attempt == 1 {
            return Err(ferry_worker::HandlerError::retryable(
                "HTTP_STATUS",
                "429 Too Many Requests",
            )
            .with_retry_after(std::time::Duration::from_millis(PUSH_BACK_MS)));
        }
        Ok(serde_json::json!({"slept": ms}))
    }
}

fn spec(
    i: usize,
    ms: u64,
    concurrency: Option<(&str, u32)>,
    rate: Option<RateLimit>,
) -> ferry_core::api::SubmitJob {
    let mut s = ferry_core::api::SubmitJob::new("flow.work", serde_json::json!({"ms": ms, "i": i}));
    s.concurrency = concurrency.map(|(key, limit)| ferry_core::flow::ConcurrencySpec {
        key: key.to_owned(),
        limit: Some(limit),
    });
    s.rate_limit = rate;
    s
}

fn interval(key: &str, ms: u64) -> RateLimit {
    RateLimit {
        key: key.to_owned(),
        interval_ms: Some(ms),
        max: None,
        per_ms: None,
    }
}

/// A job mix of 372 `flow.work` jobs: a burst of `acct:4` (limit 3) first, so a limit is
/// reached and not merely respected; then, interleaved, six concurrency keys with limits
/// 1–3 (15 ms jobs), an interval key (`api:interval`, 15 ms, 40 jobs), a window key
/// (`api:window`, 3 per 100 ms, 40 jobs), jobs with a concurrency and a rate key
/// (`acct:0` + `api:both`), 20 jobs that push back once on `api:pushy`, and unkeyed work.
pub fn mix() -> Vec<ferry_core::api::SubmitJob> {
    let accounts = [
        ("acct:0", 1),
        ("acct:1", 1),
        ("acct:2", 2),
        ("acct:3", 2),
        ("acct:4", 3),
        ("acct:5", 1),
    ];
    let window = RateLimit {
        key: "api:window".into(),
        interval_ms: None,
        max: Some(3),
        per_ms: Some(100),
    };
    let mut jobs: Vec<_> = (0..12)
        .map(|i| spec(1_000 + i, 15, Some(("acct:4", 3)), None))
        .collect();
    for i in 0..360 {
        let quick = ((i * 7) % 5) as u64;
        let s = match i % 9 {
            0..=3 => spec(i, 15, Some(accounts[i % accounts.len()]), None),
            4 => spec(i, quick, None, Some(interval("api:interval", 15))),
            5 => spec(i, quick, None, Some(window.clone())),
            6 => spec(
                i,
                quick,
                Some(("acct:0", 1)),
                Some(interval("api:both", 10)),
            ),
            7 if i % 2 == 1 => {
                let mut s = spec(i, quick, None, Some(interval("api:pushy", 5)));
                s.payload["push_back"] = serde_json::json!(true);
                s
            }
            _ => spec(i, quick, None, None),
        };
        jobs.push(s);
    }
    jobs
}

/// Checks a finished run of [`mix`]: the record honours every limit, the burst reached
/// its key's limit, every rate key started what it should, and no start of the key that
/// the record shows after a push-back came sooner than [`PUSH_BACK_MS`] after it. (Record
/// order, not time: a claim that read the clock before the push-back but ran after it
/// must still wait; one that ran before it is no violation.)
pub fn check_mix(events: &[Event], jobs: &[Job]) -> Result<Replay, String> {
    let replay = check(events, &Keys::of(jobs))?;
    if replay.peak.get("acct:4") != Some(&3) {
        return Err(format!("acct:4 never ran 3 at once: {:?}", replay.peak));
    }
    for (key, n) in [("api:interval", 40), ("api:window", 40), ("api:pushy", 40)] {
        let got = replay.starts.get(key).map_or(0, Vec::len);
        if got != n {
            return Err(format!("{key}: {got} starts, expected {n}"));
        }
    }
    let pushy: HashSet<JobId> = jobs
        .iter()
        .filter(|j| j.rate_limit.as_ref().is_some_and(|r| r.key == "api:pushy"))
        .map(|j| j.id)
        .collect();
    let ours = |e: &&Event| e.job_id.is_some_and(|id| pushy.contains(&id));
    let push_backs: Vec<&Event> = events
        .iter()
        .filter(ours)
        .filter(|e| e.event_type == "job.retrying")
        .collect();
    if push_backs.len() != 20 {
        return Err(format!("{} push-backs, expected 20", push_backs.len()));
    }
    for back in &push_backs {
        let held_until = back.at.timestamp_millis() + PUSH_BACK_MS as i64;
        if let Some(early) = events.iter().filter(ours).find(|e| {
            e.event_type == "job.started" && e.id > back.id && e.at.timestamp_millis() < held_until
        }) {
            return Err(format!(
                "api:pushy started at {} (event {}), after the push-back at {} (event {}) that held it until {held_until}",
                early.at.timestamp_millis(),
                early.id,
                back.at.timestamp_millis(),
                back.id
            ));
        }
    }
    Ok(replay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn job_with(concurrency: Option<(&str, u32)>, rate: Option<RateLimit>) -> Job {
        let mut j: Job = serde_json::from_value(serde_json::json!({
            "id": JobId::new(), "kind": "k", "status": "pending", "payload": {}, "labels": {},
            "priority": 0, "attempt": 0, "max_attempts": 1, "timeout_ms": 1,
            "backoff": {"base_ms": 1, "max_ms": 1}, "run_at": "2030-01-01T00:00:00Z",
            "created_at": "2030-01-01T00:00:00Z", "updated_at": "2030-01-01T00:00:00Z",
            "started_at": null, "finished_at": null, "worker_id": null,
            "lease_expires_at": null, "deadline_at": null, "cancel_requested": false,
            "progress": null, "result": null, "error": null, "dedupe_key": null,
            "parent_id": null
        }))
        .expect("a job");
        j.concurrency = concurrency.map(|(key, limit)| Concurrency {
            key: key.into(),
            limit,
        });
        j.rate_limit = rate;
        j
    }

    fn event(id: i64, t: &str, job: &Job, at_ms: i64) -> Event {
        Event {
            id,
            event_type: t.into(),
            job_id: Some(job.id),
            kind: None,
            attempt: None,
            data: None,
            at: Utc.timestamp_millis_opt(at_ms).single().expect("time"),
        }
    }

    /// The checker catches what it exists to catch.
    #[test]
    fn violations_are_found() {
        let a = job_with(Some(("k", 1)), None);
        let b = job_with(Some(("k", 1)), None);
        let keys = Keys::of(&[a.clone(), b.clone()]);
        let overlapping = [
            event(1, "job.started", &a, 0),
            event(2, "job.started", &b, 1),
            event(3, "job.completed", &a, 2),
        ];
        assert!(check(&overlapping, &keys).is_err());
        let serial = [
            event(1, "job.started", &a, 0),
            event(2, "job.completed", &a, 1),
            event(3, "job.started", &b, 1),
        ];
        assert_eq!(check(&serial, &keys).expect("serial").peak["k"], 1);

        let r = |i, m, p| {
            job_with(
                None,
                Some(RateLimit {
                    key: "r".into(),
                    interval_ms: i,
                    max: m,
                    per_ms: p,
                }),
            )
        };
        let (c, d) = (r(Some(10), None, None), r(Some(10), None, None));
        let keys = Keys::of(&[c.clone(), d.clone()]);
        assert!(
            check(
                &[
                    event(1, "job.started", &c, 0),
                    event(2, "job.started", &d, 9)
                ],
                &keys
            )
            .is_err()
        );
        assert!(
            check(
                &[
                    event(1, "job.started", &c, 0),
                    event(2, "job.started", &d, 10)
                ],
                &keys
            )
            .is_ok()
        );
        let w: Vec<Job> = (0..3).map(|_| r(None, Some(2), Some(100))).collect();
        let keys = Keys::of(&w);
        let starts = |last| {
            vec![
                event(1, "job.started", &w[0], 0),
                event(2, "job.started", &w[1], 50),
                event(3, "job.started", &w[2], last),
            ]
        };
        assert!(check(&starts(99), &keys).is_err());
        assert!(check(&starts(100), &keys).is_ok());
    }
}
