//! Flow control in the conformance suite: concurrency keys cap how many jobs of a key run
//! at once (held-back keys never block others, concurrent claims never exceed a cap), and
//! rate keys space or cap starts (a push-back holds the key; a rate wait holds no
//! concurrency slot; old starts are pruned).

use ferry_core::{JobError, JobId, JobState, NewJob, api::SubmitJob};
use ferry_store::{ClaimParams, FailParams, Overdue, Store};
use serde_json::json;

use super::{T, claim, complete, fail, insert, job, ms, pat, t0};

fn keyed(kind: &str, key: &str, limit: u32) -> NewJob {
    job(kind, |s| {
        s.concurrency = Some(ferry_core::flow::ConcurrencySpec {
            key: key.to_owned(),
            limit: Some(limit),
        })
    })
}

fn rated(key: &str, interval_ms: Option<u64>, window: Option<(u32, u64)>) -> NewJob {
    job("a", |s| {
        s.rate_limit = Some(ferry_core::flow::RateLimit {
            key: key.to_owned(),
            interval_ms,
            max: window.map(|w| w.0),
            per_ms: window.map(|w| w.1),
        })
    })
}

fn count_keys(jobs: &[ferry_core::api::ClaimedJob], ids: &[(JobId, &str)]) -> Vec<(String, usize)> {
    let mut counts = std::collections::BTreeMap::new();
    for j in jobs {
        let key = ids
            .iter()
            .find(|(id, _)| *id == j.id)
            .map(|(_, k)| *k)
            .expect("a known job");
        *counts.entry(key.to_owned()).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

pub(super) async fn concurrency_keys_cap_running_jobs(store: Store) {
    let mut specs = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..5 {
        specs.push(keyed("a", "acct:1", 2));
        keys.push("acct:1");
    }
    for _ in 0..3 {
        specs.push(keyed("a", "acct:2", 1));
        keys.push("acct:2");
    }
    for _ in 0..2 {
        specs.push(job("a", |_| {}));
        keys.push("none");
    }
    let ids: Vec<(JobId, &str)> = insert(&store, specs).await.into_iter().zip(keys).collect();
    let got = claim(&store, &["a"], 10, t0()).await;
    assert_eq!(
        count_keys(&got, &ids),
        [
            ("acct:1".into(), 2),
            ("acct:2".into(), 1),
            ("none".into(), 2)
        ]
    );
    assert!(
        claim(&store, &["a"], 10, t0()).await.is_empty(),
        "every key is at its limit"
    );
    // A finished job frees its slot: completion, failure (retry later) and a rescue alike.
    let of = |key: &str| {
        got.iter()
            .filter(|j| ids.iter().any(|(id, k)| *id == j.id && *k == key))
            .collect::<Vec<_>>()
    };
    let acct1 = of("acct:1");
    complete(&store, acct1[0].id, &acct1[0].lease, &json!(1), t0())
        .await
        .expect("complete");
    let next = claim(&store, &["a"], 10, t0()).await;
    assert_eq!(count_keys(&next, &ids), [("acct:1".into(), 1)]);
    let acct2 = of("acct:2");
    fail(&store, acct2[0].id, &acct2[0].lease, true, t0())
        .await
        .expect("fail");
    let next = claim(&store, &["a"], 10, t0()).await;
    assert_eq!(count_keys(&next, &ids), [("acct:2".into(), 1)]);
    let rescued = store
        .job_fail_overdue(Overdue::Lease, t0() + ms(10_001), 100)
        .await
        .expect("rescue");
    assert_eq!(rescued.len(), 5, "every running job's lease ran out");
    let next = claim(&store, &["a"], 10, t0() + ms(10_001)).await;
    assert_eq!(
        count_keys(&next, &ids),
        [("acct:1".into(), 2), ("acct:2".into(), 1)]
    );
}

pub(super) async fn held_back_keys_do_not_block_others(store: Store) {
    let mut specs: Vec<NewJob> = (0..50)
        .map(|_| {
            let mut j = keyed("a", "hot", 1);
            j.priority = 10;
            j
        })
        .collect();
    specs.extend((0..5).map(|_| job("a", |_| {})));
    specs.push(keyed("a", "cold", 1));
    insert(&store, specs).await;
    // The hot key's first job goes out first (priority), then the key is full, and the
    // claim reaches past its 49 waiting jobs to the others.
    assert_eq!(claim(&store, &["a"], 1, t0()).await.len(), 1);
    assert_eq!(claim(&store, &["a"], 10, t0()).await.len(), 6);
    assert!(claim(&store, &["a"], 10, t0()).await.is_empty());
}

pub(super) async fn concurrent_claims_respect_concurrency_keys(store: Store) {
    let keys = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"];
    let specs = (0..200)
        .map(|i| keyed("a", keys[i % keys.len()], 2))
        .collect();
    let ids: Vec<(JobId, &str)> = insert(&store, specs)
        .await
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, keys[i % keys.len()]))
        .collect();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..5 {
                let got = store
                    .job_claim(&ClaimParams {
                        tenant_id: T,
                        worker_id: &format!("w{w}"),
                        kinds: &[pat("a")],
                        max_jobs: 3,
                        lease_ms: 10_000,
                        now: t0(),
                    })
                    .await
                    .expect("claim");
                mine.extend(got);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let counts = count_keys(&all, &ids);
    assert_eq!(counts.len(), 10, "{counts:?}");
    assert!(counts.iter().all(|(_, n)| *n == 2), "{counts:?}");
}

pub(super) async fn rate_interval_spaces_starts(store: Store) {
    insert(
        &store,
        (0..3).map(|_| rated("api", Some(300), None)).collect(),
    )
    .await;
    assert_eq!(
        claim(&store, &["a"], 10, t0()).await.len(),
        1,
        "one start per interval"
    );
    assert!(claim(&store, &["a"], 10, t0() + ms(299)).await.is_empty());
    assert_eq!(
        store
            .job_next_run_at(T, &[pat("a")], t0() + ms(299))
            .await
            .expect("next"),
        Some(t0() + ms(300)),
        "a waiting claim sleeps until the key opens"
    );
    assert_eq!(claim(&store, &["a"], 10, t0() + ms(300)).await.len(), 1);
    assert_eq!(claim(&store, &["a"], 10, t0() + ms(600)).await.len(), 1);
    assert!(
        claim(&store, &["a"], 10, t0() + ms(10_000))
            .await
            .is_empty(),
        "all started"
    );
}

pub(super) async fn rate_window_caps_starts(store: Store) {
    insert(
        &store,
        (0..5)
            .map(|_| rated("api", None, Some((2, 1_000))))
            .collect(),
    )
    .await;
    assert_eq!(claim(&store, &["a"], 10, t0()).await.len(), 2);
    assert!(claim(&store, &["a"], 10, t0() + ms(500)).await.is_empty());
    assert_eq!(
        store
            .job_next_run_at(T, &[pat("a")], t0() + ms(500))
            .await
            .expect("next"),
        Some(t0() + ms(1_000))
    );
    assert!(claim(&store, &["a"], 10, t0() + ms(999)).await.is_empty());
    assert_eq!(claim(&store, &["a"], 10, t0() + ms(1_000)).await.len(), 2);
    assert!(claim(&store, &["a"], 10, t0() + ms(1_500)).await.is_empty());
    assert_eq!(claim(&store, &["a"], 10, t0() + ms(2_000)).await.len(), 1);
}

pub(super) async fn push_back_holds_the_rate_key(store: Store) {
    insert(
        &store,
        (0..2).map(|_| rated("api", Some(10), None)).collect(),
    )
    .await;
    let first = claim(&store, &["a"], 10, t0()).await;
    assert_eq!(first.len(), 1);
    // The API answered 429 with Retry-After: 5 s.
    let failed = store
        .job_fail(&FailParams {
            id: first[0].id,
            lease: &first[0].lease,
            error: JobError::new("HTTP_STATUS", "429 Too Many Requests", true),
            retry_after_ms: Some(5_000),
            now: t0() + ms(20),
        })
        .await
        .expect("fail");
    assert_eq!(failed.status, JobState::Scheduled);
    assert!(
        claim(&store, &["a"], 10, t0() + ms(100)).await.is_empty(),
        "the other job of the key waits too"
    );
    assert_eq!(
        store
            .job_next_run_at(T, &[pat("a")], t0() + ms(100))
            .await
            .expect("next"),
        Some(t0() + ms(5_020))
    );
    assert!(claim(&store, &["a"], 10, t0() + ms(5_019)).await.is_empty());
    store
        .job_promote_scheduled(t0() + ms(5_020), 100)
        .await
        .expect("promote");
    assert_eq!(
        claim(&store, &["a"], 10, t0() + ms(5_020)).await.len(),
        1,
        "one per interval"
    );
    assert_eq!(claim(&store, &["a"], 10, t0() + ms(5_030)).await.len(), 1);
}

pub(super) async fn rate_waits_hold_no_concurrency_slot(store: Store) {
    let both = |s: &mut SubmitJob| {
        s.concurrency = Some(ferry_core::flow::ConcurrencySpec {
            key: "acct".into(),
            limit: Some(1),
        });
        s.rate_limit = Some(ferry_core::flow::RateLimit {
            key: "api".into(),
            interval_ms: Some(1_000),
            max: None,
            per_ms: None,
        });
    };
    let a1 = insert(&store, vec![job("a", both)]).await[0];
    let a2 = insert(&store, vec![job("a", both)]).await[0];
    let b = insert(&store, vec![keyed("a", "acct", 1)]).await[0];
    let first = claim(&store, &["a"], 10, t0()).await;
    assert_eq!(first.iter().map(|j| j.id).collect::<Vec<_>>(), [a1]);
    complete(&store, a1, &first[0].lease, &json!(1), t0() + ms(10))
        .await
        .expect("complete");
    // a2 waits for the rate key; it must not keep b from the free concurrency slot.
    let next = claim(&store, &["a"], 10, t0() + ms(20)).await;
    assert_eq!(next.iter().map(|j| j.id).collect::<Vec<_>>(), [b]);
    complete(&store, b, &next[0].lease, &json!(1), t0() + ms(30))
        .await
        .expect("complete");
    let last = claim(&store, &["a"], 10, t0() + ms(1_000)).await;
    assert_eq!(last.iter().map(|j| j.id).collect::<Vec<_>>(), [a2]);
}

pub(super) async fn rate_starts_are_pruned_after_a_day(store: Store) {
    insert(
        &store,
        (0..2).map(|_| rated("api", Some(10), None)).collect(),
    )
    .await;
    assert_eq!(claim(&store, &["a"], 10, t0()).await.len(), 1);
    assert_eq!(
        store
            .rate_prune(t0() + ms(1_000), 100)
            .await
            .expect("prune"),
        0
    );
    let day = ferry_core::flow::MAX_RATE_WINDOW_MS as i64;
    assert_eq!(
        store
            .rate_prune(t0() + ms(day + 1), 100)
            .await
            .expect("prune"),
        1
    );
    assert_eq!(claim(&store, &["a"], 10, t0() + ms(day + 1)).await.len(), 1);
}
