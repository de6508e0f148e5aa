//! The event record: filtered reads that advance past what they scanned, the head, pruning.

use chrono::{DateTime, Utc};
use sqlx::{QueryBuilder, Sqlite};

use crate::{EventFilter, StoreResult, shared};

use super::{SqliteStore, ms, push_kind_filter};

impl SqliteStore {
    pub async fn events_read(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
        after: i64,
        limit: u32,
        scan: u32,
    ) -> StoreResult<ferry_core::api::EventPage> {
        // One writer commits at a time, so ids are in commit order. The read covers the
        // next `scan` events at most (the primary key's range), matching or not.
        let upper: Option<i64> = sqlx::query_scalar(
            "SELECT max(id) FROM (SELECT id FROM ferry_events WHERE id > ? ORDER BY id LIMIT ?)",
        )
        .bind(after)
        .bind(i64::from(scan.max(limit)))
        .fetch_one(&self.read)
        .await?;
        let Some(upper) = upper else {
            return Ok(ferry_core::api::EventPage {
                events: Vec::new(),
                next_after: after,
            });
        };
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, type, job_id, kind, attempt, data, at FROM ferry_events WHERE tenant_id = ",
        );
        q.push_bind(tenant_id.to_owned())
            .push(" AND id > ")
            .push_bind(after)
            .push(" AND id <= ")
            .push_bind(upper);
        if let Some(job) = filter.job {
            q.push(" AND job_id = ").push_bind(job.to_string());
        }
        push_kind_filter(&mut q, &filter.kinds);
        if !filter.types.is_empty() {
            q.push(" AND type IN (");
            let mut types = q.separated(", ");
            for t in &filter.types {
                types.push_bind(t.clone());
            }
            q.push(")");
        }
        q.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit));
        let rows = q.build().fetch_all(&self.read).await?;
        let events = rows
            .iter()
            .map(crate::rows::event)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(shared::event_page(events, limit, upper))
    }

    /// The last `limit` state changes of one job, oldest first (index `ferry_events_job`).
    pub async fn job_events(
        &self,
        tenant_id: &str,
        job: ferry_core::JobId,
        limit: u32,
    ) -> StoreResult<Vec<ferry_core::api::Event>> {
        let rows = sqlx::query(
            "SELECT id, type, job_id, kind, attempt, data, at FROM ferry_events \
             WHERE job_id = ? AND tenant_id = ? AND type <> 'job.progress' ORDER BY id DESC LIMIT ?",
        )
        .bind(job.to_string())
        .bind(tenant_id)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        // The newest `limit`, oldest first.
        rows.iter().rev().map(crate::rows::event).collect()
    }

    pub async fn event_get(&self, id: i64) -> StoreResult<Option<ferry_core::api::Event>> {
        let row = sqlx::query(
            "SELECT id, type, job_id, kind, attempt, data, at FROM ferry_events WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(crate::rows::event).transpose()
    }

    /// The newest event id (a new webhook delivers what comes after it).
    pub async fn events_head(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar::<_, Option<i64>>("SELECT max(id) FROM ferry_events")
                .fetch_one(&self.read)
                .await?
                .unwrap_or(0),
        )
    }

    pub async fn events_prune(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        // Events are appended in time order: the oldest are the first by id, and the scan
        // stops at the first one young enough to keep (no index on `at` to maintain).
        let done = sqlx::query(
            "DELETE FROM ferry_events WHERE id IN (SELECT id FROM ferry_events WHERE id < \
             coalesce((SELECT min(id) FROM (SELECT id FROM ferry_events WHERE at >= ?1 \
             ORDER BY id LIMIT 1)), 9223372036854775807) ORDER BY id LIMIT ?2)",
        )
        .bind(ms(before))
        .bind(i64::from(limit))
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }
}
