//! The `concord` command: run a member (`serve`), a local cluster (`dev`), or talk to a
//! cluster (`kv`, `cluster`).
//!
//! Client subcommands print readable text by default and JSON with `--json`; they
//! exit 0 on success, 1 when the cluster refused or the thing named does not exist,
//! 2 on bad usage, and 3 when no node answered or the outcome is unknown (the reason
//! goes to stderr: `error: <status> <code>: <message>`).

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    runtime.block_on(cli::run(args))
}
