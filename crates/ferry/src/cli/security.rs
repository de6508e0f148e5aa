//! `ferry secret`'s arguments: the tenant's vault, through the server's API.

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
