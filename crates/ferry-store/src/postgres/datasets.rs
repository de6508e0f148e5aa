//! Datasets on PostgreSQL (see `crate::datasets` for the steps of a run).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ferry_core::dataset::{DatasetChange, DatasetInfo, DatasetItem, DatasetRun, OutputMode};
use futures_util::TryStreamExt;
use sqlx::{PgConnection, Row};

use super::{PostgresStore, ms};
use crate::AuditRow;
use crate::{
    StoreError, StoreResult,
    datasets::{
        APPLY_PAGE, Applied, Existing, RunSource, classify, gone_limit, learn_fields, prepare,
    },
};

/// Writes the items of `run`'s attempt to its dataset, inside the completion's transaction
/// and a savepoint of its own: a refused run leaves nothing behind.
pub(super) async fn apply_run(
    tx: &mut PgConnection,
    run: &RunSource,
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
    let applied = write_run(&mut savepoint, run, now).await?;
    match applied {
        Applied::Done(_) => savepoint.commit().await?,
        Applied::Refused(_) => savepoint.rollback().await?,
    }
    Ok(applied)
}

async fn write_run(
    tx: &mut PgConnection,
    run: &RunSource,
    now: DateTime<Utc>,
) -> StoreResult<Applied> {
    let (dataset_id, fields, live): (i64, FieldsColumn, i64) = sqlx::query_as(
        // The upsert locks the dataset's row until commit: runs on one dataset apply one
        // after the other, each seeing the rows of the ones before.
        "INSERT INTO ferry.datasets (tenant_id, name, key_field, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, name) \
         DO UPDATE SET key_field = excluded.key_field, updated_at = excluded.updated_at \
         RETURNING id, fields, live",
    )
    .bind(&run.tenant_id)
    .bind(&run.output.dataset)
    .bind(&run.output.key)
    .bind(ms(now))
    .fetch_one(&mut *tx)
    .await?;
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO ferry.dataset_runs (dataset_id, job_id, mode, at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(dataset_id)
    .bind(run.job_id.as_uuid())
    .bind(run.output.mode.as_str())
    .bind(ms(now))
    .fetch_one(&mut *tx)
    .await?;
    let mut change = DatasetChange {
        dataset: run.output.dataset.clone(),
        run: run_id,
        ..DatasetChange::default()
    };
    let mut known = fields_of(fields)?;
    let mut learned = false;
    let mut revived = 0;
    let mut after = -1_i64;
    loop {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT idx, data::text FROM ferry.job_items WHERE job_id = $1 AND lease_token = $2 \
             AND idx > $3 ORDER BY idx LIMIT $4",
        )
        .bind(run.job_id.as_uuid())
        .bind(&run.lease)
        .bind(after)
        .bind(APPLY_PAGE)
        .fetch_all(&mut *tx)
        .await?;
        let Some(&(last, _)) = rows.last() else {
            break;
        };
        after = last;
        let texts: Vec<String> = rows.into_iter().map(|(_, data)| data).collect();
        let items = prepare(&run.output, &texts)?;
        learned |= learn_fields(&mut known, &items);
        let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
        let existing: HashMap<String, Existing> = sqlx::query(
            "SELECT key, hash, run_id, gone_at IS NOT NULL AS gone FROM ferry.dataset_items \
             WHERE dataset_id = $1 AND key = ANY($2)",
        )
        .bind(dataset_id)
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("key")?,
                Existing {
                    hash: row.try_get("hash")?,
                    run: row.try_get("run_id")?,
                    gone: row.try_get("gone")?,
                },
            ))
        })
        .collect::<StoreResult<_>>()?;
        for item in &items {
            classify(
                &mut change,
                &mut revived,
                item,
                existing.get(&item.key),
                run_id,
            );
        }
        // `unnest` keeps the page's order, so `seq` follows first appearance.
        sqlx::query(
            "INSERT INTO ferry.dataset_items AS i \
             (dataset_id, key, data, hash, run_id, first_seen_at, changed_at) \
             SELECT $1, k, d::jsonb, h, $2, $3, $3 \
             FROM unnest($4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS t(k, d, h, n) ORDER BY n \
             ON CONFLICT (dataset_id, key) DO UPDATE SET \
             changed_at = CASE WHEN i.hash <> excluded.hash OR i.gone_at IS NOT NULL \
                 THEN excluded.changed_at ELSE i.changed_at END, \
             data = excluded.data, hash = excluded.hash, run_id = excluded.run_id, gone_at = NULL",
        )
        .bind(dataset_id)
        .bind(run_id)
        .bind(ms(now))
        .bind(&keys)
        .bind(items.iter().map(|i| i.data.clone()).collect::<Vec<_>>())
        .bind(items.iter().map(|i| i.hash.clone()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    if run.output.mode == OutputMode::Snapshot {
        if run.output.max_gone() < 1.0 {
            let going: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM ferry.dataset_items \
                 WHERE dataset_id = $1 AND gone_at IS NULL AND run_id <> $2",
            )
            .bind(dataset_id)
            .bind(run_id)
            .fetch_one(&mut *tx)
            .await?;
            let (going, live) = (going.max(0) as u64, live.max(0) as u64);
            if run.output.refuses_gone(going, live) {
                return Ok(Applied::Refused(gone_limit(&run.output, going, live)));
            }
        }
        let mut gone = sqlx::query_scalar::<_, String>(
            "UPDATE ferry.dataset_items SET gone_at = $1 \
             WHERE dataset_id = $2 AND gone_at IS NULL AND run_id <> $3 RETURNING key",
        )
        .bind(ms(now))
        .bind(dataset_id)
        .bind(run_id)
        .fetch(&mut *tx);
        while let Some(key) = gone.try_next().await? {
            change.gone += 1;
            change.note(&key, |k| &mut k.gone);
        }
    }
    sqlx::query(
        "UPDATE ferry.dataset_runs SET new = $1, changed = $2, unchanged = $3, gone = $4 WHERE id = $5",
    )
    .bind(change.new as i64)
    .bind(change.changed as i64)
    .bind(change.unchanged as i64)
    .bind(change.gone as i64)
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE ferry.datasets SET live = live + $1 - $2, gone = gone + $2 - $3 WHERE id = $4",
    )
    .bind(change.new as i64)
    .bind(change.gone as i64)
    .bind(revived as i64)
    .bind(dataset_id)
    .execute(&mut *tx)
    .await?;
    if learned {
        sqlx::query(UPDATE_FIELDS)
            .bind(fields_column(&known))
            .bind(dataset_id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(Applied::Done(change.is_change().then_some(change)))
}

/// Records `change` (of `run`) as `dataset.changed`, after the job's completion.
pub(super) async fn record_change(
    tx: &mut PgConnection,
    run: &RunSource,
    change: &DatasetChange,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO ferry.events (tenant_id, type, job_id, kind, attempt, data, at) \
         VALUES ($1, 'dataset.changed', $2, $3, $4, $5, $6)",
    )
    .bind(&run.tenant_id)
    .bind(run.job_id.as_uuid())
    .bind(&run.kind)
    .bind(run.attempt as i32)
    .bind(serde_json::to_value(change).unwrap_or_default())
    .bind(ms(now))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

const INFO_SELECT: &str = "SELECT d.name, d.key_field, d.live, d.gone, d.fields, d.created_at, d.updated_at, \
     r.id AS run_id, r.job_id, r.mode, r.new, r.changed, r.unchanged, r.gone AS run_gone, r.at \
     FROM ferry.datasets d LEFT JOIN ferry.dataset_runs r \
       ON r.id = (SELECT max(id) FROM ferry.dataset_runs WHERE dataset_id = d.id) \
     WHERE d.tenant_id = $1 AND ($2::text IS NULL OR d.name = $2) ORDER BY d.name";

impl PostgresStore {
    pub async fn dataset_list(&self, tenant_id: &str) -> StoreResult<Vec<DatasetInfo>> {
        sqlx::query(INFO_SELECT)
            .bind(tenant_id)
            .bind(None::<String>)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(crate::rows::dataset_info)
            .collect()
    }

    pub async fn dataset_get(
        &self,
        tenant_id: &str,
        name: &str,
    ) -> StoreResult<Option<DatasetInfo>> {
        sqlx::query(INFO_SELECT)
            .bind(tenant_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(crate::rows::dataset_info)
            .transpose()
    }

    pub async fn dataset_delete(
        &self,
        tenant_id: &str,
        name: &str,
        audit: &AuditRow,
    ) -> StoreResult<bool> {
        let change = sqlx::query("DELETE FROM ferry.datasets WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name);
        let changed = self.execute_audited(change, audit).await?;
        Ok(changed > 0)
    }

    pub async fn dataset_items(
        &self,
        tenant_id: &str,
        name: &str,
        after: i64,
        limit: u32,
        include_gone: bool,
    ) -> StoreResult<Vec<DatasetItem>> {
        // A page must walk `dataset_items_order` and stop after `limit`. Right after a large
        // run (before autovacuum has analyzed the table) — or with the dataset joined in —
        // the planner guesses a handful of rows and instead reads every row after `after`
        // and sorts them, so each page costs the whole dataset (an export of 100,000 rows
        // ran 4-60x slower). So the dataset's id is a value, and this transaction rules out
        // the bitmap scan and the sort.
        let mut tx = self.pool.begin().await?;
        sqlx::raw_sql("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "SELECT i.seq, i.key, i.data, i.first_seen_at, i.changed_at, i.gone_at \
             FROM ferry.dataset_items i \
             WHERE i.dataset_id = (SELECT id FROM ferry.datasets WHERE tenant_id = $1 AND name = $2) \
             AND i.seq > $3 AND ($4 OR i.gone_at IS NULL) ORDER BY i.seq LIMIT $5",
        )
        .bind(tenant_id)
        .bind(name)
        .bind(after)
        .bind(include_gone)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(crate::rows::dataset_item).collect()
    }

    pub async fn dataset_runs(
        &self,
        tenant_id: &str,
        name: &str,
        limit: u32,
    ) -> StoreResult<Vec<DatasetRun>> {
        let rows = sqlx::query(
            "SELECT r.id, r.job_id, r.mode, r.new, r.changed, r.unchanged, r.gone, r.at \
             FROM ferry.dataset_runs r JOIN ferry.datasets d ON d.id = r.dataset_id \
             WHERE d.tenant_id = $1 AND d.name = $2 ORDER BY r.id DESC LIMIT $3",
        )
        .bind(tenant_id)
        .bind(name)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| crate::rows::dataset_run(row, "id", "gone"))
            .collect()
    }
}

type FieldsColumn = serde_json::Value;

fn fields_of(column: FieldsColumn) -> StoreResult<Vec<String>> {
    serde_json::from_value(column).map_err(|e| StoreError::Corrupt(format!("bad fields: {e}")))
}

fn fields_column(fields: &[String]) -> FieldsColumn {
    serde_json::json!(fields)
}

const UPDATE_FIELDS: &str = "UPDATE ferry.datasets SET fields = $1 WHERE id = $2";
