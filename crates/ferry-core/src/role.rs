//! What a credential may do in its tenant. A key's role is fixed when it is made.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// The role of an API key, a worker token or a user in one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything in the tenant; changes nothing.
    Viewer,
    /// A viewer that also submits, cancels and retries jobs and manages batches, datasets,
    /// schedules, webhooks, sessions and paused kinds.
    Editor,
    /// An editor that also manages the tenant's keys and worker tokens and reads its audit
    /// log.
    Admin,
    /// Speaks only the worker protocol: claims jobs (of its kinds) and reports on them.
    Worker,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Editor, Role::Admin, Role::Worker];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
            Role::Worker => "worker",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: one of viewer, editor, admin, worker")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_back_and_unknown_ones_are_named() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        let err = "owner".parse::<Role>().expect_err("no such role");
        assert_eq!(
            err.to_string(),
            "unknown role \"owner\": one of viewer, editor, admin, worker"
        );
    }
}
