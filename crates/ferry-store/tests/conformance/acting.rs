//! Acting on jobs by hand in the conformance suite: cancelling waiting and running jobs,
//! retrying failed and cancelled ones, each only in its own tenant.

use super::*;

pub(super) async fn cancel_waiting_and_running_jobs(store: Store) {
    let ids = insert(
        &store,
        vec![job("a", |_| {}), job("b", |_| {}), job("c", |_| {})],
    )
    .await;
    let cancelled = store
        .job_cancel(T, ids[0], t0(), &audit())
        .await
        .expect("cancel pending");
    assert_eq!(cancelled.status, JobState::Cancelled);
    assert_eq!(
        store
            .job_cancel(T, ids[0], t0(), &audit())
            .await
            .expect("again")
            .status,
        JobState::Cancelled
    );
    assert!(claim(&store, &["a"], 1, t0()).await.is_empty());

    let c = claim(&store, &["b"], 1, t0()).await.remove(0);
    let asked = store
        .job_cancel(T, ids[1], t0(), &audit())
        .await
        .expect("cancel running");
    assert_eq!(asked.status, JobState::Running);
    assert!(asked.cancel_requested);
    assert!(
        store
            .job_heartbeat(ids[1], &c.lease, t0())
            .await
            .expect("heartbeat")
            .cancel
    );
    let job = fail(&store, ids[1], &c.lease, true, t0())
        .await
        .expect("ack");
    assert_eq!(job.status, JobState::Cancelled);

    let c = claim(&store, &["c"], 1, t0()).await.remove(0);
    complete(&store, ids[2], &c.lease, &json!(null), t0())
        .await
        .expect("complete");
    assert!(matches!(
        store.job_cancel(T, ids[2], t0(), &audit()).await,
        Err(StoreError::InvalidState {
            op: "cancel",
            status: JobState::Completed
        })
    ));
    assert!(matches!(
        store.job_cancel("other", ids[1], t0(), &audit()).await,
        Err(StoreError::NotFound(ferry_store::Entity::Job))
    ));
}

pub(super) async fn retry_revives_failed_and_cancelled(store: Store) {
    let ids = insert(
        &store,
        vec![job("a", |s| s.max_attempts = Some(1)), job("b", |_| {})],
    )
    .await;
    let c = claim(&store, &["a"], 1, t0()).await.remove(0);
    fail(&store, ids[0], &c.lease, true, t0())
        .await
        .expect("fail");
    let revived = store
        .job_retry(T, ids[0], t0() + ms(5), &audit())
        .await
        .expect("retry");
    assert_eq!((revived.status, revived.attempt), (JobState::Pending, 0));
    let again = claim(&store, &["a"], 1, t0() + ms(5)).await.remove(0);
    assert_eq!(again.attempt, 1);
    assert!(matches!(
        store.job_retry(T, ids[1], t0(), &audit()).await,
        Err(StoreError::InvalidState {
            op: "retry",
            status: JobState::Pending
        })
    ));
}
