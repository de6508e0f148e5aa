//! One refused completion never holds up the others: a worker completes jobs through a
//! proxy that answers `500` to every completion batch holding one poisoned result and
//! `422` to every batch holding another. The other jobs complete on their first attempt
//! (no lease runs out waiting behind the refused batch); the refused result fails its
//! job with `RESULT_REFUSED`.

use std::time::Duration;

use ferry_client::Client;
use ferry_core::{JobState, Secret, error::job_codes};
use ferry_testkit::{
    TestServer, WORKER_TOKEN,
    faults::{Fault, FaultyProxy},
    job,
};
use ferry_worker::{Handler, HandlerError, JobContext, Registry, Worker, WorkerConfig};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Answers its payload's `mark` after a short while.
struct Echo;

#[async_trait::async_trait]
impl Handler for Echo {
    async fn run(&self, ctx: JobContext) -> Result<Value, HandlerError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(json!({"mark": ctx.payload["mark"].clone()}))
    }
}

#[tokio::test]
async fn a_refused_completion_is_split_out_and_the_others_complete_at_once() {
    let server = TestServer::builder().with_services().spawn().await;
    let proxy = FaultyProxy::spawn(&server.url, |seen| {
        if !seen.is_post_to("/complete") {
            Fault::Pass
        } else if seen.body_has("server-chokes") {
            Fault::Refuse(500)
        } else if seen.body_has("cannot-store") {
            Fault::Refuse(422)
        } else {
            Fault::Pass
        }
    })
    .await
    .expect("proxy");
    let mut registry = Registry::new();
    registry.register("echo", Echo).expect("register");
    let client = Client::new(&proxy.url, Secret::new(WORKER_TOKEN)).expect("client");
    let stop = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(
            client,
            registry,
            WorkerConfig {
                worker_id: "completions".into(),
                concurrency: 8,
                lease_ms: Some(3_000),
                ..Default::default()
            },
        )
        .run(stop.clone()),
    );

    let mut specs = Vec::new();
    for i in 0..40 {
        let mark = match i {
            3 => "server-chokes".to_owned(),
            17 => "cannot-store".to_owned(),
            i => format!("ok-{i}"),
        };
        let mut spec = job("echo", json!({"mark": mark}));
        spec.max_attempts = Some(2);
        specs.push(spec);
    }
    let jobs = server.api.submit_batch(specs).await.expect("submit");

    for (i, submitted) in jobs.iter().enumerate() {
        if i == 3 {
            // Its completion never gets through (it is retried, then its lease runs
            // out): what matters is that it held nothing else up. Checked below.
            continue;
        }
        let done = server
            .wait_final(submitted.id, Duration::from_secs(60))
            .await;
        match i {
            17 => {
                assert_eq!(done.status, JobState::Failed, "{done:?}");
                let error = done.error.clone().expect("an error");
                assert_eq!(error.code, job_codes::RESULT_REFUSED, "{error:?}");
                assert_eq!(
                    done.attempt, 1,
                    "failed at once, not after its lease: {done:?}"
                );
            }
            _ => {
                assert_eq!(done.status, JobState::Completed, "job {i}: {done:?}");
                assert_eq!(
                    done.attempt, 1,
                    "job {i} completed on its first attempt, its lease never ran out: {done:?}"
                );
            }
        }
    }
    let choked = server.api.job(jobs[3].id).await.expect("job 3");
    assert_ne!(choked.status, JobState::Completed, "{choked:?}");
    stop.cancel();
    let _ = worker.await;
}
