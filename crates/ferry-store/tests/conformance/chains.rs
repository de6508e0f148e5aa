//! Chains in the conformance suite: a completed parent enqueues its children (in the same
//! transaction, with the parent's result as their input and the parent's tenant).

use ferry_core::JobState;
use ferry_store::{ListParams, Store};
use serde_json::json;

use super::{T, claim, complete, fail, insert, job, ms, pat, t0};

pub(super) async fn chains_enqueue_children_when_the_parent_completes(store: Store) {
    let children = |store: Store| async move {
        let p = ListParams {
            tenant_id: T.to_owned(),
            kind: Some(pat("post.publish")),
            limit: 100,
            ..Default::default()
        };
        store.job_list(&p).await.expect("list")
    };
    let parent = job("post.generate", |s| {
        s.max_attempts = Some(2);
        s.then = Some(vec![
            serde_json::from_value(json!({"kind": "post.publish", "payload": {"channel": "blog"}}))
                .expect("spec"),
            serde_json::from_value(json!({"kind": "post.publish"})).expect("spec"),
        ]);
    });
    let parent_id = insert(&store, vec![parent]).await[0];
    let c1 = claim(&store, &["post.generate"], 1, t0()).await.remove(0);
    fail(&store, parent_id, &c1.lease, true, t0())
        .await
        .expect("fail");
    assert!(
        children(store.clone()).await.is_empty(),
        "a failed attempt starts nothing"
    );
    let c2 = claim(&store, &["post.generate"], 1, t0() + ms(2_000))
        .await
        .remove(0);
    complete(
        &store,
        parent_id,
        &c2.lease,
        &json!({"text": "hello"}),
        t0() + ms(2_000),
    )
    .await
    .expect("complete");
    complete(
        &store,
        parent_id,
        &c2.lease,
        &json!({"text": "again"}),
        t0() + ms(2_001),
    )
    .await
    .expect("repeat");
    let mut kids = children(store.clone()).await;
    kids.sort_by_key(|j| j.payload.get("channel").is_none());
    assert_eq!(kids.len(), 2, "enqueued once");
    // The result goes beside each payload, which stays as submitted.
    assert_eq!(kids[0].payload, json!({"channel": "blog"}));
    assert_eq!(kids[1].payload, json!({}));
    assert!(kids.iter().all(|k| k.parent_id == Some(parent_id)
        && k.status == JobState::Pending
        && k.input == Some(json!({"text": "hello"}))));
    let handed = claim(&store, &["post.publish"], 2, t0() + ms(2_002)).await;
    assert_eq!(handed.len(), 2);
    assert!(
        handed
            .iter()
            .all(|c| c.input == Some(json!({"text": "hello"}))),
        "a worker gets the input with the job: {handed:?}"
    );

    assert_eq!(
        kids[0].max_attempts, 3,
        "defaults filled in when the parent was submitted"
    );

    // A parent that fails for good starts nothing.
    let doomed = job("post.generate", |s| {
        s.then = Some(vec![
            serde_json::from_value(json!({"kind": "post.publish"})).expect("spec"),
        ]);
    });
    let doomed_id = insert(&store, vec![doomed]).await[0];
    let c = claim(&store, &["post.generate"], 1, t0() + ms(3_000))
        .await
        .remove(0);
    assert_eq!(c.input, None, "a job no chain enqueued has no input");
    fail(&store, doomed_id, &c.lease, false, t0() + ms(3_000))
        .await
        .expect("fail");
    assert_eq!(children(store.clone()).await.len(), 2);

    // A job's children by its id (the dashboard's job page); the parent's attempts by
    // its own events, progress reports aside.
    let list = |p: ListParams| {
        let store = store.clone();
        async move { store.job_list(&p).await.expect("list") }
    };
    let by_parent = |parent| ListParams {
        tenant_id: T.to_owned(),
        parent: Some(parent),
        limit: 100,
        ..Default::default()
    };
    let mine = list(by_parent(parent_id)).await;
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|k| k.parent_id == Some(parent_id)));
    assert!(list(by_parent(doomed_id)).await.is_empty());
    let other = ListParams {
        tenant_id: "someone-else".to_owned(),
        ..by_parent(parent_id)
    };
    assert!(list(other).await.is_empty(), "another tenant's children");
    let events = store.job_events(T, parent_id, 50).await.expect("events");
    // Each start names the worker that took the attempt.
    for started in events.iter().filter(|e| e.event_type == "job.started") {
        assert_eq!(
            started.data,
            Some(serde_json::json!({"worker_id": "w1"})),
            "{started:?}"
        );
    }
    let history: Vec<(String, Option<u32>)> = events
        .into_iter()
        .map(|e| (e.event_type, e.attempt))
        .collect();
    let expected = [
        ("job.created", 0),
        ("job.started", 1),
        ("job.retrying", 1),
        ("job.started", 2),
        ("job.completed", 2),
    ]
    .map(|(t, a)| (t.to_owned(), Some(a)));
    assert_eq!(history, expected);
    assert!(
        store
            .job_events("someone-else", parent_id, 50)
            .await
            .expect("events")
            .is_empty()
    );

    // Text in kinds and dedupe keys, in any case; `%` and `_` are only themselves.
    let keyed = job("mail.send", |s| s.dedupe_key = Some("Acct_42%".into()));
    let keyed = insert(&store, vec![keyed]).await[0];
    let search = |text: &str| ListParams {
        tenant_id: T.to_owned(),
        search: Some(text.to_owned()),
        limit: 100,
        ..Default::default()
    };
    let ids = |jobs: Vec<ferry_core::Job>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(list(search("PUBLISH")).await.len(), 2);
    assert_eq!(ids(list(search("acct_42%")).await), [keyed]);
    assert_eq!(ids(list(search("t_4")).await), [keyed]);
    assert!(
        list(search("acct%42")).await.is_empty(),
        "% is not a wildcard"
    );
    assert!(
        list(search("acctx42")).await.is_empty(),
        "_ is not a wildcard"
    );
}
