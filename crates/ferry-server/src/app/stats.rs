//! A tenant's jobs at a glance, for the dashboard's overview (and `/v1/stats` later):
//! unfinished and failed jobs by kind, throughput over the last hour, the oldest waiting
//! job, paused kinds.

use chrono::Duration;
use ferry_core::api::JobStats;

use super::{AppResult, Principal};
use crate::Queue;

/// The window throughput is counted over.
pub const STATS_WINDOW: Duration = Duration::hours(1);

impl Queue {
    /// The principal's tenant's jobs at a glance, and its paused kind patterns.
    pub async fn stats(&self, who: &Principal) -> AppResult<(JobStats, Vec<String>)> {
        let since = self.now() - STATS_WINDOW;
        let stats = self.store().job_stats(&who.tenant, Some(since)).await?;
        let paused = self.store().kind_paused(&who.tenant).await?;
        Ok((stats, paused))
    }
}
