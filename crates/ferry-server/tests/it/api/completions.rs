//! Completions reported at the same time, black-box: written together (group commit on
//! SQLite), each request still answered for its own entries.

use ferry_core::{ErrorCode, JobState, api::BatchCompleteEntry};
use ferry_testkit::{TestServer, job};
use serde_json::json;

use super::claim_req;

#[tokio::test]
async fn batch_complete_answers_per_job() {
    let server = TestServer::spawn().await;
    server
        .api
        .submit_batch((0..3).map(|_| job("a", json!({}))).collect())
        .await
        .expect("batch");
    let claimed = server
        .worker
        .claim(&claim_req(&["a"], 3, 0))
        .await
        .expect("claim")
        .jobs;
    let mut entries: Vec<_> = claimed
        .iter()
        .map(|c| BatchCompleteEntry {
            id: c.id,
            lease: c.lease.clone(),
            result: json!(c.id.to_string()),
        })
        .collect();
    entries[1].lease = "stale".into();
    let answer = server
        .worker
        .complete_batch(entries)
        .await
        .expect("batch complete");
    let oks: Vec<_> = answer.results.iter().map(|r| r.ok).collect();
    assert_eq!(oks, [true, false, true]);
    assert_eq!(
        answer.results[1].error.as_ref().map(|e| e.code),
        Some(ErrorCode::LeaseLost)
    );
    assert_eq!(
        server.api.job(claimed[0].id).await.expect("get").status,
        JobState::Completed
    );
    assert_eq!(
        server.api.job(claimed[1].id).await.expect("get").status,
        JobState::Running
    );
}

/// Completions that arrive together are written together (group commit): each request
/// still gets the answers of its own entries, in its order, and each job its own result.
#[tokio::test]
async fn completions_sent_at_once_each_get_their_own_answers() {
    let server = TestServer::spawn().await;
    server
        .api
        .submit_batch((0..60).map(|_| job("a", json!({}))).collect())
        .await
        .expect("batch");
    let claimed = server
        .worker
        .claim(&claim_req(&["a"], 60, 0))
        .await
        .expect("claim")
        .jobs;
    assert_eq!(claimed.len(), 60);
    // 20 requests of 3; in every other request the middle entry has a stale lease.
    let requests = claimed.chunks(3).enumerate().map(|(n, chunk)| {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, c)| BatchCompleteEntry {
                id: c.id,
                lease: if n % 2 == 1 && i == 1 {
                    "stale".into()
                } else {
                    c.lease.clone()
                },
                result: json!(c.id.to_string()),
            })
            .collect();
        let worker = server.worker.clone();
        async move { (n, worker.complete_batch(entries).await.expect("complete")) }
    });
    for (n, answer) in futures_util::future::join_all(requests).await {
        let oks: Vec<_> = answer.results.iter().map(|r| r.ok).collect();
        let want = if n % 2 == 1 {
            [true, false, true]
        } else {
            [true, true, true]
        };
        assert_eq!(oks, want, "request {n}");
        let ids: Vec<_> = answer.results.iter().map(|r| r.id).collect();
        let sent: Vec<_> = claimed[n * 3..n * 3 + 3].iter().map(|c| c.id).collect();
        assert_eq!(ids, sent, "request {n} answers its own entries in order");
    }
    for (i, c) in claimed.iter().enumerate() {
        let got = server.api.job(c.id).await.expect("get");
        if (i / 3) % 2 == 1 && i % 3 == 1 {
            assert_eq!(got.status, JobState::Running, "job {i}");
        } else {
            assert_eq!(got.status, JobState::Completed, "job {i}");
            assert_eq!(got.result, Some(json!(c.id.to_string())), "job {i}");
        }
    }
}
