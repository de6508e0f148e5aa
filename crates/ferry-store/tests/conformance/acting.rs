//! Acting on jobs by hand in the conformance suite: cancelling waiting and running jobs,
//! retrying failed and cancelled ones (one by one or a group of dead letters), pausing
//! kinds, each only in its own tenant.

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

/// Failed jobs are grouped by kind and error code, and a group is retried at once (only
/// the tenant's, only that group).
pub(super) async fn failed_jobs_are_grouped_and_retried_by_group(store: Store) {
    let jobs = (0..5)
        .map(|i| job(if i < 3 { "a" } else { "b" }, |s| s.max_attempts = Some(1)))
        .collect();
    insert(&store, jobs).await;
    let claimed = claim(&store, &["*"], 5, t0()).await;
    for (i, c) in claimed.iter().enumerate() {
        let code = if i == 1 { "OTHER" } else { "BOOM" };
        store
            .job_fail(&FailParams {
                id: c.id,
                lease: &c.lease,
                error: JobError::new(code, "it broke", false),
                retry_after_ms: None,
                now: t0() + ms(i as i64),
            })
            .await
            .expect("fail");
    }
    let groups = store.job_failed_groups(T, 100).await.expect("groups");
    let seen: Vec<(&str, &str, u64)> = groups
        .iter()
        .map(|g| (g.kind.as_str(), g.code.as_str(), g.count))
        .collect();
    let mut expected: Vec<(String, String, u64)> = Vec::new();
    for (i, c) in claimed.iter().enumerate() {
        let code = if i == 1 { "OTHER" } else { "BOOM" };
        match expected.iter_mut().find(|e| e.0 == c.kind && e.1 == code) {
            Some(e) => e.2 += 1,
            None => expected.push((c.kind.clone(), code.to_owned(), 1)),
        }
    }
    expected.sort_by(|x, y| y.2.cmp(&x.2).then(x.0.cmp(&y.0)).then(x.1.cmp(&y.1)));
    let seen_owned: Vec<(String, String, u64)> = seen
        .iter()
        .map(|(k, c, n)| (k.to_string(), c.to_string(), *n))
        .collect();
    assert_eq!(seen_owned, expected, "largest first, then by kind and code");
    assert!(
        store
            .job_failed_groups("other", 100)
            .await
            .expect("groups")
            .is_empty()
    );

    let (kind, code, count) = (seen[0].0.to_owned(), seen[0].1.to_owned(), seen[0].2);
    assert_eq!(
        store
            .job_retry_group("other", &kind, &code, t0() + ms(10), &audit())
            .await
            .expect("another tenant's"),
        0
    );
    assert_eq!(
        store
            .job_retry_group(T, &kind, &code, t0() + ms(10), &audit())
            .await
            .expect("retry the group"),
        count
    );
    let after = store.job_failed_groups(T, 100).await.expect("groups");
    assert!(
        after
            .iter()
            .all(|g| (g.kind.as_str(), g.code.as_str()) != (kind.as_str(), code.as_str()))
    );
    assert_eq!(after.iter().map(|g| g.count).sum::<u64>(), 5 - count);
    let waiting = store
        .job_list(&ListParams {
            tenant_id: T.into(),
            status: Some(JobState::Pending),
            kind: None,
            labels: vec![],
            before: None,
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(waiting.len() as u64, count);
    assert!(waiting.iter().all(|j| j.attempt == 0));
}

pub(super) async fn paused_kinds_are_not_claimed(store: Store) {
    insert(
        &store,
        vec![
            job("report.daily", |_| {}),
            job("report.weekly", |_| {}),
            job("mail.send", |_| {}),
        ],
    )
    .await;
    store
        .kind_pause(T, &pat("report.*"), t0(), &audit())
        .await
        .expect("pause");
    store
        .kind_pause(T, &pat("report.*"), t0(), &audit())
        .await
        .expect("pause twice");
    store
        .kind_pause(T, &pat("mail.send"), t0(), &audit())
        .await
        .expect("pause");
    assert_eq!(
        store.kind_paused(T).await.expect("paused"),
        ["mail.send", "report.*"]
    );
    assert!(claim(&store, &["*"], 10, t0()).await.is_empty());
    assert_eq!(
        store
            .job_next_run_at(T, &[pat("*")], t0())
            .await
            .expect("next"),
        None,
        "paused work is not waited for"
    );
    store
        .kind_resume(T, &pat("mail.send"), &audit())
        .await
        .expect("resume");
    let got: Vec<_> = claim(&store, &["*"], 10, t0())
        .await
        .into_iter()
        .map(|j| j.kind)
        .collect();
    assert_eq!(got, ["mail.send"]);
    store
        .kind_pause(T, &pat("*"), t0(), &audit())
        .await
        .expect("pause all");
    store
        .kind_resume(T, &pat("report.*"), &audit())
        .await
        .expect("resume");
    assert!(
        claim(&store, &["*"], 10, t0()).await.is_empty(),
        "* pauses everything"
    );
    store
        .kind_resume(T, &pat("*"), &audit())
        .await
        .expect("resume all");
    assert_eq!(claim(&store, &["report.*"], 10, t0()).await.len(), 2);
    assert!(store.kind_paused("other").await.expect("paused").is_empty());
}
