//! `kes`: the KES server and command-line client.
//!
//! `main` → [`usage::parse`] → [`cmd::run`] → exit code. Every failure is a [`fail::Failure`],
//! which knows what to print and which exit code to return (documented in docs/cli.md). This
//! binary never prints secrets it was not asked to print: API keys, data keys and plaintexts
//! appear only as the output of the commands that exist to show them.

#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod connect;
mod duration;
mod fail;
mod glob;
mod help;
mod keystores;
mod password;
mod term;
mod usage;

use std::process::ExitCode;

fn main() -> ExitCode {
    // First, while the process is still single-threaded (see `term::init`).
    term::init();
    let cli = match usage::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(failure) => return failure.report(),
    };
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
