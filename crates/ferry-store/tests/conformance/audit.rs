//! The audit log in the conformance suite: an entry is written with a change that
//! happened and with nothing else (a repeat that changes nothing, a refused change),
//! read newest first in pages, and only by its tenant.

use ferry_store::{AuditRow, Store, StoreError};
use serde_json::json;

use super::{T, insert, job, ms, pat, t0};

/// The entry an audited call in these tests writes.
pub(super) fn audit() -> AuditRow {
    entry("test.change", "test:1")
}

fn entry(action: &'static str, target: &str) -> AuditRow {
    AuditRow {
        tenant_id: T.into(),
        at: t0(),
        actor: "key:fk_test000001".into(),
        action,
        target: target.into(),
        detail: None,
    }
}

pub(super) async fn audit_entries_are_written_with_their_change_only(store: Store) {
    let ids = insert(&store, vec![job("a", |_| {}), job("a", |_| {})]).await;
    let paused = entry("kind.pause", "kind:a").with_detail(json!({"why": "test"}));
    store
        .kind_pause(T, &pat("a"), t0(), &paused)
        .await
        .expect("pause");
    store
        .kind_pause(T, &pat("a"), t0() + ms(1), &entry("kind.pause", "again"))
        .await
        .expect("pause again");
    // A retry of a waiting job is refused: no entry.
    let refused = store
        .job_retry(T, ids[0], t0(), &entry("job.retry", "refused"))
        .await;
    assert!(matches!(refused, Err(StoreError::InvalidState { .. })));
    // Another tenant's job: not found, no entry.
    assert!(matches!(
        store
            .job_cancel("beta", ids[1], t0(), &entry("job.cancel", "beta"))
            .await,
        Err(StoreError::NotFound(_))
    ));
    store
        .job_cancel(T, ids[0], t0() + ms(2), &entry("job.cancel", "job:0"))
        .await
        .expect("cancel");
    store
        .job_retry(T, ids[0], t0() + ms(3), &entry("job.retry", "job:0"))
        .await
        .expect("retry");
    assert!(
        !store
            .schedule_delete(T, "none", &entry("schedule.delete", "none"))
            .await
            .expect("delete nothing")
    );
    // Another tenant's webhook is not deleted: no entry.
    let hook = ferry_store::WebhookRow {
        id: ferry_core::WebhookId::new(),
        tenant_id: T.into(),
        url: "http://127.0.0.1:9/".into(),
        sealed_secret: vec![0; 32],
        events: vec![],
        kinds: vec![],
        cursor: 0,
        created_at: t0(),
    };
    store
        .webhook_insert(&hook, &entry("webhook.create", "hook"))
        .await
        .expect("webhook");
    assert!(
        !store
            .webhook_delete("beta", hook.id, &entry("webhook.delete", "beta"))
            .await
            .expect("delete")
    );

    let all = store.audit_list(T, None, 100).await.expect("list");
    let seen: Vec<(&str, &str)> = all
        .iter()
        .map(|e| (e.action.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("webhook.create", "hook"),
            ("job.retry", "job:0"),
            ("job.cancel", "job:0"),
            ("kind.pause", "kind:a")
        ],
        "newest first, and only the changes that happened"
    );
    let first = &all[3];
    assert_eq!(first.actor, "key:fk_test000001");
    assert_eq!(first.at, t0());
    assert_eq!(first.detail, Some(json!({"why": "test"})));
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));

    let older = store.audit_list(T, Some(all[0].id), 1).await.expect("page");
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].id, all[1].id, "a page starts below `before`");
    assert!(
        store
            .audit_list("beta", None, 100)
            .await
            .expect("other tenant")
            .is_empty()
    );
}
