//! Batches in the conformance suite: progress and results in the order items finish,
//! cancelled whole, and a tenant's batches listed newest first.

use super::*;

/// A batch-results page once it holds `want` items (or after 10 s). On PostgreSQL a finished
/// item shows once every older transaction has ended, and the other tests running on the
/// same server may hold one for a moment.
async fn settled_results(
    store: &Store,
    batch_id: ferry_core::BatchId,
    after: Option<(i64, JobId)>,
    limit: u32,
    want: usize,
) -> Vec<(i64, ferry_core::api::BatchResult)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = store
            .batch_results(T, batch_id, after, limit)
            .await
            .expect("results");
        if page.len() >= want || std::time::Instant::now() > deadline {
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub(super) async fn batches_track_progress_and_results(store: Store) {
    let batch_id = ferry_core::BatchId::new();
    let jobs: Vec<NewJob> = (0..4u32)
        .map(|i| {
            let mut j = job("kw.lookup", |s| s.payload = json!({"kw": i}));
            j.batch = Some((batch_id, i));
            j
        })
        .collect();
    let batch = ferry_store::NewBatch {
        id: batch_id,
        tenant_id: T.to_owned(),
        kind: "kw.lookup".to_owned(),
        labels: Default::default(),
    };
    store
        .batch_insert(&batch, &jobs, t0())
        .await
        .expect("batch");
    let b = store.batch_get(T, batch_id).await.expect("get");
    assert_eq!(
        (b.status, b.progress.total, b.progress.pending),
        (ferry_core::api::BatchState::Running, 4, 4)
    );

    let claimed = claim(&store, &["kw.*"], 2, t0()).await;
    complete(
        &store,
        claimed[0].id,
        &claimed[0].lease,
        &json!({"n": 1}),
        t0() + ms(10),
    )
    .await
    .expect("complete");
    fail(
        &store,
        claimed[1].id,
        &claimed[1].lease,
        false,
        t0() + ms(20),
    )
    .await
    .expect("fail");
    let b = store.batch_get(T, batch_id).await.expect("get");
    assert_eq!(
        (b.progress.completed, b.progress.failed, b.progress.pending),
        (1, 1, 2)
    );

    let results = settled_results(&store, batch_id, None, 100, 2).await;
    let got: Vec<_> = results.iter().map(|(_, r)| (r.job_id, r.status)).collect();
    assert_eq!(
        got,
        [
            (claimed[0].id, JobState::Completed),
            (claimed[1].id, JobState::Failed)
        ]
    );
    assert_eq!(results[0].1.result, Some(json!({"n": 1})));
    assert_eq!(
        results[0].1.index,
        jobs.iter()
            .position(|j| j.id == claimed[0].id)
            .expect("index") as u32
    );
    let (pos, last) = results.last().expect("last");
    let cursor = Some((*pos, last.job_id));
    assert!(
        store
            .batch_results(T, batch_id, cursor, 100)
            .await
            .expect("results")
            .is_empty()
    );
    let first_only = settled_results(&store, batch_id, None, 1, 1).await;
    let cursor = Some((first_only[0].0, first_only[0].1.job_id));
    assert_eq!(
        store
            .batch_results(T, batch_id, cursor, 100)
            .await
            .expect("results")
            .len(),
        1
    );

    // An item whose clock reading is older than everything already read (its writer took
    // the time, then waited for the lock) still comes after the last position read.
    let read_up_to = store
        .batch_results(T, batch_id, None, 100)
        .await
        .expect("results")
        .last()
        .map(|(pos, r)| (*pos, r.job_id));
    let late = claim(&store, &["kw.*"], 1, t0()).await;
    complete(
        &store,
        late[0].id,
        &late[0].lease,
        &json!({"n": 3}),
        t0() + ms(1),
    )
    .await
    .expect("complete");
    let after_late = settled_results(&store, batch_id, read_up_to, 100, 1).await;
    assert_eq!(
        after_late.iter().map(|(_, r)| r.job_id).collect::<Vec<_>>(),
        [late[0].id]
    );

    let cancelled = store
        .batch_cancel(T, batch_id, t0() + ms(30), &audit())
        .await
        .expect("cancel");
    assert_eq!(cancelled.status, ferry_core::api::BatchState::Cancelled);
    assert_eq!(
        (cancelled.progress.cancelled, cancelled.progress.pending),
        (1, 0)
    );
    assert!(matches!(
        store.batch_get("other", batch_id).await,
        Err(StoreError::NotFound(ferry_store::Entity::Batch))
    ));
    assert!(matches!(
        store
            .batch_cancel(T, ferry_core::BatchId::new(), t0(), &audit())
            .await,
        Err(StoreError::NotFound(ferry_store::Entity::Batch))
    ));
}

pub(super) async fn batches_are_listed_newest_first_in_their_tenant(store: Store) {
    let mut made = Vec::new();
    for (i, tenant) in [T, T, "other", T].into_iter().enumerate() {
        let id = ferry_core::BatchId::new();
        let mut j = job("kw.lookup", |s| s.payload = json!({"i": i}));
        j.tenant_id = tenant.to_owned();
        j.batch = Some((id, 0));
        let batch = ferry_store::NewBatch {
            id,
            tenant_id: tenant.to_owned(),
            kind: "kw.lookup".to_owned(),
            labels: Default::default(),
        };
        store
            .batch_insert(&batch, &[j], t0() + ms(i as i64))
            .await
            .expect("batch");
        if tenant == T {
            made.push(id);
        }
    }
    made.reverse();
    let all = store.batch_list(T, None, 10).await.expect("list");
    assert_eq!(all.iter().map(|b| b.id).collect::<Vec<_>>(), made);
    assert!(
        all.iter()
            .all(|b| b.progress.total == 1 && b.progress.pending == 1)
    );
    let first = store.batch_list(T, None, 2).await.expect("a page");
    assert_eq!(first.len(), 2);
    let rest = store
        .batch_list(T, Some(first[1].id), 10)
        .await
        .expect("the next page");
    assert_eq!(rest.iter().map(|b| b.id).collect::<Vec<_>>(), [made[2]]);
    assert_eq!(
        store
            .batch_list("other", None, 10)
            .await
            .expect("list")
            .len(),
        1
    );
    assert!(
        store
            .batch_list("nobody", None, 10)
            .await
            .expect("list")
            .is_empty()
    );
}
