//! Cron schedules of a tenant: created with the same checks as a submitted job (its
//! problems named under `job.`), listed, paused and resumed (resuming starts from the
//! next tick after now: no burst of what was paused), removed. `services::CronService`
//! fires them.

use ferry_core::{
    FieldError, ScheduleId,
    schedule::{self, CronTz, Schedule, ScheduleSpec},
};

use super::{AppError, AppResult, Principal};
use crate::Queue;

/// The most schedules a tenant keeps (the scheduler reads them all on every pass).
pub const MAX_SCHEDULES: usize = 1_000;

/// The schedules of the principal's tenant.
#[derive(Debug, Clone, Copy)]
pub struct Schedules<'q>(pub(super) &'q Queue);

impl Schedules<'_> {
    pub async fn create(&self, who: &Principal, spec: ScheduleSpec) -> AppResult<Schedule> {
        let queue = self.0;
        who.check_job(&spec.job)?;
        let mut errors = Vec::new();
        let cron = schedule::validate(&spec).map_err(|e| errors.extend(e)).ok();
        if let Err(job_errors) = queue
            .validate(&who.tenant, vec![spec.job.clone()], false)
            .await
        {
            errors.extend(job_errors.into_iter().map(|e| FieldError {
                field: format!("job.{}", e.field),
                ..e
            }));
        }
        let Some(cron) = cron.filter(|_| errors.is_empty()) else {
            return Err(AppError::Invalid(errors));
        };
        queue
            .check_output_keys(
                &who.tenant,
                spec.job
                    .output
                    .as_ref()
                    .map(|o| ("job.output.key".to_owned(), o))
                    .into_iter()
                    .collect(),
            )
            .await?;
        let now = queue.now();
        let next_at = cron
            .next_after(now)
            .ok_or_else(|| AppError::field("cron", "never fires"))?;
        let schedule = Schedule {
            id: ScheduleId::new(),
            name: spec.name,
            cron: spec.cron.trim().to_owned(),
            timezone: spec.timezone,
            job: spec.job,
            catch_up: spec.catch_up,
            paused: false,
            next_at,
            last_at: None,
            created_at: now,
        };
        if self.list(who).await?.len() >= MAX_SCHEDULES {
            return Err(AppError::Conflict(format!(
                "at most {MAX_SCHEDULES} schedules; delete one first"
            )));
        }
        if !queue
            .store()
            .schedule_insert(
                &who.tenant,
                &schedule,
                &who.audit(
                    now,
                    "schedule.create",
                    format!("schedule:{}", schedule.name),
                )
                .with_detail(serde_json::json!({
                    "cron": schedule.cron, "timezone": schedule.timezone,
                    "kind": schedule.job.kind,
                })),
            )
            .await?
        {
            return Err(AppError::Conflict(format!(
                "a schedule named {:?} exists",
                schedule.name
            )));
        }
        Ok(schedule)
    }

    pub async fn list(&self, who: &Principal) -> AppResult<Vec<Schedule>> {
        Ok(self
            .0
            .store()
            .schedule_list(Some(&who.tenant))
            .await?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    pub async fn get(&self, who: &Principal, name: &str) -> AppResult<Schedule> {
        self.list(who)
            .await?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or(AppError::NotFound("schedule"))
    }

    pub async fn delete(&self, who: &Principal, name: &str) -> AppResult<()> {
        if self
            .0
            .store()
            .schedule_delete(
                &who.tenant,
                name,
                &who.audit(self.0.now(), "schedule.delete", format!("schedule:{name}")),
            )
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound("schedule"))
        }
    }

    /// Enqueues the schedule's job now, outside its ticks (paused or not), as the asking
    /// user's submit: the same rules, labelled with the schedule and `run: manual`. Its
    /// ticks go on as before.
    pub async fn run_now(&self, who: &Principal, name: &str) -> AppResult<ferry_core::Job> {
        let schedule = self.get(who, name).await?;
        let mut spec = schedule.job;
        let labels = spec.labels.get_or_insert_with(Default::default);
        labels.insert("schedule".to_owned(), schedule.name.clone());
        labels.insert("run".to_owned(), "manual".to_owned());
        self.0
            .submit_specs(who, vec![spec], false, None)
            .await?
            .pop()
            .map(|inserted| inserted.job)
            .ok_or_else(|| AppError::Internal("a run of one job stored none".into()))
    }

    /// Pauses or resumes; answers the schedule as it is then.
    pub async fn set_paused(
        &self,
        who: &Principal,
        name: &str,
        paused: bool,
    ) -> AppResult<Schedule> {
        let current = self.get(who, name).await?;
        let next_at = CronTz::parse(&current.cron, &current.timezone)
            .ok()
            .and_then(|c| c.next_after(self.0.now()))
            .unwrap_or(current.next_at);
        self.0
            .store()
            .schedule_pause(
                &who.tenant,
                name,
                paused,
                next_at,
                &who.audit(
                    self.0.now(),
                    if paused {
                        "schedule.pause"
                    } else {
                        "schedule.resume"
                    },
                    format!("schedule:{name}"),
                ),
            )
            .await?;
        self.get(who, name).await
    }
}
