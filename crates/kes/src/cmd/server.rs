//! `kes server`.

use std::process::ExitCode;

use crate::cli::{OnOff, ServerArgs};

/// Starts the server and blocks until it stops.
pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    if args.key.is_some() || args.cert.is_some() {
        eprintln!("Warning: '--key' and '--cert' are deprecated and ignored: set tls.key and tls.cert in the config file");
    }
    let opts = kes_server::Options {
        config: args.config,
        addr: args.addr,
        dev: args.dev,
        auth: args.auth.map(|a| a == OnOff::On),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(kes_server::run(opts))?;
    Ok(ExitCode::SUCCESS)
}
