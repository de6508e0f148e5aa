//! The JSON bodies of the identity API (`/v1/keys`, `/v1/tenants`): API keys and worker
//! tokens as an admin sees them. A key's secret appears once, in [`KeyCreated`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{KindPattern, Role, Secret};

/// `POST /v1/keys`: a new API key (or worker token, role `worker`) of the caller's tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyCreateRequest {
    pub role: Role,
    /// Kind patterns the key is limited to (absent: every kind). A worker token claims only
    /// these; an API key submits and schedules only these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<KindPattern>>,
    /// A note for people (`office laptop`); at most 200 characters.
    #[serde(default)]
    pub name: String,
    /// When the key stops working (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key as the API shows it: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyInfo {
    /// The key's visible start (`fk_…` for API keys, `fw_…` for worker tokens): how it is
    /// named in lists, the audit log and `revoke`.
    pub prefix: String,
    pub tenant: String,
    pub role: Role,
    pub kinds: Option<Vec<KindPattern>>,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just made: the only answer that carries its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyCreated {
    #[serde(flatten)]
    pub key: KeyInfo,
    /// The whole key, to send as `Authorization: Bearer <key>`. Shown once; the server
    /// keeps only a hash of it.
    pub secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TenantInfo {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub quotas: TenantQuotas,
    /// The tenant's own egress rules (`PUT /v1/tenant/egress`).
    #[serde(default)]
    pub egress: crate::egress::EgressPolicy,
}

/// `GET|PUT /v1/tenant/egress`: the tenant's own rules and what its jobs and webhooks are
/// held to (with the operator's rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TenantEgress {
    pub tenant: crate::egress::EgressPolicy,
    pub effective: crate::egress::EgressPolicy,
}

/// What a tenant may use, set by the operator (`ferry tenant set`); `None`: no limit. A
/// submit beyond either is answered `429 QUOTA_EXCEEDED` with `Retry-After`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct TenantQuotas {
    /// Jobs submitted per second (a batch counts each job), on each server instance.
    pub max_submissions_per_second: Option<u32>,
    /// Jobs scheduled, pending or running at once.
    pub max_unfinished_jobs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantInfo>,
}

/// One entry of a tenant's audit log (`GET /v1/audit`): who did what to which resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// Increasing: a later change has a larger id.
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `key:<prefix>`, `user:<name>`, `token:api` (the configured token) or `cli` (the
    /// operator's command line). Never a secret.
    pub actor: String,
    /// What was done, as `<resource>.<verb>`: `key.create`, `job.cancel`, `schedule.pause` …
    pub action: String,
    /// Which resource, as `<resource>:<id>`: `key:fk_0a1b2c3d4e`, `job:<uuid>` …
    pub target: String,
    /// What else the change carried (a new key's role and kinds, a webhook's URL); never
    /// a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// `POST /v1/auth/login`: a user's name and password, and the tenant to act in (needed
/// only when the user belongs to several).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub name: String,
    pub password: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// A login: who, in which tenant, with which role, until when; and the token a browser
/// sends back as `X-CSRF-Token` on every change it asks for with the session cookie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoginInfo {
    pub user: String,
    pub tenant: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    pub csrf_token: String,
}

/// `POST /v1/users`: a new user of the admin's tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreateRequest {
    /// The login name (an e-mail address, say); kept in lower case.
    pub name: String,
    /// At least 10 characters.
    pub password: Secret,
    /// `viewer`, `editor` or `admin`.
    pub role: Role,
}

/// A user as a tenant's admin sees them: never the password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserInfo {
    pub name: String,
    /// Their role in this tenant.
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UserList {
    pub users: Vec<UserInfo>,
}

/// `GET /v1/auth/me`: who the request's credential stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WhoAmI {
    /// As the audit log names it: `user:<name>`, `key:<prefix>`, `token:api`.
    pub actor: String,
    pub tenant: String,
    pub role: Role,
    /// Kind patterns the credential is limited to (absent: every kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<KindPattern>>,
}
