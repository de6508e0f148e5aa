//! `GET /v1/audit?before=&limit=`: the tenant's audit log for its admins, newest first;
//! `next_before` in the answer asks for the next (older) page.

use axum::extract::State;
use ferry_core::{FieldError, identity::AuditPage};

use super::query::{FromQuery, Param, ParamType, Query, limit_param, number, page_size};
use super::routes::{Access, Routes};
use super::{ApiError, AppState, Json, Principal};

pub fn routes(r: Routes) -> Routes {
    r.get("/v1/audit", Access::Admin, page, |op| {
        op.id("listAudit")
            .summary("The audit log")
            .description("Who changed what, newest first; pages by `before`.")
    })
}

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// `before` (an entry id: answer older ones) and `limit`.
#[derive(Debug, Clone, Copy)]
struct Before {
    before: Option<i64>,
    limit: u32,
}

impl Default for Before {
    fn default() -> Self {
        Self {
            before: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl FromQuery for Before {
    const PARAMS: &'static [Param] = &[
        Param::new(
            "before",
            ParamType::Int {
                min: 0,
                max: i64::MAX,
            },
            "Entries before this id (`next_before` of the page before).",
        ),
        limit_param(MAX_LIMIT),
    ];

    fn set(&mut self, key: &str, value: &str) -> Result<(), FieldError> {
        match key {
            "before" => self.before = Some(number(key, value, "an audit entry id")?),
            _ => self.limit = page_size(key, value, MAX_LIMIT)?,
        }
        Ok(())
    }
}

async fn page(
    State(queue): State<AppState>,
    principal: Principal,
    Query(q): Query<Before>,
) -> Result<Json<AuditPage>, ApiError> {
    Ok(Json(
        queue.audit().page(&principal, q.before, q.limit).await?,
    ))
}
