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
}
