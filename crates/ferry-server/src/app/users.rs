//! Users: people who log in (the dashboard) with a name and a password, each with a role
//! in the tenants they belong to. Passwords are kept as argon2id hashes; a login starts a
//! session whose token (`fs_…`) goes in an HttpOnly cookie and is kept, like keys, only as
//! a keyed hash. A change asked for with the cookie must carry the session's CSRF token.
//! Made by the operator (`ferry user add|passwd|rm`) or by a tenant's admins
//! (`/v1/users`), each change audited.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use chrono::Duration;
use ferry_core::{
    Clock, Role, Secret, TenantId,
    identity::{LoginInfo, LoginRequest, UserCreateRequest, UserInfo},
};
use ferry_store::{AuditRow, Store, UserRow, UserSessionRow};
use ring::rand::{SecureRandom, SystemRandom};

use super::keys::{KeyHasher, random_text};
use super::{AppError, AppResult, Principal};
use crate::Queue;

/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::days(7);
/// The cookie that carries a session's token.
pub const SESSION_COOKIE: &str = "ferry_session";
const SESSION_TAG: &str = "fs_";
const SESSION_CHARS: usize = 43;
const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_NAME_CHARS: usize = 200;
/// How often a session's `last_seen_at` is written at most.
const SEEN_EVERY: Duration = Duration::minutes(1);

const WRONG_LOGIN: &str = "wrong name or password";

/// The `Set-Cookie` value carrying a session's `token` for `max_age` seconds (an empty
/// token and 0 clear it): HttpOnly, SameSite=Strict, and Secure when `secure`.
pub fn session_cookie_value(token: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    )
}

impl Queue {
    pub fn users(&self) -> Users<'_> {
        Users::new(self.store(), self.clock(), self.key_hasher())
    }
}

/// The user service over a store (the server's, or the CLI's).
#[derive(Debug)]
pub struct Users<'a> {
    store: &'a Store,
    clock: &'a dyn Clock,
    hasher: &'a KeyHasher,
}

impl<'a> Users<'a> {
    pub fn new(store: &'a Store, clock: &'a dyn Clock, hasher: &'a KeyHasher) -> Self {
        Self {
            store,
            clock,
            hasher,
        }
    }

    /// Whether a user of this name exists (any tenant).
    pub async fn exists(&self, name: &str) -> AppResult<bool> {
        Ok(self.store.user_get(&normal_name(name)?).await?.is_some())
    }

    /// Makes a user with a role in `who`'s tenant; `Conflict` when the name is taken.
    pub async fn create(&self, who: &Principal, req: UserCreateRequest) -> AppResult<UserInfo> {
        let name = normal_name(&req.name)?;
        check_role(req.role)?;
        check_password(&req.password)?;
        let now = self.clock.now();
        let row = UserRow {
            name: name.clone(),
            password_hash: hash_password(req.password).await?,
            created_at: now,
            password_changed_at: now,
        };
        let audit = who.audit(now, "user.create", format!("user:{name}"));
        if !self.store.user_insert(&row, &audit).await? {
            return Err(AppError::Conflict(format!("a user named {name:?} exists")));
        }
        self.grant(who, &name, req.role).await
    }

    /// Gives an existing user `role` in `who`'s tenant (replacing the one they had).
    pub async fn grant(&self, who: &Principal, name: &str, role: Role) -> AppResult<UserInfo> {
        let name = normal_name(name)?;
        check_role(role)?;
        if self.store.tenant_get(&who.tenant).await?.is_none() {
            return Err(AppError::NotFound("tenant"));
        }
        let now = self.clock.now();
        let audit = who
            .audit(now, "user.role", format!("user:{name}"))
            .with_detail(serde_json::json!({"role": role}));
        if !self
            .store
            .user_role_set(&name, &who.tenant, role.as_str(), now, &audit)
            .await?
        {
            return Err(AppError::NotFound("user"));
        }
        self.list(&who.tenant)
            .await?
            .into_iter()
            .find(|u| u.name == name)
            .ok_or(AppError::NotFound("user"))
    }

    /// The tenant's users with their role there, by name.
    pub async fn list(&self, tenant: &TenantId) -> AppResult<Vec<UserInfo>> {
        self.store
            .user_list(tenant)
            .await?
            .into_iter()
            .map(|(user, role)| {
                Ok(UserInfo {
                    name: user.name,
                    role: role
                        .parse()
                        .map_err(|e| AppError::Internal(format!("{e}")))?,
                    created_at: user.created_at,
                })
            })
            .collect()
    }

    /// Takes the user's role in `who`'s tenant away (their sessions there end).
    pub async fn remove(&self, who: &Principal, name: &str) -> AppResult<()> {
        let name = normal_name(name)?;
        let audit = who.audit(self.clock.now(), "user.remove", format!("user:{name}"));
        if self
            .store
            .user_role_remove(&name, &who.tenant, &audit)
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound("user"))
        }
    }

    /// Removes the user from every tenant and for good (the operator's `ferry user rm`).
    pub async fn delete(&self, actor: &str, name: &str) -> AppResult<()> {
        let name = normal_name(name)?;
        let audits = self.in_each_tenant(actor, &name, "user.delete").await?;
        if self.store.user_delete(&name, &audits).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("user"))
        }
    }

    /// Replaces the user's password; every session of theirs ends.
    pub async fn set_password(&self, actor: &str, name: &str, password: Secret) -> AppResult<()> {
        let name = normal_name(name)?;
        check_password(&password)?;
        let hash = hash_password(password).await?;
        let audits = self.in_each_tenant(actor, &name, "user.password").await?;
        if self
            .store
            .user_set_password(&name, &hash, self.clock.now(), &audits)
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound("user"))
        }
    }

    /// An audit entry of `action` on the user in each tenant they belong to.
    async fn in_each_tenant(
        &self,
        actor: &str,
        name: &str,
        action: &'static str,
    ) -> AppResult<Vec<AuditRow>> {
        let now = self.clock.now();
        self.store
            .user_roles(name)
            .await?
            .into_iter()
            .map(|(tenant, _)| {
                let tenant = TenantId::new(&tenant)
                    .map_err(|e| AppError::Internal(format!("a stored tenant id: {e}")))?;
                Ok(Principal::new(tenant, Role::Admin, actor).audit(
                    now,
                    action,
                    format!("user:{name}"),
                ))
            })
            .collect()
    }

    /// Checks a name and password and starts a session in the tenant asked for (or the
    /// user's only one): the session's token (for the cookie) and what it is.
    pub async fn login(&self, req: LoginRequest) -> AppResult<(Secret, LoginInfo)> {
        let name = normal_name(&req.name).map_err(|_| AppError::Unauthorized(WRONG_LOGIN))?;
        let user = self.store.user_get(&name).await?;
        // A missing user costs a verification too, so timing does not tell names apart.
        let phc = user
            .as_ref()
            .map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
        if !verify_password(req.password, phc).await || user.is_none() {
            return Err(AppError::Unauthorized(WRONG_LOGIN));
        }
        let roles = self.store.user_roles(&name).await?;
        let (tenant, role) = match (req.tenant.as_deref(), roles.as_slice()) {
            (Some(asked), _) => {
                roles
                    .iter()
                    .find(|(t, _)| t == asked)
                    .cloned()
                    .ok_or_else(|| {
                        AppError::Forbidden(format!("{name} is not a user of tenant {asked:?}"))
                    })?
            }
            (None, [only]) => only.clone(),
            (None, []) => {
                return Err(AppError::Forbidden(format!(
                    "{name} belongs to no tenant; ask the operator to add them to one"
                )));
            }
            (None, many) => {
                let names: Vec<&str> = many.iter().map(|(t, _)| t.as_str()).collect();
                return Err(AppError::field(
                    "tenant",
                    format!("{name} belongs to {}; name one", names.join(", ")),
                ));
            }
        };
        let role: Role = role
            .parse()
            .map_err(|e| AppError::Internal(format!("{e}")))?;
        let token = Secret::new(format!(
            "{SESSION_TAG}{}",
            random_text(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                SESSION_CHARS
            )
        ));
        let now = self.clock.now();
        let session = UserSessionRow {
            token_hash: self.hasher.hash(token.expose()),
            user_name: name.clone(),
            tenant_id: tenant.clone(),
            created_at: now,
            expires_at: now + SESSION_TTL,
            last_seen_at: now,
        };
        let tenant_id = TenantId::new(&tenant).map_err(|e| AppError::Internal(format!("{e}")))?;
        let audit = Principal::new(tenant_id, role, format!("user:{name}")).audit(
            now,
            "user.login",
            format!("user:{name}"),
        );
        self.store.user_session_insert(&session, &audit).await?;
        let info = LoginInfo {
            user: name,
            tenant,
            role,
            expires_at: session.expires_at,
            csrf_token: self.csrf_token(&token),
        };
        Ok((token, info))
    }

    /// The principal a session token stands for; `None` when the text is not shaped as
    /// one. An unknown, ended or expired session is refused.
    pub async fn session(&self, token: &str) -> AppResult<Option<Principal>> {
        if !is_session_token(token) {
            return Ok(None);
        }
        let hash = self.hasher.hash(token);
        let Some((session, role)) = self.store.user_session_get(&hash).await? else {
            return Err(AppError::Unauthorized("this session ended; log in again"));
        };
        let now = self.clock.now();
        if session.expires_at <= now {
            return Err(AppError::Unauthorized("this session expired; log in again"));
        }
        if now - session.last_seen_at >= SEEN_EVERY {
            self.store.user_session_seen(&hash, now).await?;
        }
        let tenant =
            TenantId::new(&session.tenant_id).map_err(|e| AppError::Internal(format!("{e}")))?;
        let role: Role = role
            .parse()
            .map_err(|e| AppError::Internal(format!("{e}")))?;
        Ok(Some(Principal::new(
            tenant,
            role,
            format!("user:{}", session.user_name),
        )))
    }

    /// Ends the session (logging out); nothing happens for an unknown one.
    pub async fn logout(&self, token: &str) -> AppResult<()> {
        if is_session_token(token) {
            self.store
                .user_session_delete(&self.hasher.hash(token))
                .await?;
        }
        Ok(())
    }

    /// The CSRF token of a session: derived from its token, so nothing more is stored.
    pub fn csrf_token(&self, session: &Secret) -> String {
        hex::encode(self.hasher.hash(&csrf_input(session.expose())))
    }

    /// Whether `given` is the CSRF token of the session `token` (constant time).
    pub fn csrf_matches(&self, token: &str, given: &str) -> bool {
        hex::decode(given).is_ok_and(|raw| self.hasher.verify(&csrf_input(token), &raw))
    }
}

fn csrf_input(token: &str) -> String {
    format!("csrf {token}")
}

fn is_session_token(text: &str) -> bool {
    text.strip_prefix(SESSION_TAG).is_some_and(|rest| {
        rest.len() == SESSION_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// A login name as kept: trimmed, lower case; 1–200 characters without spaces or control
/// characters.
fn normal_name(name: &str) -> AppResult<String> {
    let name = name.trim().to_lowercase();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(AppError::field(
            "name",
            format!("1 to {MAX_NAME_CHARS} characters, without spaces or control characters"),
        ));
    }
    Ok(name)
}

fn check_role(role: Role) -> AppResult<()> {
    if role == Role::Worker {
        return Err(AppError::field(
            "role",
            "a user is a viewer, editor or admin; workers use worker tokens",
        ));
    }
    Ok(())
}

fn check_password(password: &Secret) -> AppResult<()> {
    let p = password.expose();
    if p.chars().count() < MIN_PASSWORD_CHARS || p.len() > MAX_PASSWORD_BYTES {
        return Err(AppError::field(
            "password",
            format!("{MIN_PASSWORD_CHARS} characters at least, {MAX_PASSWORD_BYTES} bytes at most"),
        ));
    }
    if p.trim().is_empty() {
        return Err(AppError::field("password", "not only spaces"));
    }
    Ok(())
}

/// An argon2id hash (PHC string) of `password`, on a blocking thread (it takes tens of
/// milliseconds by design).
async fn hash_password(password: Secret) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| AppError::Internal("no random generator".into()))?;
        let salt =
            SaltString::encode_b64(&salt).map_err(|e| AppError::Internal(format!("salt: {e}")))?;
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(format!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| AppError::Internal(format!("hashing a password: {e}")))?
}

/// Whether `password` matches the PHC string `phc`, on a blocking thread.
async fn verify_password(password: Secret, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// A hash of no one's password, checked when a name is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(&[7u8; 16]).expect("a 16-byte salt encodes");
        Argon2::default()
            .hash_password(b"no user has this password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password(Secret::new("correct horse battery"))
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(Secret::new("correct horse battery"), hash.clone()).await);
        assert!(!verify_password(Secret::new("wrong horse battery"), hash).await);
        assert!(!verify_password(Secret::new("x"), "not a hash".into()).await);
        assert!(dummy_hash().starts_with("$argon2id$"));
    }

    #[test]
    fn names_passwords_and_tokens_are_checked() {
        assert_eq!(
            normal_name("  Ana@Example.COM ").expect("name"),
            "ana@example.com"
        );
        assert!(normal_name("two words").is_err());
        assert!(normal_name("").is_err());
        assert!(check_password(&Secret::new("short")).is_err());
        assert!(check_password(&Secret::new("          ")).is_err());
        assert!(check_password(&Secret::new("long enough!")).is_ok());
        assert!(check_role(Role::Worker).is_err());
        assert!(is_session_token(&format!("fs_{}", "a".repeat(43))));
        assert!(!is_session_token(&format!("fk_{}", "a".repeat(43))));
        assert!(!is_session_token("fs_short"));
    }
}
