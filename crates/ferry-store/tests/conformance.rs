//! The store conformance suite: every backend must pass every check here. Each check
//! is an `async fn(Store)`; the `backends!` macro at the bottom instantiates them per
//! backend, each test on a fresh database. Time is passed explicitly, never slept.

use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ferry_core::{
    DEFAULT_TENANT, JobError, JobId, JobState, KindPattern, NewJob, Progress, TenantId,
    api::SubmitJob,
    validate::{JobDefaults, new_job},
};
use ferry_store::{
    ClaimParams, CompleteParams, FailParams, ListParams, Overdue, ProgressParams, Store, StoreError,
};
use serde_json::{Value, json};

const T: &str = DEFAULT_TENANT;

#[path = "conformance/datasets.rs"]
mod datasets;
use datasets::{
    dataset_items_must_carry_their_key, datasets_record_new_changed_and_gone,
    snapshot_runs_that_would_empty_a_dataset_are_refused,
};
#[path = "conformance/chains.rs"]
mod chains;
#[path = "conformance/flow.rs"]
mod flow;
use chains::chains_enqueue_children_when_the_parent_completes;
#[path = "conformance/audit.rs"]
mod audit;
#[path = "conformance/users.rs"]
mod users;
use users::users_hold_roles_per_tenant_and_sessions_end_with_them;
#[path = "conformance/upkeep.rs"]
mod upkeep;
use upkeep::{retention_deletes_finished_jobs_only, workers_are_recorded_listed_and_forgotten};
#[path = "conformance/acting.rs"]
mod acting;
use acting::{
    cancel_waiting_and_running_jobs, failed_jobs_are_grouped_and_retried_by_group,
    paused_kinds_are_not_claimed, retry_revives_failed_and_cancelled,
};
#[path = "conformance/stats.rs"]
mod stats;
use stats::{list_filters_and_pages, stats_count_jobs_by_kind_and_finished_per_bucket};
#[path = "conformance/events.rs"]
mod events;
use events::{
    filtered_reads_advance_past_what_they_scanned, progress_and_batches_are_recorded_as_events,
    state_changes_are_recorded_as_events,
};
#[path = "conformance/batches.rs"]
mod batches;
#[path = "conformance/keys.rs"]
mod keys;
use audit::{audit, audit_entries_are_written_with_their_change_only};
use batches::{
    batches_are_listed_newest_first_in_their_tenant, batches_track_progress_and_results,
};
use flow::{
    concurrency_keys_cap_running_jobs, concurrent_claims_respect_concurrency_keys,
    held_back_keys_do_not_block_others, push_back_holds_the_rate_key, rate_interval_spaces_starts,
    rate_starts_are_pruned_after_a_day, rate_waits_hold_no_concurrency_slot,
    rate_window_caps_starts,
};
use keys::tenants_and_api_keys_are_kept_and_revoked;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

/// A job factory with sensible defaults; tweak the spec with `f`.
fn job(kind: &str, f: impl FnOnce(&mut SubmitJob)) -> NewJob {
    let mut spec = SubmitJob::new(kind, json!({"n": 1}));
    spec.backoff = Some(ferry_core::Backoff {
        base_ms: 1000,
        max_ms: 1000,
    });
    f(&mut spec);
    new_job(
        &TenantId::default(),
        spec,
        &JobDefaults::default(),
        t0(),
        "",
    )
    .expect("valid job spec")
}

fn pat(s: &str) -> KindPattern {
    s.parse().expect("valid pattern")
}

async fn insert(store: &Store, jobs: Vec<NewJob>) -> Vec<JobId> {
    store
        .job_insert(&jobs, t0())
        .await
        .expect("insert")
        .iter()
        .map(|i| i.job.id)
        .collect()
}

async fn claim(
    store: &Store,
    kinds: &[&str],
    n: u32,
    now: DateTime<Utc>,
) -> Vec<ferry_core::api::ClaimedJob> {
    let kinds: Vec<_> = kinds.iter().map(|k| pat(k)).collect();
    store
        .job_claim(&ClaimParams {
            tenant_id: T,
            worker_id: "w1",
            kinds: &kinds,
            max_jobs: n,
            lease_ms: 10_000,
            now,
        })
        .await
        .expect("claim")
}

async fn complete(
    store: &Store,
    id: JobId,
    lease: &str,
    result: &Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut answers = store
        .job_complete(&[CompleteParams { id, lease, result }], now)
        .await
        .expect("complete transaction")
        .answers;
    answers.pop().expect("one answer")
}

async fn fail(
    store: &Store,
    id: JobId,
    lease: &str,
    retryable: bool,
    now: DateTime<Utc>,
) -> Result<ferry_core::Job, StoreError> {
    store
        .job_fail(&FailParams {
            id,
            lease,
            error: JobError::new("BOOM", "it broke", retryable),
            retry_after_ms: None,
            now,
        })
        .await
}

async fn status(store: &Store, id: JobId) -> JobState {
    store.job_get(T, id).await.expect("get").status
}

async fn insert_then_get_roundtrips(store: Store) {
    let new = job("http.request", |s| {
        s.labels = Some([("store_id".to_owned(), "42".to_owned())].into());
        s.priority = Some(5);
    });
    let created: Vec<_> = store
        .job_insert(&[new], t0())
        .await
        .expect("insert")
        .into_iter()
        .map(|i| i.job)
        .collect();
    let got = store.job_get(T, created[0].id).await.expect("get");
    assert_eq!(got, created[0]);
    assert_eq!(got.status, JobState::Pending);
    assert_eq!(got.labels.get("store_id").map(String::as_str), Some("42"));
    assert!(matches!(
        store.job_get(T, JobId::new()).await,
        Err(StoreError::NotFound(ferry_store::Entity::Job))
    ));
    assert!(matches!(
        store.job_get("other-tenant", got.id).await,
        Err(StoreError::NotFound(ferry_store::Entity::Job))
    ));
}

async fn claim_order_is_priority_then_fifo(store: Store) {
    let low = insert(&store, vec![job("a", |_| {})]).await[0];
    let high = insert(&store, vec![job("a", |s| s.priority = Some(10))]).await[0];
    let low2 = insert(&store, vec![job("a", |_| {})]).await[0];
    let got: Vec<_> = claim(&store, &["a"], 10, t0())
        .await
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, vec![high, low, low2]);
    assert!(
        claim(&store, &["a"], 10, t0()).await.is_empty(),
        "nothing is claimed twice"
    );
}

async fn claim_filters_kinds(store: Store) {
    insert(
        &store,
        vec![
            job("http.request", |_| {}),
            job("httpx.get", |_| {}),
            job("doc.pdf.v1", |_| {}),
        ],
    )
    .await;
    let kinds = |jobs: Vec<ferry_core::api::ClaimedJob>| {
        jobs.into_iter().map(|j| j.kind).collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(claim(&store, &["http.*"], 10, t0()).await),
        ["http.request"]
    );
    assert_eq!(
        kinds(claim(&store, &["doc.pdf.v1", "nope"], 10, t0()).await),
        ["doc.pdf.v1"]
    );
    assert_eq!(kinds(claim(&store, &["*"], 10, t0()).await), ["httpx.get"]);
}

async fn claim_batches_and_limits(store: Store) {
    insert(&store, (0..5).map(|_| job("a", |_| {})).collect()).await;
    let first = claim(&store, &["a"], 3, t0()).await;
    assert_eq!(first.len(), 3);
    let leases: HashSet<_> = first.iter().map(|j| j.lease.clone()).collect();
    assert_eq!(leases.len(), 3, "each claimed job gets its own lease");
    assert!(
        first
            .iter()
            .all(|j| j.attempt == 1 && j.lease_expires_at == t0() + ms(10_000))
    );
    assert_eq!(claim(&store, &["a"], 3, t0()).await.len(), 2);
}

async fn concurrent_claims_never_share_a_job(store: Store) {
    let n = 300;
    insert(&store, (0..n).map(|_| job("a", |_| {})).collect()).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = claim(&store, &["a"], 7, t0()).await;
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), n);
    assert_eq!(distinct.len(), n);
}

async fn delayed_jobs_wait_for_run_at(store: Store) {
    let id = insert(&store, vec![job("a", |s| s.delay_ms = Some(5_000))]).await[0];
    assert_eq!(status(&store, id).await, JobState::Scheduled);
    assert!(claim(&store, &["a"], 1, t0() + ms(4_999)).await.is_empty());
    assert_eq!(
        store
            .job_next_run_at(T, &[pat("a")], t0())
            .await
            .expect("next"),
        Some(t0() + ms(5_000))
    );
    assert_eq!(
        store
            .job_next_run_at(T, &[pat("a.*"), pat("b")], t0())
            .await
            .expect("next"),
        None
    );
    assert_eq!(
        store
            .job_next_run_at(T, &[pat("*")], t0())
            .await
            .expect("next"),
        Some(t0() + ms(5_000))
    );
    assert_eq!(
        store
            .job_promote_scheduled(t0() + ms(5_000), 100)
            .await
            .expect("promote"),
        1
    );
    assert_eq!(status(&store, id).await, JobState::Pending);
    assert_eq!(claim(&store, &["a"], 1, t0() + ms(5_000)).await.len(), 1);
}

async fn heartbeat_extends_and_fences(store: Store) {
    let id = insert(&store, vec![job("a", |_| {})]).await[0];
    let c = claim(&store, &["a"], 1, t0()).await.remove(0);
    let hb = store
        .job_heartbeat(id, &c.lease, t0() + ms(4_000))
        .await
        .expect("heartbeat");
    assert_eq!(hb.lease_expires_at, t0() + ms(14_000));
    assert!(!hb.cancel);
    assert!(matches!(
        store.job_heartbeat(id, "not-the-lease", t0()).await,
        Err(StoreError::LeaseLost {
            status: JobState::Running
        })
    ));
    assert!(matches!(
        store.job_heartbeat(JobId::new(), &c.lease, t0()).await,
        Err(StoreError::NotFound(ferry_store::Entity::Job))
    ));
}

async fn complete_applies_once_and_is_fenced(store: Store) {
    let id = insert(&store, vec![job("a", |_| {})]).await[0];
    let c = claim(&store, &["a"], 1, t0()).await.remove(0);
    assert!(matches!(
        complete(&store, id, "wrong", &json!(1), t0()).await,
        Err(StoreError::LeaseLost {
            status: JobState::Running
        })
    ));
    // A result with a quote, a backslash, a newline and non-ASCII text is kept as sent.
    let result = json!({"ok": "\"\\é東🚢\n"});
    let at = t0() + ms(100);
    complete(&store, id, &c.lease, &result, at)
        .await
        .expect("complete");
    // The same report again: same answer, nothing applied twice.
    let other = json!({"ok": "other"});
    complete(&store, id, &c.lease, &other, at + ms(100))
        .await
        .expect("repeat");
    let done = store.job_get(T, id).await.expect("get");
    assert_eq!(done.status, JobState::Completed);
    assert_eq!(done.result, Some(result));
    assert_eq!(done.finished_at, Some(t0() + ms(100)));
    assert!(matches!(
        fail(&store, id, &c.lease, true, t0()).await,
        Err(StoreError::LeaseLost {
            status: JobState::Completed
        })
    ));
}

async fn batch_complete_answers_each_entry(store: Store) {
    let ids = insert(&store, (0..3).map(|_| job("a", |_| {})).collect()).await;
    let claimed = claim(&store, &["a"], 3, t0()).await;
    let result = json!("r");
    let missing = JobId::new();
    let entries = vec![
        CompleteParams {
            id: claimed[0].id,
            lease: &claimed[0].lease,
            result: &result,
        },
        CompleteParams {
            id: claimed[1].id,
            lease: "stale",
            result: &result,
        },
        CompleteParams {
            id: missing,
            lease: "x",
            result: &result,
        },
        CompleteParams {
            id: claimed[2].id,
            lease: &claimed[2].lease,
            result: &result,
        },
    ];
    let answers = store
        .job_complete(&entries, t0())
        .await
        .expect("batch")
        .answers;
    assert!(answers[0].is_ok());
    assert!(matches!(answers[1], Err(StoreError::LeaseLost { .. })));
    assert!(matches!(
        answers[2],
        Err(StoreError::NotFound(ferry_store::Entity::Job))
    ));
    assert!(answers[3].is_ok());
    let states: Vec<_> = futures_states(&store, &ids).await;
    assert_eq!(
        states.iter().filter(|s| **s == JobState::Completed).count(),
        2
    );
    // The same entry twice in one batch: both answered, applied once.
    insert(&store, vec![job("b", |_| {})]).await;
    let c = claim(&store, &["b"], 1, t0()).await.remove(0);
    let twice = [
        CompleteParams {
            id: c.id,
            lease: &c.lease,
            result: &result,
        },
        CompleteParams {
            id: c.id,
            lease: &c.lease,
            result: &result,
        },
    ];
    let answers = store
        .job_complete(&twice, t0())
        .await
        .expect("batch")
        .answers;
    assert!(answers.iter().all(|a| a.is_ok()), "{answers:?}");
}

async fn futures_states(store: &Store, ids: &[JobId]) -> Vec<JobState> {
    let mut out = Vec::new();
    for id in ids {
        out.push(status(store, *id).await);
    }
    out
}

async fn failures_retry_with_backoff_then_die(store: Store) {
    let id = insert(&store, vec![job("a", |s| s.max_attempts = Some(2))]).await[0];
    let c1 = claim(&store, &["a"], 1, t0()).await.remove(0);
    let after1 = fail(&store, id, &c1.lease, true, t0())
        .await
        .expect("fail 1");
    assert_eq!(after1.status, JobState::Scheduled);
    assert_eq!(after1.error.as_ref().map(|e| e.code.as_str()), Some("BOOM"));
    // base 1000 with equal jitter: between 500 and 1000 ms later.
    assert!(
        after1.run_at >= t0() + ms(500) && after1.run_at <= t0() + ms(1000),
        "{}",
        after1.run_at
    );
    // A repeated fail of the same attempt is answered, not applied again.
    assert_eq!(
        fail(&store, id, &c1.lease, true, t0())
            .await
            .expect("repeat")
            .attempt,
        1
    );
    assert!(claim(&store, &["a"], 1, t0() + ms(400)).await.is_empty());
    let c2 = claim(&store, &["a"], 1, t0() + ms(1000)).await.remove(0);
    assert_eq!(c2.attempt, 2);
    assert_ne!(c2.lease, c1.lease);
    let dead = fail(&store, id, &c2.lease, true, t0() + ms(1000))
        .await
        .expect("fail 2");
    assert_eq!(dead.status, JobState::Failed);
    assert!(dead.finished_at.is_some());
}

/// A job that completes after a failed attempt shows no error; the attempt's error stays
/// in its history (the `job.retrying` event). Both completion paths: plain and chained.
async fn completion_clears_the_error_of_earlier_attempts(store: Store) {
    let plain = insert(&store, vec![job("a", |_| {})]).await[0];
    let chained = insert(
        &store,
        vec![job("a", |s| {
            s.then = Some(vec![
                serde_json::from_value(json!({"kind": "b"})).expect("spec"),
            ]);
        })],
    )
    .await[0];
    for c in claim(&store, &["a"], 2, t0()).await {
        fail(&store, c.id, &c.lease, true, t0())
            .await
            .expect("fail");
    }
    for id in [plain, chained] {
        let failed = store.job_get(T, id).await.expect("get");
        assert_eq!(failed.error.map(|e| e.code), Some("BOOM".to_owned()));
    }
    for c in claim(&store, &["a"], 2, t0() + ms(2_000)).await {
        complete(
            &store,
            c.id,
            &c.lease,
            &json!({"ok": true}),
            t0() + ms(2_000),
        )
        .await
        .expect("complete");
    }
    for id in [plain, chained] {
        let done = store.job_get(T, id).await.expect("get");
        assert_eq!(done.status, JobState::Completed);
        assert_eq!(done.error, None, "a completed job shows no error");
        let filter = ferry_store::EventFilter {
            job: Some(id),
            ..Default::default()
        };
        let events = settled_events(&store, &filter, 5).await;
        let retrying = events
            .iter()
            .find(|e| e.event_type == "job.retrying")
            .expect("the failed attempt is in the history");
        assert_eq!(
            retrying.data.as_ref().and_then(|d| d["code"].as_str()),
            Some("BOOM")
        );
    }
}

async fn non_retryable_errors_fail_at_once(store: Store) {
    let id = insert(&store, vec![job("a", |s| s.max_attempts = Some(5))]).await[0];
    let c = claim(&store, &["a"], 1, t0()).await.remove(0);
    assert_eq!(
        fail(&store, id, &c.lease, false, t0())
            .await
            .expect("fail")
            .status,
        JobState::Failed
    );
}

async fn retry_after_overrides_backoff(store: Store) {
    let id = insert(&store, vec![job("a", |_| {})]).await[0];
    let c = claim(&store, &["a"], 1, t0()).await.remove(0);
    let job = store
        .job_fail(&FailParams {
            id,
            lease: &c.lease,
            error: JobError::new("HTTP_STATUS", "429", true),
            retry_after_ms: Some(30_000),
            now: t0(),
        })
        .await
        .expect("fail");
    assert_eq!(job.run_at, t0() + ms(30_000));
}

async fn expired_leases_are_rescued(store: Store) {
    let id = insert(&store, vec![job("a", |s| s.max_attempts = Some(2))]).await[0];
    let c1 = claim(&store, &["a"], 1, t0()).await.remove(0);
    assert!(
        store
            .job_fail_overdue(Overdue::Lease, t0() + ms(10_000), 100)
            .await
            .expect("rescue")
            .is_empty()
    );
    let rescued = store
        .job_fail_overdue(Overdue::Lease, t0() + ms(10_001), 100)
        .await
        .expect("rescue");
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].to, JobState::Scheduled);
    // The dead worker's late report is refused.
    assert!(matches!(
        complete(&store, id, &c1.lease, &json!(1), t0() + ms(10_002)).await,
        Err(StoreError::LeaseLost {
            status: JobState::Scheduled
        })
    ));
    let c2 = claim(&store, &["a"], 1, t0() + ms(20_000)).await.remove(0);
    let rescued = store
        .job_fail_overdue(Overdue::Lease, t0() + ms(40_000), 100)
        .await
        .expect("rescue");
    assert_eq!(rescued[0].to, JobState::Failed);
    let dead = store.job_get(T, id).await.expect("get");
    assert_eq!(dead.error.map(|e| e.code), Some("LEASE_EXPIRED".to_owned()));
    assert!(matches!(
        store.job_heartbeat(id, &c2.lease, t0() + ms(40_001)).await,
        Err(StoreError::LeaseLost {
            status: JobState::Failed
        })
    ));
}

async fn deadlines_are_enforced(store: Store) {
    let id = insert(
        &store,
        vec![job("a", |s| {
            s.timeout_ms = Some(2_000);
            s.max_attempts = Some(1);
        })],
    )
    .await[0];
    let c = claim(&store, &["a"], 1, t0()).await.remove(0);
    assert_eq!(c.deadline, t0() + ms(2_000));
    // Heartbeats keep the lease alive but not past the deadline.
    store
        .job_heartbeat(id, &c.lease, t0() + ms(1_500))
        .await
        .expect("heartbeat");
    let timed_out = store
        .job_fail_overdue(Overdue::Deadline, t0() + ms(2_001), 100)
        .await
        .expect("timeouts");
    assert_eq!(timed_out.len(), 1);
    let job = store.job_get(T, id).await.expect("get");
    assert_eq!(job.status, JobState::Failed);
    assert_eq!(job.error.map(|e| e.code), Some("TIMEOUT".to_owned()));
}

async fn progress_and_items_are_recorded_once(store: Store) {
    let id = insert(&store, vec![job("a", |_| {})]).await[0];
    let c = claim(&store, &["a"], 1, t0()).await.remove(0);
    let items = vec![json!({"i": 0}), json!({"i": 1})];
    let report = |progress, items: &'static [Value], offset| ProgressParams {
        id,
        lease: &c.lease,
        progress,
        items,
        items_offset: offset,
        now: t0() + ms(1_000),
    };
    let items: &'static [Value] = Box::leak(items.into_boxed_slice());
    let status = store
        .job_progress(&report(
            Some(Progress {
                current: Some(2),
                total: Some(10),
                message: None,
            }),
            items,
            Some(0),
        ))
        .await
        .expect("progress");
    assert_eq!(status.lease_expires_at, t0() + ms(11_000));
    // Resent after a network error: stored once.
    store
        .job_progress(&report(None, items, Some(0)))
        .await
        .expect("repeat");
    // Without an offset items are appended.
    store
        .job_progress(&report(
            Some(Progress {
                message: Some("half".into()),
                ..Default::default()
            }),
            &items[..1],
            None,
        ))
        .await
        .expect("append");
    let job = store.job_get(T, id).await.expect("get");
    assert_eq!(
        job.progress,
        Some(Progress {
            current: Some(2),
            total: Some(10),
            message: Some("half".into())
        })
    );
    let all = store.job_items(T, id, 0, 100).await.expect("items");
    let data: Vec<_> = all.iter().map(|i| i.data.clone()).collect();
    assert_eq!(
        data,
        vec![json!({"i": 0}), json!({"i": 1}), json!({"i": 0})]
    );
    let rest = store
        .job_items(T, id, all[0].seq, 100)
        .await
        .expect("items after");
    assert_eq!(rest.len(), 2);
    assert!(matches!(
        store
            .job_progress(&ProgressParams {
                lease: "stale",
                ..report(None, items, None)
            })
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
}

async fn dedupe_keys_answer_the_unfinished_job(store: Store) {
    let keyed = |key: &str| job("sync.reviews", |s| s.dedupe_key = Some(key.to_owned()));
    let first = store
        .job_insert(&[keyed("shop-1")], t0())
        .await
        .expect("insert")
        .remove(0);
    assert!(first.created);
    // Same key again, and twice within one batch: the first job answers for all.
    let again = store
        .job_insert(&[keyed("shop-1"), keyed("shop-2"), keyed("shop-2")], t0())
        .await
        .expect("insert");
    assert_eq!((again[0].created, again[0].job.id), (false, first.job.id));
    assert!(again[1].created);
    assert_eq!(
        (again[2].created, again[2].job.id),
        (false, again[1].job.id)
    );
    assert_eq!(again[0].job.dedupe_key.as_deref(), Some("shop-1"));
    // Once the job is finished the key is free again.
    let c = claim(&store, &["sync.*"], 1, t0()).await.remove(0);
    assert_eq!(c.id, first.job.id);
    complete(&store, c.id, &c.lease, &json!(1), t0())
        .await
        .expect("complete");
    let later = store
        .job_insert(&[keyed("shop-1")], t0())
        .await
        .expect("insert")
        .remove(0);
    assert!(later.created);
    assert_ne!(later.job.id, first.job.id);

    // With a TTL the key is also held by a job that finished less than TTL ago.
    let with_ttl = |key: &str| {
        job("sync.reviews", |s| {
            s.dedupe_key = Some(key.to_owned());
            s.dedupe_ttl_ms = Some(60_000);
        })
    };
    let ttl_first = store
        .job_insert(&[with_ttl("shop-9")], t0())
        .await
        .expect("insert")
        .remove(0);
    let c = claim(&store, &["sync.*"], 10, t0())
        .await
        .into_iter()
        .find(|c| c.id == ttl_first.job.id)
        .expect("claimed");
    complete(&store, c.id, &c.lease, &json!(1), t0() + ms(1_000))
        .await
        .expect("complete");
    let within = store
        .job_insert(&[with_ttl("shop-9")], t0() + ms(60_000))
        .await
        .expect("insert")
        .remove(0);
    assert_eq!(
        (within.created, within.job.id, within.job.status),
        (false, ttl_first.job.id, JobState::Completed)
    );
    let after = store
        .job_insert(&[with_ttl("shop-9")], t0() + ms(61_001))
        .await
        .expect("insert")
        .remove(0);
    assert!(after.created, "the TTL ran out");
}

/// The events matching `filter` once there are `want` of them (or after 10 s). On
/// PostgreSQL an event shows once every older transaction has ended.
async fn settled_events(
    store: &Store,
    filter: &ferry_store::EventFilter,
    want: usize,
) -> Vec<ferry_core::api::Event> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = store.events_list(T, filter, 0, 100).await.expect("events");
        if events.len() >= want || std::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
    Store::open_sqlite(&dir.path().join("ferry.db"))
        .await
        .expect("open sqlite")
}

async fn postgres_store(db: &ferry_testkit::pg::TestDatabase) -> Store {
    let url = ferry_store::DatabaseUrl::Postgres(db.url.clone());
    Store::open(&url, ferry_store::Durability::Normal)
        .await
        .expect("open postgres")
}

macro_rules! backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    let dir = tempfile::tempdir().expect("tempdir");
                    super::$check(super::sqlite_store(&dir).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $check() {
                    let db = ferry_testkit::pg::TestDatabase::create().await;
                    let store = super::postgres_store(&db).await;
                    super::$check(store.clone()).await;
                    store.close().await;
                }
            )*
        }
    };
}

backends!(
    insert_then_get_roundtrips,
    claim_order_is_priority_then_fifo,
    claim_filters_kinds,
    claim_batches_and_limits,
    concurrent_claims_never_share_a_job,
    delayed_jobs_wait_for_run_at,
    heartbeat_extends_and_fences,
    complete_applies_once_and_is_fenced,
    batch_complete_answers_each_entry,
    failures_retry_with_backoff_then_die,
    completion_clears_the_error_of_earlier_attempts,
    non_retryable_errors_fail_at_once,
    retry_after_overrides_backoff,
    expired_leases_are_rescued,
    deadlines_are_enforced,
    cancel_waiting_and_running_jobs,
    retry_revives_failed_and_cancelled,
    progress_and_items_are_recorded_once,
    list_filters_and_pages,
    retention_deletes_finished_jobs_only,
    dedupe_keys_answer_the_unfinished_job,
    paused_kinds_are_not_claimed,
    batches_track_progress_and_results,
    batches_are_listed_newest_first_in_their_tenant,
    chains_enqueue_children_when_the_parent_completes,
    concurrency_keys_cap_running_jobs,
    held_back_keys_do_not_block_others,
    concurrent_claims_respect_concurrency_keys,
    rate_interval_spaces_starts,
    rate_window_caps_starts,
    push_back_holds_the_rate_key,
    rate_waits_hold_no_concurrency_slot,
    rate_starts_are_pruned_after_a_day,
    state_changes_are_recorded_as_events,
    datasets_record_new_changed_and_gone,
    snapshot_runs_that_would_empty_a_dataset_are_refused,
    dataset_items_must_carry_their_key,
    progress_and_batches_are_recorded_as_events,
    concurrent_finishes_announce_a_batch_once,
    filtered_reads_advance_past_what_they_scanned,
    tenants_and_api_keys_are_kept_and_revoked,
    audit_entries_are_written_with_their_change_only,
    users_hold_roles_per_tenant_and_sessions_end_with_them,
    failed_jobs_are_grouped_and_retried_by_group,
    stats_count_jobs_by_kind_and_finished_per_bucket,
    workers_are_recorded_listed_and_forgotten,
);

/// A batch of `n` jobs of `kind`; answers its id and its items' ids.
async fn insert_batch(store: &Store, kind: &str, n: u32) -> (ferry_core::BatchId, Vec<JobId>) {
    let batch = ferry_core::BatchId::new();
    let items: Vec<NewJob> = (0..n)
        .map(|i| {
            let mut j = job(kind, |_| {});
            j.batch = Some((batch, i));
            j
        })
        .collect();
    store
        .batch_insert(
            &ferry_store::NewBatch {
                id: batch,
                tenant_id: T.to_owned(),
                kind: kind.to_owned(),
                labels: Default::default(),
            },
            &items,
            t0(),
        )
        .await
        .expect("batch");
    (batch, items.iter().map(|j| j.id).collect())
}

/// Items of one batch finished by many concurrent completions: the batch is announced
/// finished exactly once.
async fn concurrent_finishes_announce_a_batch_once(store: Store) {
    insert_batch(&store, "c", 40).await;
    let claimed = claim(&store, &["c"], 40, t0()).await;
    assert_eq!(claimed.len(), 40);
    let tasks: Vec<_> = claimed
        .into_iter()
        .map(|c| {
            let store = store.clone();
            tokio::spawn(async move {
                complete(&store, c.id, &c.lease, &json!(1), t0())
                    .await
                    .expect("complete");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let filter = ferry_store::EventFilter {
        types: vec!["batch.finished".into()],
        ..Default::default()
    };
    // Wait for every item's event, then count the batch's.
    let done = ferry_store::EventFilter {
        types: vec!["job.completed".into()],
        ..Default::default()
    };
    assert_eq!(settled_events(&store, &done, 40).await.len(), 40);
    let finished = store.events_list(T, &filter, 0, 100).await.expect("events");
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!(
        finished[0].data.as_ref().map(|d| d["completed"].clone()),
        Some(json!(40))
    );
}

#[tokio::test]
async fn sqlite_reopen_keeps_jobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = {
        let store = sqlite_store(&dir).await;
        let id = insert(&store, vec![job("a", |_| {})]).await[0];
        store.close().await;
        id
    };
    let store = sqlite_store(&dir).await;
    assert_eq!(status(&store, id).await, JobState::Pending);
}
