//! Tenants: every record belongs to exactly one. Until tenants can be made, there is one,
//! [`TenantId::default`] (`"default"`), and every token acts in it.

use std::{fmt, ops::Deref};

use serde::{Deserialize, Serialize};

/// The tenant every record belongs to until tenants can be made.
pub const DEFAULT_TENANT: &str = "default";

/// A tenant's id: 1–64 of letters, digits, `_`, `-`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

/// Why text is not a tenant id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a tenant id is 1-64 of letters, digits, '_' and '-'")]
pub struct BadTenantId;

impl TenantId {
    pub fn new(id: impl Into<String>) -> Result<Self, BadTenantId> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if ok { Ok(Self(id)) } else { Err(BadTenantId) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self(DEFAULT_TENANT.to_owned())
    }
}

/// Reads as the `&str` the store binds.
impl Deref for TenantId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TenantId {
    type Error = BadTenantId;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids() {
        assert_eq!(TenantId::default().as_str(), "default");
        assert!(TenantId::new("shop-1_a").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            assert_eq!(TenantId::new(bad), Err(BadTenantId), "{bad:?}");
        }
        let id: TenantId = serde_json::from_str("\"acme\"").expect("json");
        assert_eq!(&*id, "acme");
        assert!(serde_json::from_str::<TenantId>("\"a b\"").is_err());
    }
}
