//! Cron schedules: a standard 5-field expression (or 6 with seconds first) in an IANA time
//! zone, and the job each tick enqueues.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{FieldError, ScheduleId, api::SubmitJob};

/// `POST /v1/schedules`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Unique per tenant: 1 to 100 letters, digits, `.`, `_`, `-`, `:`.
    pub name: String,
    /// `*/15 * * * *`; a sixth leading field is seconds.
    pub cron: String,
    /// IANA name (`Asia/Seoul`); default `UTC`.
    #[serde(default = "utc")]
    pub timezone: String,
    /// The job every tick enqueues.
    pub job: SubmitJob,
    /// A tick missed while no server ran fires once on start (`true`, the default) or is
    /// skipped.
    #[serde(default = "yes")]
    pub catch_up: bool,
}

fn utc() -> String {
    "UTC".to_owned()
}

fn yes() -> bool {
    true
}

/// A schedule as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Schedule {
    pub id: ScheduleId,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub job: SubmitJob,
    pub catch_up: bool,
    pub paused: bool,
    /// When the next tick fires.
    pub next_at: DateTime<Utc>,
    /// The last tick that enqueued a job.
    pub last_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScheduleList {
    pub schedules: Vec<Schedule>,
}

/// A parsed expression in its zone.
#[derive(Debug, Clone)]
pub struct CronTz {
    cron: croner::Cron,
    tz: chrono_tz::Tz,
}

impl CronTz {
    pub fn parse(cron: &str, timezone: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let parsed = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(cron.trim())
            .map_err(|e| errors.push(FieldError::new("cron", format!("{cron:?}: {e}"))))
            .ok();
        let tz = timezone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| {
                errors.push(FieldError::new(
                    "timezone",
                    format!("{timezone:?} is not an IANA time zone (such as UTC or Asia/Seoul)"),
                ))
            })
            .ok();
        match (parsed, tz) {
            (Some(cron), Some(tz)) if errors.is_empty() => Ok(Self { cron, tz }),
            _ => Err(errors),
        }
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Checks a spec (the job itself is checked as any submitted job is).
pub fn validate(spec: &ScheduleSpec) -> Result<CronTz, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name_ok = (1..=100).contains(&spec.name.len())
        && spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    if !name_ok {
        errors.push(FieldError::new(
            "name",
            "1 to 100 letters, digits, `.`, `_`, `-`, `:`",
        ));
    }
    match CronTz::parse(&spec.cron, &spec.timezone) {
        Ok(c) if errors.is_empty() => Ok(c),
        Ok(_) => Err(errors),
        Err(more) => {
            errors.extend(more);
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ticks_follow_the_zone() {
        let c = CronTz::parse("0 9 * * *", "Asia/Seoul").expect("parse");
        let at = Utc
            .with_ymd_and_hms(2026, 11, 22, 0, 30, 0)
            .single()
            .expect("time");
        // 09:00 in Seoul is 00:00 UTC; the next one after 00:30 UTC is the next day's.
        assert_eq!(
            c.next_after(at),
            Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).single()
        );
        let every15 = CronTz::parse("*/15 * * * *", "UTC").expect("parse");
        assert_eq!(
            every15.next_after(at),
            Utc.with_ymd_and_hms(2026, 11, 22, 0, 45, 0).single()
        );
        let seconds = CronTz::parse("*/2 * * * * *", "UTC").expect("seconds");
        assert_eq!(
            seconds.next_after(at),
            Utc.with_ymd_and_hms(2026, 11, 22, 0, 30, 2).single()
        );
        let fields: Vec<String> = CronTz::parse("61 * * *", "Mars/Olympus")
            .expect_err("bad")
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["cron", "timezone"]);
    }
}
