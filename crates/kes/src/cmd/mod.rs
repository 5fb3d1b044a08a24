//! Command implementations, one module per command group, and what they share: running a
//! request on a runtime that Ctrl-C can interrupt, and printing lists of names.

mod completion;
mod identity;
mod key;
mod log;
mod ls;
mod metric;
mod migrate;
mod policy;
mod server;
mod status;

use std::future::Future;

use crate::cli::{Cli, Command, ConnArgs};
use crate::connect::{self, Settings};
use crate::fail::Failure;
use crate::help;
use crate::term;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    if cli.version {
        return version();
    }
    let Some(command) = cli.command else {
        return Err(Failure::Usage(help::text(&[])));
    };
    match command {
        Command::Server(args) => server::run(args),
        Command::Ls(args) => ls::run(args),
        Command::Key(args) => key::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Identity(args) => identity::run(args),
        Command::Log(args) => log::run(args),
        Command::Status(args) => status::run(args),
        Command::Metric(args) => metric::run(args),
        Command::Migrate(args) => migrate::run(args),
        Command::Completion(args) => completion::run(args),
    }
}

/// `kes --version`.
fn version() -> Result<(), Failure> {
    let commit = option_env!("KES_COMMIT").unwrap_or("unknown");
    let text = format!(
        "Version    {} commit={commit}\nRuntime    rust {}/{}\nLicense    {}\n",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        env!("CARGO_PKG_LICENSE"),
    );
    Ok(term::print(&text)?)
}

/// Applies the connection flags' `--color` and builds a client from the environment.
fn client(conn: &ConnArgs) -> Result<kes_client::Client, Failure> {
    term::set_color(conn.color);
    connect::client(&Settings {
        insecure: conn.insecure,
        ..Settings::default()
    })
}

/// Runs `future` to completion on a single-threaded runtime. Ctrl-C or SIGTERM abandons it
/// and the process exits with 1, silently (spec §10).
fn block_on<F>(future: F) -> Result<(), Failure>
where
    F: Future<Output = Result<(), Failure>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::msg(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        tokio::select! {
            result = future => result,
            () = interrupted() => Err(Failure::Interrupted),
        }
    })
}

/// Runs a command that follows the server until interrupted (`kes log`, `kes metric`):
/// Ctrl-C or SIGTERM is the normal way to stop it and exits with 0.
fn follow<F>(future: F) -> Result<(), Failure>
where
    F: Future<Output = Result<(), Failure>>,
{
    match block_on(future) {
        Err(Failure::Interrupted) => Ok(()),
        other => other,
    }
}

/// Completes on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Prints a list of names: `--json` → a JSON array (`null` when empty, as the original),
/// otherwise a header and one name per line (nothing at all when empty).
fn print_names(header: &str, names: &[String], json: bool) -> Result<(), Failure> {
    if json {
        let text = if names.is_empty() {
            "null".to_owned()
        } else {
            serde_json::to_string(names)
                .map_err(|e| Failure::msg(format!("cannot encode JSON: {e}")))?
        };
        return Ok(term::print(&format!("{text}\n"))?);
    }
    if names.is_empty() {
        return Ok(());
    }
    let mut text = format!("{}\n", term::paint(term::HEADER, header));
    for name in names {
        text.push_str(name);
        text.push('\n');
    }
    Ok(term::print(&text)?)
}

/// Warns that a listing is incomplete (the server paged it, which ours never does).
fn warn_partial(continue_at: Option<&str>) {
    if let Some(next) = continue_at.filter(|s| !s.is_empty()) {
        term::eprint(&format!(
            "{}the server returned only part of the list; it continues at '{next}'\n",
            term::paint(term::YELLOW, "Warning: ")
        ));
    }
}

/// Requires a positional argument: `no <what> specified` otherwise.
fn required<'a>(value: Option<&'a String>, what: &str) -> Result<&'a str, Failure> {
    value
        .map(String::as_str)
        .ok_or_else(|| Failure::msg(format!("no {what} specified")))
}

/// Decodes standard base64 (`what` names the argument in the error).
fn base64(text: &str, what: &str) -> Result<Vec<u8>, Failure> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| Failure::msg(format!("invalid {what}: not base64")))
}

/// Encodes standard base64.
fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
