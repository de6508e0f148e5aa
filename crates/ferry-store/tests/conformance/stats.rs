//! Reading a tenant's jobs in the conformance suite: lists filtered and paged, and the
//! jobs at a glance (unfinished and failed jobs by kind, finished jobs per five minutes
//! within the window, the oldest waiting job).

use super::*;

pub(super) async fn stats_count_jobs_by_kind_and_finished_per_bucket(store: Store) {
    let mut jobs: Vec<_> = (0..4)
        .map(|_| job("a", |s| s.max_attempts = Some(1)))
        .collect();
    jobs.push(job("b", |s| s.delay_ms = Some(60_000)));
    insert(&store, jobs).await;
    let claimed = claim(&store, &["a"], 3, t0() + ms(10)).await;
    complete(
        &store,
        claimed[0].id,
        &claimed[0].lease,
        &json!({}),
        t0() + ms(20),
    )
    .await
    .expect("complete");
    fail(
        &store,
        claimed[1].id,
        &claimed[1].lease,
        false,
        t0() + ms(30),
    )
    .await
    .expect("fail");

    let stats = store
        .job_stats(T, Some(t0() - ms(3_600_000)))
        .await
        .expect("stats");
    let kinds: Vec<(&str, &str, u64)> = stats
        .kinds
        .iter()
        .map(|k| (k.kind.as_str(), k.state.as_str(), k.count))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a", "failed", 1),
            ("a", "pending", 1),
            ("a", "running", 1),
            ("b", "scheduled", 1)
        ]
    );
    assert_eq!(stats.finished.len(), 1, "{:?}", stats.finished);
    let bucket = &stats.finished[0];
    assert_eq!((bucket.completed, bucket.failed), (1, 1));
    assert!(bucket.at <= t0() + ms(20) && t0() + ms(30) - bucket.at < ms(300_000));
    assert_eq!(stats.oldest_pending_at, Some(t0()));

    // Finished before the window, or another tenant's: not counted.
    let later = store
        .job_stats(T, Some(t0() + ms(1_000)))
        .await
        .expect("stats");
    assert!(later.finished.is_empty());
    // Without a window (the metrics' gauges): the same unfinished counts, no buckets.
    let gauges = store.job_stats(T, None).await.expect("stats");
    assert_eq!(gauges.kinds, stats.kinds);
    assert!(gauges.finished.is_empty());
    let other = store
        .job_stats("other", Some(t0() - ms(3_600_000)))
        .await
        .expect("stats");
    assert!(other.kinds.is_empty() && other.finished.is_empty());
    assert_eq!(other.oldest_pending_at, None);
}

pub(super) async fn list_filters_and_pages(store: Store) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let store_id = if i % 2 == 0 { "42" } else { "7" };
        ids.extend(
            insert(
                &store,
                vec![job(if i < 3 { "sync.reviews" } else { "login" }, |s| {
                    s.labels = Some([("store_id".to_owned(), store_id.to_owned())].into());
                })],
            )
            .await,
        );
    }
    let list = |f: &dyn Fn(&mut ListParams)| {
        let mut p = ListParams {
            tenant_id: T.to_owned(),
            limit: 100,
            ..Default::default()
        };
        f(&mut p);
        let store = store.clone();
        async move {
            store
                .job_list(&p)
                .await
                .expect("list")
                .into_iter()
                .map(|j| j.id)
                .collect::<Vec<_>>()
        }
    };
    let newest_first: Vec<_> = ids.iter().rev().copied().collect();
    assert_eq!(list(&|_| {}).await, newest_first);
    assert_eq!(
        list(&|p| p.labels = vec![("store_id".into(), "42".into())]).await,
        vec![ids[4], ids[2], ids[0]]
    );
    assert_eq!(
        list(&|p| p.kind = Some(pat("sync.*"))).await,
        vec![ids[2], ids[1], ids[0]]
    );
    assert_eq!(
        list(&|p| {
            p.kind = Some(pat("login"));
            p.labels = vec![("store_id".into(), "7".into())];
        })
        .await,
        vec![ids[3]]
    );
    let page1 = list(&|p| p.limit = 2).await;
    let cursor = page1[1];
    let page2 = list(&|p| {
        p.limit = 2;
        p.before = Some(cursor);
    })
    .await;
    assert_eq!([page1, page2].concat(), newest_first[..4].to_vec());
    claim(&store, &["login"], 1, t0()).await;
    assert_eq!(
        list(&|p| p.status = Some(JobState::Running)).await,
        vec![ids[3]]
    );
    let mut counts = store.job_counts(T).await.expect("counts");
    counts.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(counts, vec![(JobState::Pending, 4), (JobState::Running, 1)]);
    assert!(list(&|p| p.tenant_id = "other".into()).await.is_empty());
}
