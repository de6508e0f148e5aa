//! Application services, one per resource: they take the [`Principal`], own the clock and
//! the domain rules, and are the only way the HTTP layer reaches the store. Handlers
//! extract and serialise; a rule written here holds for every caller (a client's request,
//! a schedule's tick, the dashboard later).
//!
//! Jobs and batches are served by [`crate::Queue`] itself (it also wakes claims and
//! waiters); the rest borrow it: `queue.datasets()`, `queue.schedules()`, ….

mod artifacts;
mod audit;
mod datasets;
mod dead;
mod egress;
mod error;
mod keys;
mod leases;
mod principal;
mod quotas;
mod reports;
mod schedules;
mod sessions;
mod stats;
pub mod submit;
mod tenants;
mod users;
mod vault;
mod webhooks;
mod workers;

pub use artifacts::{Artifacts, Download};
pub use audit::Audit;
pub use datasets::{DatasetReader, Datasets};
pub use dead::DeadLetters;
pub use egress::{EGRESS_TTL, EgressBook};
pub use error::{AppError, AppResult};
pub use keys::{CACHE_TTL as KEY_CACHE_TTL, KeyCache, KeyHasher, Keys};
pub use leases::Lease;
pub use principal::{Principal, Role};
pub use quotas::{QUOTAS_TTL, QuotaState, RECOUNT};
pub use schedules::{MAX_SCHEDULES, Schedules};
pub use sessions::Sessions;
pub use stats::STATS_WINDOW;
pub use tenants::Tenants;
pub use users::{SESSION_COOKIE, SESSION_TTL, Users, session_cookie_value};
pub use vault::Vault;
pub use webhooks::{MAX_WEBHOOK_KINDS, Webhooks};
pub use workers::{FORGET_AFTER, LISTED_FOR, RECORD_SPACING, WorkerBook};

use crate::Queue;

impl Queue {
    pub fn datasets(&self) -> Datasets<'_> {
        Datasets(self)
    }

    pub fn schedules(&self) -> Schedules<'_> {
        Schedules(self)
    }

    pub fn webhooks(&self) -> Webhooks<'_> {
        Webhooks(self)
    }

    pub fn sessions(&self) -> Sessions<'_> {
        Sessions(self)
    }

    pub fn artifacts(&self) -> Artifacts<'_> {
        Artifacts(self)
    }

    pub fn audit(&self) -> Audit<'_> {
        Audit(self)
    }

    pub fn dead_letters(&self) -> DeadLetters<'_> {
        DeadLetters(self)
    }
}
