//! `concord auth ...`: client tokens and whether the cluster requires them.
//!
//! The usual setup: `concord auth token create --role admin` (prints the token once),
//! then `CONCORD_TOKEN=<token> concord auth enable`. From then on every command needs
//! `--token` or `CONCORD_TOKEN`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::client::{Connection, answer};
use super::out;

#[derive(Args, Debug)]
pub struct AuthArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: AuthCommand,
}

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Make, list and revoke tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Require a token on every request (the token given must be an admin token).
    Enable,
    /// Stop requiring tokens.
    Disable,
    /// Whether tokens are required, and how many exist.
    Status,
    /// Check the token given: its id, role and prefixes.
    Whoami,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token and print it (its secret is shown this once).
    Create {
        /// read, write or admin.
        #[arg(long)]
        role: String,
        /// A label for people.
        #[arg(long, default_value = "")]
        name: String,
        /// Confine the token to names starting with this (repeatable).
        #[arg(long = "prefix", value_name = "PREFIX")]
        prefixes: Vec<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke {
        /// The token's id (the part before the dot; `token list` shows them).
        id: u64,
    },
}

pub async fn run(args: AuthArgs) -> ExitCode {
    let client = args.connection.client();
    let json = args.connection.json;
    match args.command {
        AuthCommand::Token { command: TokenCommand::Create { role, name, prefixes } } => match client.token_create(&name, &role, &prefixes).await {
            Ok(created) if !json => {
                out!("{}", created.token);
                eprintln!("token {} ({}), shown once: keep it", created.id, created.role);
                ExitCode::SUCCESS
            }
            other => answer(other),
        },
        AuthCommand::Token { command: TokenCommand::List } => match client.tokens().await {
            Ok(tokens) if !json => {
                for token in tokens {
                    out!("{:<8} {:<6} {:<24} {}", token.id, token.role, token.name, token.prefixes.join(","));
                }
                ExitCode::SUCCESS
            }
            other => answer(other),
        },
        AuthCommand::Token { command: TokenCommand::Revoke { id } } => answer(client.token_revoke(id).await),
        AuthCommand::Enable => answer(client.auth_enable().await),
        AuthCommand::Disable => answer(client.auth_disable().await),
        AuthCommand::Status => answer(client.auth_status().await),
        AuthCommand::Whoami => answer(client.whoami().await),
    }
}
