//! The secrets vault's wire types: a tenant's named secrets, written by editors
//! (`PUT /v1/secrets/{name}`), listed without their values, and handed to a worker only
//! under a live lease of a job whose payload names them (`{{secret.NAME}}`), each with the
//! domains it may be sent to.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Secret, egress::EgressRule};

/// The most secrets a tenant keeps.
pub const MAX_SECRETS: usize = 1_000;
/// The longest value (a key file, a certificate fits).
pub const MAX_SECRET_BYTES: usize = 64 * 1024;
/// The most domains one secret is bound to.
pub const MAX_SECRET_DOMAINS: usize = 50;

/// Whether `name` can be a secret's name: 1–64 of letters, digits and `_` (how recipes
/// write it: `{{secret.SHOP_PASSWORD}}`).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `PUT /v1/secrets/{name}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    pub value: Secret,
    /// Where it may be sent: domains (with their subdomains) or addresses. At least one;
    /// each must parse as an [`EgressRule`] (checked by the server, naming the bad one).
    pub domains: Vec<String>,
}

/// A secret as clients see it: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SecretInfo {
    pub name: String,
    pub domains: Vec<EgressRule>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `GET /v1/secrets`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SecretList {
    pub secrets: Vec<SecretInfo>,
}

/// `POST /v1/worker/jobs/{id}/secrets`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerSecretsRequest {
    pub lease: String,
}

/// A secret the leased job names, for the worker that holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkerSecret {
    pub name: String,
    pub value: Secret,
    pub domains: Vec<EgressRule>,
}

/// The answer of `POST /v1/worker/jobs/{id}/secrets`: the vault's secrets among those the
/// job's payload names (a name the vault lacks is left to the worker's own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkerSecretsResponse {
    pub secrets: Vec<WorkerSecret>,
}
