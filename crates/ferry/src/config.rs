//! Configuration in layers: built-in defaults, then `ferry.toml`, then `FERRY_*`
//! environment variables, then flags (clap merges the last two). Tokens that are not
//! configured are generated once into the data dir (mode 0600) and reused.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use ferry_core::{Backoff, Secret, id::random_token};
use ferry_server::ServerConfig;
use ferry_store::{DatabaseUrl, Durability};
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
pub const DEFAULT_SERVER_URL: &str = "http://127.0.0.1:7878";
pub const DEFAULT_DATA_DIR: &str = "ferry-data";
const API_TOKEN_FILE: &str = "api-token";
const WORKER_TOKEN_FILE: &str = "worker-token";
const SESSION_KEY_FILE: &str = "session.key";

/// `ferry.toml`. Every key is optional; unknown keys are an error (typos must show).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub api_token: Option<String>,
    pub worker_token: Option<String>,
    pub server_url: Option<String>,
    /// `normal` (survives a process crash) or `full` (also power loss).
    pub sqlite_synchronous: Option<String>,
    pub lease_ms: Option<u64>,
    pub max_attempts: Option<u32>,
    pub timeout_ms: Option<u64>,
    pub backoff_base_ms: Option<u64>,
    pub backoff_max_ms: Option<u64>,
    /// How long finished jobs are kept.
    pub retention_hours: Option<u64>,
    /// How deep `then` chains may nest.
    pub max_chain_depth: Option<u32>,
    /// Most items in one `POST /v1/batches`.
    pub max_batch_items: Option<usize>,
    pub max_body_bytes: Option<usize>,
    /// Most event streams one client (address) may hold open.
    pub max_streams_per_client: Option<usize>,
    /// Most event streams open on one server.
    pub max_streams: Option<usize>,
    /// Most wrong credentials one client address may send per minute.
    pub max_auth_failures_per_minute: Option<u32>,
    /// Mark the login cookie `Secure` (users reach the server over HTTPS).
    pub secure_cookies: Option<bool>,
    /// Honour the configured API and worker tokens (default true); false once every
    /// client and worker has a key or worker token of its own.
    pub configured_tokens: Option<bool>,
    /// Bearer token of `GET /metrics` (default: the API token reads them).
    pub metrics_token: Option<String>,
    /// Concurrency limits by key pattern: `[concurrency_limits]` `"account:*" = 1`.
    pub concurrency_limits: Option<std::collections::BTreeMap<String, u32>>,
    /// Seals saved browser sessions: 64 hex digits (default: `session.key` in the data dir,
    /// made on first start). Every instance of one database needs the same key.
    pub session_key: Option<String>,
    /// Where job artifacts go (default: `artifacts/` in the data dir).
    pub artifact_dir: Option<PathBuf>,
    /// The operator's egress rules, added to every tenant's: `[egress]` with `allow`,
    /// `deny` (domains, addresses, CIDR blocks), `allow_public`, `allow_private`.
    pub egress: Option<ferry_core::egress::EgressPolicy>,
}

impl FileConfig {
    /// Reads `path`, or `./ferry.toml` when no path is given and that file exists.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("ferry.toml"), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default());
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read config file {}", path.display()));
            }
        };
        toml::from_str(&text).with_context(|| format!("bad config file {}", path.display()))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Result<Option<T>> {
    match env(name) {
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not a valid value")),
        None => Ok(None),
    }
}

/// A token from the environment, the config file, or the data dir.
fn configured_token(
    env_name: &str,
    file_value: Option<&String>,
    data_dir: &Path,
    file: &str,
) -> Result<Option<Secret>> {
    if let Some(v) = env(env_name).or_else(|| file_value.cloned()) {
        return Ok(Some(Secret::new(v)));
    }
    let path = data_dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(Secret::new(v.trim()))),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_secret_file(path: &Path, value: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(value.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Everything `ferry serve` needs.
#[derive(Debug)]
pub struct ServeSettings {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub durability: Durability,
    pub server: ServerConfig,
    /// Tokens generated by this start (to print once).
    pub generated: Vec<(&'static str, PathBuf)>,
}

pub fn serve_settings(
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    file: &FileConfig,
) -> Result<ServeSettings> {
    let data_dir = data_dir
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let listen = listen
        .or_else(|| file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let url = database_url
        .or_else(|| file.database_url.clone())
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("ferry.db").display()));
    let database: DatabaseUrl = url
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))
        .context("bad database URL")?;
    let durability = match env("FERRY_SQLITE_SYNCHRONOUS")
        .or_else(|| file.sqlite_synchronous.clone())
        .as_deref()
    {
        None | Some("normal") => Durability::Normal,
        Some("full") => Durability::Full,
        Some(other) => bail!("sqlite_synchronous must be normal or full, not {other:?}"),
    };
    let mut generated = Vec::new();
    let mut token =
        |env_name: &str, value: Option<&String>, file_name: &'static str| -> Result<Secret> {
            if let Some(t) = configured_token(env_name, value, &data_dir, file_name)? {
                return Ok(t);
            }
            let t = random_token();
            let path = data_dir.join(file_name);
            write_secret_file(&path, &t)?;
            generated.push((file_name, path));
            Ok(Secret::new(t))
        };
    let api_token = token("FERRY_API_TOKEN", file.api_token.as_ref(), API_TOKEN_FILE)?;
    let worker_token = token(
        "FERRY_WORKER_TOKEN",
        file.worker_token.as_ref(),
        WORKER_TOKEN_FILE,
    )?;
    if api_token == worker_token {
        bail!("the API token and the worker token must differ");
    }
    let session_key = match configured_token(
        "FERRY_SESSION_KEY",
        file.session_key.as_ref(),
        &data_dir,
        SESSION_KEY_FILE,
    )? {
        Some(hex) => ferry_server::SealingKey::from_hex(hex.expose())
            .context("FERRY_SESSION_KEY / session_key / session.key")?,
        None => {
            let key = ferry_server::SealingKey::generate();
            let path = data_dir.join(SESSION_KEY_FILE);
            write_secret_file(&path, &key.to_hex())?;
            generated.push((SESSION_KEY_FILE, path));
            key
        }
    };
    let artifact_dir = env("FERRY_ARTIFACT_DIR")
        .map(PathBuf::from)
        .or_else(|| file.artifact_dir.clone())
        .unwrap_or_else(|| data_dir.join("artifacts"));
    let mut server = ServerConfig::new(api_token, worker_token);
    server.sealing_key = session_key;
    server.artifacts = Some(
        ferry_server::local_artifacts(&artifact_dir)
            .with_context(|| format!("cannot use artifact dir {}", artifact_dir.display()))?,
    );
    if let Some(ms) = env_parse::<u64>("FERRY_LEASE_MS")?.or(file.lease_ms) {
        if !(server.lease.min_ms..=server.lease.max_ms).contains(&ms) {
            bail!(
                "lease_ms must be between {} and {}",
                server.lease.min_ms,
                server.lease.max_ms
            );
        }
        server.lease.default_ms = ms;
    }
    if let Some(n) = env_parse::<u32>("FERRY_MAX_ATTEMPTS")?.or(file.max_attempts) {
        server.job_defaults.max_attempts = n.max(1);
    }
    if let Some(ms) = env_parse::<u64>("FERRY_TIMEOUT_MS")?.or(file.timeout_ms) {
        server.job_defaults.timeout_ms = ms.max(1);
    }
    let base = env_parse::<u64>("FERRY_BACKOFF_BASE_MS")?.or(file.backoff_base_ms);
    let max = env_parse::<u64>("FERRY_BACKOFF_MAX_MS")?.or(file.backoff_max_ms);
    if base.is_some() || max.is_some() {
        let backoff = Backoff {
            base_ms: base.unwrap_or(server.job_defaults.backoff.base_ms),
            max_ms: max.unwrap_or(server.job_defaults.backoff.max_ms),
        };
        if backoff.base_ms == 0 || backoff.base_ms > backoff.max_ms {
            bail!("backoff needs 1 <= backoff_base_ms <= backoff_max_ms");
        }
        server.job_defaults.backoff = backoff;
    }
    if let Some(n) = env_parse::<usize>("FERRY_MAX_BATCH_ITEMS")?.or(file.max_batch_items) {
        server.max_batch_items = n.max(1);
    }
    if let Some(depth) = env_parse::<u32>("FERRY_MAX_CHAIN_DEPTH")?.or(file.max_chain_depth) {
        server.job_defaults.max_chain_depth = depth;
    }
    if let Some(hours) = env_parse::<u64>("FERRY_RETENTION_HOURS")?.or(file.retention_hours) {
        server.services.cleaner.retention = Duration::from_secs(hours * 3600);
    }
    if let Some(n) = env_parse::<usize>("FERRY_MAX_BODY_BYTES")?.or(file.max_body_bytes) {
        server.max_body_bytes = n;
    }
    if let Some(n) =
        env_parse::<usize>("FERRY_MAX_STREAMS_PER_CLIENT")?.or(file.max_streams_per_client)
    {
        server.max_streams_per_client = n.max(1);
    }
    if let Some(n) = env_parse::<usize>("FERRY_MAX_STREAMS")?.or(file.max_streams) {
        server.max_streams = n.max(1);
    }
    if let Some(n) = env_parse::<u32>("FERRY_MAX_AUTH_FAILURES_PER_MINUTE")?
        .or(file.max_auth_failures_per_minute)
    {
        server.max_auth_failures_per_minute = n.max(1);
    }
    if let Some(on) = env_parse::<bool>("FERRY_SECURE_COOKIES")?.or(file.secure_cookies) {
        server.secure_cookies = on;
    }
    if let Some(on) = env_parse::<bool>("FERRY_CONFIGURED_TOKENS")?.or(file.configured_tokens) {
        server.configured_tokens = on;
    }
    if let Some(token) = std::env::var("FERRY_METRICS_TOKEN")
        .ok()
        .or_else(|| file.metrics_token.clone())
        .filter(|t| !t.trim().is_empty())
    {
        server.metrics_token = Some(ferry_core::Secret::new(token.trim()));
    }
    if let Some(egress) = &file.egress {
        if let Some((field, message)) = egress.problems().into_iter().next() {
            anyhow::bail!("[egress] {field}: {message}");
        }
        server.egress = egress.clone();
    }
    if let Some(on) = env_parse::<bool>("FERRY_EGRESS_ALLOW_PRIVATE")? {
        server.egress.allow_private = on;
    }
    server.job_defaults.concurrency_rules = concurrency_rules(file)?;
    Ok(ServeSettings {
        listen,
        data_dir,
        database,
        durability,
        server,
        generated,
    })
}

/// `FERRY_CONCURRENCY_LIMITS=account:*=1,kind:report.*=1`, else `[concurrency_limits]`.
fn concurrency_rules(file: &FileConfig) -> Result<Vec<ferry_core::flow::KeyRule>> {
    use ferry_core::flow::KeyRule;
    if let Some(text) = env("FERRY_CONCURRENCY_LIMITS") {
        return text
            .split(',')
            .map(|rule| KeyRule::parse(rule.trim()))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("FERRY_CONCURRENCY_LIMITS: {e}"));
    }
    file.concurrency_limits
        .iter()
        .flatten()
        .map(|(pattern, limit)| KeyRule::new(pattern, *limit))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("concurrency_limits: {e}"))
}

/// The API client of a command that takes `--server` / `--data-dir` (`connect`) and the
/// config file: the server's URL and the API token, from flags, environment or file.
pub fn api_client(
    connect: &crate::cli::Connect,
    config: Option<&std::path::Path>,
) -> Result<ferry_client::Client> {
    let file = FileConfig::load(config)?;
    let (url, token) = client_settings(
        connect.server.clone(),
        connect.data_dir.clone(),
        &file,
        false,
    )?;
    Ok(ferry_client::Client::new(&url, token)?)
}

/// Where a client command connects, and with which token.
pub fn client_settings(
    server: Option<String>,
    data_dir: Option<PathBuf>,
    file: &FileConfig,
    worker: bool,
) -> Result<(String, Secret)> {
    let url = server
        .or_else(|| file.server_url.clone())
        .unwrap_or_else(|| DEFAULT_SERVER_URL.to_owned());
    let data_dir = data_dir
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let (env_name, value, file_name) = if worker {
        (
            "FERRY_WORKER_TOKEN",
            file.worker_token.as_ref(),
            WORKER_TOKEN_FILE,
        )
    } else {
        ("FERRY_API_TOKEN", file.api_token.as_ref(), API_TOKEN_FILE)
    };
    let token = configured_token(env_name, value, &data_dir, file_name)?.with_context(|| {
        format!(
            "no token: set {env_name}, or run next to the server's data dir ({})",
            data_dir.display()
        )
    })?;
    Ok((url, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `ferry.toml` docs/operations.md shows is one this build reads.
    #[test]
    fn the_documented_config_file_parses() {
        let doc = include_str!("../../../docs/operations.md");
        let block = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a toml block in docs/operations.md");
        let file: FileConfig = toml::from_str(block).expect("the documented ferry.toml");
        let egress = file.egress.expect("its [egress] section");
        assert_eq!(egress.allow.len(), 2);
        assert!(!egress.allow_private);
        assert!(file.concurrency_limits.is_some());
    }

    /// An operator's rate limit that is not a whole rule stops the start with one line,
    /// instead of failing every submit aimed at its domain.
    #[test]
    fn a_broken_egress_rate_limit_stops_the_start() {
        let file: FileConfig =
            toml::from_str("[egress]\nrate_limits = [{ domain = \"shop.example\", max = 5 }]\n")
                .expect("toml");
        let dir = tempfile::tempdir().expect("tempdir");
        let Err(e) = serve_settings(None, Some(dir.path().to_owned()), None, &file) else {
            panic!("a broken rate limit was taken");
        };
        assert!(
            e.to_string().contains("[egress] rate_limits[0].per_ms"),
            "{e}"
        );
    }
}
