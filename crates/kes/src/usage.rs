//! Parsing the command line, and turning clap's errors into the original's messages and exit
//! codes (spec §10):
//!
//! * `-h/--help`, and a group (`kes`, `kes key`, `kes policy`) without its subcommand: the
//!   usage on stderr, exit 2;
//! * an unknown subcommand: `Error: "x" is not a key command. See 'kes key --help'`, exit 1;
//! * any other flag or argument error: `Error: <what>. See 'kes <command> --help'`, exit 1.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory as _, FromArgMatches as _};

use crate::cli::Cli;
use crate::fail::Failure;
use crate::help;

/// Parses `args` (the program name first).
pub fn parse(args: Vec<OsString>) -> Result<Cli, Failure> {
    let parse = |cmd: clap::Command| {
        cmd.try_get_matches_from(&args)
            .and_then(|matches| Cli::from_arg_matches(&matches))
    };
    match parse(help::grammar()) {
        Ok(cli) => Ok(cli),
        // The help texts are rendered only when one is to be shown; clap picks which.
        Err(err) if is_help(&err) => {
            let err = parse(help::command()).err().unwrap_or(err);
            Err(failure(&err, &args))
        }
        Err(err) => Err(failure(&err, &args)),
    }
}

fn is_help(err: &clap::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    )
}

fn failure(err: &clap::Error, args: &[OsString]) -> Failure {
    let path = command_path(args);
    let see = {
        let mut cmd = String::from("kes ");
        for part in &path {
            cmd.push_str(part);
            cmd.push(' ');
        }
        format!("See '{cmd}--help'")
    };
    let context = |kind: ContextKind| match err.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(list)) => list.join(", "),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let message = match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        | ErrorKind::DisplayVersion => return Failure::Usage(err.render().to_string()),
        ErrorKind::InvalidSubcommand => {
            let group = path.last().map_or("kes", String::as_str);
            format!(
                "\"{}\" is not a {group} command",
                context(ContextKind::InvalidSubcommand)
            )
        }
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg);
            if arg.starts_with('-') {
                format!("unknown flag: {arg}")
            } else {
                format!("too many arguments: unexpected '{arg}'")
            }
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let mut text = format!(
                "invalid value '{}' for '{}'",
                context(ContextKind::InvalidValue),
                context(ContextKind::InvalidArg)
            );
            if let Some(source) = std::error::Error::source(err) {
                text.push_str(&format!(": {source}"));
            }
            text
        }
        ErrorKind::ArgumentConflict => format!(
            "'{}' cannot be used with '{}'",
            context(ContextKind::InvalidArg),
            context(ContextKind::PriorArg)
        ),
        _ => first_line(err),
    };
    Failure::msg(format!("{message}. {see}"))
}

/// clap's own first line, without its `error: ` prefix.
fn first_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// The subcommands named on the command line (`["key", "create"]`), as far as they exist.
fn command_path(args: &[OsString]) -> Vec<String> {
    let mut cmd = Cli::command();
    let mut path = Vec::new();
    for arg in args.iter().skip(1) {
        let Some(arg) = arg.to_str() else { break };
        if arg.starts_with('-') {
            continue;
        }
        let Some(sub) = cmd.find_subcommand(arg).cloned() else {
            break;
        };
        path.push(arg.to_owned());
        cmd = sub;
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Cli, Failure> {
        parse(
            std::iter::once("kes")
                .chain(line.split_whitespace())
                .map(OsString::from)
                .collect(),
        )
    }

    fn error(line: &str) -> String {
        match parse_str(line) {
            Err(Failure::Error { message, .. }) => message,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        help::command().debug_assert();
        help::grammar().debug_assert();
    }

    #[test]
    fn unknown_commands_name_their_group() {
        assert_eq!(
            error("nonsense"),
            "\"nonsense\" is not a kes command. See 'kes --help'"
        );
        assert_eq!(
            error("key x"),
            "\"x\" is not a key command. See 'kes key --help'"
        );
    }

    #[test]
    fn flag_errors_point_at_the_commands_help() {
        assert_eq!(
            error("key create --nope k"),
            "unknown flag: --nope. See 'kes key create --help'"
        );
        assert_eq!(
            error("key info a b"),
            "too many arguments: unexpected 'b'. See 'kes key info --help'"
        );
        assert_eq!(
            error("key ls --color sometimes"),
            "invalid value 'sometimes' for '--color <auto|never|always>'. See 'kes key ls --help'"
        );
    }

    #[test]
    fn help_is_usage() {
        assert!(
            matches!(parse_str("key -h"), Err(Failure::Usage(text)) if text.starts_with("Usage:\n    kes key <command>"))
        );
        assert!(matches!(parse_str("ls --help"), Err(Failure::Usage(_))));
    }

    #[test]
    fn identity_takes_an_argument_or_a_command() {
        let cli = parse_str("identity kes:v1:abc").unwrap();
        let Some(crate::cli::Command::Identity(args)) = cli.command else {
            panic!()
        };
        assert_eq!(args.arg.as_deref(), Some("kes:v1:abc"));
        assert!(args.command.is_none());
        let cli = parse_str("identity of x").unwrap();
        let Some(crate::cli::Command::Identity(args)) = cli.command else {
            panic!()
        };
        assert!(args.command.is_some() && args.arg.is_none());
    }
}
