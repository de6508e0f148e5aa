//! The event record: filtered reads that advance past what they scanned, the head, pruning,
//! and the NOTIFY that tells other instances of new events and work.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::{Postgres, QueryBuilder, postgres::PgListener};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{EventFilter, StoreResult, shared};

use super::{
    EVENTS_CHANNEL, PostgresStore, WORK_CHANNEL, ms, push_after, push_kind_filter, sleep_or_stop,
};

impl PostgresStore {
    pub async fn events_read(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
        after: i64,
        limit: u32,
        scan: u32,
    ) -> StoreResult<ferry_core::api::EventPage> {
        // Where `after` sits in (tx, id) order; an event pruned since: by id alone.
        let after_tx: Option<i64> = if after > 0 {
            sqlx::query_scalar("SELECT tx FROM ferry.events WHERE id = $1")
                .bind(after)
                .fetch_optional(&self.pool)
                .await?
        } else {
            None
        };
        // The last of the next `scan` visible events (index `events_tx`), matching or not.
        // Every transaction below the snapshot's xmin has ended, so no event can enter
        // the range up to it later: moving there is exact.
        let mut window = QueryBuilder::<Postgres>::new(
            "SELECT tx, id FROM (SELECT tx, id FROM ferry.events \
             WHERE tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        );
        push_after(&mut window, after_tx, after);
        window
            .push(" ORDER BY tx, id LIMIT ")
            .push_bind(i64::from(scan.max(limit)))
            .push(") w ORDER BY tx DESC, id DESC LIMIT 1");
        let Some((upper_tx, upper)): Option<(i64, i64)> =
            window.build_query_as().fetch_optional(&self.pool).await?
        else {
            return Ok(ferry_core::api::EventPage {
                events: Vec::new(),
                next_after: after,
            });
        };
        let mut q = QueryBuilder::<Postgres>::new(
            "SELECT id, type, job_id, kind, attempt, data, at FROM ferry.events WHERE tenant_id = ",
        );
        q.push_bind(tenant_id.to_owned());
        push_after(&mut q, after_tx, after);
        q.push(" AND (tx, id) <= (")
            .push_bind(upper_tx)
            .push(", ")
            .push_bind(upper)
            .push(")");
        if let Some(job) = filter.job {
            q.push(" AND job_id = ").push_bind(job.as_uuid());
        }
        push_kind_filter(&mut q, &filter.kinds);
        if !filter.types.is_empty() {
            q.push(" AND type = ANY(")
                .push_bind(filter.types.clone())
                .push("::text[])");
        }
        q.push(" ORDER BY tx, id LIMIT ")
            .push_bind(i64::from(limit));
        let rows = q.build().fetch_all(&self.pool).await?;
        let events = rows
            .iter()
            .map(crate::rows::event)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(shared::event_page(events, limit, upper))
    }

    /// The last `limit` state changes of one job, oldest first (index `events_job`).
    pub async fn job_events(
        &self,
        tenant_id: &str,
        job: ferry_core::JobId,
        limit: u32,
    ) -> StoreResult<Vec<ferry_core::api::Event>> {
        let rows = sqlx::query(
            "SELECT id, type, job_id, kind, attempt, data, at FROM ferry.events \
             WHERE job_id = $1 AND tenant_id = $2 AND type <> 'job.progress' ORDER BY id DESC LIMIT $3",
        )
        .bind(job.as_uuid())
        .bind(tenant_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        // The newest `limit`, oldest first.
        rows.iter().rev().map(crate::rows::event).collect()
    }

    pub async fn event_get(&self, id: i64) -> StoreResult<Option<ferry_core::api::Event>> {
        let row = sqlx::query(
            "SELECT id, type, job_id, kind, attempt, data, at FROM ferry.events WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(crate::rows::event).transpose()
    }

    /// The id of the last event readers can see, in (tx, id) order: an event of a
    /// transaction still running is not there yet, and one below it may still commit.
    pub async fn events_head(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT id FROM ferry.events \
             WHERE tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
             ORDER BY tx DESC, id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?
        .unwrap_or(0))
    }

    pub async fn events_prune(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM ferry.events WHERE id IN (SELECT id FROM ferry.events WHERE at < $1 \
             ORDER BY at LIMIT $2)",
        )
        .bind(ms(before))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Forwards `NOTIFY ferry_work` to `wake` until `stop`; after a lost connection it
    /// reconnects and wakes everyone once (a notification may have been missed).
    pub async fn notify_events(&self) -> StoreResult<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(EVENTS_CHANNEL)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn forward_signals(
        &self,
        wake: Arc<Notify>,
        events: Arc<tokio::sync::watch::Sender<u64>>,
        stop: CancellationToken,
    ) {
        let ring = || events.send_modify(|n| *n = n.wrapping_add(1));
        loop {
            let mut listener = match PgListener::connect_with(&self.pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN for work; retrying");
                    if sleep_or_stop(&stop, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            if let Err(e) = listener.listen_all([WORK_CHANNEL, EVENTS_CHANNEL]).await {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                if sleep_or_stop(&stop, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
            wake.notify_waiters();
            ring();
            loop {
                tokio::select! {
                    n = listener.try_recv() => match n {
                        // New work is news too (an app's own `ferry.enqueue` writes
                        // `job.created`).
                        Ok(Some(n)) if n.channel() == EVENTS_CHANNEL => ring(),
                        Ok(Some(_)) => {
                            wake.notify_waiters();
                            ring();
                        }
                        // The connection dropped; try_recv reconnects on the next call.
                        Ok(None) => {
                            wake.notify_waiters();
                            ring();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "work notifications lost; reconnecting");
                            wake.notify_waiters();
                            ring();
                            break;
                        }
                    },
                    _ = stop.cancelled() => return,
                }
            }
        }
    }
}
