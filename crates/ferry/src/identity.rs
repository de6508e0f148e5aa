//! `ferry tenant …`, `ferry key …`, `ferry worker-token …`: the operator's identity
//! commands. They work on the server's database directly (with the server's settings and
//! session key), so the first admin key of a tenant can be made before any key exists.
//! `create` prints only the new secret on stdout (or, with `--json`, an object with it).

use std::{path::Path, process::ExitCode};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, Utc};
use ferry_core::{
    Clock, KindPattern, Role, SystemClock, TenantId,
    identity::{KeyCreateRequest, KeyInfo, KeyList, TenantInfo, TenantList, TenantQuotas},
};
use ferry_server::app::{KeyHasher, Keys, Principal, Tenants};
use ferry_store::Store;

use crate::{
    cli::{
        Database, KeyArgs, KeyCommand, NewKeyArgs, QuotaArgs, TenantArgs, TenantCommand,
        WorkerTokenArgs, WorkerTokenCommand,
    },
    config::{FileConfig, serve_settings},
};

/// The server's database and key hasher, as `ferry serve` would open them.
pub(crate) async fn open(db: &Database, config: Option<&Path>) -> Result<(Store, KeyHasher)> {
    let file = FileConfig::load(config)?;
    let settings = serve_settings(None, db.data_dir.clone(), db.database_url.clone(), &file)?;
    for (name, path) in &settings.generated {
        eprintln!(
            "generated the {name} into {} (readable by you only)",
            path.display()
        );
    }
    let store = Store::open(&settings.database, settings.durability)
        .await
        .with_context(|| format!("cannot open the database {:?}", settings.database))?;
    Ok((store, KeyHasher::new(&settings.server.sealing_key)))
}

/// The tenant named by `--tenant` (`default` without it).
pub(crate) fn tenant_id(text: Option<&str>) -> Result<TenantId> {
    match text {
        Some(text) => TenantId::new(text).with_context(|| format!("bad tenant {text:?}")),
        None => Ok(TenantId::default()),
    }
}

/// How the audit log names the operator at the command line.
pub(crate) const CLI_ACTOR: &str = "cli";

/// The operator acting as admin of the tenant named by `--tenant`.
pub(crate) fn operator(tenant: Option<&str>) -> Result<Principal> {
    Ok(Principal::new(tenant_id(tenant)?, Role::Admin, CLI_ACTOR))
}

/// A tenant on one line: id, name and quotas.
fn describe_tenant(t: &TenantInfo) -> String {
    let limit = |n: Option<u64>| n.map_or("none".to_owned(), |n| n.to_string());
    format!(
        "{}\t{}\tsubmissions/s: {}\tunfinished jobs: {}",
        t.id,
        t.name,
        limit(t.quotas.max_submissions_per_second.map(u64::from)),
        limit(t.quotas.max_unfinished_jobs),
    )
}

impl QuotaArgs {
    /// `current` with the quotas given on the command line.
    fn over(self, current: TenantQuotas) -> TenantQuotas {
        TenantQuotas {
            max_submissions_per_second: self
                .max_submissions_per_second
                .map_or(current.max_submissions_per_second, |q| q.0),
            max_unfinished_jobs: self
                .max_unfinished_jobs
                .map_or(current.max_unfinished_jobs, |q| q.0),
        }
    }
}

pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn tenant(args: TenantArgs, config: Option<&Path>) -> Result<ExitCode> {
    let (store, _) = open(&args.db, config).await?;
    let tenants = Tenants::new(&store, &SystemClock);
    let result = async {
        match args.command {
            TenantCommand::Create { id, name, quotas } => {
                let quotas = quotas.over(TenantQuotas::default());
                let made = tenants
                    .create(CLI_ACTOR, &tenant_id(Some(&id))?, &name, quotas)
                    .await?;
                if args.db.json {
                    print_json(&made)?;
                } else {
                    println!("{}", made.id);
                }
            }
            TenantCommand::Set { id, quotas } => {
                let id = tenant_id(Some(&id))?;
                let current = tenants.get(&id).await?.quotas;
                let set = tenants
                    .set_quotas(CLI_ACTOR, &id, quotas.over(current))
                    .await?;
                if args.db.json {
                    print_json(&set)?;
                } else {
                    println!("{}", describe_tenant(&set));
                }
            }
            TenantCommand::List => {
                let list = tenants.list().await?;
                if args.db.json {
                    print_json(&TenantList { tenants: list })?;
                } else {
                    list.iter().for_each(|t| println!("{}", describe_tenant(t)));
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

pub async fn key(args: KeyArgs, config: Option<&Path>) -> Result<ExitCode> {
    let (store, hasher) = open(&args.db, config).await?;
    let keys = Keys::new(&store, &SystemClock, &hasher);
    let json = args.db.json;
    let result = async {
        match args.command {
            KeyCommand::Create { role, new } => create(&keys, role, new, json).await,
            KeyCommand::List { tenant } => {
                let list = keys.list(&tenant_id(tenant.as_deref())?).await?;
                if json {
                    print_json(&KeyList { keys: list })
                } else {
                    list.iter().for_each(|k| println!("{}", describe(k)));
                    Ok(())
                }
            }
            KeyCommand::Revoke { prefix, tenant } => {
                Ok(keys.revoke(&operator(tenant.as_deref())?, &prefix).await?)
            }
        }
    }
    .await;
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

pub async fn worker_token(args: WorkerTokenArgs, config: Option<&Path>) -> Result<ExitCode> {
    let (store, hasher) = open(&args.db, config).await?;
    let keys = Keys::new(&store, &SystemClock, &hasher);
    let result = async {
        match args.command {
            WorkerTokenCommand::Create { new } => {
                create(&keys, Role::Worker, new, args.db.json).await
            }
            WorkerTokenCommand::Revoke { prefix, tenant } => {
                let operator = operator(tenant.as_deref())?;
                let is_token = keys
                    .list(&operator.tenant)
                    .await?
                    .iter()
                    .any(|k| k.prefix == prefix && k.role == Role::Worker);
                if !is_token {
                    bail!(ferry_server::app::AppError::NotFound("worker token"));
                }
                Ok(keys.revoke(&operator, &prefix).await?)
            }
        }
    }
    .await;
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn create(keys: &Keys<'_>, role: Role, new: NewKeyArgs, json: bool) -> Result<()> {
    let kinds = new
        .kinds
        .map(|ks| {
            ks.iter()
                .map(|k| {
                    k.parse::<KindPattern>()
                        .with_context(|| format!("--kinds {k:?}"))
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    let expires_at = new
        .expires
        .map(|e| expiry(&e, SystemClock.now()))
        .transpose()?;
    let made = keys
        .create(
            &operator(new.tenant.as_deref())?,
            KeyCreateRequest {
                role,
                kinds,
                name: new.name,
                expires_at,
            },
        )
        .await?;
    if json {
        print_json(&made)
    } else {
        println!("{}", made.secret);
        eprintln!(
            "made {} (shown once: store it now); revoke with `ferry key revoke {}`",
            describe(&made.key),
            made.key.prefix
        );
        Ok(())
    }
}

fn describe(k: &KeyInfo) -> String {
    let kinds = k.kinds.as_ref().map_or_else(
        || "every kind".to_owned(),
        |ks| {
            ks.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        },
    );
    let state = match (k.revoked_at, k.expires_at) {
        (Some(at), _) => format!("revoked {at}"),
        (None, Some(at)) => format!("expires {at}"),
        (None, None) => "no expiry".to_owned(),
    };
    format!("{}\t{}\t{}\t{}\t{}", k.prefix, k.role, kinds, state, k.name)
}

/// `90d`, `12h`, `30m`, `45s` from `now`, or an RFC 3339 time.
fn expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().ok().filter(|n| *n > 0).with_context(|| {
        format!("--expires {text:?}: give a duration like 90d, 12h, 30m or an RFC 3339 time")
    })?;
    let span = match unit {
        "d" => Duration::try_days(n),
        "h" => Duration::try_hours(n),
        "m" => Duration::try_minutes(n),
        "s" => Duration::try_seconds(n),
        _ => None,
    };
    span.and_then(|s| now.checked_add_signed(s))
        .with_context(|| {
            format!("--expires {text:?}: give a duration like 90d, 12h, 30m or an RFC 3339 time")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_read_as_durations_or_times() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T00:00:00Z")
            .expect("valid")
            .with_timezone(&Utc);
        assert_eq!(expiry("90d", now).expect("valid"), now + Duration::days(90));
        assert_eq!(
            expiry("12h", now).expect("valid"),
            now + Duration::hours(12)
        );
        assert_eq!(
            expiry("2027-01-01T00:00:00Z", now)
                .expect("valid")
                .to_rfc3339(),
            "2027-01-01T00:00:00+00:00"
        );
        for bad in ["", "d", "0d", "12y", "soon"] {
            assert!(expiry(bad, now).is_err(), "{bad}");
        }
    }
}
