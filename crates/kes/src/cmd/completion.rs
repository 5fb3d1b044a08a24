//! `kes completion <shell>`: prints a completion script generated from the clap definitions.

use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionArgs, help};
use crate::fail::Failure;
use crate::term;

/// Runs `kes completion`.
pub fn run(args: CompletionArgs) -> Result<(), Failure> {
    let Some(shell) = args.shell else {
        return Err(Failure::Usage(help::COMPLETION.into()));
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kes", &mut script);
    Ok(term::print(&String::from_utf8_lossy(&script))?)
}
