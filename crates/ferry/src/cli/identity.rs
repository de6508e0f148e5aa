//! The identity commands' arguments: `ferry tenant`, `ferry key`, `ferry worker-token` and
//! `ferry user`, each working on the server's database.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The database the identity commands work on: the same settings `ferry serve` takes
/// (its session key too, which keys are hashed under).
#[derive(Debug, Args)]
pub struct Database {
    /// Where the SQLite database and the session key live [default: ./ferry-data].
    #[arg(long, env = "FERRY_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://<data-dir>/ferry.db].
    #[arg(long, env = "FERRY_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Print JSON (for scripts) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TenantArgs {
    #[command(flatten)]
    pub db: Database,
    #[command(subcommand)]
    pub command: TenantCommand,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Make a tenant: ID is 1-64 of letters, digits, `_` and `-`.
    Create {
        id: String,
        /// A name for people [default: the id].
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// Set a tenant's quotas (servers apply them within a second).
    Set {
        id: String,
        #[command(flatten)]
        quotas: QuotaArgs,
    },
    /// List tenants.
    List,
}

/// A tenant's quotas: a positive number, or `none` for no limit.
#[derive(Debug, Args)]
pub struct QuotaArgs {
    /// Jobs the tenant may submit per second, on each server instance (a batch counts each
    /// job) [default: none].
    #[arg(long, value_name = "N|none", value_parser = quota::<u32>)]
    pub max_submissions_per_second: Option<Quota<u32>>,
    /// Jobs the tenant may hold scheduled, pending or running at once [default: none].
    #[arg(long, value_name = "N|none", value_parser = quota::<u64>)]
    pub max_unfinished_jobs: Option<Quota<u64>>,
}

/// A quota given on the command line: a limit, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota<T>(pub Option<T>);

fn quota<T: std::str::FromStr + PartialOrd + Default>(text: &str) -> Result<Quota<T>, String> {
    if text == "none" {
        return Ok(Quota(None));
    }
    match text.parse::<T>() {
        Ok(n) if n > T::default() => Ok(Quota(Some(n))),
        _ => Err("a whole number of at least 1, or `none`".to_owned()),
    }
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    pub db: Database,
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// What a new key or worker token is limited to.
#[derive(Debug, Args)]
pub struct NewKeyArgs {
    /// The tenant the key acts in [default: default].
    #[arg(long)]
    pub tenant: Option<String>,
    /// Kind patterns it is limited to, comma separated (`baemin.*,http.request`) [default:
    /// every kind].
    #[arg(long, value_delimiter = ',')]
    pub kinds: Option<Vec<String>>,
    /// When it stops working: a duration (`90d`, `12h`, `30m`) or an RFC 3339 time.
    #[arg(long)]
    pub expires: Option<String>,
    /// A note for people (`office laptop`).
    #[arg(long, default_value = "")]
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make an API key; prints only the key (with --json, an object with it).
    Create {
        /// viewer (reads), editor (also changes), admin (also keys), worker.
        #[arg(long)]
        role: ferry_core::Role,
        #[command(flatten)]
        new: NewKeyArgs,
    },
    /// List a tenant's keys and worker tokens (never their secrets).
    List {
        /// The tenant [default: default].
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a key by its prefix (`fk_…`); refused at once, on every instance within a second.
    Revoke {
        prefix: String,
        /// The tenant [default: default].
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct WorkerTokenArgs {
    #[command(flatten)]
    pub db: Database,
    #[command(subcommand)]
    pub command: WorkerTokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum WorkerTokenCommand {
    /// Make a worker token; prints only the token (with --json, an object with it).
    Create {
        #[command(flatten)]
        new: NewKeyArgs,
    },
    /// Revoke a worker token by its prefix (`fw_…`).
    Revoke {
        prefix: String,
        /// The tenant [default: default].
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(flatten)]
    pub db: Database,
    #[command(subcommand)]
    pub command: UserCommand,
}

/// Where a password comes from: a terminal prompt, or one line on stdin.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password as one line from stdin (for scripts) instead of asking.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user with a role in a tenant (asks for a password when the user is new; an
    /// existing user gets the role, their password unchanged).
    Add {
        /// The login name (an e-mail address, say).
        name: String,
        /// The tenant [default: default].
        #[arg(long)]
        tenant: Option<String>,
        /// viewer, editor or admin.
        #[arg(long, default_value = "admin")]
        role: ferry_core::Role,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Set a user's password (their sessions end).
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Remove a user from a tenant, or (without --tenant) from every tenant for good.
    Rm {
        name: String,
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List a tenant's users with their role.
    List {
        /// The tenant [default: default].
        #[arg(long)]
        tenant: Option<String>,
    },
}
