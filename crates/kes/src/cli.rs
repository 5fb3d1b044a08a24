//! Command-line definitions (clap). Only the grammar lives here; `cmd` runs the commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// The KES command line.
#[derive(Debug, Parser)]
#[command(name = "kes", version, about = "KES: a key encryption service", propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a KES server.
    Server(ServerArgs),
}

/// `on` / `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// `kes server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The address to listen on, `[ip]:port` (default from the config file, else 0.0.0.0:7373;
    /// with --dev 127.0.0.1:7373).
    #[arg(long, value_name = "IP:PORT", value_parser = parse_addr)]
    pub addr: Option<SocketAddr>,
    /// Path to the server configuration file.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Start a development server with an in-memory keystore and a fresh admin API key.
    #[arg(long)]
    pub dev: bool,
    /// Verify client certificates against tls.ca (on) or only require them (off); overrides
    /// `tls.auth` in the config file.
    #[arg(long, value_enum, value_name = "on|off")]
    pub auth: Option<OnOff>,
    /// Deprecated and ignored: set `tls.key` in the config file.
    #[arg(long, hide = true)]
    pub key: Option<PathBuf>,
    /// Deprecated and ignored: set `tls.cert` in the config file.
    #[arg(long, hide = true)]
    pub cert: Option<PathBuf>,
}

/// Parses `ip:port` or `:port` (all interfaces).
fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') { format!("0.0.0.0{s}") } else { s.to_owned() };
    full.parse().map_err(|_| format!("invalid address '{s}': expected IP:PORT"))
}
