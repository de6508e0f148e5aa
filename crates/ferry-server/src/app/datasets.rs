//! Datasets: what runs wrote, read by their tenant: the list, one dataset, its rows in
//! pages (past gone rows, or with them), the runs that fed it, removal, and a reader
//! that walks every row a page at a time for exports.

use ferry_core::dataset::{DatasetInfo, DatasetItem, DatasetRun};
use ferry_store::{Store, StoreResult};

use super::{AppError, AppResult, Principal};
use crate::Queue;

/// The datasets of the principal's tenant.
#[derive(Debug, Clone, Copy)]
pub struct Datasets<'q>(pub(super) &'q Queue);

impl Datasets<'_> {
    fn store(&self) -> &Store {
        self.0.store()
    }

    pub async fn list(&self, who: &Principal) -> AppResult<Vec<DatasetInfo>> {
        Ok(self.store().dataset_list(&who.tenant).await?)
    }

    pub async fn get(&self, who: &Principal, name: &str) -> AppResult<DatasetInfo> {
        self.store()
            .dataset_get(&who.tenant, name)
            .await?
            .ok_or(AppError::NotFound("dataset"))
    }

    pub async fn delete(&self, who: &Principal, name: &str) -> AppResult<()> {
        if self
            .store()
            .dataset_delete(
                &who.tenant,
                name,
                &who.audit(self.0.now(), "dataset.delete", format!("dataset:{name}")),
            )
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound("dataset"))
        }
    }

    /// Up to `limit` rows after the row `after` (a seq), gone rows too when `gone`.
    pub async fn items(
        &self,
        who: &Principal,
        name: &str,
        after: i64,
        limit: u32,
        gone: bool,
    ) -> AppResult<Vec<DatasetItem>> {
        self.get(who, name).await?;
        Ok(self
            .store()
            .dataset_items(&who.tenant, name, after, limit, gone)
            .await?)
    }

    /// The last `limit` runs that fed the dataset, newest first.
    pub async fn runs(
        &self,
        who: &Principal,
        name: &str,
        limit: u32,
    ) -> AppResult<Vec<DatasetRun>> {
        self.get(who, name).await?;
        Ok(self.store().dataset_runs(&who.tenant, name, limit).await?)
    }

    /// The dataset and a reader of all its rows, `page` at a time (an export holds one
    /// page in memory, however large the dataset).
    pub async fn reader(
        &self,
        who: &Principal,
        name: &str,
        gone: bool,
        page: u32,
    ) -> AppResult<(DatasetInfo, DatasetReader)> {
        let info = self.get(who, name).await?;
        let reader = DatasetReader {
            store: self.store().clone(),
            tenant: who.tenant.clone(),
            name: name.to_owned(),
            gone,
            page,
            after: 0,
        };
        Ok((info, reader))
    }
}

/// Walks a dataset's rows in order, a page per call; owns what it needs, so a streamed
/// answer can carry it.
#[derive(Debug)]
pub struct DatasetReader {
    store: Store,
    tenant: ferry_core::TenantId,
    name: String,
    gone: bool,
    page: u32,
    after: i64,
}

impl DatasetReader {
    /// The next page of rows; empty at the end.
    pub async fn next_page(&mut self) -> StoreResult<Vec<DatasetItem>> {
        let items = self
            .store
            .dataset_items(&self.tenant, &self.name, self.after, self.page, self.gone)
            .await?;
        if let Some(last) = items.last() {
            self.after = last.seq;
        }
        Ok(items)
    }
}
