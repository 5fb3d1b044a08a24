//! Command-line definitions (clap). Only the grammar and the help texts live here; `cmd` runs
//! the commands and `main` turns parse errors into the messages and exit codes of spec §10.
//!
//! The help texts are written by hand, in the layout of the original `kes` (`Usage:`,
//! `Commands:`, `Options:`, `Examples:`), and clap prints them through `override_help`.
//! Completions (`kes completion`) are generated from the same definitions.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The KES command line.
#[derive(Debug, Parser)]
#[command(
    name = "kes",
    disable_version_flag = true,
    disable_help_subcommand = true,
    override_help = help::KES
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
    #[command(override_help = help::SERVER)]
    Server(ServerArgs),
    /// List keys, policies and identities.
    #[command(override_help = help::LS)]
    Ls(LsArgs),
    /// Manage cryptographic keys.
    #[command(override_help = help::KEY)]
    Key(KeyArgs),
    /// Manage KES policies.
    #[command(override_help = help::POLICY)]
    Policy(PolicyArgs),
    /// Manage KES identities.
    #[command(override_help = help::IDENTITY, args_conflicts_with_subcommands = true)]
    Identity(IdentityArgs),
    /// Print audit or error log events as they happen.
    #[command(override_help = help::LOG)]
    Log(LogArgs),
    /// Print the server status.
    #[command(override_help = help::STATUS)]
    Status(StatusArgs),
    /// Print server metrics.
    #[command(override_help = help::METRIC)]
    Metric(MetricArgs),
    /// Copy keys from one keystore to another.
    #[command(override_help = help::MIGRATE)]
    Migrate(MigrateArgs),
    /// Print shell completions.
    #[command(override_help = help::COMPLETION)]
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
    /// Skip the verification of the server's certificate (insecure).
    #[arg(short = 'k', long = "insecure")]
    pub insecure: bool,
    /// When to colour the output.
    #[arg(long, value_enum, value_name = "auto|never|always", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// Accepted and ignored, as by the original (enclaves no longer exist).
    #[arg(short = 'e', long = "enclave", hide = true, value_name = "NAME")]
    pub enclave: Option<String>,
}

/// `kes server`.
#[derive(Debug, Args)]
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
    #[command(flatten)]
    pub conn: ConnArgs,
    /// The server (default from MINIO_KES_SERVER, KES_SERVER, MINIO_KMS_KES_ENDPOINT).
    #[arg(short = 's', long = "server", value_name = "HOST[:PORT]")]
    pub server: Option<String>,
    /// The API key (default from MINIO_KES_API_KEY, KES_API_KEY, MINIO_KMS_KES_API_KEY).
    #[arg(short = 'a', long = "api-key", value_name = "KEY")]
    pub api_key: Option<String>,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
    /// List identities.
    #[arg(short = 'i', long = "identity")]
    pub identity: bool,
    /// List policies.
    #[arg(short = 'p', long = "policy")]
    pub policy: bool,
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
    #[command(override_help = help::KEY_CREATE)]
    Create {
        #[command(flatten)]
        conn: ConnArgs,
        /// Names of the keys to create.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Import a crypto key.
    #[command(override_help = help::KEY_IMPORT)]
    Import {
        /// Skip the verification of the server's certificate (insecure).
        #[arg(short = 'k', long = "insecure")]
        insecure: bool,
        /// When to colour the output.
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
    #[command(override_help = help::KEY_INFO)]
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
    #[command(override_help = help::KEY_LS)]
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
    #[command(override_help = help::KEY_RM)]
    Rm {
        #[command(flatten)]
        conn: ConnArgs,
        /// Names of the keys to delete.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Encrypt a message.
    #[command(override_help = help::KEY_ENCRYPT)]
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
    #[command(override_help = help::KEY_DECRYPT)]
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
    #[command(override_help = help::KEY_DEK)]
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
    #[command(override_help = help::POLICY_ADD)]
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
    #[command(override_help = help::POLICY_RM)]
    Rm {
        #[command(flatten)]
        conn: ConnArgs,
        /// Names of the policies to delete.
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },
    /// Assign a policy to identities.
    #[command(override_help = help::POLICY_ASSIGN)]
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
    #[command(override_help = help::POLICY_INFO)]
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
    #[command(override_help = help::POLICY_LS)]
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
    #[command(override_help = help::POLICY_SHOW)]
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
    /// Create a new identity: an API key, and optionally a certificate and private key.
    #[command(override_help = help::IDENTITY_NEW)]
    New(IdentityNewArgs),
    /// Compute the identity of an API key or a certificate.
    #[command(override_help = help::IDENTITY_OF)]
    Of {
        /// An API key (`kes:v1:…`) or a certificate file.
        #[arg(value_name = "API-KEY|FILE")]
        arg: Option<String>,
    },
    /// Get information about an identity.
    #[command(override_help = help::IDENTITY_INFO)]
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
    /// List identities.
    #[command(override_help = help::IDENTITY_LS)]
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
    #[command(override_help = help::IDENTITY_ASSIGN)]
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
    #[command(override_help = help::IDENTITY_FORGET)]
    Forget {
        #[command(flatten)]
        conn: ConnArgs,
        /// The identity.
        #[arg(value_name = "IDENTITY")]
        identity: Option<String>,
    },
    /// Delete an identity.
    #[command(override_help = help::IDENTITY_RM)]
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
    /// IP addresses for the certificate (repeat or separate with commas).
    #[arg(long, value_name = "IP", value_delimiter = ',')]
    pub ip: Vec<String>,
    /// DNS names for the certificate (repeat or separate with commas).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub dns: Vec<String>,
    /// How long the certificate is valid, e.g. 720h (default 720h).
    #[arg(long, value_name = "DURATION")]
    pub expiry: Option<String>,
    /// Encrypt the private key with a password.
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
    /// Print the events as the server sends them, one JSON object per line.
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
    /// How often to fetch the metrics, e.g. 5s.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub rate: String,
}

/// `kes migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Config file of the server whose keystore to copy from.
    #[arg(long, value_name = "PATH")]
    pub from: Option<PathBuf>,
    /// Config file of the server whose keystore to copy to.
    #[arg(long, value_name = "PATH")]
    pub to: Option<PathBuf>,
    /// Replace keys that exist in the target.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Skip keys that exist in the target.
    #[arg(long)]
    pub merge: bool,
    /// MinKMS server (not supported; default from MINIO_KMS_SERVER).
    #[arg(short = 's', long = "server", value_name = "HOST[:PORT]")]
    pub server: Option<String>,
    /// MinKMS enclave (not supported; default from MINIO_KMS_ENCLAVE).
    #[arg(short = 'e', long = "enclave", value_name = "NAME")]
    pub enclave: Option<String>,
    /// MinKMS API key (not supported; default from MINIO_KMS_API_KEY).
    #[arg(short = 'a', long = "api-key", value_name = "KEY", value_parser = refuse_value)]
    pub api_key: Option<Refused>,
    /// Skip the verification of the MinKMS server's certificate (not supported).
    #[arg(short = 'k', long = "insecure")]
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

/// Help texts, in the original's layout.
pub mod help {
    /// `kes`.
    pub const KES: &str = "\
Usage:
    kes [options] <command>

Commands:
    server                   Start a KES server.

    ls                       List keys, policies and identities.
    key                      Manage cryptographic keys.
    policy                   Manage KES policies.
    identity                 Manage KES identities.

    log                      Print error and audit log events.
    status                   Print server status.
    metric                   Print server metrics.

    migrate                  Copy keys from one keystore to another.
    completion               Print shell completions.

Options:
    -v, --version            Print version information.
    -h, --help               Print command line options.

Environment:
    KES_SERVER               Server addresses, comma-separated (default 127.0.0.1:7373).
    KES_API_KEY              API key to authenticate with.
    KES_CLIENT_CERT          Client certificate file (instead of an API key).
    KES_CLIENT_KEY           Private key file of the client certificate.
    KES_CAPATH               CA certificate file to verify the server's certificate with.
";

    /// `kes server`.
    pub const SERVER: &str = "\
Usage:
    kes server [options]

Options:
    --addr <[ip]:port>       The network interface and port to listen on.
                             Default: the config file's address, else 0.0.0.0:7373.
    --config <path>          Path to the server configuration file.
    --dev                    Start a development server: in-memory keystore, a fresh
                             admin API key and a self-signed certificate. Keys are lost
                             when it stops.
    --auth <on|off>          Verify client certificates against tls.ca (on), or only
                             require one (off). Overrides tls.auth of the config file.

    -h, --help               Print command line options.

Examples:
    $ kes server --dev
    $ kes server --config config.yml --addr :7000
";

    /// `kes ls`.
    pub const LS: &str = "\
Usage:
    kes ls [options] [<prefix>]

Options:
    -s, --server <HOST[:PORT]>  The KES server. Default: $KES_SERVER.
    -a, --api-key <KEY>      The API key. Default: $KES_API_KEY.
    -i, --identity           List identities.
    -p, --policy             List policies.
    -k, --insecure           Skip server certificate verification.
        --json               Print a JSON array.
    -h, --help               Print command line options.

Examples:
    $ kes ls
    $ kes ls -p
    $ kes ls my-app-
";

    /// `kes key`.
    pub const KEY: &str = "\
Usage:
    kes key <command>

Commands:
    create                   Create a new crypto key.
    import                   Import a crypto key.
    info                     Get information about a crypto key. 
    ls                       List crypto keys.
    rm                       Delete a crypto key.

    encrypt                  Encrypt a message.
    decrypt                  Decrypt an encrypted message.
    dek                      Generate a new data encryption key.

Options:
    -h, --help               Print command line options.
";

    /// `kes key create`.
    pub const KEY_CREATE: &str = "\
Usage:
    kes key create [options] <name>...

Options:
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes key create my-key
    $ kes key create my-key-1 my-key-2
";

    /// `kes key import`.
    pub const KEY_IMPORT: &str = "\
Usage:
    kes key import [options] <name> <key>

The key is 32 bytes, base64-encoded. It is imported as an AES-256 key.

Options:
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes key import my-key \"$(head -c 32 /dev/urandom | base64)\"
";

    /// `kes key info`.
    pub const KEY_INFO: &str = "\
Usage:
    kes key info [options] <name>

Options:
    -k, --insecure           Skip server certificate verification.
        --json               Print JSON.
        --color <when>       Colour the output: auto, never or always.
    -h, --help               Print command line options.

Examples:
    $ kes key info my-key
";

    /// `kes key ls`.
    pub const KEY_LS: &str = "\
Usage:
    kes key ls [options] [<pattern>]

The pattern is a name prefix, optionally followed by '*'. Default: '*' (all keys).

Options:
    -k, --insecure           Skip server certificate verification.
        --json               Print a JSON array.
        --color <when>       Colour the output: auto, never or always.
    -h, --help               Print command line options.

Examples:
    $ kes key ls
    $ kes key ls 'my-app-*'
";

    /// `kes key rm`.
    pub const KEY_RM: &str = "\
Usage:
    kes key rm [options] <name>...

Options:
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes key rm my-key
";

    /// `kes key encrypt`.
    pub const KEY_ENCRYPT: &str = "\
Usage:
    kes key encrypt [options] <name> <message>

Prints the ciphertext, base64-encoded; as JSON when the output is not a terminal.

Options:
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes key encrypt my-key 'Hello world'
";

    /// `kes key decrypt`.
    pub const KEY_DECRYPT: &str = "\
Usage:
    kes key decrypt [options] <name> <ciphertext> [<context>]

The ciphertext and context are base64-encoded. Prints the plaintext, base64-encoded;
as JSON when the output is not a terminal.

Options:
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes key decrypt my-key \"$CIPHERTEXT\"
";

    /// `kes key dek`.
    pub const KEY_DEK: &str = "\
Usage:
    kes key dek [options] <name> [<context>]

Generates a data encryption key and prints it in plaintext and encrypted with the named
key, base64-encoded; as JSON when the output is not a terminal. The context is
base64-encoded and is needed again to decrypt.

Options:
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes key dek my-key
";

    /// `kes policy`.
    pub const POLICY: &str = "\
Usage:
    kes policy <command>

Commands:
    add                      Create or replace a policy.
    rm                       Delete a policy.
    assign                   Assign a policy to identities.

    info                     Get information about a policy.
    ls                       List policies.
    show                     Show a policy's rules.

Options:
    -h, --help               Print command line options.
";

    /// `kes policy add`.
    pub const POLICY_ADD: &str = "\
Usage:
    kes policy add [options] <name> <file|->

Reads the policy as JSON from the file, or from standard input for '-':
    {\"allow\": [\"/v1/key/generate/my-app-*\"], \"deny\": [\"/v1/key/delete/*\"]}
The output of 'kes policy show --json' is accepted too. Policies added at runtime last
until the server restarts or reloads its configuration.

Options:
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes policy add my-app policy.json
    $ kes policy show my-app --json | kes policy add my-app-copy -
";

    /// `kes policy rm`.
    pub const POLICY_RM: &str = "\
Usage:
    kes policy rm [options] <name>...

Options:
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes policy rm my-app
";

    /// `kes policy assign`.
    pub const POLICY_ASSIGN: &str = "\
Usage:
    kes policy assign [options] <policy> <identity>...

Options:
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes policy assign my-app \"$(kes identity of client.crt)\"
";

    /// `kes policy info`.
    pub const POLICY_INFO: &str = "\
Usage:
    kes policy info [options] <name>

Options:
    -k, --insecure           Skip server certificate verification.
        --json               Print JSON.
        --color <when>       Colour the output: auto, never or always.
    -h, --help               Print command line options.

Examples:
    $ kes policy info my-app
";

    /// `kes policy ls`.
    pub const POLICY_LS: &str = "\
Usage:
    kes policy ls [options] [<pattern>]

The pattern is a name prefix, optionally followed by '*'. Default: '*' (all policies).

Options:
    -k, --insecure           Skip server certificate verification.
        --json               Print a JSON array.
        --color <when>       Colour the output: auto, never or always.
    -h, --help               Print command line options.

Examples:
    $ kes policy ls
";

    /// `kes policy show`.
    pub const POLICY_SHOW: &str = "\
Usage:
    kes policy show [options] <name>

Prints the policy's allow and deny rules; as JSON with --json or when the output is not
a terminal.

Options:
    -k, --insecure           Skip server certificate verification.
        --json               Print JSON.
    -h, --help               Print command line options.

Examples:
    $ kes policy show my-app
";

    /// `kes identity`.
    pub const IDENTITY: &str = "\
Usage:
    kes identity <command>
    kes identity [<api-key|file>]

Without a command, prints a new API key, or the identity of an API key or certificate
file, or the API key of an Ed25519 private key file.

Commands:
    new                      Create a new KES identity.
    of                       Compute a KES identity.
    info                     Get information about a KES identity.
    ls                       List KES identities.

    assign                   Assign a policy to an identity.
    forget                   Remove an identity's policy assignment.
    rm                       Delete an identity.

Options:
    -h, --help               Print command line options.
";

    /// `kes identity new`.
    pub const IDENTITY_NEW: &str = "\
Usage:
    kes identity new [options] [<subject>]

Creates an API key and prints it with its identity. With --key and --cert it also
writes a certificate and private key for the same identity, which TLS clients and
servers can use. The subject is the certificate's common name (default: the identity).

Options:
    --key <path>             Write the private key to this file.
    --cert <path>            Write the certificate to this file.
    --ip <ip>                Add an IP address to the certificate; repeat or
                             separate with commas.
    --dns <name>             Add a DNS name to the certificate; repeat or
                             separate with commas.
    --expiry <duration>      How long the certificate is valid. Default: 720h.
    --encrypt                Encrypt the private key with a password (asked twice).
    -f, --force              Overwrite existing files.
    -h, --help               Print command line options.

Examples:
    $ kes identity new
    $ kes identity new --key client.key --cert client.crt my-app
    $ kes identity new --key server.key --cert server.crt --ip 10.1.2.3 --dns kes.local kes
";

    /// `kes identity of`.
    pub const IDENTITY_OF: &str = "\
Usage:
    kes identity of <api-key|file>

Prints the identity of an API key (kes:v1:...) or of the certificate in a PEM file.

Options:
    -h, --help               Print command line options.

Examples:
    $ kes identity of client.crt
    $ kes identity of \"$KES_API_KEY\"
";

    /// `kes identity info`.
    pub const IDENTITY_INFO: &str = "\
Usage:
    kes identity info [options] [<identity>]

Without an identity, describes your own: its role and, for non-admins, its policy.

Options:
    -k, --insecure           Skip server certificate verification.
        --json               Print JSON.
        --color <when>       Colour the output: auto, never or always.
    -h, --help               Print command line options.

Examples:
    $ kes identity info
";

    /// `kes identity ls`.
    pub const IDENTITY_LS: &str = "\
Usage:
    kes identity ls [options] [<prefix>]

Options:
    -k, --insecure           Skip server certificate verification.
        --json               Print a JSON array.
        --color <when>       Colour the output: auto, never or always.
    -h, --help               Print command line options.

Examples:
    $ kes identity ls
";

    /// `kes identity assign`.
    pub const IDENTITY_ASSIGN: &str = "\
Usage:
    kes identity assign [options] <identity> <policy>

Options:
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes identity assign \"$(kes identity of client.crt)\" my-app
";

    /// `kes identity forget`.
    pub const IDENTITY_FORGET: &str = "\
Usage:
    kes identity forget [options] <identity>

Options:
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes identity forget \"$(kes identity of client.crt)\"
";

    /// `kes identity rm`.
    pub const IDENTITY_RM: &str = "\
Usage:
    kes identity rm [options] <identity>

Options:
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes identity rm \"$(kes identity of client.crt)\"
";

    /// `kes log`.
    pub const LOG: &str = "\
Usage:
    kes log [options]

Follows the server's audit log (default) or error log until interrupted (Ctrl-C).

Options:
    --audit                  Print audit log events.
    --error                  Print error log events.
    --json                   Print the events as JSON lines, as the server sends them.
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes log
    $ kes log --error
";

    /// `kes status`.
    pub const STATUS: &str = "\
Usage:
    kes status [options]

Options:
    -s, --short              Print only whether the server is reachable.
        --api                List the server's APIs.
        --json               Print JSON.
    -k, --insecure           Skip server certificate verification.
        --color <when>       Colour the output: auto, never or always.
    -h, --help               Print command line options.

Examples:
    $ kes status
    $ kes status --api
";

    /// `kes metric`.
    pub const METRIC: &str = "\
Usage:
    kes metric [options]

Shows the server's metrics, refreshed at the given rate, until interrupted (Ctrl-C).
When the output is not a terminal, prints one JSON object per interval.

Options:
    --rate <duration>        How often to fetch the metrics. Default: 5s.
    -k, --insecure           Skip server certificate verification.
    -h, --help               Print command line options.

Examples:
    $ kes metric --rate 1s
";

    /// `kes migrate`.
    pub const MIGRATE: &str = "\
Usage:
    kes migrate [options] --from <path> --to <path> [<pattern>]

Copies the keys whose names match the pattern from the keystore of one KES server
config file to the keystore of another, without a server: from a directory (fs) to
Vault or OpenBao (vault), or back, or between two of a kind. The stored keys are
copied as they are, nothing is decrypted or re-encrypted, and the source keystore is
not changed.

The pattern is a Go filepath.Match pattern: '*' matches any characters, '?' one
character, '[a-z]' one in the class, '[^a-z]' or '[!a-z]' one not in it, and '\\'
escapes the next character. Default: '*' (all keys). Quote it for the shell.

A key that already exists in the target stops the migration with an error, unless
--merge (keep the target's key) or --force (replace it) is given. Keys copied before
the error stay in the target; run the command again with --merge to copy the rest.

Options:
    --from <path>            Config file whose keystore to copy from.
    --to <path>              Config file whose keystore to copy to.
    --merge                  Skip keys that already exist in the target.
    -f, --force              Replace keys that already exist in the target.
    -h, --help               Print command line options.

    -s, --server, -e, --enclave, -a, --api-key and -k, --insecure (importing into
    MinKMS; default from MINIO_KMS_SERVER, MINIO_KMS_ENCLAVE, MINIO_KMS_API_KEY)
    are not supported by this version of kes.

Examples:
    $ kes migrate --from fs-config.yml --to vault-config.yml
    $ kes migrate --from fs-config.yml --to vault-config.yml 'my-app-*'
    $ kes migrate --from old.yml --to new.yml --merge
";

    /// `kes completion`.
    pub const COMPLETION: &str = "\
Usage:
    kes completion <shell>

Prints a completion script for bash, zsh, fish, elvish or powershell.

Options:
    -h, --help               Print command line options.

Examples:
    $ source <(kes completion bash)
    $ kes completion zsh > \"${fpath[1]}/_kes\"
    $ kes completion fish > ~/.config/fish/completions/kes.fish
";
}
