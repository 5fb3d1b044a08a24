//! Command-line definitions (clap): the grammar, each command's one-line description (its
//! line in the parent's `Commands:` list) and each option's help (its line in `Options:`).
//! `help` renders every help text from these definitions plus a table of free text (usage
//! lines, paragraphs, examples), so an option cannot be accepted without being documented;
//! `cmd` runs the commands and `usage` turns parse errors into the messages and exit codes of
//! spec §10. Completions (`kes completion`) are generated from the same definitions.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The KES command line.
#[derive(Debug, Parser)]
#[command(
    name = "kes",
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Print version information.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a KES server.
    Server(ServerArgs),
    /// List keys, policies and identities.
    Ls(LsArgs),
    /// Manage cryptographic keys.
    Key(KeyArgs),
    /// Manage KES policies.
    Policy(PolicyArgs),
    /// Manage KES identities.
    #[command(args_conflicts_with_subcommands = true)]
    Identity(IdentityArgs),
    /// Print error and audit log events.
    Log(LogArgs),
    /// Print server status.
    Status(StatusArgs),
    /// Print server metrics.
    Metric(MetricArgs),
    /// Copy keys from one keystore to another.
    Migrate(MigrateArgs),
    /// Print shell completions.
    Completion(CompletionArgs),
}

/// `on` / `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// `--color auto|never|always`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorWhen {
    /// Colour when writing to a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Never colour.
    Never,
    /// Always colour, even into pipes.
    Always,
}

/// Flags every command that talks to a server has.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Skip server certificate verification.
    #[arg(short = 'k', long = "insecure")]
    pub insecure: bool,
    /// Colour the output: auto (on a terminal, unless NO_COLOR is set), never or always.
    #[arg(long, value_enum, value_name = "auto|never|always", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// Accepted and ignored, as by the original (enclaves no longer exist).
    #[arg(short = 'e', long = "enclave", hide = true, value_name = "NAME")]
    pub enclave: Option<String>,
}

/// `kes server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The network interface and port to listen on. Default: the config file's address, else
    /// 0.0.0.0:7373 (with --dev 127.0.0.1:7373).
    #[arg(long, value_name = "IP:PORT", value_parser = parse_addr)]
    pub addr: Option<SocketAddr>,
    /// Path to the server configuration file.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Start a development server: in-memory keystore, a fresh admin API key and a
    /// self-signed certificate. Keys are lost when it stops.
    #[arg(long)]
    pub dev: bool,
    /// Verify client certificates against tls.ca (on), or only require one (off). Overrides
    /// tls.auth of the config file.
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
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    };
    full.parse()
        .map_err(|_| format!("invalid address '{s}': expected IP:PORT"))
}

/// `kes ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The KES server. Default: $MINIO_KES_SERVER, $KES_SERVER or $MINIO_KMS_KES_ENDPOINT.
    #[arg(short = 's', long = "server", value_name = "HOST[:PORT]")]
    pub server: Option<String>,
    /// The API key. Default: $MINIO_KES_API_KEY, $KES_API_KEY or $MINIO_KMS_KES_API_KEY.
    #[arg(short = 'a', long = "api-key", value_name = "KEY")]
    pub api_key: Option<String>,
    /// List identities.
    #[arg(short = 'i', long = "identity")]
    pub identity: bool,
    /// List policies.
    #[arg(short = 'p', long = "policy")]
    pub policy: bool,
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Only names starting with this prefix.
    #[arg(value_name = "PREFIX")]
    pub prefix: Option<String>,
}

/// `kes key`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The key command.
    #[command(subcommand)]
    pub command: Option<KeyCommand>,
}

/// `kes key <command>`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a new crypto key.
    Create {
        #[command(flatten)]
        conn: ConnArgs,
        /// Names of the keys to create.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Import a crypto key.
    Import {
        /// Skip server certificate verification.
        #[arg(short = 'k', long = "insecure")]
        insecure: bool,
        /// Colour the output: auto (on a terminal, unless NO_COLOR is set), never or always.
        #[arg(long, value_enum, value_name = "auto|never|always", default_value_t = ColorWhen::Auto)]
        color: ColorWhen,
        /// The key's name.
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// The 256-bit key, base64-encoded.
        #[arg(value_name = "KEY")]
        key: Option<String>,
    },
    /// Get information about a crypto key.
    Info {
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The key's name.
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
    /// List crypto keys.
    Ls {
        #[command(flatten)]
        conn: ConnArgs,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        /// Names to list: a prefix, optionally followed by `*` (default `*`, all).
        #[arg(value_name = "PATTERN")]
        pattern: Option<String>,
    },
    /// Delete a crypto key.
    Rm {
        #[command(flatten)]
        conn: ConnArgs,
        /// Names of the keys to delete.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Encrypt a message.
    Encrypt {
        #[command(flatten)]
        conn: ConnArgs,
        /// The key's name.
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// The message (UTF-8 text).
        #[arg(value_name = "MESSAGE")]
        message: Option<String>,
    },
    /// Decrypt an encrypted message.
    Decrypt {
        #[command(flatten)]
        conn: ConnArgs,
        /// The key's name.
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// The ciphertext, base64-encoded.
        #[arg(value_name = "CIPHERTEXT")]
        ciphertext: Option<String>,
        /// The context the message was encrypted with, base64-encoded.
        #[arg(value_name = "CONTEXT")]
        context: Option<String>,
    },
    /// Generate a new data encryption key.
    Dek {
        #[command(flatten)]
        conn: ConnArgs,
        /// The key's name.
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// A context to bind to the data key, base64-encoded.
        #[arg(value_name = "CONTEXT")]
        context: Option<String>,
    },
    /// Add a new version to a crypto key.
    Rotate {
        #[command(flatten)]
        conn: ConnArgs,
        /// The key's name.
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// A 256-bit key, base64-encoded, to become the new version (default: a random one).
        #[arg(value_name = "KEY")]
        key: Option<String>,
    },
    /// Remove an old version of a crypto key.
    #[command(name = "rm-version")]
    RmVersion {
        #[command(flatten)]
        conn: ConnArgs,
        /// The key's name.
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// The version to remove (`v1`, `v2`, ...).
        #[arg(value_name = "VERSION")]
        version: Option<String>,
    },
}

/// `kes policy`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// The policy command.
    #[command(subcommand)]
    pub command: Option<PolicyCommand>,
}

/// `kes policy <command>`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create or replace a policy.
    Add {
        #[command(flatten)]
        conn: ConnArgs,
        /// The policy's name.
        #[arg(value_name = "NAME")]
        name: Option<String>,
        /// A JSON file with the policy, or `-` for standard input.
        #[arg(value_name = "FILE")]
        file: Option<String>,
    },
    /// Delete a policy.
    Rm {
        #[command(flatten)]
        conn: ConnArgs,
        /// Names of the policies to delete.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Assign a policy to identities.
    Assign {
        #[command(flatten)]
        conn: ConnArgs,
        /// The policy's name.
        #[arg(value_name = "POLICY")]
        policy: Option<String>,
        /// The identities.
        #[arg(value_name = "IDENTITY")]
        identities: Vec<String>,
    },
    /// Get information about a policy.
    Info {
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The policy's name.
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
    /// List policies.
    Ls {
        #[command(flatten)]
        conn: ConnArgs,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        /// Names to list: a prefix, optionally followed by `*` (default `*`, all).
        #[arg(value_name = "PATTERN")]
        pattern: Option<String>,
    },
    /// Show a policy's rules.
    Show {
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The policy's name.
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
}

/// `kes identity`.
#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// The identity command.
    #[command(subcommand)]
    pub command: Option<IdentityCommand>,
    /// Without a command: an API key or a file (certificate or private key) whose identity to
    /// print; nothing to generate a new API key.
    #[arg(value_name = "API-KEY|FILE")]
    pub arg: Option<String>,
}

/// `kes identity <command>`.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Create a new KES identity.
    New(IdentityNewArgs),
    /// Compute a KES identity.
    Of {
        /// An API key (`kes:v1:…`) or a certificate file.
        #[arg(value_name = "API-KEY|FILE")]
        arg: Option<String>,
    },
    /// Get information about a KES identity.
    Info {
        #[command(flatten)]
        conn: ConnArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The identity (default: your own).
        #[arg(value_name = "IDENTITY")]
        identity: Option<String>,
    },
    /// List KES identities.
    Ls {
        #[command(flatten)]
        conn: ConnArgs,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        /// Identities to list: a prefix, optionally followed by `*` (default: all).
        #[arg(value_name = "PREFIX")]
        prefix: Option<String>,
    },
    /// Assign a policy to an identity.
    Assign {
        #[command(flatten)]
        conn: ConnArgs,
        /// The identity.
        #[arg(value_name = "IDENTITY")]
        identity: Option<String>,
        /// The policy's name.
        #[arg(value_name = "POLICY")]
        policy: Option<String>,
    },
    /// Remove an identity's policy assignment.
    Forget {
        #[command(flatten)]
        conn: ConnArgs,
        /// The identity.
        #[arg(value_name = "IDENTITY")]
        identity: Option<String>,
    },
    /// Delete an identity.
    Rm {
        #[command(flatten)]
        conn: ConnArgs,
        /// The identity.
        #[arg(value_name = "IDENTITY")]
        identity: Option<String>,
    },
}

/// `kes identity new`.
#[derive(Debug, Args)]
pub struct IdentityNewArgs {
    /// Write the private key to this file.
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Write the certificate to this file.
    #[arg(long, value_name = "PATH")]
    pub cert: Option<PathBuf>,
    /// Add an IP address to the certificate; repeat or separate with commas.
    #[arg(long, value_name = "IP", value_delimiter = ',')]
    pub ip: Vec<String>,
    /// Add a DNS name to the certificate; repeat or separate with commas.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub dns: Vec<String>,
    /// How long the certificate is valid. Default: 720h.
    #[arg(long, value_name = "DURATION")]
    pub expiry: Option<String>,
    /// Encrypt the private key with a password (asked twice).
    #[arg(long)]
    pub encrypt: bool,
    /// Overwrite existing files.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// The certificate's subject common name (default: the identity).
    #[arg(value_name = "SUBJECT")]
    pub subject: Option<String>,
}

/// `kes log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Print audit log events (the default).
    #[arg(long)]
    pub audit: bool,
    /// Print error log events.
    #[arg(long)]
    pub error: bool,
    /// Print the events as JSON lines, as the server sends them.
    #[arg(long)]
    pub json: bool,
}

/// `kes status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Print only whether the server is reachable.
    #[arg(short = 's', long)]
    pub short: bool,
    /// List the server's APIs.
    #[arg(long)]
    pub api: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `kes metric`.
#[derive(Debug, Args)]
pub struct MetricArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// How often to fetch the metrics.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub rate: String,
}

/// The help heading of flags that are recognised only to be refused: the help lists them in
/// one sentence after the options (`kes migrate`'s MinKMS flags).
pub const UNSUPPORTED: &str = "Not supported";

/// `kes migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Config file whose keystore to copy from.
    #[arg(long, value_name = "PATH")]
    pub from: Option<PathBuf>,
    /// Config file whose keystore to copy to.
    #[arg(long, value_name = "PATH")]
    pub to: Option<PathBuf>,
    /// Skip keys that already exist in the target.
    #[arg(long)]
    pub merge: bool,
    /// Replace keys that already exist in the target.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// MinKMS server (not supported; default from MINIO_KMS_SERVER).
    #[arg(short = 's', long = "server", value_name = "HOST[:PORT]", help_heading = UNSUPPORTED)]
    pub server: Option<String>,
    /// MinKMS enclave (not supported; default from MINIO_KMS_ENCLAVE).
    #[arg(short = 'e', long = "enclave", value_name = "NAME", help_heading = UNSUPPORTED)]
    pub enclave: Option<String>,
    /// MinKMS API key (not supported; default from MINIO_KMS_API_KEY).
    #[arg(
        short = 'a',
        long = "api-key",
        value_name = "KEY",
        value_parser = refuse_value,
        help_heading = UNSUPPORTED
    )]
    pub api_key: Option<Refused>,
    /// Skip the verification of the MinKMS server's certificate (not supported).
    #[arg(short = 'k', long = "insecure", help_heading = UNSUPPORTED)]
    pub insecure: bool,
    /// Names of the keys to copy: a pattern with `*`, `?`, `[...]` and `\` escapes (default `*`).
    #[arg(value_name = "PATTERN")]
    pub pattern: Option<String>,
}

/// A flag value accepted only to be refused (the MinKMS API key): the value is dropped at
/// once, never stored.
#[derive(Debug, Clone, Copy)]
pub struct Refused;

fn refuse_value(_: &str) -> Result<Refused, std::convert::Infallible> {
    Ok(Refused)
}

/// `kes completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Option<clap_complete::Shell>,
}
