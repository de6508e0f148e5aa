//! The client's calls about where jobs may connect and what they may use: the tenant's
//! egress policy and the secrets vault (and a worker's read of its job's secrets).

use reqwest::Method;

use ferry_core::JobId;

use crate::{Client, ClientResult};

impl Client {
    /// `PUT /v1/secrets/{name}` (editors): saves a vault secret with the domains it may go to.
    pub async fn put_secret(
        &self,
        name: &str,
        spec: &ferry_core::vault::SecretSpec,
    ) -> ClientResult<ferry_core::vault::SecretInfo> {
        let req = self
            .request(Method::PUT, &format!("/v1/secrets/{name}"))
            .json(spec);
        Ok(self.send(req).await?.1)
    }

    /// `GET /v1/secrets`: the tenant's vault secrets (names and domains, never values).
    pub async fn secrets(&self) -> ClientResult<ferry_core::vault::SecretList> {
        self.get("/v1/secrets").await
    }

    /// `DELETE /v1/secrets/{name}`
    pub async fn delete_secret(&self, name: &str) -> ClientResult<()> {
        self.send_raw(self.request(Method::DELETE, &format!("/v1/secrets/{name}")))
            .await
            .map(|_| ())
    }

    /// `GET /v1/tenant/egress`: the tenant's egress rules and what its jobs are held to.
    pub async fn tenant_egress(&self) -> ClientResult<ferry_core::identity::TenantEgress> {
        self.get("/v1/tenant/egress").await
    }

    /// `PUT /v1/tenant/egress` (admins): where the tenant's jobs and webhooks may connect.
    pub async fn set_tenant_egress(
        &self,
        policy: &ferry_core::egress::EgressPolicy,
    ) -> ClientResult<ferry_core::identity::TenantEgress> {
        let req = self.request(Method::PUT, "/v1/tenant/egress").json(policy);
        Ok(self.send(req).await?.1)
    }

    /// `POST /v1/worker/jobs/{id}/secrets`: the vault's secrets the leased job names.
    pub async fn worker_secrets(
        &self,
        id: JobId,
        lease: &str,
    ) -> ClientResult<ferry_core::vault::WorkerSecretsResponse> {
        self.post(
            &format!("/v1/worker/jobs/{id}/secrets"),
            &ferry_core::vault::WorkerSecretsRequest {
                lease: lease.to_owned(),
            },
        )
        .await
    }
}
