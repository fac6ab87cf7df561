//! `concord txn [FILE]`: one transaction (`POST /v1/txn`) from a JSON file or stdin.

use std::io::Read;
use std::process::ExitCode;

use clap::Args;
use concord::wire::txn::TxnRequest;

use super::client::{Connection, fail, print_json};
use super::out;

#[derive(Args, Debug)]
pub struct TxnArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The transaction as JSON (`{"compare": [...], "success": [...], "failure": [...]}`,
    /// docs/api.md), from this file, or from standard input when `-`.
    #[arg(default_value = "-")]
    pub file: String,
    /// Makes a retry of this very transaction (with the same key) apply at most once.
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

pub async fn run(args: TxnArgs) -> ExitCode {
    let text = match read(&args.file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read the transaction from {}: {e}", if args.file == "-" { "standard input" } else { &args.file });
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    let request: TxnRequest = match serde_json::from_str(&text) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("error: the transaction is not valid JSON of the documented shape (docs/api.md, transactions): {e}");
            return ExitCode::from(super::EXIT_USAGE);
        }
    };
    let client = args.connection.client();
    match client.txn(&request, args.idempotency_key.as_deref()).await {
        Err(e) => fail(e),
        Ok(response) if args.connection.json => {
            print_json(&serde_json::to_value(&response).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(response) => {
            match response.failed_condition {
                None => out!("SUCCESS at revision {}", response.revision),
                Some(at) => out!("FAILURE at revision {}: compare[{at}] did not hold", response.revision),
            }
            for result in &response.results {
                out!("{}", serde_json::to_string(result).unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
    }
}

fn read(file: &str) -> std::io::Result<String> {
    if file == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file)
    }
}
