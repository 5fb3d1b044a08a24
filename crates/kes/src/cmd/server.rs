//! `kes server`.

use crate::cli::{OnOff, ServerArgs};
use crate::fail::Failure;
use crate::term;

/// Starts the server and blocks until it stops.
pub fn run(args: ServerArgs) -> Result<(), Failure> {
    if args.key.is_some() || args.cert.is_some() {
        term::eprint(
            "Warning: '--key' and '--cert' are deprecated and ignored: set tls.key and tls.cert in the config file\n",
        );
    }
    let opts = kes_server::Options {
        config: args.config,
        addr: args.addr,
        dev: args.dev,
        auth: args.auth.map(|a| a == OnOff::On),
    };
    let runtime = kes_server::process::runtime()
        .map_err(|e| Failure::msg(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(kes_server::run(opts))
        .map_err(Failure::msg)
}
