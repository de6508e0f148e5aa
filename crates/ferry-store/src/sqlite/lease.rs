//! The worker's side of a job: claims (priority, concurrency and rate keys), heartbeats,
//! progress, completion (applying dataset runs first), failure and the rescue of overdue
//! attempts, all fenced by the lease.

use chrono::{DateTime, Utc};
use ferry_core::{
    Job, JobId,
    api::{ClaimedJob, LeaseStatus},
};
use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use crate::{
    ClaimParams, CompleteParams, Completed, FailParams, LeasedJob, Overdue, ProgressParams,
    StoreError, StoreResult, Transition, shared,
};

use super::{
    SqliteStore, datasets, fail_running, from_ms, insert_jobs, job_by_id, json, lease_lost,
    lease_row, lease_rows, ms, opt_json, parse_id, push_kind_filter, push_not_paused, to_text,
};

impl SqliteStore {
    /// Whether due claimable jobs of `kinds` carry a concurrency or rate key.
    async fn keyed_due(&self, p: &ClaimParams<'_>) -> StoreResult<bool> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT EXISTS (SELECT 1 FROM ferry_jobs INDEXED BY ferry_jobs_keyed_ready \
             WHERE tenant_id = ",
        );
        q.push_bind(p.tenant_id.to_owned())
            .push(
                " AND status IN ('pending', 'scheduled') \
                 AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL) AND run_at <= ",
            )
            .push_bind(ms(p.now));
        push_kind_filter(&mut q, p.kinds);
        q.push(")");
        Ok(q.build_query_scalar::<bool>().fetch_one(&self.read).await?)
    }

    pub async fn job_claim(&self, p: &ClaimParams<'_>) -> StoreResult<Vec<ClaimedJob>> {
        let now = ms(p.now);
        // Keyed jobs are admitted against their keys (`shared::push_admitted`); the one
        // writer makes that statement atomic. Without any, the plain claim runs, and it
        // never takes a keyed job.
        let keyed = if self.keyed_hint.recent(now) {
            true
        } else {
            let keyed = self.keyed_due(p).await?;
            self.keyed_hint.record(now, keyed);
            keyed
        };
        let mut q = QueryBuilder::<Sqlite>::new("");
        push_claim(&mut q, p, keyed);
        let rows = q.build().fetch_all(&self.write).await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let labels: String = row.try_get("labels")?;
            let order = (
                -row.try_get::<i64, _>("priority")?,
                row.try_get::<i64, _>("run_at")?,
            );
            jobs.push((
                order,
                ClaimedJob {
                    id: parse_id(row.try_get("id")?)?,
                    kind: row.try_get("kind")?,
                    payload: json(row.try_get("payload")?)?,
                    labels: serde_json::from_str(&labels)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    attempt: row.try_get::<i64, _>("attempt")? as u32,
                    max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
                    lease: row.try_get("lease_token")?,
                    lease_ms: p.lease_ms,
                    lease_expires_at: from_ms(row.try_get("lease_expires_at")?)?,
                    deadline: from_ms(row.try_get("deadline_at")?)?,
                    input: opt_json(row.try_get("input")?)?,
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
        // RETURNING has no order; hand jobs out in claim order.
        jobs.sort_by_key(|a| (a.0, a.1.id));
        Ok(jobs.into_iter().map(|(_, job)| job).collect())
    }

    pub async fn job_heartbeat(
        &self,
        id: JobId,
        lease: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<LeaseStatus> {
        let mut conn = self.write.acquire().await?;
        let row = sqlx::query(
            "UPDATE ferry_jobs SET lease_expires_at = ? + lease_ms, updated_at = ? \
             WHERE id = ? AND lease_token = ? AND status = 'running' \
             RETURNING lease_expires_at, cancel_requested",
        )
        .bind(ms(now))
        .bind(ms(now))
        .bind(id.to_string())
        .bind(lease)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => Ok(LeaseStatus {
                lease_expires_at: from_ms(row.try_get("lease_expires_at")?)?,
                cancel: row.try_get::<i64, _>("cancel_requested")? != 0,
            }),
            None => Err(lease_lost(&mut conn, id).await),
        }
    }

    pub async fn job_progress(&self, p: &ProgressParams<'_>) -> StoreResult<LeaseStatus> {
        let mut tx = self.write.begin().await?;
        let patch = p.progress.as_ref().map(to_text);
        let row = sqlx::query(
            "UPDATE ferry_jobs SET \
             progress = CASE WHEN ?1 IS NULL THEN progress ELSE json_patch(coalesce(progress, '{}'), ?1) END, \
             lease_expires_at = ?2 + lease_ms, updated_at = ?2 \
             WHERE id = ?3 AND lease_token = ?4 AND status = 'running' \
             RETURNING lease_expires_at, cancel_requested, attempt, output",
        )
        .bind(patch)
        .bind(ms(p.now))
        .bind(p.id.to_string())
        .bind(p.lease)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(lease_lost(&mut tx, p.id).await);
        };
        if !p.items.is_empty() {
            let output: Option<ferry_core::dataset::Output> = opt_json(row.try_get("output")?)?;
            crate::datasets::check_items(output.as_ref(), p.items)?;
            let attempt: i64 = row.try_get("attempt")?;
            let first = match p.items_offset {
                Some(offset) => offset as i64,
                None => sqlx::query_scalar::<_, i64>(
                    "SELECT coalesce(max(idx) + 1, 0) FROM ferry_job_items WHERE job_id = ? AND lease_token = ?",
                )
                .bind(p.id.to_string())
                .bind(p.lease)
                .fetch_one(&mut *tx)
                .await?,
            };
            for (i, item) in p.items.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO ferry_job_items (job_id, attempt, lease_token, idx, data, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, lease_token, idx) DO NOTHING",
                )
                .bind(p.id.to_string())
                .bind(attempt)
                .bind(p.lease)
                .bind(first + i as i64)
                .bind(to_text(item))
                .bind(ms(p.now))
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(data) = shared::progress_event(p) {
            sqlx::query(
                "INSERT INTO ferry_events (tenant_id, type, job_id, kind, attempt, data, at) \
                 SELECT tenant_id, 'job.progress', id, kind, attempt, ?, ? FROM ferry_jobs WHERE id = ?",
            )
            .bind(to_text(&data))
            .bind(ms(p.now))
            .bind(p.id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        let status = LeaseStatus {
            lease_expires_at: from_ms(row.try_get("lease_expires_at")?)?,
            cancel: row.try_get::<i64, _>("cancel_requested")? != 0,
        };
        tx.commit().await?;
        Ok(status)
    }

    /// Completes a batch in one transaction; one answer per entry, in order.
    pub async fn job_complete(
        &self,
        entries: &[CompleteParams<'_>],
        now: DateTime<Utc>,
    ) -> StoreResult<Completed> {
        if entries.is_empty() {
            return Ok(Completed::default());
        }
        let mut conn = self.write.acquire().await?;
        // A job with `then` needs its result and its children in one transaction. Others
        // skip BEGIN/COMMIT (which cost as much again as the update on this path) and
        // RETURNING (sqlx hands every returned row across a thread). Which is which shows in
        // the lease token, marked at claim, so finding out costs no query.
        let chained = entries
            .iter()
            .any(|e| e.lease.starts_with(shared::CHAINED_LEASE));
        // A very large batch is written in statements of 5,000 inside one transaction,
        // so no single statement's list grows without bound.
        if chained || entries.len() > 5_000 {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            // Datasets first: a run the dataset refuses fails its job instead.
            let (changes, refused) = apply_runs(&mut tx, entries, now).await?;
            let mut applied = std::collections::HashSet::new();
            let mut children = Vec::new();
            for chunk in entries.chunks(5_000) {
                let mut q = complete_update(chunk, now);
                q.push(
                    " RETURNING ferry_jobs.id, ferry_jobs.tenant_id, ferry_jobs.then_specs, \
                     ferry_jobs.result, ferry_jobs.traceparent",
                );
                for row in q.build().fetch_all(&mut *tx).await? {
                    let id = parse_id(row.try_get("id")?)?;
                    applied.insert(id);
                    if let Some(then) =
                        opt_json::<Vec<ferry_core::api::SubmitJob>>(row.try_get("then_specs")?)?
                    {
                        let result = opt_json::<Value>(row.try_get("result")?)?.unwrap_or_default();
                        let tenant: String = row.try_get("tenant_id")?;
                        let trace: Option<String> = row.try_get("traceparent")?;
                        children.extend(shared::children(id, &tenant, trace, then, &result, now)?);
                    }
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
        let changed = complete_update(entries, now)
            .build()
            .execute(&mut *conn)
            .await?
            .rows_affected();
        // The common case: every entry applied now. Otherwise look at each entry (the rows
        // read in one query): an idempotent repeat (completed with this very lease) or a
        // report that lost its lease.
        let answers = if changed == entries.len() as u64 {
            entries.iter().map(|_| Ok(())).collect()
        } else {
            let rows = lease_rows(&mut conn, entries.iter().map(|e| e.id)).await?;
            entries
                .iter()
                .map(|e| {
                    rows.get(&e.id)
                        .ok_or(StoreError::NotFound(crate::Entity::Job))
                        .and_then(|row| row.repeated_complete(e.lease))
                })
                .collect()
        };
        Ok(Completed {
            answers,
            spawned: 0,
        })
    }

    pub async fn job_fail(&self, p: &FailParams<'_>) -> StoreResult<Job> {
        let mut tx = self.write.begin().await?;
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

    /// Fails (retry, dead or cancelled) up to `limit` running attempts whose lease or
    /// deadline passed before `now`.
    pub async fn job_fail_overdue(
        &self,
        which: Overdue,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Transition>> {
        let column = match which {
            Overdue::Lease => "lease_expires_at",
            Overdue::Deadline => "deadline_at",
        };
        let error = shared::overdue_error(which);
        let mut tx = self.write.begin().await?;
        // `column` is one of two fixed names above, never input.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, kind, lease_token, tenant_id, attempt, traceparent FROM ferry_jobs WHERE status = 'running' AND {column} < ? \
             LIMIT ?"
        )))
        .bind(ms(now))
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id = parse_id(row.try_get("id")?)?;
            let lease: String = row.try_get("lease_token")?;
            if let Some(to) = fail_running(&mut tx, id, &lease, &error, None, now).await? {
                out.push(Transition {
                    id,
                    kind: row.try_get("kind")?,
                    to,
                    tenant_id: row.try_get("tenant_id")?,
                    attempt: row.try_get::<i64, _>("attempt")? as u32,
                    traceparent: row
                        .try_get::<Option<String>, _>("traceparent")?
                        .and_then(|t| ferry_core::TraceParent::parse(&t)),
                });
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The running job `id` if `lease` is its current lease.
    pub async fn job_heads(&self, ids: &[JobId]) -> StoreResult<Vec<crate::JobHead>> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, tenant_id, kind, status, started_at, traceparent FROM ferry_jobs WHERE id IN (",
        );
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(id.to_string());
        }
        q.push(")");
        q.build()
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(crate::rows::job_head)
            .collect()
    }

    pub async fn job_leased(&self, id: JobId, lease: &str) -> StoreResult<Option<LeasedJob>> {
        let row = sqlx::query(
            "SELECT tenant_id, kind, payload, attempt FROM ferry_jobs \
             WHERE id = ? AND lease_token = ? AND status = 'running'",
        )
        .bind(id.to_string())
        .bind(lease)
        .fetch_optional(&self.read)
        .await?;
        row.map(|row| {
            Ok(LeasedJob {
                tenant_id: row.try_get("tenant_id")?,
                kind: row.try_get("kind")?,
                payload: opt_json(row.try_get("payload")?)?.unwrap_or(Value::Null),
                attempt: row.try_get::<i64, _>("attempt")? as u32,
            })
        })
        .transpose()
    }
}

/// Appends the claim: `UPDATE … RETURNING` the jobs it starts, through the admitting
/// statement when `keyed` (see `shared::push_admitted`).
pub(super) fn push_claim(q: &mut QueryBuilder<Sqlite>, p: &ClaimParams<'_>, keyed: bool) {
    let now = ms(p.now);
    if keyed {
        shared::push_admitted(q, &shared::SQLITE, p.tenant_id, now, p.max_jobs, |q| {
            push_kind_filter(q, p.kinds);
            push_not_paused(q, p.tenant_id);
        });
    }
    q.push("UPDATE ferry_jobs SET status = 'running', attempt = attempt + 1, worker_id = ")
        .push_bind(p.worker_id.to_owned())
        // A job with `then` or `output` gets a lease token marked `c` (see
        // `shared::CHAINED_LEASE`).
        .push(
            ", lease_token = CASE WHEN then_specs IS NULL AND output IS NULL THEN '' ELSE 'c' END \
             || lower(hex(randomblob(16))), lease_ms = ",
        )
        .push_bind(p.lease_ms as i64)
        .push(", lease_expires_at = ")
        .push_bind(now + p.lease_ms as i64)
        .push(", started_at = ")
        .push_bind(now)
        .push(", deadline_at = timeout_ms + ")
        .push_bind(now)
        .push(", updated_at = ")
        .push_bind(now)
        .push(", progress = NULL WHERE id IN (");
    if keyed {
        // `+status`: the re-check reads each admitted row by id. An indexable status
        // term makes SQLite walk every waiting job through the status index instead.
        q.push("SELECT id FROM admitted) AND +status IN ('pending', 'scheduled'");
    } else {
        // INDEXED BY: only claimable rows are read, however long the history of
        // finished jobs of the same kind (the kind index would read all of them).
        q.push("SELECT id FROM ferry_jobs INDEXED BY ferry_jobs_ready WHERE tenant_id = ")
            .push_bind(p.tenant_id.to_owned())
            .push(
                " AND status IN ('pending', 'scheduled') AND concurrency_key IS NULL \
                 AND rate_key IS NULL AND run_at <= ",
            )
            .push_bind(now);
        push_kind_filter(q, p.kinds);
        push_not_paused(q, p.tenant_id);
        // The limit is written into the statement, not bound: SQLite plans with a bound
        // LIMIT's value and then re-prepares the statement every time it is bound again.
        // It is a number, so this is safe; each batch size gets its own cached statement.
        q.push(" ORDER BY priority DESC, run_at, id LIMIT ")
            .push(p.max_jobs);
    }
    q.push(
        ") RETURNING id, kind, payload, labels, attempt, max_attempts, lease_token, \
             lease_expires_at, deadline_at, priority, run_at, input, traceparent",
    );
}

/// Applies the dataset runs of the jobs among `entries` that have `output` (still running
/// under the entry's lease), in `RunSource::order`; a refused run fails its job. Answers the
/// changes to record once the jobs are completed, and the jobs that failed.
async fn apply_runs(
    tx: &mut SqliteConnection,
    entries: &[CompleteParams<'_>],
    now: DateTime<Utc>,
) -> StoreResult<(
    Vec<(
        crate::datasets::RunSource,
        ferry_core::dataset::DatasetChange,
    )>,
    std::collections::HashSet<JobId>,
)> {
    let leases: std::collections::HashMap<String, &str> = entries
        .iter()
        .map(|e| (e.id.to_string(), e.lease))
        .collect();
    let ids: Vec<&String> = leases.keys().collect();
    let rows = sqlx::query(
        "SELECT id, output, tenant_id, kind, attempt, lease_token FROM ferry_jobs \
         WHERE id IN (SELECT value FROM json_each(?)) AND status = 'running' \
         AND output IS NOT NULL",
    )
    .bind(to_text(&ids))
    .fetch_all(&mut *tx)
    .await?;
    let mut runs = Vec::new();
    for row in rows {
        let id: String = row.try_get("id")?;
        let lease: String = row.try_get("lease_token")?;
        let (Some(&expected), Some(output)) = (leases.get(&id), opt_json(row.try_get("output")?)?)
        else {
            continue;
        };
        if lease != expected {
            continue;
        }
        runs.push(crate::datasets::RunSource {
            tenant_id: row.try_get("tenant_id")?,
            job_id: parse_id(&id)?,
            kind: row.try_get("kind")?,
            attempt: row.try_get("attempt")?,
            lease,
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

/// `UPDATE … FROM json_each(…)` completing `entries`: one statement text whatever their
/// number, so it is prepared once (a `VALUES` list of each size was a statement of its
/// own, parsed and planned again and pushing the claims out of the statement cache) and
/// takes one parameter instead of three per entry. Each result goes in as the text of its
/// JSON, unchanged.
pub(super) fn complete_update(
    entries: &[CompleteParams<'_>],
    now: DateTime<Utc>,
) -> QueryBuilder<Sqlite> {
    let list: Vec<(String, &str, String)> = entries
        .iter()
        .map(|e| (e.id.to_string(), e.lease, to_text(e.result)))
        .collect();
    let mut q = QueryBuilder::<Sqlite>::new(
        // The error of an earlier attempt stays in the event record, not on a completed job.
        "UPDATE ferry_jobs SET status = 'completed', result = v.result, error = NULL, finished_at = ",
    );
    q.push_bind(ms(now))
        .push(", updated_at = ")
        .push_bind(ms(now))
        .push(
            ", lease_expires_at = NULL FROM (SELECT value ->> 0 AS id, value ->> 1 AS lease, \
             value ->> 2 AS result FROM json_each(",
        )
        .push_bind(to_text(&list))
        // `+status`: each row is found by id; an indexable status term makes SQLite walk
        // the running jobs and look each up in the list instead.
        .push(
            ")) AS v WHERE ferry_jobs.id = v.id AND ferry_jobs.lease_token = v.lease \
             AND +ferry_jobs.status = 'running'",
        );
    q
}
