//! `kes completion <shell>`: prints a completion script generated from the clap definitions.

use crate::cli::CompletionArgs;
use crate::fail::Failure;
use crate::help;
use crate::term;

/// Runs `kes completion`.
pub fn run(args: CompletionArgs) -> Result<(), Failure> {
    let Some(shell) = args.shell else {
        return Err(Failure::Usage(help::text(&["completion"])));
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut help::command(), "kes", &mut script);
    Ok(term::print(&String::from_utf8_lossy(&script))?)
}
