//! Who is asking, in which tenant: built from the request's credentials by the HTTP layer
//! (the configured tokens, API keys, worker tokens) and handed to every service, which
//! acts only inside `tenant`. Nothing below the request context chooses a tenant.

use std::sync::Arc;

use chrono::{DateTime, Utc};
pub use ferry_core::Role;
use ferry_core::{KindPattern, TenantId, api::SubmitJob};
use ferry_store::AuditRow;

use super::{AppError, AppResult};

/// Who is asking, in which tenant.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: TenantId,
    pub role: Role,
    /// Kind patterns the credential is limited to (`None`: every kind).
    pub kinds: Option<Arc<[KindPattern]>>,
    /// Who this is, as the audit log names them: `key:<prefix>`, `token:api` or
    /// `token:worker` (the configured tokens). Never a secret.
    pub actor: String,
}

impl Principal {
    /// Every kind, as `actor` (the configured tokens and in-process callers).
    pub fn new(tenant: TenantId, role: Role, actor: impl Into<String>) -> Self {
        Self {
            tenant,
            role,
            kinds: None,
            actor: actor.into(),
        }
    }

    /// The audit log entry of this principal doing `action` (`<resource>.<verb>`) to
    /// `target` (`<resource>:<id>`) at `at`, to be written with the change.
    pub fn audit(&self, at: DateTime<Utc>, action: &'static str, target: String) -> AuditRow {
        AuditRow {
            tenant_id: self.tenant.to_string(),
            at,
            actor: self.actor.clone(),
            action,
            target,
            detail: None,
        }
    }

    /// Whether this principal may act on jobs of `kind`.
    pub fn may_use_kind(&self, kind: &str) -> bool {
        self.kinds
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|p| p.matches(kind)))
    }

    /// `KIND_NOT_ALLOWED` unless this principal may act on jobs of `kind`.
    pub fn check_kind(&self, kind: &str) -> AppResult<()> {
        if self.may_use_kind(kind) {
            Ok(())
        } else {
            Err(self.kind_refused(kind))
        }
    }

    /// `KIND_NOT_ALLOWED` unless this principal may submit `spec`: its kind and the kinds
    /// of every job its chain (`then`) would enqueue.
    pub fn check_job(&self, spec: &SubmitJob) -> AppResult<()> {
        self.check_kind(&spec.kind)?;
        spec.then
            .iter()
            .flatten()
            .try_for_each(|child| self.check_job(child))
    }

    /// `KIND_NOT_ALLOWED` unless every pattern a worker asks for lies within this
    /// principal's patterns (`baemin.*` may ask for `baemin.sync`, not for `*`).
    pub fn check_patterns(&self, asked: &[KindPattern]) -> AppResult<()> {
        let Some(allowed) = &self.kinds else {
            return Ok(());
        };
        match asked.iter().find(|a| !allowed.iter().any(|p| p.covers(a))) {
            Some(outside) => Err(self.kind_refused(&outside.to_string())),
            None => Ok(()),
        }
    }

    fn kind_refused(&self, kind: &str) -> AppError {
        let allowed = self
            .kinds
            .iter()
            .flat_map(|p| p.iter())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        AppError::KindNotAllowed(format!(
            "this credential is limited to the kinds {allowed}; {kind:?} is not among them"
        ))
    }
}
