//! Datasets in the conformance suite: runs write a job's items to its dataset by key,
//! counting new, changed, unchanged and gone rows; a snapshot run that would empty a
//! dataset is refused; items must carry their key.

use chrono::{DateTime, Utc};
use ferry_core::{JobId, JobState};
use ferry_store::{CompleteParams, ProgressParams, Store, StoreError};
use serde_json::{Value, json};

use super::{T, audit, claim, complete, fail, insert, job, ms, settled_events, status, t0};

/// Runs one job of kind `k` writing `items` to dataset `reviews` (`mode`): claim, report the
/// items in two reports, complete. Answers the job's id.
async fn feed(
    store: &Store,
    mode: ferry_core::dataset::OutputMode,
    items: Vec<Value>,
    now: DateTime<Utc>,
) -> JobId {
    let id = insert(
        store,
        vec![job("sync", |s| {
            s.output = Some(ferry_core::dataset::Output {
                dataset: "reviews".into(),
                key: "id".into(),
                mode,
                max_gone: None,
            });
        })],
    )
    .await[0];
    let c = claim(store, &["sync"], 1, now).await.remove(0);
    let (first, second) = items.split_at(items.len() / 2);
    for part in [first, second] {
        store
            .job_progress(&ProgressParams {
                id,
                lease: &c.lease,
                progress: None,
                items: part,
                items_offset: None,
                now,
            })
            .await
            .expect("report items");
    }
    complete(store, id, &c.lease, &json!({"rows": items.len()}), now)
        .await
        .expect("complete");
    // A repeated completion applies nothing again.
    complete(store, id, &c.lease, &json!({}), now)
        .await
        .expect("repeat");
    id
}

fn counts(run: &ferry_core::dataset::DatasetRun) -> (u64, u64, u64, u64) {
    (run.new, run.changed, run.unchanged, run.gone)
}

async fn keys(store: &Store, include_gone: bool) -> Vec<String> {
    store
        .dataset_items(T, "reviews", 0, 100, include_gone)
        .await
        .expect("items")
        .into_iter()
        .map(|i| i.key)
        .collect()
}

pub(super) async fn datasets_record_new_changed_and_gone(store: Store) {
    use ferry_core::dataset::OutputMode::{Merge, Snapshot};
    let first = feed(
        &store,
        Snapshot,
        vec![
            json!({"id": "a", "stars": 5}),
            json!({"id": "b", "stars": 4, "text": "ok"}),
            json!({"id": "c", "stars": 3}),
            // The same key twice in one run: the later content, counted once.
            json!({"id": "a", "stars": 1}),
        ],
        t0(),
    )
    .await;
    let info = store
        .dataset_get(T, "reviews")
        .await
        .expect("get")
        .expect("the dataset exists");
    assert_eq!((info.key.as_str(), info.items, info.gone), ("id", 3, 0));
    let run = info.last_run.expect("a run");
    assert_eq!((run.job_id, counts(&run)), (first, (3, 0, 0, 0)));
    let a = store
        .dataset_items(T, "reviews", 0, 1, false)
        .await
        .expect("items");
    assert_eq!(a[0].data, json!({"id": "a", "stars": 1}));

    // Overlapping rows: b unchanged (fields in another order), c changed, d new, a gone.
    let second = feed(
        &store,
        Snapshot,
        vec![
            json!({"text": "ok", "stars": 4, "id": "b"}),
            json!({"id": "c", "stars": 2}),
            json!({"id": "d", "stars": 5}),
        ],
        t0() + ms(1_000),
    )
    .await;
    let info = store
        .dataset_get(T, "reviews")
        .await
        .expect("get")
        .expect("dataset");
    assert_eq!((info.items, info.gone), (3, 1));
    assert_eq!(counts(&info.last_run.expect("run")), (1, 1, 1, 1));
    assert_eq!(keys(&store, false).await, ["b", "c", "d"]);
    assert_eq!(keys(&store, true).await, ["a", "b", "c", "d"]);
    let c = store
        .dataset_items(T, "reviews", 0, 100, false)
        .await
        .expect("items")
        .into_iter()
        .find(|i| i.key == "c")
        .expect("c");
    assert_eq!(
        (c.first_seen_at, c.changed_at),
        (t0(), t0() + ms(1_000)),
        "c changed in the second run"
    );

    // A merge run brings a back (new again) and takes nothing away.
    feed(
        &store,
        Merge,
        vec![json!({"id": "a", "stars": 1})],
        t0() + ms(2_000),
    )
    .await;
    let info = store
        .dataset_get(T, "reviews")
        .await
        .expect("get")
        .expect("dataset");
    assert_eq!((info.items, info.gone), (4, 0));
    assert_eq!(counts(&info.last_run.expect("run")), (1, 0, 0, 0));

    // Nothing changed: the run is recorded, no event is.
    feed(
        &store,
        Merge,
        vec![json!({"id": "d", "stars": 5})],
        t0() + ms(3_000),
    )
    .await;
    let runs = store.dataset_runs(T, "reviews", 10).await.expect("runs");
    assert_eq!(
        runs.iter().map(counts).collect::<Vec<_>>(),
        [(0, 0, 1, 0), (1, 0, 0, 0), (1, 1, 1, 1), (3, 0, 0, 0)],
        "newest first, one run per completion"
    );

    let filter = ferry_store::EventFilter {
        types: vec!["dataset.changed".into()],
        ..Default::default()
    };
    let events = settled_events(&store, &filter, 3).await;
    assert_eq!(events.len(), 3);
    assert_eq!(events[1].job_id, Some(second));
    let change: ferry_core::dataset::DatasetChange =
        serde_json::from_value(events[1].data.clone().expect("data")).expect("change data");
    assert_eq!(
        (
            change.dataset.as_str(),
            change.new,
            change.changed,
            change.gone
        ),
        ("reviews", 1, 1, 1)
    );
    assert_eq!(
        (change.keys.new, change.keys.changed, change.keys.gone),
        (
            vec!["d".to_owned()],
            vec!["c".to_owned()],
            vec!["a".to_owned()]
        )
    );
    // The completion's own event comes first.
    let all = settled_events(
        &store,
        &ferry_store::EventFilter {
            job: Some(second),
            ..Default::default()
        },
        6,
    )
    .await;
    let types: Vec<_> = all.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "job.created",
            "job.started",
            "job.progress",
            "job.progress",
            "job.completed",
            "dataset.changed"
        ]
    );

    let info = store
        .dataset_get(T, "reviews")
        .await
        .expect("get")
        .expect("dataset");
    assert_eq!(info.fields, ["id", "stars", "text"]);
    assert_eq!(store.dataset_list(T).await.expect("list").len(), 1);
    assert!(
        store
            .dataset_delete(T, "reviews", &audit())
            .await
            .expect("delete")
    );
    assert!(
        store
            .dataset_get(T, "reviews")
            .await
            .expect("get")
            .is_none()
    );
    assert!(keys(&store, true).await.is_empty());
}

/// Claims a `sync` job writing a snapshot of `reviews` (with `max_gone`) and a plain job,
/// reports `items` on the first and completes both in one batch. Answers the sync job.
async fn snapshot_beside_another(
    store: &Store,
    max_gone: Option<f64>,
    items: Vec<Value>,
    now: DateTime<Utc>,
) -> JobId {
    let ids = insert(
        store,
        vec![
            job("sync", |s| {
                s.output = Some(ferry_core::dataset::Output {
                    dataset: "reviews".into(),
                    key: "id".into(),
                    mode: ferry_core::dataset::OutputMode::Snapshot,
                    max_gone,
                });
            }),
            job("plain", |_| {}),
        ],
    )
    .await;
    let claimed = claim(store, &["sync", "plain"], 2, now).await;
    let lease = |id: JobId| {
        claimed
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.lease.clone())
            .expect("both claimed")
    };
    let (sync, plain) = (lease(ids[0]), lease(ids[1]));
    store
        .job_progress(&ProgressParams {
            id: ids[0],
            lease: &sync,
            progress: None,
            items: &items,
            items_offset: None,
            now,
        })
        .await
        .expect("report items");
    let result = json!({"rows": items.len()});
    let answers = store
        .job_complete(
            &[
                CompleteParams {
                    id: ids[0],
                    lease: &sync,
                    result: &result,
                },
                CompleteParams {
                    id: ids[1],
                    lease: &plain,
                    result: &result,
                },
            ],
            now,
        )
        .await
        .expect("complete transaction")
        .answers;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(
        status(store, ids[1]).await,
        JobState::Completed,
        "the other job of the batch completes whatever its neighbour's dataset says"
    );
    ids[0]
}

/// A snapshot run that would mark more than `max_gone` of the rows gone (a signed-out page
/// that shows 2 rows of 10) fails its job and leaves the dataset as it was; its items stay
/// on the job. `max_gone: 1` forces such a run through.
pub(super) async fn snapshot_runs_that_would_empty_a_dataset_are_refused(store: Store) {
    let rows = |ids: std::ops::Range<i64>| -> Vec<Value> {
        ids.map(|i| json!({"id": i, "stars": 5})).collect()
    };
    feed(
        &store,
        ferry_core::dataset::OutputMode::Snapshot,
        rows(0..10),
        t0(),
    )
    .await;
    let all: Vec<String> = (0..10).map(|i| i.to_string()).collect();

    let refused = snapshot_beside_another(&store, None, rows(0..2), t0() + ms(1_000)).await;
    let job = store.job_get(T, refused).await.expect("get");
    assert_eq!(job.status, JobState::Failed, "refused at once: {job:?}");
    let error = job.error.expect("an error");
    assert_eq!(error.code, "DATASET_GONE_LIMIT");
    assert!(!error.retryable);
    assert!(
        error.message.contains("8 of the 10 rows"),
        "{}",
        error.message
    );
    assert_eq!(job.result, None);
    let info = store
        .dataset_get(T, "reviews")
        .await
        .expect("get")
        .expect("dataset");
    assert_eq!((info.items, info.gone), (10, 0), "the dataset is unchanged");
    assert_eq!(
        store
            .dataset_runs(T, "reviews", 10)
            .await
            .expect("runs")
            .len(),
        1
    );
    assert_eq!(keys(&store, false).await, all);
    assert_eq!(
        store
            .job_items(T, refused, -1, 10)
            .await
            .expect("items")
            .len(),
        2,
        "the refused run's items stay on the job"
    );
    let changed = ferry_store::EventFilter {
        types: vec!["dataset.changed".into()],
        ..Default::default()
    };
    let failed = ferry_store::EventFilter {
        types: vec!["job.failed".into()],
        ..Default::default()
    };
    assert_eq!(settled_events(&store, &failed, 1).await.len(), 1);
    assert_eq!(
        store
            .events_list(T, &changed, 0, 100)
            .await
            .expect("events")
            .len(),
        1,
        "only the first run changed anything"
    );

    // Half of the rows may go by default.
    snapshot_beside_another(&store, None, rows(5..10), t0() + ms(2_000)).await;
    let info = store
        .dataset_get(T, "reviews")
        .await
        .expect("get")
        .expect("dataset");
    assert_eq!((info.items, info.gone), (5, 5));

    // Forced: every row may go.
    let forced = snapshot_beside_another(&store, Some(1.0), rows(20..21), t0() + ms(3_000)).await;
    assert_eq!(status(&store, forced).await, JobState::Completed);
    let info = store
        .dataset_get(T, "reviews")
        .await
        .expect("get")
        .expect("dataset");
    assert_eq!((info.items, info.gone), (1, 10));
    let events = settled_events(&store, &changed, 3).await;
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].job_id, Some(forced));
}

pub(super) async fn dataset_items_must_carry_their_key(store: Store) {
    let id = insert(
        &store,
        vec![job("sync", |s| {
            s.output = Some(ferry_core::dataset::Output {
                dataset: "reviews".into(),
                key: "id".into(),
                mode: ferry_core::dataset::OutputMode::Snapshot,
                max_gone: None,
            });
            s.max_attempts = Some(2);
        })],
    )
    .await[0];
    let c = claim(&store, &["sync"], 1, t0()).await.remove(0);
    let report = |items: &'static [Value], lease: &'static str| ProgressParams {
        id,
        lease,
        progress: None,
        items,
        items_offset: None,
        now: t0(),
    };
    let lease: &'static str = Box::leak(c.lease.clone().into_boxed_str());
    let bad: &'static [Value] =
        Box::leak(vec![json!({"id": 1}), json!({"name": "x"})].into_boxed_slice());
    match store.job_progress(&report(bad, lease)).await {
        Err(StoreError::InvalidItem { index, message }) => {
            assert_eq!(index, 1);
            assert!(message.contains("\"id\""), "{message}");
        }
        other => panic!("expected InvalidItem, got {other:?}"),
    }
    // Nothing of the refused report was stored.
    assert!(
        store
            .job_items(T, id, 0, 10)
            .await
            .expect("items")
            .is_empty()
    );
    // Items of a failed attempt do not reach the dataset: only the last attempt's do.
    let first: &'static [Value] = Box::leak(vec![json!({"id": "x"})].into_boxed_slice());
    store
        .job_progress(&report(first, lease))
        .await
        .expect("report");
    fail(&store, id, lease, true, t0()).await.expect("fail");
    let c = claim(&store, &["sync"], 1, t0() + ms(5_000))
        .await
        .remove(0);
    let lease: &'static str = Box::leak(c.lease.clone().into_boxed_str());
    let second: &'static [Value] = Box::leak(vec![json!({"id": "y"})].into_boxed_slice());
    store
        .job_progress(&report(second, lease))
        .await
        .expect("report");
    complete(&store, id, lease, &json!({}), t0() + ms(5_000))
        .await
        .expect("complete");
    assert_eq!(keys(&store, true).await, ["y"]);
}
