//! Job artifacts: a worker uploads files (a failure's screenshot, HTML and network log, a
//! `screenshot` step's PNG) for a job it holds the lease of; clients list and download
//! them. The bytes go to the configured object store, the index to the database.

use bytes::Bytes;
use ferry_core::{JobId, api::ArtifactInfo, recipe::artifact_name_ok};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{AppError, AppResult, Lease, Principal};
use crate::{Queue, queue::artifact_path};

/// The artifacts of the principal's tenant's jobs.
#[derive(Debug, Clone, Copy)]
pub struct Artifacts<'q>(pub(super) &'q Queue);

/// An artifact's description and bytes.
#[derive(Debug)]
pub struct Download {
    pub info: ArtifactInfo,
    pub bytes: Bytes,
}

fn check_name(name: &str) -> AppResult<()> {
    if artifact_name_ok(name) {
        Ok(())
    } else {
        Err(AppError::field(
            "name",
            "1 to 100 letters, digits, `.`, `_`, `-` (not starting with `.`)",
        ))
    }
}

impl Artifacts<'_> {
    fn objects(&self) -> AppResult<&dyn ObjectStore> {
        self.0
            .config()
            .artifacts
            .as_deref()
            .ok_or(AppError::ArtifactsDisabled)
    }

    /// Stores `bytes` as artifact `name` of the leased job's current attempt.
    pub async fn upload(
        &self,
        who: &Principal,
        lease: &Lease,
        name: &str,
        content_type: String,
        bytes: Bytes,
    ) -> AppResult<ArtifactInfo> {
        check_name(name)?;
        let job = self.0.leased(who, lease).await?;
        let size_bytes = bytes.len() as u64;
        self.objects()?
            .put(
                &artifact_path(lease.job, name),
                PutPayload::from_bytes(bytes),
            )
            .await
            .map_err(AppError::ArtifactStore)?;
        let info = ArtifactInfo {
            name: name.to_owned(),
            content_type,
            size_bytes,
            attempt: job.attempt,
            created_at: self.0.now(),
        };
        self.0
            .store()
            .artifact_put(&job.tenant_id, lease.job, &info)
            .await?;
        Ok(info)
    }

    /// The job's artifacts (a job that does not exist is `NotFound`, one without
    /// artifacts an empty list).
    pub async fn list(&self, who: &Principal, job: JobId) -> AppResult<Vec<ArtifactInfo>> {
        self.0.get(&who.tenant, job).await?;
        Ok(self.0.store().artifact_list(&who.tenant, job).await?)
    }

    pub async fn download(&self, who: &Principal, job: JobId, name: &str) -> AppResult<Download> {
        check_name(name)?;
        let Some(info) = self
            .0
            .store()
            .artifact_list(&who.tenant, job)
            .await?
            .into_iter()
            .find(|a| a.name == name)
        else {
            return Err(AppError::NotFound("artifact"));
        };
        let bytes = self
            .objects()?
            .get(&artifact_path(job, name))
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => AppError::NotFound("artifact"),
                other => AppError::ArtifactStore(other),
            })?
            .bytes()
            .await
            .map_err(AppError::ArtifactStore)?;
        Ok(Download { info, bytes })
    }
}
