//! Workers as their claims record them; jobs in hand and the last report come from the
//! running jobs (a small set, read through the status index).

use chrono::{DateTime, Utc};
use ferry_core::observe::WorkerInfo;

use crate::{StoreResult, WorkerSeen};

use super::{SqliteStore, ms, to_text};

impl SqliteStore {
    pub async fn worker_seen(&self, w: &WorkerSeen<'_>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ferry_workers (tenant_id, worker_id, kinds, agent, address, \
             first_seen_at, last_claim_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
             ON CONFLICT (tenant_id, worker_id) DO UPDATE SET kinds = excluded.kinds, \
             agent = excluded.agent, address = excluded.address, \
             last_claim_at = max(last_claim_at, excluded.last_claim_at)",
        )
        .bind(w.tenant_id)
        .bind(w.worker_id)
        .bind(to_text(&w.kinds))
        .bind(w.agent)
        .bind(w.address)
        .bind(ms(w.now))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn worker_list(
        &self,
        tenant_id: Option<&str>,
        since: DateTime<Utc>,
        connected_since: DateTime<Utc>,
    ) -> StoreResult<Vec<WorkerInfo>> {
        let rows = sqlx::query(
            "WITH held AS (SELECT tenant_id, worker_id, count(*) AS jobs, \
             max(updated_at) AS last_report FROM ferry_jobs INDEXED BY ferry_jobs_status \
             WHERE status = 'running' AND (?1 IS NULL OR tenant_id = ?1) \
             GROUP BY tenant_id, worker_id) \
             SELECT w.*, coalesce(h.jobs, 0) AS jobs, h.last_report FROM ferry_workers w \
             LEFT JOIN held h ON h.tenant_id = w.tenant_id AND h.worker_id = w.worker_id \
             WHERE (?1 IS NULL OR w.tenant_id = ?1) \
             AND (w.last_claim_at >= ?2 OR h.jobs IS NOT NULL) \
             ORDER BY w.tenant_id, w.worker_id",
        )
        .bind(tenant_id)
        .bind(ms(since))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| crate::rows::worker(row, connected_since))
            .collect()
    }

    pub async fn worker_prune(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM ferry_workers WHERE (tenant_id, worker_id) IN (SELECT w.tenant_id, \
             w.worker_id FROM ferry_workers w \
             WHERE w.last_claim_at < ?1 AND NOT EXISTS (SELECT 1 FROM ferry_jobs j \
             WHERE j.status = 'running' AND j.tenant_id = w.tenant_id \
             AND j.worker_id = w.worker_id) LIMIT ?2)",
        )
        .bind(ms(before))
        .bind(i64::from(limit))
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }
}

impl SqliteStore {
    /// The pools' sizes and idle connections: `(pool, size, idle)`.
    pub fn connections(&self) -> Vec<(&'static str, u32, usize)> {
        vec![
            ("read", self.read.size(), self.read.num_idle()),
            ("write", self.write.size(), self.write.num_idle()),
        ]
    }
}
