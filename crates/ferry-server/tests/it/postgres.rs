//! PostgreSQL-only behaviour: enqueue inside an application's own transaction, several
//! server instances on one database, and connections dropped mid-run. These always run on
//! PostgreSQL (`./scripts/test.sh` makes sure it is up).

use std::time::Duration;

use ferry_client::Client;
use ferry_core::{JobState, Secret, api::ClaimRequest};
use ferry_testkit::{Backend, TestServer, WORKER_TOKEN, handlers::CountRuns, job};
use ferry_worker::{Registry, Worker, WorkerConfig};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;

const LONG: Duration = Duration::from_secs(60);

/// A server whose idle long-polls never poll on their own: only a NOTIFY wakes them.
async fn pg_server(url: Option<&str>) -> TestServer {
    let builder = TestServer::builder()
        .backend(Backend::Postgres)
        .with_services()
        .configure(|c| {
            c.shared_poll_interval = Duration::from_secs(600);
            c.services.leader_interval = Duration::from_millis(200);
        });
    match url {
        Some(url) => builder.on_database(url).spawn().await,
        None => builder.spawn().await,
    }
}

fn claim(kinds: &[&str], wait_ms: u64) -> ClaimRequest {
    ClaimRequest {
        worker_id: "pg-test".into(),
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
        max_jobs: Some(10),
        wait_ms: Some(wait_ms),
        lease_ms: None,
    }
}

#[tokio::test]
async fn enqueue_joins_the_apps_transaction() {
    let server = pg_server(None).await;
    let url = server.database_url.clone().expect("postgres");
    let mut app = PgConnection::connect(&url).await.expect("app connection");

    // A worker waits on another connection; the insert comes from outside the server.
    let worker = server.worker.clone();
    let waiting = tokio::spawn(async move { worker.claim(&claim(&["app.*"], 20_000)).await });

    let mut tx = app.begin().await.expect("begin");
    let id: uuid::Uuid = sqlx::query_scalar(
        "SELECT ferry.enqueue('app.order_created', '{\"order\": 7}', '{\"labels\": {\"order\": \"7\"}, \"max_attempts\": 5}')",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("enqueue");
    let job_id = ferry_core::JobId::from_uuid(id);
    assert!(
        server.api.job(job_id).await.is_err(),
        "invisible before commit"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nobody is woken before commit");
    tx.commit().await.expect("commit");

    let got = waiting.await.expect("task").expect("claim").jobs;
    assert_eq!(
        got.iter().map(|j| j.id).collect::<Vec<_>>(),
        [job_id],
        "woken by the commit's NOTIFY"
    );
    assert_eq!(got[0].payload, json!({"order": 7}));
    assert_eq!(got[0].max_attempts, 5);
    assert_eq!(got[0].labels.get("order").map(String::as_str), Some("7"));

    // Rolled back: the job never existed.
    let mut tx = app.begin().await.expect("begin");
    let gone: uuid::Uuid = sqlx::query_scalar("SELECT ferry.enqueue('app.x', '{}')")
        .fetch_one(&mut *tx)
        .await
        .expect("enqueue");
    tx.rollback().await.expect("rollback");
    assert!(
        server
            .api
            .job(ferry_core::JobId::from_uuid(gone))
            .await
            .is_err()
    );

    // A dedupe key held by an unfinished job answers that job's id.
    let dedupe = "SELECT ferry.enqueue('app.sync', '{}', '{\"dedupe_key\": \"shop-9\"}')";
    let one: uuid::Uuid = sqlx::query_scalar(dedupe)
        .fetch_one(&mut app)
        .await
        .expect("enqueue");
    let two: uuid::Uuid = sqlx::query_scalar(dedupe)
        .fetch_one(&mut app)
        .await
        .expect("enqueue");
    assert_eq!(one, two);

    // Delays and bad input.
    let later: uuid::Uuid =
        sqlx::query_scalar("SELECT ferry.enqueue('app.later', '{}', '{\"delay_ms\": 60000}')")
            .fetch_one(&mut app)
            .await
            .expect("enqueue");
    let later = server
        .api
        .job(ferry_core::JobId::from_uuid(later))
        .await
        .expect("get");
    assert_eq!(later.status, JobState::Scheduled);

    // Flow-control keys.
    let keyed: uuid::Uuid = sqlx::query_scalar(
        "SELECT ferry.enqueue('app.login', '{}', '{\"concurrency\": {\"key\": \"account:1\", \"limit\": 1}, \
         \"rate_limit\": {\"key\": \"api\", \"interval_ms\": 300}}')",
    )
    .fetch_one(&mut app)
    .await
    .expect("enqueue");
    let keyed = server
        .api
        .job(ferry_core::JobId::from_uuid(keyed))
        .await
        .expect("get");
    assert_eq!(
        keyed.concurrency.map(|c| (c.key, c.limit)),
        Some(("account:1".to_owned(), 1))
    );
    assert_eq!(keyed.rate_limit.and_then(|r| r.interval_ms), Some(300));

    for bad in [
        "SELECT ferry.enqueue('no spaces', '{}')",
        "SELECT ferry.enqueue('a', '{}', '{\"colour\": 1}')",
        "SELECT ferry.enqueue('a', '{}', '{\"concurrency\": {\"key\": \"k\"}}')",
        "SELECT ferry.enqueue('a', '{}', '{\"rate_limit\": {\"key\": \"k\", \"max\": 3}}')",
    ] {
        let err = sqlx::query(sqlx::AssertSqlSafe(bad))
            .execute(&mut app)
            .await
            .expect_err(bad);
        assert!(err.to_string().contains("ferry.enqueue"), "{err}");
    }
}

fn start_worker(
    url: &str,
    count: &CountRuns,
    id: &str,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), ferry_worker::WorkerError>>,
) {
    let mut registry = Registry::new();
    registry
        .register("multi.count", count.clone())
        .expect("register");
    let client = Client::new(url, Secret::new(WORKER_TOKEN)).expect("client");
    let config = WorkerConfig {
        worker_id: id.into(),
        concurrency: 16,
        ..Default::default()
    };
    let stop = CancellationToken::new();
    (
        stop.clone(),
        tokio::spawn(Worker::new(client, registry, config).run(stop)),
    )
}

#[tokio::test]
async fn two_instances_share_work_and_elect_one_leader() {
    // The database belongs to the test, not to either instance: both are peers on it.
    let db = ferry_testkit::pg::TestDatabase::create().await;
    let a = pg_server(Some(&db.url)).await;
    let b = pg_server(Some(&db.url)).await;

    // A long-poll on B wakes for a job submitted through A.
    let worker_b = b.worker.clone();
    let waiting = tokio::spawn(async move { worker_b.claim(&claim(&["wake.*"], 20_000)).await });
    b.claims_waiting(1).await;
    let submitted = a
        .api
        .submit(&job("wake.up", json!({})))
        .await
        .expect("submit");
    let got = waiting.await.expect("task").expect("claim").jobs;
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), [submitted.id]);

    // Workers on both instances; every job completes, each exactly once.
    let count = CountRuns::default();
    let (stop_a, worker_a) = start_worker(&a.url, &count, "on-a");
    let (stop_b, worker_b) = start_worker(&b.url, &count, "on-b");
    let mut ids = Vec::new();
    for i in 0..10 {
        let api = if i % 2 == 0 { &a.api } else { &b.api };
        let batch = (0..200)
            .map(|n| job("multi.count", json!({"n": n})))
            .collect();
        ids.extend(
            api.submit_batch(batch)
                .await
                .expect("batch")
                .into_iter()
                .map(|j| j.id),
        );
    }
    for id in &ids {
        assert_eq!(a.wait_final(*id, LONG).await.status, JobState::Completed);
    }
    {
        let runs = count.runs();
        assert_eq!(runs.len(), ids.len());
        assert!(runs.values().all(|n| *n == 1), "a job ran twice");
    }
    let on_a = a
        .api
        .list(&ferry_client::ListQuery {
            limit: Some(500),
            ..Default::default()
        })
        .await
        .expect("list");
    let workers: std::collections::HashSet<_> = on_a
        .jobs
        .iter()
        .filter_map(|j| j.worker_id.clone())
        .collect();
    assert!(
        workers.contains("on-a") && workers.contains("on-b"),
        "both instances served work: {workers:?}"
    );
    stop_a.cancel();
    stop_b.cancel();
    worker_a.await.expect("task").expect("stop");
    worker_b.await.expect("task").expect("stop");

    // Exactly one leader; when it stops, the other takes over.
    let leader_now = |a: &TestServer, b: &TestServer| (a.queue.is_leader(), b.queue.is_leader());
    let mut leaders = leader_now(&a, &b);
    for _ in 0..50 {
        if leaders.0 != leaders.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        leaders = leader_now(&a, &b);
    }
    assert!(leaders.0 != leaders.1, "exactly one leader: {leaders:?}");
    let (leader, follower) = if leaders.0 { (a, b) } else { (b, a) };
    leader.stop().await;
    for _ in 0..100 {
        if follower.queue.is_leader() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the follower did not take over leadership");
}

#[tokio::test]
async fn jobs_complete_once_when_the_database_drops_every_connection() {
    let server = pg_server(None).await;
    let url = server.database_url.clone().expect("postgres");
    let db_name = url.rsplit('/').next().expect("db name").to_owned();
    let count = CountRuns::default();
    let (stop, worker) = start_worker(&server.url, &count, "survivor");
    let batch = (0..600)
        .map(|n| job("multi.count", json!({"n": n})))
        .collect();
    let ids: Vec<_> = server
        .api
        .submit_batch(batch)
        .await
        .expect("batch")
        .into_iter()
        .map(|j| j.id)
        .collect();

    let mut admin = PgConnection::connect(&ferry_testkit::pg::admin_url())
        .await
        .expect("admin");
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
            .bind(&db_name)
            .execute(&mut admin)
            .await
            .expect("terminate");
    }
    for id in &ids {
        let job = server.wait_final(*id, LONG).await;
        assert_eq!(job.status, JobState::Completed, "{job:?}");
        assert_eq!(
            job.result.as_ref().map(|r| r["attempt"].clone()),
            Some(json!(job.attempt))
        );
    }
    assert_eq!(count.runs().len(), ids.len());
    stop.cancel();
    worker.await.expect("task").expect("stop");
    // The server is healthy again.
    server.api.health().await.expect("healthy");
}

#[tokio::test]
async fn requests_answer_503_while_the_database_is_away_and_resume_after() {
    let db = ferry_testkit::pg::TestDatabase::create().await;
    let server = pg_server(Some(&db.url)).await;
    let submitted = server
        .api
        .submit(&job("a", json!({})))
        .await
        .expect("submit");
    let mut admin = PgConnection::connect(&ferry_testkit::pg::admin_url())
        .await
        .expect("admin");
    let away = |allow: bool| {
        sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS {allow}",
            db.name
        ))
    };
    sqlx::query(away(false))
        .execute(&mut admin)
        .await
        .expect("refuse connections");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&db.name)
        .execute(&mut admin)
        .await
        .expect("terminate");

    let path = format!("/v1/jobs/{}", submitted.id);
    let answer = server
        .raw()
        .json("GET", &path, ferry_testkit::API_TOKEN, "")
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (503, "UNAVAILABLE"),
        "{}",
        answer.body
    );
    assert_eq!(answer.header("retry-after"), Some("1"));

    sqlx::query(away(true))
        .execute(&mut admin)
        .await
        .expect("allow connections");
    let mut back = None;
    for _ in 0..100 {
        if let Ok(job) = server.api.job(submitted.id).await {
            back = Some(job);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        back.map(|j| j.id),
        Some(submitted.id),
        "the server recovers by itself"
    );
    server.stop().await;
}

/// The flow-control guarantees hold across instances: two servers on one database, four
/// workers on each, the job mix of `ferry_testkit::flow`, checked from the shared record.
#[tokio::test]
async fn two_instances_keep_key_limits() {
    let db = ferry_testkit::pg::TestDatabase::create().await;
    let a = pg_server(Some(&db.url)).await;
    let b = pg_server(Some(&db.url)).await;
    let jobs = a
        .api
        .submit_batch(ferry_testkit::flow::mix())
        .await
        .expect("submit");
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let mut registry = Registry::new();
        registry
            .register("flow.work", ferry_testkit::flow::Work)
            .expect("register");
        let url = if w % 2 == 0 { &a.url } else { &b.url };
        let client = Client::new(url, Secret::new(WORKER_TOKEN)).expect("client");
        let config = WorkerConfig {
            worker_id: format!("w{w}"),
            concurrency: 4,
            lease_ms: Some(5_000),
            ..Default::default()
        };
        tasks.push(tokio::spawn(
            Worker::new(client, registry, config).run(stop.clone()),
        ));
    }
    let mut stored = Vec::new();
    for j in &jobs {
        let done = b.wait_final(j.id, LONG).await;
        assert_eq!(done.status, JobState::Completed, "{done:?}");
        stored.push(done);
    }
    stop.cancel();
    for t in tasks {
        t.await.expect("worker task").expect("clean stop");
    }
    let workers: std::collections::HashSet<_> =
        stored.iter().filter_map(|j| j.worker_id.clone()).collect();
    assert!(workers.len() >= 4, "work was spread: {workers:?}");
    let events = b.events_through(&stored).await;
    ferry_testkit::flow::check_mix(&events, &stored).expect("limits held across instances");
}

/// An event written by a transaction that commits late is never skipped by a reader that
/// already read past its id: readers see only events of transactions older than every
/// running one, in (transaction, id) order.
#[tokio::test]
async fn a_late_commit_never_opens_a_gap_in_the_event_record() {
    let server = pg_server(None).await;
    let url = server.database_url.clone().expect("a PostgreSQL server");
    // Transaction A takes an event id (a job insert) and stays open.
    let mut a = PgConnection::connect(&url).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut a).await.expect("begin");
    sqlx::query(
        "INSERT INTO ferry.jobs (id, tenant_id, kind, status, payload, labels, run_at, attempt, \
         max_attempts, timeout_ms, backoff_base_ms, backoff_max_ms, created_at, updated_at) \
         VALUES (gen_random_uuid(), 'default', 'late.commit', 'pending', '{}', '{}', 0, 0, 3, 60000, \
         1000, 60000, 0, 0)",
    )
    .execute(&mut a)
    .await
    .expect("insert in A");
    // B commits after A took its id: B's event has the larger id, and is held back.
    let b = server
        .api
        .submit(&job("late.later", json!({})))
        .await
        .expect("submit");
    let seen = server.api.all_events(0).await.expect("events");
    assert!(
        seen.iter().all(|e| e.job_id != Some(b.id)),
        "B waits while an older transaction runs: {seen:?}"
    );
    let cursor = seen.last().map_or(0, |e| e.id);
    sqlx::query("COMMIT")
        .execute(&mut a)
        .await
        .expect("commit A");
    // (Other tests' transactions on this PostgreSQL may hold the horizon for a moment.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let after = loop {
        let after: Vec<_> = server
            .api
            .all_events(cursor)
            .await
            .expect("events")
            .into_iter()
            .map(|e| e.kind.unwrap_or_default())
            .collect();
        if after.len() >= 2 || tokio::time::Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(after, ["late.commit", "late.later"], "both, A first");
}

/// Two instances on one database both run cron passes as fast as they can (as if each
/// believed it led, the worst a leadership handover can do) while a worker completes the
/// jobs at once: every tick of a once-a-second schedule enqueues exactly one job.
#[tokio::test]
async fn a_schedule_on_two_instances_fires_once_per_tick() {
    use ferry_server::services::{CronService, Service};
    let a = pg_server(None).await;
    let url = a.database_url.clone().expect("postgres");
    let b = pg_server(Some(&url)).await;
    let mut registry = Registry::new();
    registry
        .register("tick.job", CountRuns::default())
        .expect("register");
    let stop = CancellationToken::new();
    let worker = tokio::spawn(
        Worker::new(b.worker.clone(), registry, WorkerConfig::default()).run(stop.clone()),
    );
    a.api
        .create_schedule(&ferry_core::schedule::ScheduleSpec {
            name: "every-second".into(),
            cron: "* * * * * *".into(),
            timezone: "UTC".into(),
            job: job("tick.job", json!({})),
            catch_up: true,
        })
        .await
        .expect("schedule");
    let passes: Vec<_> = [a.queue.clone(), b.queue.clone()]
        .into_iter()
        .map(|queue| {
            tokio::spawn(async move {
                let cron = CronService::new(queue);
                let until = tokio::time::Instant::now() + Duration::from_millis(3_500);
                while tokio::time::Instant::now() < until {
                    cron.run_once().await.expect("cron pass");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    for p in passes {
        p.await.expect("passes");
    }
    let mut db = PgConnection::connect(&url).await.expect("connect");
    sqlx::query("UPDATE ferry.schedules SET paused = true")
        .execute(&mut db)
        .await
        .expect("pause");
    let per_tick: Vec<(String, i64)> = sqlx::query_as(
        "SELECT dedupe_key, count(*) FROM ferry.jobs WHERE kind = 'tick.job' \
         GROUP BY dedupe_key ORDER BY dedupe_key",
    )
    .fetch_all(&mut db)
    .await
    .expect("jobs per tick");
    assert!(per_tick.len() >= 3, "ticks: {per_tick:?}");
    assert!(
        per_tick.iter().all(|(_, n)| *n == 1),
        "a tick enqueued twice: {per_tick:?}"
    );
    // No tick was skipped: they are whole seconds, one after another.
    let ticks: Vec<i64> = per_tick
        .iter()
        .filter_map(|(key, _)| key.rsplit(':').next()?.parse().ok())
        .collect();
    assert!(
        ticks.windows(2).all(|w| w[1] - w[0] == 1_000),
        "ticks: {ticks:?}"
    );
    let completed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ferry.jobs WHERE kind = 'tick.job' AND status = 'completed'",
    )
    .fetch_one(&mut db)
    .await
    .expect("completed");
    assert!(completed >= 2, "the worker finished ticks while passes ran");
    stop.cancel();
    worker.await.expect("worker").expect("worker stops");
}

/// An event written through one instance reaches a live stream on another at once: the
/// streams there never poll (once a minute), and a cancel makes no work (so no work
/// wake-up either): only the instances' event NOTIFY can wake them.
#[tokio::test]
async fn an_event_written_on_one_instance_reaches_streams_on_another() {
    let a = pg_server(None).await;
    let url = a.database_url.clone().expect("postgres");
    let b = TestServer::builder()
        .backend(Backend::Postgres)
        .configure(|c| c.event_poll_interval = Duration::from_secs(60))
        .on_database(&url)
        .spawn()
        .await;
    let first = a
        .api
        .submit(&job("wire.one", json!({})))
        .await
        .expect("submit on a");
    let second = a
        .api
        .submit(&job("wire.two", json!({})))
        .await
        .expect("submit on a");
    let base = b.url.clone();
    let stream = tokio::spawn(async move {
        ferry_testkit::sse::read(&base, "/v1/events?type=job.cancelled", None, 2).await
    });
    // Let the stream read the record (nothing cancelled yet) and start waiting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = tokio::time::Instant::now();
    a.api.cancel(first.id).await.expect("cancel on a");
    a.api.cancel(second.id).await.expect("cancel on a");
    let events = stream.await.expect("stream task");
    let waited = started.elapsed();
    let seen: Vec<_> = events
        .iter()
        .map(|(_, kind, data)| (kind.as_str(), data["job_id"].as_str().map(str::to_owned)))
        .collect();
    assert_eq!(
        seen,
        [
            ("job.cancelled", Some(first.id.to_string())),
            ("job.cancelled", Some(second.id.to_string()))
        ]
    );
    // read() gives up after 10 s; the stream's own poll is a minute away.
    assert!(waited < Duration::from_secs(10), "took {waited:?}");
    eprintln!("an event crossed instances in {waited:?}");
}

/// A leader cut off from the database (its connections go silent, nothing closes them)
/// steps down, and another instance ends its silent session, takes the lock and runs
/// maintenance: here, it rescues a job whose lease expired after the cut.
#[tokio::test]
async fn a_leader_cut_off_from_the_database_hands_over_maintenance() {
    use ferry_testkit::tcp_proxy::{TcpProxy, url_addr};
    let db = ferry_testkit::pg::TestDatabase::create().await;
    let proxy = TcpProxy::spawn(url_addr(&db.url)).await.expect("proxy");
    let server = |url: String| async move {
        TestServer::builder()
            .backend(Backend::Postgres)
            .with_services()
            .configure(|c| {
                c.services.leader_interval = Duration::from_millis(200);
                c.services.leader_timeout = Duration::from_secs(2);
            })
            .on_database(&url)
            .spawn()
            .await
    };
    let a = server(proxy.url_for(&db.url)).await;
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while !a.queue.is_leader() {
        assert!(tokio::time::Instant::now() < until, "A never led");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = server(db.url.clone()).await;

    // A job claimed through B whose worker then vanishes: its lease expires in 1 s.
    let submitted = b
        .api
        .submit(&job("cut.off", json!({})))
        .await
        .expect("submit");
    let mut request = claim(&["cut.*"], 0);
    request.lease_ms = Some(1_000);
    let claimed = b.worker.claim(&request).await.expect("claim").jobs;
    assert_eq!(claimed.len(), 1);

    proxy.freeze();
    let cut = tokio::time::Instant::now();
    let bound = Duration::from_secs(30);
    loop {
        let job = b.api.job(submitted.id).await.expect("job");
        if job.status != JobState::Running && b.queue.is_leader() {
            assert_eq!(
                job.error.as_ref().map(|e| e.code.as_str()),
                Some("LEASE_EXPIRED"),
                "{job:?}"
            );
            break;
        }
        assert!(
            cut.elapsed() < bound,
            "no rescue within {bound:?} of the leader's cut (B leads: {}, A leads: {})",
            b.queue.is_leader(),
            a.queue.is_leader()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A stepped down on its own: it could not confirm its session.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while a.queue.is_leader() {
        assert!(
            tokio::time::Instant::now() < until,
            "A still believes it leads"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(proxy);
}
