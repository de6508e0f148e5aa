//! Saved browser sessions. Clients list and delete them but never see their contents; a
//! worker loads or saves one only for a job it holds the lease of, and only a session that
//! job names: a recipe's `use_session` to load and `save_session` steps to save; any other
//! payload's top-level `use_session` and `save_session` (a worker running its own browser
//! code, e.g. Playwright's `storageState`). Sessions are sealed at rest under their tenant
//! and name.

use ferry_core::{
    api::SessionInfo,
    recipe::{self, Step},
};
use serde_json::Value;

use super::{AppError, AppResult, Lease, Principal};
use crate::Queue;

/// Largest session a worker may save (cookies and storage of one site are far smaller).
const MAX_SESSION_BYTES: usize = 2 * 1024 * 1024;

/// The sessions of the principal's tenant.
#[derive(Debug, Clone, Copy)]
pub struct Sessions<'q>(pub(super) &'q Queue);

fn not_named(name: &str, how: &str) -> AppError {
    AppError::SessionNotNamed(format!("the job does not name session {name:?} in {how}"))
}

/// The sessions a job names: the one it loads and those it saves. A `browser.run` recipe
/// names them in `use_session` and its `save_session` steps; any other payload in its
/// top-level `use_session` and `save_session` (names as recipes have them).
fn named(payload: &Value) -> (Option<String>, Vec<String>) {
    if let Ok(recipe) = recipe::validate(payload, "payload") {
        let saves = recipe
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::SaveSession(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        return (recipe.use_session, saves);
    }
    let name = |key: &str| {
        payload
            .get(key)
            .and_then(Value::as_str)
            .filter(|n| recipe::session_name_ok(n))
            .map(str::to_owned)
    };
    (
        name("use_session"),
        name("save_session").into_iter().collect(),
    )
}

/// What seals a session: its tenant and name, so a blob moved under another name fails.
fn context(tenant: &str, name: &str) -> String {
    format!("{tenant}/{name}")
}

impl Sessions<'_> {
    pub async fn list(&self, who: &Principal) -> AppResult<Vec<SessionInfo>> {
        Ok(self.0.store().session_list(&who.tenant).await?)
    }

    pub async fn delete(&self, who: &Principal, name: &str) -> AppResult<()> {
        if self
            .0
            .store()
            .session_delete(
                &who.tenant,
                name,
                &who.audit(self.0.now(), "session.delete", format!("session:{name}")),
            )
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound("session"))
        }
    }

    /// The session the leased job's recipe uses (`use_session`): its name and, once
    /// saved, its state.
    pub async fn load(&self, who: &Principal, lease: &Lease) -> AppResult<(String, Option<Value>)> {
        let job = self.0.leased(who, lease).await?;
        let name = named(&job.payload)
            .0
            .ok_or_else(|| not_named("(none)", "use_session"))?;
        let Some(sealed) = self.0.store().session_get(&job.tenant_id, &name).await? else {
            return Ok((name, None));
        };
        let plain = self
            .0
            .config()
            .sealing_key
            .open(&context(&job.tenant_id, &name), &sealed)
            .map_err(|e| {
                tracing::error!(session = %name, error = %e, "a saved session does not open");
                AppError::Internal(format!(
                    "session {name:?} does not open with this server's key (was session.key changed?)"
                ))
            })?;
        let state = serde_json::from_slice(&plain)
            .map_err(|_| AppError::Internal(format!("session {name:?} is not JSON")))?;
        Ok((name, Some(state)))
    }

    /// Saves `state` as session `name`, which the leased job's recipe must save.
    pub async fn save(
        &self,
        who: &Principal,
        lease: &Lease,
        name: &str,
        state: &Value,
    ) -> AppResult<()> {
        let job = self.0.leased(who, lease).await?;
        if !named(&job.payload).1.iter().any(|n| n == name) {
            return Err(not_named(name, "save_session"));
        }
        let plain =
            serde_json::to_vec(state).map_err(|e| AppError::field("state", e.to_string()))?;
        if plain.len() > MAX_SESSION_BYTES {
            return Err(AppError::field(
                "state",
                format!("at most {MAX_SESSION_BYTES} bytes"),
            ));
        }
        let sealed = self
            .0
            .config()
            .sealing_key
            .seal(&context(&job.tenant_id, name), &plain);
        self.0
            .store()
            .session_put(&job.tenant_id, name, &sealed, Some(lease.job), self.0.now())
            .await?;
        tracing::info!(job_id = %lease.job, session = %name, "session saved");
        Ok(())
    }
}
