//! The worker's side of a job: claims (priority, concurrency and rate keys), heartbeats,
//! progress, completion (applying dataset runs first), failure and the rescue of overdue
//! attempts, all fenced by the lease.

use chrono::{DateTime, Utc};
use ferry_core::{
    Job, JobId,
    api::{ClaimedJob, LeaseStatus},
};
use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::{
    ClaimParams, CompleteParams, Completed, FailParams, LeasedJob, Overdue, ProgressParams,
    StoreResult, Transition, shared,
};

use super::{
    KEYED_CLAIM_BEGIN, PostgresStore, datasets, fail_running, from_json, from_ms, insert_jobs,
    job_by_id, lease_lost, lease_row, ms, push_kind_filter, push_not_paused, to_json,
};

impl PostgresStore {
    /// Whether due claimable jobs of `kinds` carry a concurrency or rate key.
    async fn keyed_due(&self, p: &ClaimParams<'_>) -> StoreResult<bool> {
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT EXISTS (SELECT 1 FROM ferry.jobs WHERE tenant_id = ",
        );
        q.push_bind(p.tenant_id.to_owned())
            .push(
                " AND status IN ('pending', 'scheduled') \
                 AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL) AND run_at <= ",
            )
            .push_bind(ms(p.now));
        push_kind_filter(&mut q, p.kinds);
        q.push(")");
        Ok(q.build_query_scalar::<bool>().fetch_one(&self.pool).await?)
    }

    pub async fn job_claim(&self, p: &ClaimParams<'_>) -> StoreResult<Vec<ClaimedJob>> {
        let now = ms(p.now);
        // Keyed jobs are admitted against their keys (`shared::push_admitted`) under
        // KEYED_CLAIM_LOCK. Without any due, the plain claim runs, which never takes one.
        let keyed = if self.keyed_hint.recent(now) {
            true
        } else {
            let keyed = self.keyed_due(p).await?;
            self.keyed_hint.record(now, keyed);
            keyed
        };
        let mut q = QueryBuilder::<Postgres>::new("");
        if keyed {
            shared::push_admitted(
                &mut q,
                &shared::POSTGRES,
                p.tenant_id,
                now,
                p.max_jobs,
                |q| {
                    push_kind_filter(q, p.kinds);
                    push_not_paused(q, p.tenant_id);
                },
            );
        }
        q.push("UPDATE ferry.jobs j SET status = 'running', attempt = j.attempt + 1, worker_id = ")
            .push_bind(p.worker_id.to_owned())
            // A job with `then` or `output` gets a lease token marked `c` (see
            // `shared::CHAINED_LEASE`).
            .push(
                ", lease_token = CASE WHEN j.then_specs IS NULL AND j.output IS NULL THEN '' ELSE 'c' END \
                 || replace(gen_random_uuid()::text, '-', ''), lease_ms = ",
            )
            .push_bind(p.lease_ms as i64)
            .push(", lease_expires_at = ")
            .push_bind(now + p.lease_ms as i64)
            .push(", started_at = ")
            .push_bind(now)
            .push(", deadline_at = j.timeout_ms + ")
            .push_bind(now)
            .push(", updated_at = ")
            .push_bind(now)
            .push(", progress = NULL FROM (");
        if keyed {
            q.push("SELECT id FROM admitted");
        } else {
            q.push("SELECT id FROM ferry.jobs WHERE tenant_id = ")
                .push_bind(p.tenant_id.to_owned())
                .push(
                    " AND status IN ('pending', 'scheduled') AND concurrency_key IS NULL \
                     AND rate_key IS NULL AND run_at <= ",
                )
                .push_bind(now);
            push_kind_filter(&mut q, p.kinds);
            push_not_paused(&mut q, p.tenant_id);
            q.push(" ORDER BY priority DESC, run_at, id LIMIT ")
                .push_bind(p.max_jobs as i64)
                .push(" FOR UPDATE SKIP LOCKED");
        }
        // The status re-check matters to the keyed path: its candidates are not locked, and
        // an UPDATE that waited for a concurrent claim of the row re-evaluates this.
        q.push(
            ") c WHERE j.id = c.id AND j.status IN ('pending', 'scheduled') \
             RETURNING j.id, j.kind, j.payload, \
             j.labels, j.attempt, j.max_attempts, j.lease_token, j.lease_expires_at, \
             j.deadline_at, j.priority, j.run_at, j.input, j.traceparent",
        );
        let rows = if keyed {
            // The statement's snapshot is taken after the lock is granted, so it sees every
            // admission committed before.
            let mut tx = self.pool.begin_with(KEYED_CLAIM_BEGIN).await?;
            let rows = q.build().fetch_all(&mut *tx).await?;
            tx.commit().await?;
            rows
        } else {
            q.build().fetch_all(&self.pool).await?
        };
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let order = (
                -(row.try_get::<i32, _>("priority")? as i64),
                row.try_get::<i64, _>("run_at")?,
            );
            jobs.push((
                order,
                ClaimedJob {
                    id: row.try_get::<Uuid, _>("id")?.into(),
                    kind: row.try_get("kind")?,
                    payload: row.try_get("payload")?,
                    labels: from_json(Some(row.try_get("labels")?))?.unwrap_or_default(),
                    attempt: row.try_get::<i32, _>("attempt")? as u32,
                    max_attempts: row.try_get::<i32, _>("max_attempts")? as u32,
                    lease: row.try_get("lease_token")?,
                    lease_ms: p.lease_ms,
                    lease_expires_at: from_ms(row.try_get("lease_expires_at")?)?,
                    deadline: from_ms(row.try_get("deadline_at")?)?,
                    input: row.try_get("input")?,
                    // The server adds the tenant's policy and name.
                    egress: Default::default(),
                    tenant: String::new(),
                    due_at: Some(from_ms(row.try_get("run_at")?)?),
                    traceparent: row
                        .try_get::<Option<String>, _>("traceparent")?
                        .and_then(|t| ferry_core::TraceParent::parse(&t)),
                },
            ));
        }
        jobs.sort_by_key(|a| (a.0, a.1.id));
        Ok(jobs.into_iter().map(|(_, job)| job).collect())
    }

    pub async fn job_heartbeat(
        &self,
        id: JobId,
        lease: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<LeaseStatus> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(
            "UPDATE ferry.jobs SET lease_expires_at = $1 + lease_ms, updated_at = $1 \
             WHERE id = $2 AND lease_token = $3 AND status = 'running' \
             RETURNING lease_expires_at, cancel_requested",
        )
        .bind(ms(now))
        .bind(id.as_uuid())
        .bind(lease)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => Ok(LeaseStatus {
                lease_expires_at: from_ms(row.try_get("lease_expires_at")?)?,
                cancel: row.try_get("cancel_requested")?,
            }),
            None => Err(lease_lost(&mut conn, id).await),
        }
    }

    pub async fn job_progress(&self, p: &ProgressParams<'_>) -> StoreResult<LeaseStatus> {
        let mut tx = self.pool.begin().await?;
        let patch = p.progress.as_ref().map(to_json);
        let row = sqlx::query(
            "UPDATE ferry.jobs SET \
             progress = CASE WHEN $1::jsonb IS NULL THEN progress ELSE coalesce(progress, '{}') || $1::jsonb END, \
             lease_expires_at = $2 + lease_ms, updated_at = $2 \
             WHERE id = $3 AND lease_token = $4 AND status = 'running' \
             RETURNING lease_expires_at, cancel_requested, attempt, output",
        )
        .bind(patch)
        .bind(ms(p.now))
        .bind(p.id.as_uuid())
        .bind(p.lease)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(lease_lost(&mut tx, p.id).await);
        };
        if !p.items.is_empty() {
            let output: Option<ferry_core::dataset::Output> = from_json(row.try_get("output")?)?;
            crate::datasets::check_items(output.as_ref(), p.items)?;
            let attempt: i32 = row.try_get("attempt")?;
            let first = match p.items_offset {
                Some(offset) => offset as i64,
                None => sqlx::query_scalar::<_, i64>(
                    "SELECT coalesce(max(idx) + 1, 0) FROM ferry.job_items WHERE job_id = $1 AND lease_token = $2",
                )
                .bind(p.id.as_uuid())
                .bind(p.lease)
                .fetch_one(&mut *tx)
                .await?,
            };
            let idx: Vec<i64> = (0..p.items.len() as i64).map(|i| first + i).collect();
            sqlx::query(
                "INSERT INTO ferry.job_items (job_id, attempt, lease_token, idx, data, created_at) \
                 SELECT $1, $2, $3, i, d, $4 FROM unnest($5::bigint[], $6::jsonb[]) AS t(i, d) \
                 ON CONFLICT (job_id, lease_token, idx) DO NOTHING",
            )
            .bind(p.id.as_uuid())
            .bind(attempt)
            .bind(p.lease)
            .bind(ms(p.now))
            .bind(idx)
            .bind(p.items.to_vec())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(data) = shared::progress_event(p) {
            sqlx::query(
                "INSERT INTO ferry.events (tenant_id, type, job_id, kind, attempt, data, at) \
                 SELECT tenant_id, 'job.progress', id, kind, attempt, $1, $2 FROM ferry.jobs WHERE id = $3",
            )
            .bind(data)
            .bind(ms(p.now))
            .bind(p.id.as_uuid())
            .execute(&mut *tx)
            .await?;
        }
        let status = LeaseStatus {
            lease_expires_at: from_ms(row.try_get("lease_expires_at")?)?,
            cancel: row.try_get("cancel_requested")?,
        };
        tx.commit().await?;
        Ok(status)
    }

    pub async fn job_complete(
        &self,
        entries: &[CompleteParams<'_>],
        now: DateTime<Utc>,
    ) -> StoreResult<Completed> {
        if entries.is_empty() {
            return Ok(Completed::default());
        }
        let mut conn = self.pool.acquire().await?;
        let ids: Vec<Uuid> = entries.iter().map(|e| e.id.as_uuid()).collect();
        let leases: Vec<String> = entries.iter().map(|e| e.lease.to_owned()).collect();
        let results: Vec<Value> = entries.iter().map(|e| e.result.clone()).collect();
        // A job with `then` needs its result and its children in one transaction; others
        // complete in one auto-committed statement. The lease token, marked at claim, says
        // which is which.
        let chained = entries
            .iter()
            .any(|e| e.lease.starts_with(shared::CHAINED_LEASE));
        // The error of an earlier attempt stays in the event record, not on a completed job.
        const UPDATE: &str = "UPDATE ferry.jobs j SET status = 'completed', result = v.result, \
             error = NULL, finished_at = $4, updated_at = $4, lease_expires_at = NULL \
             FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) AS v(id, lease, result) \
             WHERE j.id = v.id AND j.lease_token = v.lease AND j.status = 'running'";
        if chained {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            // Datasets first: a run the dataset refuses fails its job instead.
            let (changes, refused) = apply_runs(&mut tx, &ids, &leases, now).await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{UPDATE} RETURNING j.id, j.tenant_id, j.then_specs, j.result, j.traceparent"
            )))
            .bind(&ids)
            .bind(&leases)
            .bind(&results)
            .bind(ms(now))
            .fetch_all(&mut *tx)
            .await?;
            let mut applied = std::collections::HashSet::new();
            let mut children = Vec::new();
            for row in &rows {
                let id = row.try_get::<Uuid, _>("id")?.into();
                applied.insert(id);
                if let Some(then) =
                    from_json::<Vec<ferry_core::api::SubmitJob>>(row.try_get("then_specs")?)?
                {
                    let result: Option<Value> = row.try_get("result")?;
                    let tenant: String = row.try_get("tenant_id")?;
                    children.extend(shared::children(
                        id,
                        &tenant,
                        row.try_get("traceparent")?,
                        then,
                        &result.unwrap_or_default(),
                        now,
                    )?);
                }
            }
            insert_jobs(&mut tx, &children, now).await?;
            for (run, change) in &changes {
                datasets::record_change(&mut tx, run, change, now).await?;
            }
            let mut answers = Vec::with_capacity(entries.len());
            for e in entries {
                // A refused run's report was taken: its job failed instead of completing.
                answers.push(if applied.contains(&e.id) || refused.contains(&e.id) {
                    Ok(())
                } else {
                    lease_row(&mut tx, e.id)
                        .await
                        .and_then(|row| row.repeated_complete(e.lease))
                });
            }
            tx.commit().await?;
            return Ok(Completed {
                answers,
                spawned: children.len(),
            });
        }
        let changed = sqlx::query(UPDATE)
            .bind(&ids)
            .bind(&leases)
            .bind(&results)
            .bind(ms(now))
            .execute(&mut *conn)
            .await?
            .rows_affected();
        let mut answers = Vec::with_capacity(entries.len());
        for e in entries {
            answers.push(if changed == entries.len() as u64 {
                Ok(())
            } else {
                lease_row(&mut conn, e.id)
                    .await
                    .and_then(|row| row.repeated_complete(e.lease))
            });
        }
        Ok(Completed {
            answers,
            spawned: 0,
        })
    }

    pub async fn job_fail(&self, p: &FailParams<'_>) -> StoreResult<Job> {
        let mut tx = self.pool.begin().await?;
        let changed =
            fail_running(&mut tx, p.id, p.lease, &p.error, p.retry_after_ms, p.now).await?;
        if changed.is_none() {
            // A repeated `fail` of an attempt that already ended unsuccessfully is answered
            // with the job as it is; anything else lost the lease.
            lease_row(&mut tx, p.id).await?.repeated_fail(p.lease)?;
        }
        let job = job_by_id(&mut tx, p.id).await?;
        tx.commit().await?;
        Ok(job)
    }

    pub async fn job_fail_overdue(
        &self,
        which: Overdue,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Transition>> {
        let (sql, error) = match which {
            Overdue::Lease => (
                "SELECT id, kind, lease_token, tenant_id, attempt, traceparent FROM ferry.jobs WHERE status = 'running' \
                 AND lease_expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                shared::overdue_error(which),
            ),
            Overdue::Deadline => (
                "SELECT id, kind, lease_token, tenant_id, attempt, traceparent FROM ferry.jobs WHERE status = 'running' \
                 AND deadline_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                shared::overdue_error(which),
            ),
        };
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(sql)
            .bind(ms(now))
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.try_get::<Uuid, _>("id")?.into();
            let lease: String = row.try_get("lease_token")?;
            if let Some(to) = fail_running(&mut tx, id, &lease, &error, None, now).await? {
                out.push(Transition {
                    id,
                    kind: row.try_get("kind")?,
                    to,
                    tenant_id: row.try_get("tenant_id")?,
                    attempt: row.try_get::<i32, _>("attempt")? as u32,
                    traceparent: row
                        .try_get::<Option<String>, _>("traceparent")?
                        .and_then(|t| ferry_core::TraceParent::parse(&t)),
                });
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    pub async fn job_heads(&self, ids: &[JobId]) -> StoreResult<Vec<crate::JobHead>> {
        let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        sqlx::query(
            "SELECT id, tenant_id, kind, status, started_at, traceparent FROM ferry.jobs WHERE id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(crate::rows::job_head)
        .collect()
    }

    /// The running job `id` if `lease` is its current lease.
    pub async fn job_leased(&self, id: JobId, lease: &str) -> StoreResult<Option<LeasedJob>> {
        let row = sqlx::query(
            "SELECT tenant_id, kind, payload, attempt FROM ferry.jobs \
             WHERE id = $1 AND lease_token = $2 AND status = 'running'",
        )
        .bind(id.as_uuid())
        .bind(lease)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(LeasedJob {
                tenant_id: row.try_get("tenant_id")?,
                kind: row.try_get("kind")?,
                payload: row.try_get("payload")?,
                attempt: row.try_get::<i32, _>("attempt")? as u32,
            })
        })
        .transpose()
    }
}

/// Applies the dataset runs of the jobs among `ids` that have `output` (still running under
/// the entry's lease, locked until commit), in `RunSource::order`: one dataset at a time, in
/// name order, so two completions lock datasets in the same order and never deadlock. A
/// refused run fails its job. Answers the changes to record once the jobs are completed, and
/// the jobs that failed.
async fn apply_runs(
    tx: &mut PgConnection,
    ids: &[Uuid],
    leases: &[String],
    now: DateTime<Utc>,
) -> StoreResult<(
    Vec<(
        crate::datasets::RunSource,
        ferry_core::dataset::DatasetChange,
    )>,
    std::collections::HashSet<JobId>,
)> {
    let rows = sqlx::query(
        "SELECT j.id, j.output, j.tenant_id, j.kind, j.attempt, j.lease_token \
         FROM ferry.jobs j JOIN unnest($1::uuid[], $2::text[]) AS v(id, lease) \
           ON j.id = v.id AND j.lease_token = v.lease \
         WHERE j.status = 'running' AND j.output IS NOT NULL ORDER BY j.id FOR UPDATE OF j",
    )
    .bind(ids)
    .bind(leases)
    .fetch_all(&mut *tx)
    .await?;
    let mut runs = Vec::new();
    for row in &rows {
        let Some(output) = from_json(row.try_get("output")?)? else {
            continue;
        };
        runs.push(crate::datasets::RunSource {
            tenant_id: row.try_get("tenant_id")?,
            job_id: row.try_get::<Uuid, _>("id")?.into(),
            kind: row.try_get("kind")?,
            attempt: i64::from(row.try_get::<i32, _>("attempt")?),
            lease: row.try_get("lease_token")?,
            output,
        });
    }
    runs.sort_by(crate::datasets::RunSource::order);
    let mut changes = Vec::new();
    let mut refused = std::collections::HashSet::new();
    for run in runs {
        match datasets::apply_run(tx, &run, now).await? {
            crate::datasets::Applied::Done(Some(change)) => changes.push((run, change)),
            crate::datasets::Applied::Done(None) => {}
            crate::datasets::Applied::Refused(error) => {
                fail_running(tx, run.job_id, &run.lease, &error, None, now).await?;
                refused.insert(run.job_id);
            }
        }
    }
    Ok((changes, refused))
}
