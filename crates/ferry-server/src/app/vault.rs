//! The secrets vault: a tenant's named secrets, written by editors and sealed at rest under
//! their tenant and name, never answered back to a client. A worker gets a secret only
//! under a live lease of a job whose payload names it (`{{secret.NAME}}`), with the domains
//! it may be sent to; the worker fills it only into those and reports it nowhere.

use ferry_core::{
    FieldError,
    egress::EgressRule,
    template,
    vault::{
        self, MAX_SECRET_BYTES, MAX_SECRET_DOMAINS, MAX_SECRETS, SecretInfo, SecretSpec,
        WorkerSecret,
    },
};
use ferry_store::SecretRow;

use super::{AppError, AppResult, Lease, Principal};
use crate::Queue;

/// The vault of the principal's tenant.
#[derive(Debug, Clone, Copy)]
pub struct Vault<'q>(pub(super) &'q Queue);

impl Queue {
    pub fn vault(&self) -> Vault<'_> {
        Vault(self)
    }
}

/// What seals a secret: its tenant and name, so a value moved under another fails to open.
fn context(tenant: &str, name: &str) -> String {
    format!("{tenant}/secret/{name}")
}

fn info(row: SecretRow) -> SecretInfo {
    SecretInfo {
        domains: rules(&row.domains),
        name: row.name,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn rules(domains: &[String]) -> Vec<EgressRule> {
    domains.iter().filter_map(|d| d.parse().ok()).collect()
}

impl Vault<'_> {
    /// Saves a secret (replacing one of the same name, keeping when it was made).
    pub async fn put(
        &self,
        who: &Principal,
        name: &str,
        spec: SecretSpec,
    ) -> AppResult<SecretInfo> {
        // Every bad field named in one answer.
        let mut errors = Vec::new();
        if !vault::valid_name(name) {
            errors.push(FieldError::new(
                "name",
                "1-64 of letters, digits and '_' (as recipes write {{secret.NAME}})",
            ));
        }
        let value = spec.value.expose();
        if value.is_empty() || value.len() > MAX_SECRET_BYTES || value.contains('\0') {
            errors.push(FieldError::new(
                "value",
                format!("1 to {MAX_SECRET_BYTES} bytes, without U+0000"),
            ));
        }
        if spec.domains.is_empty() || spec.domains.len() > MAX_SECRET_DOMAINS {
            errors.push(FieldError::new(
                "domains",
                format!(
                    "1 to {MAX_SECRET_DOMAINS} domains or addresses it may be sent to \
                     (a secret bound to none would be used nowhere)"
                ),
            ));
        }
        let mut parsed = Vec::new();
        for (i, text) in spec.domains.iter().enumerate() {
            match text.parse::<EgressRule>() {
                Ok(rule) => parsed.push(rule),
                Err(e) => errors.push(FieldError::new(format!("domains[{i}]"), e.to_string())),
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let queue = self.0;
        let store = queue.store();
        let existing = store.secret_list(&who.tenant).await?;
        let old = existing.iter().find(|s| s.name == name);
        if old.is_none() && existing.len() >= MAX_SECRETS {
            return Err(AppError::Conflict(format!("at most {MAX_SECRETS} secrets")));
        }
        // As the store keeps it (milliseconds), so the answer and a later list agree.
        let now = chrono::SubsecRound::trunc_subsecs(queue.now(), 3);
        let domains: Vec<String> = parsed.iter().map(ToString::to_string).collect();
        let row = SecretRow {
            tenant_id: who.tenant.to_string(),
            name: name.to_owned(),
            sealed: queue
                .config()
                .sealing_key
                .seal(&context(&who.tenant, name), value.as_bytes()),
            domains: domains.clone(),
            created_at: old.map_or(now, |o| o.created_at),
            updated_at: now,
        };
        let audit = who
            .audit(now, "secret.put", format!("secret:{name}"))
            .with_detail(serde_json::json!({"domains": domains}));
        store.secret_put(&row, &audit).await?;
        Ok(info(row))
    }

    pub async fn list(&self, who: &Principal) -> AppResult<Vec<SecretInfo>> {
        Ok(self
            .0
            .store()
            .secret_list(&who.tenant)
            .await?
            .into_iter()
            .map(info)
            .collect())
    }

    pub async fn delete(&self, who: &Principal, name: &str) -> AppResult<()> {
        let audit = who.audit(self.0.now(), "secret.delete", format!("secret:{name}"));
        if self
            .0
            .store()
            .secret_delete(&who.tenant, name, &audit)
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound("secret"))
        }
    }

    /// The vault's secrets among those the leased job's payload (or its tenant's proxy)
    /// names.
    pub async fn for_worker(&self, who: &Principal, lease: &Lease) -> AppResult<Vec<WorkerSecret>> {
        let job = self.0.leased(who, lease).await?;
        let mut names = template::secret_names(&job.payload);
        // The tenant's proxy's credentials, for the jobs that go through it: the built-in
        // kinds that connect, without a proxy of their own.
        let proxied = matches!(
            job.kind.as_str(),
            "http.request" | ferry_core::recipe::BROWSER_RUN
        ) && job
            .payload
            .get("proxy")
            .is_none_or(serde_json::Value::is_null);
        if proxied && let Some(proxy) = self.0.egress_of(&job.tenant_id).await?.proxy {
            names.extend(proxy.secret_names());
            names.sort();
            names.dedup();
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.0.store().secrets_named(&job.tenant_id, &names).await?;
        let key = &self.0.config().sealing_key;
        rows.into_iter()
            .map(|row| {
                let plain = key
                    .open(&context(&row.tenant_id, &row.name), &row.sealed)
                    .map_err(|e| {
                        tracing::error!(secret = %row.name, error = %e, "a vault secret does not open");
                        AppError::Internal(format!(
                            "secret {:?} does not open with this server's key (was session.key changed?)",
                            row.name
                        ))
                    })?;
                let value = String::from_utf8(plain).map_err(|_| {
                    AppError::Internal(format!("secret {:?} is not text", row.name))
                })?;
                Ok(WorkerSecret {
                    domains: rules(&row.domains),
                    name: row.name,
                    value: ferry_core::Secret::new(value),
                })
            })
            .collect()
    }
}
