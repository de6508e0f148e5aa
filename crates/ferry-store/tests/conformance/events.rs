//! The event record in the conformance suite: every state change recorded once, in order,
//! with progress and batch events, and filtered reads that never scan the same events twice.

use super::*;

pub(super) async fn state_changes_are_recorded_as_events(store: Store) {
    let id = insert(&store, vec![job("a", |_| {})]).await[0];
    let other = insert(&store, vec![job("b", |s| s.delay_ms = Some(100))]).await[0];
    let first = claim(&store, &["a"], 1, t0()).await;
    fail(&store, id, &first[0].lease, true, t0() + ms(1))
        .await
        .expect("fail");
    store
        .job_promote_scheduled(t0() + ms(2_000), 100)
        .await
        .expect("promote");
    let second = claim(&store, &["a"], 1, t0() + ms(2_000)).await;
    complete(&store, id, &second[0].lease, &json!(1), t0() + ms(2_001))
        .await
        .expect("complete");
    store
        .job_cancel(T, other, t0() + ms(2_002), &audit())
        .await
        .expect("cancel");
    let filter = ferry_store::EventFilter {
        job: Some(id),
        ..Default::default()
    };
    let events = settled_events(&store, &filter, 5).await;
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.event_type.as_str(), e.attempt.unwrap_or(0)))
        .collect();
    assert_eq!(
        seen,
        [
            ("job.created", 0),
            ("job.started", 1),
            ("job.retrying", 1),
            ("job.started", 2),
            ("job.completed", 2)
        ],
        "a delay running out is not an event"
    );
    assert_eq!(events[1].at, t0());
    assert_eq!(events[4].at, t0() + ms(2_001));
    assert_eq!(
        events[2].data.as_ref().and_then(|d| d["code"].as_str()),
        Some("BOOM")
    );
    let all = settled_events(&store, &Default::default(), 7).await;
    assert_eq!(all.len(), 7);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let page = store
        .events_list(T, &Default::default(), all[3].id, 2)
        .await
        .expect("page");
    assert_eq!(page, all[4..6]);
    assert_eq!(
        all.last().map(|e| (e.event_type.as_str(), e.job_id)),
        Some(("job.cancelled", Some(other)))
    );
    assert!(
        store
            .events_list("other", &Default::default(), 0, 100)
            .await
            .expect("other")
            .is_empty()
    );
    assert_eq!(
        store.events_prune(t0() + ms(1), 100).await.expect("prune"),
        3
    );
    assert_eq!(
        store
            .events_list(T, &Default::default(), 0, 100)
            .await
            .expect("rest")
            .len(),
        4
    );
}

/// A filtered read moves its position past every event it scanned, matching or not, and
/// scans at most `scan` events: a reader whose filter rarely matches never reads the same
/// events twice.
pub(super) async fn filtered_reads_advance_past_what_they_scanned(store: Store) {
    let jobs: Vec<_> = (0..1_000).map(|_| job("a", |_| {})).collect();
    let ids = insert(&store, jobs).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let all = loop {
        let all = store
            .events_list(T, &Default::default(), 0, 1_000)
            .await
            .expect("events");
        if all.len() >= 1_000 || std::time::Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(all.len(), 1_000);
    let last = all[999].id;
    assert_eq!(store.events_head().await.expect("head"), last);
    let failed = ferry_store::EventFilter {
        types: vec!["job.failed".into()],
        ..Default::default()
    };
    // One read that scans the whole record: nothing matches, the position is its end.
    let page = store
        .events_read(T, &failed, 0, 100, 10_000)
        .await
        .expect("read");
    assert!(page.events.is_empty());
    assert_eq!(page.next_after, last, "the position stays where it was");
    // Bounded: 300 events per read, each read starting where the last one stopped.
    let mut after = 0;
    let mut reads = Vec::new();
    loop {
        let page = store
            .events_read(T, &failed, after, 100, 300)
            .await
            .expect("read");
        assert!(page.events.is_empty());
        if page.next_after == after {
            break;
        }
        reads.push(page.next_after);
        after = page.next_after;
    }
    assert_eq!(reads, [all[299].id, all[599].id, all[899].id, last]);
    // Another tenant's read moves past this tenant's events too, and sees none of them.
    let other = store
        .events_read("other", &Default::default(), 0, 100, 10_000)
        .await
        .expect("other");
    assert_eq!((other.events.len(), other.next_after), (0, last));
    // What matches after the position is found; a full page stops at its last event.
    let first = claim(&store, &["a"], 2, t0()).await;
    for c in &first {
        fail(&store, c.id, &c.lease, false, t0() + ms(1))
            .await
            .expect("fail");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let page = loop {
        let page = store
            .events_read(T, &failed, last, 100, 10_000)
            .await
            .expect("read");
        if page.events.len() >= 2 || std::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let failed_jobs: HashSet<_> = page.events.iter().filter_map(|e| e.job_id).collect();
    assert_eq!(failed_jobs, first.iter().map(|c| c.id).collect());
    assert!(ids.contains(&first[0].id));
    let head = store.events_head().await.expect("head");
    assert_eq!(
        page.next_after, head,
        "the two started events are scanned too"
    );
    let one = store
        .events_read(T, &failed, last, 1, 10_000)
        .await
        .expect("read");
    assert_eq!(one.events, page.events[..1]);
    assert_eq!(one.next_after, page.events[0].id);
}

pub(super) async fn progress_and_batches_are_recorded_as_events(store: Store) {
    let id = insert(&store, vec![job("a", |_| {})]).await[0];
    let c = claim(&store, &["a"], 1, t0()).await.remove(0);
    let items = [json!({"n": 1}), json!({"n": 2})];
    for (progress, items) in [
        (
            Some(Progress {
                current: Some(1),
                total: Some(4),
                message: Some("page 1".into()),
            }),
            &items[..],
        ),
        (None, &items[..0]),
    ] {
        store
            .job_progress(&ProgressParams {
                id,
                lease: &c.lease,
                progress,
                items,
                items_offset: None,
                now: t0() + ms(10),
            })
            .await
            .expect("progress");
    }
    let filter = ferry_store::EventFilter {
        types: vec!["job.progress".into()],
        ..Default::default()
    };
    let events = settled_events(&store, &filter, 1).await;
    assert_eq!(events.len(), 1, "a bare lease renewal is not news");
    assert_eq!(
        events[0].data,
        Some(json!({"current": 1, "total": 4, "message": "page 1", "items": 2}))
    );
    assert_eq!((events[0].job_id, events[0].attempt), (Some(id), Some(1)));

    // A batch: created, then finished once its last item finishes, after that item's event.
    let (batch, item_ids) = insert_batch(&store, "b", 3).await;
    let claimed = claim(&store, &["b"], 3, t0()).await;
    let lease = |id: JobId| {
        claimed
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.lease.clone())
            .expect("claimed")
    };
    complete(&store, item_ids[0], &lease(item_ids[0]), &json!(1), t0())
        .await
        .expect("complete");
    fail(&store, item_ids[1], &lease(item_ids[1]), false, t0())
        .await
        .expect("fail");
    let batch_filter = ferry_store::EventFilter {
        kinds: vec![pat("b")],
        types: vec!["batch.created".into(), "batch.finished".into()],
        ..Default::default()
    };
    assert_eq!(settled_events(&store, &batch_filter, 1).await.len(), 1);
    complete(
        &store,
        item_ids[2],
        &lease(item_ids[2]),
        &json!(1),
        t0() + ms(5),
    )
    .await
    .expect("complete the last");
    let events = settled_events(&store, &batch_filter, 2).await;
    let seen: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(seen, ["batch.created", "batch.finished"]);
    assert_eq!(
        events[0].data,
        Some(json!({"batch_id": batch.to_string(), "total": 3}))
    );
    assert_eq!(
        events[1].data,
        Some(
            json!({"batch_id": batch.to_string(), "status": "failed", "total": 3,
                    "completed": 2, "failed": 1, "cancelled": 0})
        )
    );
    let last_item = settled_events(
        &store,
        &ferry_store::EventFilter {
            job: Some(item_ids[2]),
            ..Default::default()
        },
        3,
    )
    .await;
    assert!(
        last_item[2].id < events[1].id,
        "the item's event comes first"
    );
}
