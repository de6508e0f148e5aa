//! Listing jobs, black-box: label filters and pages that follow each other by cursor.

use ferry_client::ListQuery;
use ferry_testkit::{TestServer, job};
use serde_json::json;

#[tokio::test]
async fn batches_list_filters_and_pages() {
    let server = TestServer::spawn().await;
    let specs = (0..5)
        .map(|i| {
            let mut s = job("sync.reviews", json!({"i": i}));
            s.labels = Some([("store_id".to_owned(), (i % 2).to_string())].into());
            s
        })
        .collect();
    let created = server.api.submit_batch(specs).await.expect("batch");
    assert_eq!(created.len(), 5);
    let page = |labels: Vec<&str>, limit, cursor| ListQuery {
        labels: labels.into_iter().map(String::from).collect(),
        limit: Some(limit),
        cursor,
        ..Default::default()
    };
    let zeros = server
        .api
        .list(&page(vec!["store_id:0"], 10, None))
        .await
        .expect("list");
    assert_eq!(
        zeros
            .jobs
            .iter()
            .map(|j| j.payload["i"].clone())
            .collect::<Vec<_>>(),
        [json!(4), json!(2), json!(0)]
    );
    assert_eq!(zeros.next_cursor, None);
    let first = server
        .api
        .list(&page(vec![], 2, None))
        .await
        .expect("page 1");
    let second = server
        .api
        .list(&page(vec![], 2, first.next_cursor.clone()))
        .await
        .expect("page 2");
    let third = server
        .api
        .list(&page(vec![], 2, second.next_cursor.clone()))
        .await
        .expect("page 3");
    let seen: Vec<_> = [first.jobs, second.jobs, third.jobs]
        .concat()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(seen, created.iter().rev().map(|j| j.id).collect::<Vec<_>>());
    assert_eq!(third.next_cursor, None);
    let running = server
        .api
        .list(&ListQuery {
            status: Some("running".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(running.jobs.is_empty());
}
