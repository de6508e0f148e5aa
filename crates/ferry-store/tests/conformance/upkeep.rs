//! Upkeep in the conformance suite: retention of finished jobs, and the workers the
//! server heard from (recorded at claims, listed with their running jobs, forgotten when
//! long silent).

use ferry_store::WorkerSeen;

use super::*;

pub(super) async fn retention_deletes_finished_jobs_only(store: Store) {
    let ids = insert(&store, vec![job("a", |_| {}), job("a", |_| {})]).await;
    let c = claim(&store, &["a"], 1, t0()).await.remove(0);
    store
        .job_progress(&ProgressParams {
            id: c.id,
            lease: &c.lease,
            progress: None,
            items: &[json!(1)],
            items_offset: None,
            now: t0(),
        })
        .await
        .expect("items");
    complete(&store, c.id, &c.lease, &json!(1), t0())
        .await
        .expect("complete");
    assert_eq!(
        store.job_delete_finished(t0(), 100).await.expect("clean"),
        0
    );
    assert_eq!(
        store
            .job_delete_finished(t0() + ms(1), 100)
            .await
            .expect("clean"),
        1
    );
    assert!(matches!(
        store.job_get(T, c.id).await,
        Err(StoreError::NotFound(ferry_store::Entity::Job))
    ));
    let other = if ids[0] == c.id { ids[1] } else { ids[0] };
    assert_eq!(status(&store, other).await, JobState::Pending);
}

fn seen<'a>(worker: &'a str, kinds: &'a [String], now: DateTime<Utc>) -> WorkerSeen<'a> {
    WorkerSeen {
        tenant_id: T,
        worker_id: worker,
        kinds,
        agent: Some("ferry/test"),
        address: Some("10.0.0.7"),
        now,
    }
}

pub(super) async fn workers_are_recorded_listed_and_forgotten(store: Store) {
    let kinds = vec!["a".to_owned()];
    store
        .worker_seen(&seen("w1", &kinds, t0()))
        .await
        .expect("seen");
    let wider = vec!["a".to_owned(), "b.*".to_owned()];
    store
        .worker_seen(&seen("w1", &wider, t0() + ms(5_000)))
        .await
        .expect("seen again");
    // A record that arrives late (another instance's) does not move the time back.
    store
        .worker_seen(&seen("w1", &wider, t0() + ms(1_000)))
        .await
        .expect("seen late");
    store
        .worker_seen(&seen("w2", &kinds, t0()))
        .await
        .expect("seen w2");
    let other = WorkerSeen {
        tenant_id: "other",
        ..seen("w9", &kinds, t0())
    };
    store.worker_seen(&other).await.expect("other tenant");

    // w1 holds a job: counted, and its report (a heartbeat) is when it was last heard.
    insert(&store, vec![job("a", |_| {})]).await;
    let c = claim(&store, &["a"], 1, t0() + ms(6_000)).await.remove(0);
    store
        .job_heartbeat(c.id, &c.lease, t0() + ms(9_000))
        .await
        .expect("heartbeat");

    let list = store
        .worker_list(Some(T), t0() - ms(1), t0() + ms(2_000))
        .await
        .expect("list");
    let got: Vec<(&str, u64, bool)> = list
        .iter()
        .map(|w| (w.id.as_str(), w.jobs_in_hand, w.connected))
        .collect();
    assert_eq!(got, [("w1", 1, true), ("w2", 0, false)]);
    let w1 = &list[0];
    assert_eq!(w1.kinds, wider);
    assert_eq!(w1.tenant, T);
    assert_eq!(w1.agent.as_deref(), Some("ferry/test"));
    assert_eq!(w1.address.as_deref(), Some("10.0.0.7"));
    assert_eq!(w1.first_seen_at, t0());
    assert_eq!(w1.last_seen_at, t0() + ms(9_000));
    assert_eq!(list[1].last_seen_at, t0());

    // Every tenant's; and a worker silent since before `since` is listed only while it
    // holds a job.
    let all = store
        .worker_list(None, t0() - ms(1), t0())
        .await
        .expect("all");
    assert_eq!(all.len(), 3);
    let recent = store
        .worker_list(Some(T), t0() + ms(10_000), t0() + ms(10_000))
        .await
        .expect("recent");
    let ids: Vec<&str> = recent.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["w1"]);

    // Forgetting: only the silent ones holding nothing.
    let forgotten = store
        .worker_prune(t0() + ms(60_000), 100)
        .await
        .expect("prune");
    assert_eq!(forgotten, 2, "w2 and the other tenant's w9");
    let left = store
        .worker_list(None, t0() - ms(1), t0())
        .await
        .expect("left");
    let ids: Vec<&str> = left.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["w1"]);
}
