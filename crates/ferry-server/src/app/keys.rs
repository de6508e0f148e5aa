//! API keys and worker tokens: made for a tenant with a role (and optionally kind
//! patterns and an expiry), shown once, kept only as a keyed hash, found by their visible
//! prefix, revoked by their tenant's admins. A key reads `fk_<10>_<40>` (an API key) or
//! `fw_<10>_<40>` (a worker token): the first part is the prefix the store finds it by,
//! the whole key is what is hashed.
//!
//! Looked-up keys are cached for [`CACHE_TTL`], so a revocation reaches every instance
//! within that time (at once on the instance that revoked).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use ferry_core::{
    Clock, KindPattern, Role, Secret, TenantId,
    identity::{KeyCreateRequest, KeyCreated, KeyInfo},
};
use ferry_store::{ApiKeyRow, Store};
use ring::{
    hmac,
    rand::{SecureRandom, SystemRandom},
};

use super::{AppError, AppResult, Principal};
use crate::{Queue, SealingKey};

/// How long a looked-up key is trusted without asking the database again: the longest a
/// revocation takes to reach another instance.
pub const CACHE_TTL: Duration = Duration::from_millis(500);
/// A key's `last_used_at` is written at most this often.
const LAST_USED_EVERY: Duration = Duration::from_secs(60);
const MAX_CACHED: usize = 10_000;
const PREFIX_CHARS: usize = 10;
const SECRET_CHARS: usize = 40;
const MAX_NAME_CHARS: usize = 200;
const MAX_KINDS: usize = 100;

/// The tag a key of this role starts with.
fn tag(role: Role) -> &'static str {
    match role {
        Role::Worker => "fw",
        _ => "fk",
    }
}

/// Hashes keys: HMAC-SHA256 under a key derived from the server's sealing key, so the
/// database alone cannot check a guess. Every instance (and the CLI) derives the same.
#[derive(Clone)]
pub struct KeyHasher(hmac::Key);

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher(…)")
    }
}

impl KeyHasher {
    pub fn new(sealing: &SealingKey) -> Self {
        Self(sealing.derive("ferry api key hash v1"))
    }

    pub(super) fn hash(&self, key: &str) -> Vec<u8> {
        hmac::sign(&self.0, key.as_bytes()).as_ref().to_vec()
    }

    /// Constant-time comparison of `key`'s hash with `hash`.
    pub(super) fn verify(&self, key: &str, hash: &[u8]) -> bool {
        hmac::verify(&self.0, key.as_bytes(), hash).is_ok()
    }
}

/// The prefix of text shaped like a key (`fk_…`/`fw_…` with the right lengths), else
/// `None`: it is no key of ours, whatever else it may be.
fn prefix_of(presented: &str) -> Option<&str> {
    let (tag, rest) = presented.split_once('_')?;
    let (id, secret) = rest.split_once('_')?;
    let shaped = matches!(tag, "fk" | "fw")
        && id.len() == PREFIX_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && secret.len() == SECRET_CHARS
        && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    shaped.then(|| &presented[..tag.len() + 1 + PREFIX_CHARS])
}

/// `n` characters drawn uniformly from `alphabet` (at most 256 letters).
pub(super) fn random_text(alphabet: &[u8], n: usize) -> String {
    let rng = SystemRandom::new();
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        // SystemRandom reads the OS generator; it fails only if the OS has none.
        if rng.fill(&mut buf).is_err() {
            panic!("the operating system's random generator is unavailable");
        }
        out.extend(
            buf.iter()
                .filter(|&&b| (b as usize) < limit)
                .map(|&b| alphabet[b as usize % alphabet.len()] as char)
                .take(n - out.len()),
        );
    }
    out
}

/// A new key of `role`: (prefix, whole key).
fn generate(role: Role) -> (String, Secret) {
    const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    const MIXED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let prefix = format!("{}_{}", tag(role), random_text(LOWER, PREFIX_CHARS));
    let key = format!("{prefix}_{}", random_text(MIXED, SECRET_CHARS));
    (prefix, Secret::new(key))
}

/// Keys looked up recently, by prefix (see [`CACHE_TTL`]).
#[derive(Debug, Default)]
pub struct KeyCache(Mutex<HashMap<String, Cached>>);

/// A stored key decoded once, when it is looked up: what every request with it needs.
#[derive(Debug)]
struct Known {
    secret_hash: Vec<u8>,
    tenant: TenantId,
    info: KeyInfo,
}

impl Known {
    fn decode(row: ApiKeyRow) -> AppResult<Self> {
        let info = info(&row)?;
        let tenant = TenantId::new(row.tenant_id)
            .map_err(|_| AppError::Internal(format!("key {} has a bad tenant id", row.prefix)))?;
        Ok(Self {
            secret_hash: row.secret_hash,
            tenant,
            info,
        })
    }
}

#[derive(Debug)]
struct Cached {
    key: Arc<Known>,
    fetched: Instant,
    used_written: Option<Instant>,
}

impl KeyCache {
    fn get(&self, prefix: &str) -> Option<Arc<Known>> {
        let entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(prefix)
            .filter(|c| c.fetched.elapsed() < CACHE_TTL)
            .map(|c| c.key.clone())
    }

    fn put(&self, key: Arc<Known>) {
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_CACHED {
            entries.retain(|_, c| c.fetched.elapsed() < CACHE_TTL);
        }
        let prefix = key.info.prefix.clone();
        let used_written = entries.get(&prefix).and_then(|c| c.used_written);
        entries.insert(
            prefix,
            Cached {
                key,
                fetched: Instant::now(),
                used_written,
            },
        );
    }

    /// Whether `last_used_at` is due to be written (and marks it written).
    fn use_due(&self, prefix: &str) -> bool {
        let mut entries = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get_mut(prefix) {
            Some(c)
                if c.used_written
                    .is_some_and(|t| t.elapsed() < LAST_USED_EVERY) =>
            {
                false
            }
            Some(c) => {
                c.used_written = Some(Instant::now());
                true
            }
            None => true,
        }
    }

    fn forget(&self, prefix: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(prefix);
    }
}

/// The key service. The server's is `queue.keys()`; the CLI makes one over the store.
#[derive(Debug)]
pub struct Keys<'a> {
    store: &'a Store,
    clock: &'a dyn Clock,
    hasher: &'a KeyHasher,
    cache: Option<&'a KeyCache>,
}

impl Queue {
    pub fn keys(&self) -> Keys<'_> {
        Keys {
            store: self.store(),
            clock: self.clock(),
            hasher: self.key_hasher(),
            cache: Some(self.key_cache()),
        }
    }
}

impl<'a> Keys<'a> {
    /// Keys over `store` without a cache (the CLI's: it makes, lists and revokes).
    pub fn new(store: &'a Store, clock: &'a dyn Clock, hasher: &'a KeyHasher) -> Self {
        Self {
            store,
            clock,
            hasher,
            cache: None,
        }
    }

    /// Makes a key of `who`'s tenant; the answer is the only place its secret appears.
    pub async fn create(&self, who: &Principal, req: KeyCreateRequest) -> AppResult<KeyCreated> {
        let tenant = &who.tenant;
        let now = self.clock.now();
        check_new_key(&req, now)?;
        if !self
            .store
            .tenant_list()
            .await?
            .iter()
            .any(|t| t.id == tenant.as_str())
        {
            return Err(AppError::NotFound("tenant"));
        }
        let (prefix, secret) = generate(req.role);
        let row = ApiKeyRow {
            prefix,
            tenant_id: tenant.to_string(),
            role: req.role.as_str().to_owned(),
            secret_hash: self.hasher.hash(secret.expose()),
            kinds: req
                .kinds
                .map(|ks| ks.iter().map(ToString::to_string).collect()),
            name: req.name,
            created_at: now,
            expires_at: req.expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        let audit = who
            .audit(now, "key.create", format!("key:{}", row.prefix))
            .with_detail(serde_json::json!({
                "role": row.role, "kinds": row.kinds, "name": row.name,
                "expires_at": row.expires_at,
            }));
        self.store.api_key_insert(&row, &audit).await?;
        Ok(KeyCreated {
            key: info(&row)?,
            secret: secret.expose().to_owned(),
        })
    }

    /// The tenant's keys (revoked ones too), oldest first.
    pub async fn list(&self, tenant: &TenantId) -> AppResult<Vec<KeyInfo>> {
        self.store
            .api_key_list(tenant)
            .await?
            .iter()
            .map(info)
            .collect()
    }

    /// Revokes the tenant's key named by its prefix: refused from now on (on other
    /// instances within [`CACHE_TTL`]).
    pub async fn revoke(&self, who: &Principal, prefix: &str) -> AppResult<()> {
        let now = self.clock.now();
        let audit = who.audit(now, "key.revoke", format!("key:{prefix}"));
        let revoked = self
            .store
            .api_key_revoke(&who.tenant, prefix, now, &audit)
            .await?;
        if let Some(cache) = self.cache {
            cache.forget(prefix);
        }
        if revoked {
            Ok(())
        } else {
            // Not this tenant's, or revoked already: the same answer, so prefixes of
            // other tenants do not show.
            Err(AppError::NotFound("key"))
        }
    }

    /// The principal a presented key stands for; `None` when the text is not shaped as a
    /// key at all. A key that is unknown, wrong, revoked or expired is refused.
    pub async fn authenticate(&self, presented: &str) -> AppResult<Option<Principal>> {
        let Some(prefix) = prefix_of(presented) else {
            return Ok(None);
        };
        let cached = self.cache.and_then(|c| c.get(prefix));
        let key = match cached {
            Some(key) => key,
            None => {
                let row = self
                    .store
                    .api_key_get(prefix)
                    .await?
                    .ok_or(AppError::Unauthorized(WRONG_KEY))?;
                let key = Arc::new(Known::decode(row)?);
                if let Some(cache) = self.cache {
                    cache.put(key.clone());
                }
                key
            }
        };
        if !self.hasher.verify(presented, &key.secret_hash) {
            return Err(AppError::Unauthorized(WRONG_KEY));
        }
        let now = self.clock.now();
        if key.info.revoked_at.is_some() {
            return Err(AppError::KeyRevoked);
        }
        if key.info.expires_at.is_some_and(|at| at <= now) {
            return Err(AppError::KeyExpired);
        }
        if self.cache.is_none_or(|c| c.use_due(prefix))
            && let Err(e) = self.store.api_key_used(prefix, now).await
        {
            tracing::warn!(error = %e, key = prefix, "could not record a key's last use");
        }
        Ok(Some(Principal {
            tenant: key.tenant.clone(),
            role: key.info.role,
            kinds: key.info.kinds.clone().map(Into::into),
            actor: format!("key:{prefix}"),
        }))
    }
}

const WRONG_KEY: &str = "unknown or wrong key: send Authorization: Bearer <key>";

fn check_new_key(req: &KeyCreateRequest, now: DateTime<Utc>) -> AppResult<()> {
    let mut errors = Vec::new();
    if req.name.chars().count() > MAX_NAME_CHARS || req.name.chars().any(char::is_control) {
        errors.push(ferry_core::FieldError::new(
            "name",
            format!("at most {MAX_NAME_CHARS} characters, without control characters"),
        ));
    }
    match &req.kinds {
        Some(kinds) if kinds.is_empty() => errors.push(ferry_core::FieldError::new(
            "kinds",
            "name at least one kind pattern, or leave kinds out for every kind",
        )),
        Some(kinds) if kinds.len() > MAX_KINDS => errors.push(ferry_core::FieldError::new(
            "kinds",
            format!("at most {MAX_KINDS} patterns"),
        )),
        _ => {}
    }
    if req.expires_at.is_some_and(|at| at <= now) {
        errors.push(ferry_core::FieldError::new(
            "expires_at",
            "must be in the future",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Invalid(errors))
    }
}

/// A stored key as the API shows it.
fn info(row: &ApiKeyRow) -> AppResult<KeyInfo> {
    let bad = |what: &str| AppError::Internal(format!("key {} has a bad {what}", row.prefix));
    Ok(KeyInfo {
        prefix: row.prefix.clone(),
        tenant: row.tenant_id.clone(),
        role: row.role.parse().map_err(|_| bad("role"))?,
        kinds: row
            .kinds
            .as_ref()
            .map(|ks| {
                ks.iter()
                    .map(|k| k.parse::<KindPattern>())
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|_| bad("kind pattern"))?,
        name: row.name.clone(),
        created_at: row.created_at,
        expires_at: row.expires_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_shaped_as_their_role_says_and_parse_back_to_their_prefix() {
        for role in [Role::Admin, Role::Worker] {
            let (prefix, key) = generate(role);
            assert!(prefix.starts_with(tag(role)));
            assert_eq!(prefix_of(key.expose()), Some(prefix.as_str()));
            assert_eq!(key.expose().len(), 2 + 1 + PREFIX_CHARS + 1 + SECRET_CHARS);
        }
        let (_, a) = generate(Role::Viewer);
        let (_, b) = generate(Role::Viewer);
        assert_ne!(a.expose(), b.expose());
        for not_a_key in [
            "",
            "0123456789abcdef0123456789abcdef",
            "fk_short_x",
            "fx_abcdefghij_0123456789012345678901234567890123456789",
            "fk_ABCDEFGHIJ_0123456789012345678901234567890123456789",
            "fk_abcdefghij_01234567890123456789012345678901234567890",
            "fk_abcdefghij_012345678901234567890123456789012345678!",
        ] {
            assert_eq!(prefix_of(not_a_key), None, "{not_a_key}");
        }
    }

    #[test]
    fn a_hash_verifies_only_its_key_under_its_server_key() {
        let hasher = KeyHasher::new(&SealingKey::generate());
        let (_, key) = generate(Role::Editor);
        let hash = hasher.hash(key.expose());
        assert!(hasher.verify(key.expose(), &hash));
        assert!(!hasher.verify(&format!("{}x", key.expose()), &hash));
        assert!(!KeyHasher::new(&SealingKey::generate()).verify(key.expose(), &hash));
    }
}
