//! Ferry's domain and wire types: job ids, states, kinds, specs, retry policy,
//! error codes and the JSON bodies of the HTTP API.
//!
//! This crate does no IO and depends on neither sqlx nor axum, so the store, the
//! server, the client and the worker can all agree on one vocabulary.

pub mod api;
pub mod clock;
pub mod dataset;
pub mod domain_rate;
pub mod egress;
pub mod error;
pub mod flow;
pub mod id;
pub mod identity;
pub mod job;
pub mod json;
pub mod kind;
pub mod observe;
pub mod proxy;
pub mod recipe;
pub mod retry;
pub mod role;
pub mod schedule;
pub mod secret;
pub mod state;
pub mod template;
pub mod tenant;
pub mod trace;
pub mod validate;
pub mod vault;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{ErrorCode, FieldError};
pub use id::{BatchId, DeliveryId, JobId, ScheduleId, WebhookId};
pub use job::{Job, JobError, JobItem, NewJob, Progress};
pub use kind::{Kind, KindPattern};
pub use retry::{Backoff, FailureOutcome};
pub use role::Role;
pub use secret::{BoundSecret, Secret};
pub use state::JobState;
pub use tenant::{DEFAULT_TENANT, TenantId};
pub use trace::TraceParent;
