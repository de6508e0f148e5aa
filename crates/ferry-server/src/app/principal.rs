//! Who is asking, in which tenant: built from the request's credentials by the HTTP layer
//! (today the two tokens, later API keys and users) and handed to every service, which
//! acts only inside `tenant`. Nothing below the request context chooses a tenant.

use ferry_core::TenantId;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The client API: everything in its tenant (the API token).
    Admin,
    /// The worker protocol: claim, report and finish jobs (the worker token).
    Worker,
}

/// Who is asking, in which tenant.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: TenantId,
    pub role: Role,
}
