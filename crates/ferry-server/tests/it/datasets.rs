//! Datasets through the HTTP API: jobs with `output` feed a dataset through the worker
//! protocol (items reported as partial results, then complete); the API lists what each
//! run changed, pages the items and exports them.

use ferry_core::{
    ErrorCode, JobId,
    api::{ClaimRequest, ClaimedJob, ProgressRequest, SubmitJob},
    dataset::{DatasetChange, ExportFormat, Output, OutputMode},
};
use ferry_testkit::{API_TOKEN, TestServer, WORKER_TOKEN};
use serde_json::{Value, json};

fn sync_job(mode: OutputMode) -> SubmitJob {
    SubmitJob {
        output: Some(Output {
            dataset: "reviews:shop-1".into(),
            key: "id".into(),
            mode,
            max_gone: None,
        }),
        ..SubmitJob::new("reviews.sync", json!({"shop": 1}))
    }
}

/// Submits a sync job and claims it.
async fn start_sync(server: &TestServer, mode: OutputMode) -> ClaimedJob {
    let job = server.api.submit(&sync_job(mode)).await.expect("submit");
    let c = server
        .worker
        .claim(&ClaimRequest {
            worker_id: "w".into(),
            kinds: vec!["reviews.sync".into()],
            max_jobs: Some(1),
            wait_ms: Some(0),
            lease_ms: None,
        })
        .await
        .expect("claim")
        .jobs
        .remove(0);
    assert_eq!(c.id, job.id);
    c
}

/// Runs a sync job: claimed, `items` reported as partial results, completed.
async fn run_sync(server: &TestServer, mode: OutputMode, items: Vec<Value>) -> JobId {
    let c = &start_sync(server, mode).await;
    server
        .worker
        .progress(
            c.id,
            &ProgressRequest {
                lease: c.lease.clone(),
                current: None,
                total: None,
                message: None,
                items: Some(items),
                items_offset: None,
            },
        )
        .await
        .expect("report items");
    server
        .worker
        .complete(c.id, &c.lease, json!({"ok": true}))
        .await
        .expect("complete");
    c.id
}

async fn export(server: &TestServer, format: ExportFormat) -> String {
    let mut out = Vec::new();
    server
        .api
        .export_dataset("reviews:shop-1", format, &mut out)
        .await
        .expect("export");
    String::from_utf8(out).expect("utf-8")
}

#[tokio::test]
async fn a_dataset_fed_twice_reports_new_changed_and_gone() {
    let server = TestServer::spawn().await;
    run_sync(
        &server,
        OutputMode::Snapshot,
        vec![
            json!({"id": "r1", "author": "Ann", "stars": 5}),
            json!({"id": "r2", "author": "Bob", "stars": 3, "text": "fine, \"mostly\""}),
            json!({"id": "r3", "author": "Cy", "stars": 4}),
        ],
    )
    .await;
    let second = run_sync(
        &server,
        OutputMode::Snapshot,
        vec![
            json!({"id": "r2", "author": "Bob", "stars": 3, "text": "fine, \"mostly\""}),
            json!({"id": "r3", "author": "Cy", "stars": 2}),
            json!({"id": "r4", "author": "Di", "stars": 5, "tags": ["new", "top"]}),
        ],
    )
    .await;

    let list = server.api.datasets().await.expect("datasets");
    assert_eq!(list.datasets.len(), 1);
    let info = &list.datasets[0];
    assert_eq!(
        (info.name.as_str(), info.key.as_str(), info.items, info.gone),
        ("reviews:shop-1", "id", 3, 1)
    );
    let last = info.last_run.clone().expect("last run");
    assert_eq!(
        (
            last.job_id,
            last.new,
            last.changed,
            last.unchanged,
            last.gone
        ),
        (second, 1, 1, 1, 1)
    );
    let runs = server
        .api
        .dataset_runs("reviews:shop-1")
        .await
        .expect("runs");
    assert_eq!(
        runs.runs
            .iter()
            .map(|r| (r.new, r.changed, r.gone))
            .collect::<Vec<_>>(),
        [(1, 1, 1), (3, 0, 0)]
    );

    // The change is announced with the keys.
    let events = server
        .events_when(|events| {
            events
                .iter()
                .filter(|e| e.event_type == "dataset.changed")
                .count()
                == 2
        })
        .await;
    let change = events
        .iter()
        .rev()
        .find(|e| e.event_type == "dataset.changed")
        .and_then(|e| e.data.clone())
        .expect("dataset.changed");
    let change: DatasetChange = serde_json::from_value(change).expect("change");
    assert_eq!(
        (change.keys.new, change.keys.changed, change.keys.gone),
        (
            vec!["r4".to_owned()],
            vec!["r3".to_owned()],
            vec!["r1".to_owned()]
        )
    );

    // Items in pages, in order of first appearance.
    let page = server
        .api
        .dataset_items("reviews:shop-1", 0, 2)
        .await
        .expect("items");
    let keys: Vec<_> = page.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["r2", "r3"]);
    let rest = server
        .api
        .dataset_items("reviews:shop-1", page.next_after, 2)
        .await
        .expect("items");
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].data["tags"], json!(["new", "top"]));
    let with_gone = server
        .raw()
        .json(
            "GET",
            "/v1/datasets/reviews:shop-1/items?gone=include",
            API_TOKEN,
            "",
        )
        .await;
    assert_eq!(with_gone.body["items"].as_array().map(Vec::len), Some(4));

    // Exports: CSV with the key first, then fields by first appearance; quoting as RFC 4180.
    assert_eq!(
        export(&server, ExportFormat::Csv).await,
        "id,author,stars,text,tags\n\
         r2,Bob,3,\"fine, \"\"mostly\"\"\",\n\
         r3,Cy,2,,\n\
         r4,Di,5,,\"[\"\"new\"\",\"\"top\"\"]\"\n"
    );
    let jsonl = export(&server, ExportFormat::Jsonl).await;
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1], json!({"id": "r3", "author": "Cy", "stars": 2}));
    let array: Vec<Value> =
        serde_json::from_str(&export(&server, ExportFormat::Json).await).expect("a JSON array");
    assert_eq!(array, lines);
    let head = server
        .raw()
        .json(
            "GET",
            "/v1/datasets/reviews:shop-1/export?format=csv",
            API_TOKEN,
            "",
        )
        .await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        head.header("content-disposition"),
        Some("attachment; filename=\"reviews_shop-1.csv\"")
    );

    server
        .api
        .delete_dataset("reviews:shop-1")
        .await
        .expect("delete");
    let gone = server
        .api
        .dataset("reviews:shop-1")
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Some(ErrorCode::NotFound));
}

#[tokio::test]
async fn bad_dataset_input_gets_a_4xx_naming_the_field() {
    let server = TestServer::spawn().await;
    let raw = server.raw();
    let bad_output = raw
        .json(
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "a", "output": {"dataset": "has space", "key": ""}}"#,
        )
        .await;
    assert_eq!(
        (bad_output.status, bad_output.code()),
        (422, "VALIDATION_FAILED")
    );
    let fields: Vec<_> = bad_output.body["error"]["fields"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["output.dataset", "output.key"]);
    let unknown_mode = raw
        .json(
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "a", "output": {"dataset": "d", "key": "id", "mode": "append"}}"#,
        )
        .await;
    assert_eq!(unknown_mode.status, 400, "{:?}", unknown_mode.body);

    // A dataset keeps its key: a job keying it by another field is refused at submit.
    run_sync(&server, OutputMode::Snapshot, vec![json!({"id": "r1"})]).await;
    let rekey = raw
        .json(
            "POST",
            "/v1/jobs",
            API_TOKEN,
            r#"{"kind": "a", "output": {"dataset": "reviews:shop-1", "key": "review_id"}}"#,
        )
        .await;
    assert_eq!((rekey.status, rekey.code()), (422, "VALIDATION_FAILED"));
    assert_eq!(rekey.body["error"]["fields"][0]["field"], "output.key");

    // An item without the key is refused when reported, naming the item.
    let c = start_sync(&server, OutputMode::Snapshot).await;
    let report = format!(
        r#"{{"lease": "{}", "items": [{{"id": "r1"}}, {{"author": "no id"}}]}}"#,
        c.lease
    );
    let refused = raw
        .json(
            "POST",
            &format!("/v1/worker/jobs/{}/progress", c.id),
            WORKER_TOKEN,
            &report,
        )
        .await;
    assert_eq!((refused.status, refused.code()), (422, "VALIDATION_FAILED"));
    assert_eq!(refused.body["error"]["fields"][0]["field"], "items[1]");

    for (path, status, code) in [
        ("/v1/datasets/nope", 404, "NOT_FOUND"),
        ("/v1/datasets/nope/items", 404, "NOT_FOUND"),
        ("/v1/datasets/nope/export?format=csv", 404, "NOT_FOUND"),
        (
            "/v1/datasets/nope/export?format=xml",
            422,
            "VALIDATION_FAILED",
        ),
        ("/v1/datasets/nope/items?limit=0", 422, "VALIDATION_FAILED"),
        (
            "/v1/datasets/nope/items?gone=maybe",
            422,
            "VALIDATION_FAILED",
        ),
        (
            "/v1/datasets/nope/items?color=red",
            422,
            "VALIDATION_FAILED",
        ),
    ] {
        let answer = raw.json("GET", path, API_TOKEN, "").await;
        assert_eq!((answer.status, answer.code()), (status, code), "{path}");
    }
}

/// A schedule's tick follows the rules of a client's submit: once its dataset is keyed by
/// another field than its job's `output.key`, a tick enqueues nothing (a submit would be a
/// `422`), instead of a job whose run would re-key the dataset and mark every row gone.
#[tokio::test]
async fn a_schedule_tick_is_checked_like_a_submit() {
    use ferry_server::services::{CronService, Service};
    let server = TestServer::spawn().await;
    let body = json!({"name": "nightly", "cron": "0 3 * * *", "catch_up": true,
                      "job": {"kind": "reviews.nightly",
                              "output": {"dataset": "reviews:shop-1", "key": "sku"}}});
    let created = server
        .raw()
        .json("POST", "/v1/schedules", API_TOKEN, &body.to_string())
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    // The dataset is made, keyed by `id`, after the schedule.
    run_sync(&server, OutputMode::Merge, vec![json!({"id": "a"})]).await;
    let refused = server
        .api
        .submit(&SubmitJob {
            output: Some(Output {
                dataset: "reviews:shop-1".into(),
                key: "sku".into(),
                mode: OutputMode::Merge,
                max_gone: None,
            }),
            ..SubmitJob::new("reviews.nightly", json!({}))
        })
        .await
        .expect_err("keyed by another field");
    assert_eq!(
        refused.code(),
        Some(ErrorCode::ValidationFailed),
        "{refused}"
    );

    // The tick is due (as if it were 03:00): nothing is enqueued.
    let id: ferry_core::ScheduleId =
        serde_json::from_value(created.body["id"].clone()).expect("id");
    let next: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(created.body["next_at"].clone()).expect("next_at");
    let an_hour_ago = server.queue.now() - chrono::Duration::hours(1);
    assert!(
        server
            .queue
            .store()
            .schedule_advance(id, next, an_hour_ago, None)
            .await
            .expect("advance")
    );
    let fired = CronService::new(server.queue.clone())
        .run_once()
        .await
        .expect("a cron pass");
    assert_eq!(fired, 0, "the tick's job was refused");
    let jobs = server
        .api
        .list(&ferry_client::ListQuery {
            kind: Some("reviews.nightly".to_owned()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(jobs.jobs.is_empty(), "{:?}", jobs.jobs);
    let info = server
        .api
        .dataset("reviews:shop-1")
        .await
        .expect("the dataset");
    assert_eq!(info.key, "id", "still keyed as it was");
}
