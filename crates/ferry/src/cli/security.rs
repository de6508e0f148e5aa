//! `ferry secret`'s and `ferry egress`'s arguments: the tenant's vault and egress rules,
//! through the server's API.

use clap::{Args, Subcommand};

use super::Connect;

#[derive(Debug, Args)]
pub struct SecretArgs {
    #[command(flatten)]
    pub connect: Connect,
    #[command(subcommand)]
    pub command: SecretCommand,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Save (or replace) a secret jobs use as {{secret.NAME}}: asked for on the terminal,
    /// or read from stdin with --value-stdin; never shown again.
    Put {
        /// 1-64 of letters, digits and `_`.
        name: String,
        /// A host it may be sent to: a domain (with its subdomains) or an address (repeatable; at least one).
        #[arg(long = "domain", required = true)]
        domains: Vec<String>,
        /// Read the value from stdin (its first line) instead of asking on the terminal.
        #[arg(long)]
        value_stdin: bool,
    },
    /// List the secrets: names and domains, never values.
    List,
    /// Remove a secret.
    Rm { name: String },
}

#[derive(Debug, Args)]
pub struct EgressArgs {
    #[command(flatten)]
    pub connect: Connect,
    #[command(subcommand)]
    pub command: EgressCommand,
}

#[derive(Debug, Subcommand)]
pub enum EgressCommand {
    /// The tenant's egress rules and what its jobs are held to (with the operator's).
    Show,
    /// Replace the tenant's egress rules (its admins): where its jobs and webhooks may
    /// connect besides public addresses.
    Set {
        /// A domain (with its subdomains), address or CIDR block reachable even when
        /// internal (repeatable).
        #[arg(long)]
        allow: Vec<String>,
        /// A domain, address or CIDR block never reached (repeatable).
        #[arg(long)]
        deny: Vec<String>,
        /// Only what --allow names is reachable (no other public address).
        #[arg(long)]
        only_allowed: bool,
        /// A rate limit for jobs aimed at a domain (repeatable): DOMAIN=MS between
        /// starts, or DOMAIN=MAX/MS for at most MAX starts per MS milliseconds.
        #[arg(long, value_name = "DOMAIN=MS|DOMAIN=MAX/MS")]
        rate: Vec<String>,
        /// The proxy the tenant's http.request and browser.run jobs go through (unless a
        /// job names its own): http://USER:{{secret.NAME}}@HOST:PORT or socks5://HOST:PORT.
        /// The password is a vault secret bound to the proxy's host.
        #[arg(long, value_name = "URL")]
        proxy: Option<String>,
    },
}
