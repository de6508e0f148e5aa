//! Cron schedules: each pass (on the leader) enqueues the job of every due tick and moves
//! the schedule to its next tick. The job's dedupe key names the tick, and the move is a
//! compare-and-set on `next_at`: a pass repeated after a crash, or two instances during a
//! leadership handover, enqueue one job per tick. A tick missed while no server ran (more
//! than a minute late) fires once on start, or is skipped when the schedule says
//! `catch_up: false`.

use std::{sync::Arc, time::Duration};

use ferry_core::schedule::CronTz;
use ferry_store::StoreError;

use super::Service;
use crate::{
    Queue,
    app::{AppError, Principal, Role},
};

/// How late a tick may fire before it counts as missed.
const MISSED_AFTER: chrono::Duration = chrono::Duration::minutes(1);
/// How long a tick's dedupe key holds (longer than any handover).
const TICK_DEDUPE_MS: u64 = 24 * 3600 * 1000;

#[derive(Debug, Clone)]
pub struct CronService {
    queue: Arc<Queue>,
}

impl CronService {
    pub fn new(queue: Arc<Queue>) -> Self {
        Self { queue }
    }
}

impl Service for CronService {
    fn name(&self) -> &'static str {
        "cron"
    }

    fn queue(&self) -> &Queue {
        &self.queue
    }

    fn interval(&self) -> Duration {
        self.queue.config().services.cron_interval
    }

    async fn run_once(&self) -> Result<u64, StoreError> {
        let store = self.queue.store();
        let now = self.queue.now();
        let mut fired = 0;
        for (tenant, s) in store.schedule_list(None).await? {
            if s.paused || s.next_at > now {
                continue;
            }
            let Ok(cron) = CronTz::parse(&s.cron, &s.timezone) else {
                tracing::warn!(schedule = %s.name, "a stored schedule no longer parses");
                continue;
            };
            let tick = s.next_at;
            let Some(next) = cron.next_after(now) else {
                continue;
            };
            let fire = s.catch_up || now - tick <= MISSED_AFTER;
            if fire {
                let mut spec = s.job.clone();
                spec.dedupe_key = Some(format!("schedule:{}:{}", s.id, tick.timestamp_millis()));
                spec.dedupe_ttl_ms = Some(TICK_DEDUPE_MS);
                spec.labels
                    .get_or_insert_with(Default::default)
                    .insert("schedule".to_owned(), s.name.clone());
                // The schedule's own tenant; a stored id that no longer parses is corrupt.
                let Ok(tenant) = ferry_core::TenantId::new(tenant) else {
                    tracing::warn!(schedule = %s.name, "a stored schedule's tenant is not valid");
                    continue;
                };
                // The same rules as a client's submit (`Queue::submit_specs`).
                let by = Principal::new(tenant, Role::Editor, format!("schedule:{}", s.name));
                match self.queue.submit_specs(&by, vec![spec], false, None).await {
                    Ok(_) => fired += 1,
                    Err(AppError::Invalid(errors)) => {
                        tracing::warn!(schedule = %s.name, ?errors, "a schedule's job is no longer valid; the tick enqueued nothing")
                    }
                    Err(AppError::Store(e)) => return Err(e),
                    Err(other) => {
                        tracing::warn!(schedule = %s.name, error = %other, "a schedule's tick enqueued nothing")
                    }
                }
            } else {
                tracing::info!(schedule = %s.name, tick = %tick, "skipped a missed tick (catch_up: false)");
            }
            store
                .schedule_advance(s.id, tick, next, fire.then_some(tick))
                .await?;
        }
        Ok(fired)
    }
}
