//! A worker's reports about a job it holds: progress (with items) and failure, checked
//! here (sizes, bounds, the error's shape) before the store applies them under the lease.

use ferry_core::{
    FieldError, Job, JobError, JobState, Progress,
    api::{FailRequest, LeaseStatus, ProgressRequest},
    validate::{self, MAX_PROGRESS_MESSAGE_LEN},
};
use ferry_store::ProgressParams;

use super::{AppError, AppResult, Lease, Principal};
use crate::Queue;

/// The most items one progress report carries.
const MAX_ITEMS_PER_REPORT: usize = 1_000;

impl Queue {
    /// Records progress and items under `lease`; answers whether the lease still holds.
    pub async fn report_progress(
        &self,
        who: &Principal,
        lease: &Lease,
        req: ProgressRequest,
    ) -> AppResult<LeaseStatus> {
        self.fence(who, lease.job).await?;
        let mut errors = Vec::new();
        if req
            .message
            .as_ref()
            .is_some_and(|m| m.len() > MAX_PROGRESS_MESSAGE_LEN)
        {
            errors.push(FieldError::new(
                "message",
                format!("at most {MAX_PROGRESS_MESSAGE_LEN} bytes"),
            ));
        }
        let items = req.items.unwrap_or_default();
        if items.len() > MAX_ITEMS_PER_REPORT {
            errors.push(FieldError::new(
                "items",
                format!("at most {MAX_ITEMS_PER_REPORT} items per report"),
            ));
        }
        if req.current.zip(req.total).is_some_and(|(c, t)| c > t) {
            errors.push(FieldError::new("current", "must not exceed total"));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let progress = (req.current.is_some() || req.total.is_some() || req.message.is_some())
            .then_some(Progress {
                current: req.current,
                total: req.total,
                message: req.message,
            });
        Ok(self
            .progress(ProgressParams {
                id: lease.job,
                lease: &lease.token,
                progress,
                items: &items,
                items_offset: req.items_offset,
                now: self.now(),
            })
            .await?)
    }

    /// Fails the attempt `lease` holds (retried or dead as the job's policy says).
    pub async fn report_failure(
        &self,
        who: &Principal,
        lease: &Lease,
        req: FailRequest,
    ) -> AppResult<Job> {
        validate::fail_error(&req.error).map_err(AppError::Invalid)?;
        let head = self.fence(who, lease.job).await?;
        let error = JobError {
            code: req.error.code,
            message: req.error.message,
            retryable: req.error.retryable,
        };
        let job = self
            .fail(lease.job, &lease.token, error, req.error.retry_after_ms)
            .await?;
        // Counted once: a repeated report finds the job no longer running.
        if let Some(head) = head.filter(|h| h.status == JobState::Running) {
            let state = match job.status {
                JobState::Pending | JobState::Scheduled => "retrying",
                other => other.as_str(),
            };
            let code = job.error.as_ref().map_or("", |e| e.code.as_str());
            self.metrics().attempt_ended(
                &head.tenant_id,
                &head.kind,
                state,
                code,
                crate::metrics::ran(head.started_at, self.now()),
            );
            crate::traces::attempt_ended(&head, state, code);
        }
        Ok(job)
    }
}
