//! Every help text, rendered from the clap definitions in the layout of the original `kes`:
//!
//! ```text
//! Usage:
//!     kes key info [options] <name>        usage lines            (the table below)
//!                                          free text              (the table below)
//! Commands:
//!     create                   Create ...  each subcommand        (clap: name, about)
//! Options:
//!     -k, --insecure           Skip ...    each visible flag      (clap: short, long,
//!         --json               Print JSON.                         value name, help, default)
//!     -h, --help               Print command line options.
//! Examples:
//!     $ kes key info my-key                examples               (the table below)
//! ```
//!
//! Only free text lives in [`PAGES`]; the `Commands:` and `Options:` lists come from the
//! definitions, so a flag cannot be accepted without being listed, nor listed without being
//! accepted. [`command`] installs the rendered texts as clap's help (`-h`, `--help`, and a
//! group without its subcommand); [`text`] renders one for the commands that print their usage
//! themselves.

use clap::{Arg, ArgAction, Command, CommandFactory as _};

use crate::cli::{Cli, UNSUPPORTED};

/// Indent of every line below a heading.
const INDENT: &str = "    ";
/// Column (from the line start) where descriptions start.
const COLUMN: usize = 29;
/// Width the descriptions of options are wrapped to.
const WIDTH: usize = 82;

/// The free text of one command's help.
struct Page {
    /// The command as typed: `kes key info`.
    path: &'static str,
    /// The lines under `Usage:`.
    usage: &'static [&'static str],
    /// Paragraphs between the usage and the lists, each line ending with `\n`; may be empty.
    text: &'static str,
    /// The subcommands before which the `Commands:` list has a blank line.
    breaks: &'static [&'static str],
    /// The command's line in its parent's `Commands:` list, where it is not its clap `about`
    /// with a full stop: `kes key info`, whose line ends with a space in the original (the
    /// kes-cli transcript pins `kes key`'s usage byte for byte).
    summary: Option<&'static str>,
    /// What follows the flags under the [`UNSUPPORTED`] heading, in one sentence with them.
    unsupported: &'static str,
    /// A section after `Options:` with its heading (`Environment:`), lines ending with `\n`.
    extra: &'static str,
    /// The commands under `Examples:`, without the `$ `.
    examples: &'static [&'static str],
}

const PAGE: Page = Page {
    path: "",
    usage: &[],
    text: "",
    breaks: &[],
    summary: None,
    unsupported: "",
    extra: "",
    examples: &[],
};

/// The free text of every command's help.
const PAGES: &[Page] = &[
    Page {
        path: "kes",
        usage: &["kes [options] <command>"],
        breaks: &["ls", "log", "migrate"],
        extra: "\
Environment:
    KES_SERVER               Server addresses, comma-separated (default 127.0.0.1:7373).
    KES_API_KEY              API key to authenticate with.
    KES_CLIENT_CERT          Client certificate file (instead of an API key).
    KES_CLIENT_KEY           Private key file of the client certificate.
    KES_CAPATH               CA certificate file to verify the server's certificate with.
",
        ..PAGE
    },
    Page {
        path: "kes server",
        usage: &["kes server [options]"],
        examples: &[
            "kes server --dev",
            "kes server --config config.yml --addr :7000",
        ],
        ..PAGE
    },
    Page {
        path: "kes ls",
        usage: &["kes ls [options] [<prefix>]"],
        examples: &["kes ls", "kes ls -p", "kes ls my-app-"],
        ..PAGE
    },
    Page {
        path: "kes key",
        usage: &["kes key <command>"],
        breaks: &["encrypt", "rotate"],
        ..PAGE
    },
    Page {
        path: "kes key create",
        usage: &["kes key create [options] <name>..."],
        examples: &["kes key create my-key", "kes key create my-key-1 my-key-2"],
        ..PAGE
    },
    Page {
        path: "kes key import",
        usage: &["kes key import [options] <name> <key>"],
        text: "The key is 32 bytes, base64-encoded. It is imported as an AES-256 key.\n",
        examples: &["kes key import my-key \"$(head -c 32 /dev/urandom | base64)\""],
        ..PAGE
    },
    Page {
        path: "kes key info",
        usage: &["kes key info [options] <name>"],
        summary: Some("Get information about a crypto key. "),
        examples: &["kes key info my-key"],
        ..PAGE
    },
    Page {
        path: "kes key ls",
        usage: &["kes key ls [options] [<pattern>]"],
        text: "The pattern is a name prefix, optionally followed by '*'. Default: '*' (all keys).\n",
        examples: &["kes key ls", "kes key ls 'my-app-*'"],
        ..PAGE
    },
    Page {
        path: "kes key rm",
        usage: &["kes key rm [options] <name>..."],
        examples: &["kes key rm my-key"],
        ..PAGE
    },
    Page {
        path: "kes key encrypt",
        usage: &["kes key encrypt [options] <name> <message>"],
        text: "Prints the ciphertext, base64-encoded; as JSON when the output is not a terminal.\n",
        examples: &["kes key encrypt my-key 'Hello world'"],
        ..PAGE
    },
    Page {
        path: "kes key decrypt",
        usage: &["kes key decrypt [options] <name> <ciphertext> [<context>]"],
        text: "\
The ciphertext and context are base64-encoded. Prints the plaintext, base64-encoded;
as JSON when the output is not a terminal.
",
        examples: &["kes key decrypt my-key \"$CIPHERTEXT\""],
        ..PAGE
    },
    Page {
        path: "kes key dek",
        usage: &["kes key dek [options] <name> [<context>]"],
        text: "\
Generates a data encryption key and prints it in plaintext and encrypted with the named
key, base64-encoded; as JSON when the output is not a terminal. The context is
base64-encoded and is needed again to decrypt.
",
        examples: &["kes key dek my-key"],
        ..PAGE
    },
    Page {
        path: "kes key rotate",
        usage: &["kes key rotate [options] <name> [<key>]"],
        text: "\
Adds a new version to the key and prints its name (v2, v3, ...). The new version
encrypts from now on; every kept version still decrypts. With <key> (32 bytes,
base64-encoded) the new version is that AES-256 key, otherwise a random one.
",
        examples: &["kes key rotate my-key"],
        ..PAGE
    },
    Page {
        path: "kes key rm-version",
        usage: &["kes key rm-version [options] <name> <version>"],
        text: "\
Removes an old version of the key: what it encrypted can no longer be decrypted.
The newest version cannot be removed.
",
        examples: &["kes key rm-version my-key v1"],
        ..PAGE
    },
    Page {
        path: "kes policy",
        usage: &["kes policy <command>"],
        breaks: &["info"],
        ..PAGE
    },
    Page {
        path: "kes policy add",
        usage: &["kes policy add [options] <name> <file|->"],
        text: "\
Reads the policy as JSON from the file, or from standard input for '-':
    {\"allow\": [\"/v1/key/generate/my-app-*\"], \"deny\": [\"/v1/key/delete/*\"]}
The output of 'kes policy show --json' is accepted too. Policies added at runtime last
until the server restarts or reloads its configuration.
",
        examples: &[
            "kes policy add my-app policy.json",
            "kes policy show my-app --json | kes policy add my-app-copy -",
        ],
        ..PAGE
    },
    Page {
        path: "kes policy rm",
        usage: &["kes policy rm [options] <name>..."],
        examples: &["kes policy rm my-app"],
        ..PAGE
    },
    Page {
        path: "kes policy assign",
        usage: &["kes policy assign [options] <policy> <identity>..."],
        examples: &["kes policy assign my-app \"$(kes identity of client.crt)\""],
        ..PAGE
    },
    Page {
        path: "kes policy info",
        usage: &["kes policy info [options] <name>"],
        examples: &["kes policy info my-app"],
        ..PAGE
    },
    Page {
        path: "kes policy ls",
        usage: &["kes policy ls [options] [<pattern>]"],
        text: "The pattern is a name prefix, optionally followed by '*'. Default: '*' (all policies).\n",
        examples: &["kes policy ls"],
        ..PAGE
    },
    Page {
        path: "kes policy show",
        usage: &["kes policy show [options] <name>"],
        text: "\
Prints the policy's allow and deny rules; as JSON with --json or when the output is not
a terminal.
",
        examples: &["kes policy show my-app"],
        ..PAGE
    },
    Page {
        path: "kes identity",
        usage: &["kes identity <command>", "kes identity [<api-key|file>]"],
        text: "\
Without a command, prints a new API key, or the identity of an API key or certificate
file, or the API key of an Ed25519 private key file.
",
        breaks: &["assign"],
        ..PAGE
    },
    Page {
        path: "kes identity new",
        usage: &["kes identity new [options] [<subject>]"],
        text: "\
Creates an API key and prints it with its identity. With --key and --cert it also
writes a certificate and private key for the same identity, which TLS clients and
servers can use. The subject is the certificate's common name (default: the identity).
",
        examples: &[
            "kes identity new",
            "kes identity new --key client.key --cert client.crt my-app",
            "kes identity new --key server.key --cert server.crt --ip 10.1.2.3 --dns kes.local kes",
        ],
        ..PAGE
    },
    Page {
        path: "kes identity of",
        usage: &["kes identity of <api-key|file>"],
        text: "Prints the identity of an API key (kes:v1:...) or of the certificate in a PEM file.\n",
        examples: &[
            "kes identity of client.crt",
            "kes identity of \"$KES_API_KEY\"",
        ],
        ..PAGE
    },
    Page {
        path: "kes identity info",
        usage: &["kes identity info [options] [<identity>]"],
        text: "Without an identity, describes your own: its role and, for non-admins, its policy.\n",
        examples: &["kes identity info"],
        ..PAGE
    },
    Page {
        path: "kes identity ls",
        usage: &["kes identity ls [options] [<prefix>]"],
        examples: &["kes identity ls"],
        ..PAGE
    },
    Page {
        path: "kes identity assign",
        usage: &["kes identity assign [options] <identity> <policy>"],
        examples: &["kes identity assign \"$(kes identity of client.crt)\" my-app"],
        ..PAGE
    },
    Page {
        path: "kes identity forget",
        usage: &["kes identity forget [options] <identity>"],
        examples: &["kes identity forget \"$(kes identity of client.crt)\""],
        ..PAGE
    },
    Page {
        path: "kes identity rm",
        usage: &["kes identity rm [options] <identity>"],
        examples: &["kes identity rm \"$(kes identity of client.crt)\""],
        ..PAGE
    },
    Page {
        path: "kes log",
        usage: &["kes log [options]"],
        text: "Follows the server's audit log (default) or error log until interrupted (Ctrl-C).\n",
        examples: &["kes log", "kes log --error"],
        ..PAGE
    },
    Page {
        path: "kes status",
        usage: &["kes status [options]"],
        examples: &["kes status", "kes status --api"],
        ..PAGE
    },
    Page {
        path: "kes metric",
        usage: &["kes metric [options]"],
        text: "\
Shows the server's metrics, refreshed at the given rate, until interrupted (Ctrl-C).
When the output is not a terminal, prints one JSON object per interval.
",
        examples: &["kes metric --rate 1s"],
        ..PAGE
    },
    Page {
        path: "kes migrate",
        usage: &["kes migrate [options] --from <path> --to <path> [<pattern>]"],
        text: "\
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
",
        unsupported: "(importing into MinKMS; default from MINIO_KMS_SERVER, MINIO_KMS_ENCLAVE, \
                      MINIO_KMS_API_KEY) are not supported by this version of kes.",
        examples: &[
            "kes migrate --from fs-config.yml --to vault-config.yml",
            "kes migrate --from fs-config.yml --to vault-config.yml 'my-app-*'",
            "kes migrate --from old.yml --to new.yml --merge",
        ],
        ..PAGE
    },
    Page {
        path: "kes completion",
        usage: &["kes completion <shell>"],
        text: "Prints a completion script for bash, zsh, fish, elvish or powershell.\n",
        examples: &[
            "source <(kes completion bash)",
            "kes completion zsh > \"${fpath[1]}/_kes\"",
            "kes completion fish > ~/.config/fish/completions/kes.fish",
        ],
        ..PAGE
    },
];

/// The command line, every command with its help installed: `-h, --help` (with the
/// original's description) and the rendered text.
pub fn command() -> Command {
    install(Cli::command(), "kes", true)
}

/// [`command`] without the rendered texts (clap would print its own): what parsing needs
/// until a help text is to be shown, without rendering them all at every start.
pub fn grammar() -> Command {
    install(Cli::command(), "kes", false)
}

/// The help of the command at `path` below `kes` (`&["key"]` for `kes key`).
pub fn text(path: &[&str]) -> String {
    let mut cmd = command();
    for name in path {
        match cmd.find_subcommand(name) {
            Some(sub) => cmd = sub.clone(),
            None => break,
        }
    }
    cmd.render_help().to_string()
}

/// Gives `cmd` (at `path`, e.g. `kes key`) and its subcommands their help flag and, with
/// `texts`, their help text.
fn install(cmd: Command, path: &str, texts: bool) -> Command {
    let mut cmd = cmd.disable_help_flag(true).arg(
        Arg::new("help")
            .short('h')
            .long("help")
            .action(ArgAction::Help)
            .help("Print command line options"),
    );
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in names {
        let sub_path = format!("{path} {name}");
        cmd = cmd.mut_subcommand(&name, |sub| install(sub, &sub_path, texts));
    }
    if !texts {
        return cmd;
    }
    let text = render(&cmd, path);
    cmd.override_help(text)
}

fn page(path: &str) -> &'static Page {
    PAGES.iter().find(|p| p.path == path).unwrap_or(&PAGE)
}

/// The help of `cmd`, which is the command `path`.
fn render(cmd: &Command, path: &str) -> String {
    let page = page(path);
    let mut out = String::from("Usage:\n");
    for line in page.usage {
        out.push_str(&format!("{INDENT}{line}\n"));
    }
    if !page.text.is_empty() {
        out.push('\n');
        out.push_str(page.text);
    }

    let subcommands: Vec<&Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    if !subcommands.is_empty() {
        out.push_str("\nCommands:\n");
        for sub in subcommands {
            let name = sub.get_name();
            if page.breaks.contains(&name) {
                out.push('\n');
            }
            let summary = match page_of(path, name).summary {
                Some(summary) => summary.to_owned(),
                None => sentence(&sub.get_about().map(ToString::to_string).unwrap_or_default()),
            };
            out.push_str(&format!("{}{summary}\n", column(name)));
        }
    }

    let (unsupported, options): (Vec<&Arg>, Vec<&Arg>) = cmd
        .get_arguments()
        .filter(|arg| !arg.is_positional() && !arg.is_hide_set())
        .partition(|arg| arg.get_help_heading() == Some(UNSUPPORTED));
    out.push_str("\nOptions:\n");
    let mut aligned = false;
    for arg in options {
        // The original lists long-only flags flush left until the first one with a short
        // form, and aligned with the long forms after it.
        aligned |= arg.get_short().is_some();
        option(&mut out, &flags(arg, aligned, true), &description(arg));
    }
    if !unsupported.is_empty() {
        let names: Vec<String> = unsupported.iter().map(|a| flags(a, false, false)).collect();
        let list = match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        };
        out.push('\n');
        for line in wrap(
            &format!("{list} {}", page.unsupported),
            WIDTH - INDENT.len(),
        ) {
            out.push_str(&format!("{INDENT}{line}\n"));
        }
    }

    if !page.extra.is_empty() {
        out.push('\n');
        out.push_str(page.extra);
    }
    if !page.examples.is_empty() {
        out.push_str("\nExamples:\n");
        for example in page.examples {
            out.push_str(&format!("{INDENT}$ {example}\n"));
        }
    }
    out
}

/// The page of subcommand `name` of the command `path`.
fn page_of(path: &str, name: &str) -> &'static Page {
    page(&format!("{path} {name}"))
}

/// `-k, --insecure`, `--from <path>`; long-only flags `aligned` under the long forms; with
/// `values`, the value names (lower-case, as the original writes them).
fn flags(arg: &Arg, aligned: bool, values: bool) -> String {
    let mut text = match (arg.get_short(), arg.get_long()) {
        (Some(short), Some(long)) => format!("-{short}, --{long}"),
        (Some(short), None) => format!("-{short}"),
        (None, Some(long)) if aligned => format!("    --{long}"),
        (None, Some(long)) => format!("--{long}"),
        (None, None) => arg.get_id().to_string(),
    };
    if values && arg.get_action().takes_values() {
        match arg.get_value_names() {
            Some(names) if !names.is_empty() => {
                for name in names {
                    text.push_str(&format!(" <{}>", name.to_lowercase()));
                }
            }
            _ => text.push_str(&format!(" <{}>", arg.get_id().as_str().to_lowercase())),
        }
    }
    text
}

/// An option's description: its help as a sentence, and its default value.
fn description(arg: &Arg) -> String {
    let mut text = sentence(&arg.get_help().map(ToString::to_string).unwrap_or_default());
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    if arg.get_action().takes_values() && !defaults.is_empty() && !arg.is_hide_default_value_set() {
        text.push_str(&format!(" Default: {}.", defaults.join(", ")));
    }
    text
}

/// `text` ending with a full stop (clap drops the one of a doc comment's first line).
fn sentence(text: &str) -> String {
    let text = text.trim_end();
    if text.is_empty() || text.ends_with('.') {
        text.to_owned()
    } else {
        format!("{text}.")
    }
}

/// `    name` padded to the description column (at least two spaces).
fn column(name: &str) -> String {
    let lead = format!("{INDENT}{name}");
    let pad = COLUMN.saturating_sub(lead.chars().count()).max(2);
    format!("{lead}{}", " ".repeat(pad))
}

/// One option of `Options:`: the flags, and the description from the column on, wrapped
/// (below the flags when they reach into the column).
fn option(out: &mut String, flags: &str, description: &str) {
    let lead = format!("{INDENT}{flags}");
    let mut lines = wrap(description, WIDTH - COLUMN).into_iter();
    if lead.chars().count() + 2 > COLUMN {
        out.push_str(&format!("{lead}\n"));
    } else if let Some(first) = lines.next() {
        out.push_str(&format!("{}{first}\n", column(flags)));
    } else {
        out.push_str(&format!("{lead}\n"));
    }
    for line in lines {
        out.push_str(&format!("{}{line}\n", " ".repeat(COLUMN)));
    }
}

/// `text` in lines of at most `width` characters (a longer word stays whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;
    use crate::fail::Failure;

    /// Flags accepted without being documented, on purpose: `-e/--enclave` of the client
    /// commands (accepted and ignored, as by the original, whose enclaves no longer exist)
    /// and the deprecated `kes server --key/--cert` (ignored with a warning).
    const HIDDEN: &[(&str, &str)] = &[
        ("*", "enclave"),
        ("kes server", "key"),
        ("kes server", "cert"),
    ];

    /// Every command of the definitions, `kes` first, with its path (`kes key create`).
    fn commands() -> Vec<(String, Command)> {
        fn walk(path: String, cmd: &Command, out: &mut Vec<(String, Command)>) {
            out.push((path.clone(), cmd.clone()));
            for sub in cmd.get_subcommands() {
                walk(format!("{path} {}", sub.get_name()), sub, out);
            }
        }
        let mut out = Vec::new();
        walk("kes".into(), &Cli::command(), &mut out);
        out
    }

    /// What `kes <path> -h` prints.
    fn help_of(path: &str) -> String {
        let args: Vec<OsString> = path.split(' ').chain(["-h"]).map(OsString::from).collect();
        match crate::usage::parse(args) {
            Err(Failure::Usage(text)) => text,
            other => panic!("{path} -h: {other:?}"),
        }
    }

    /// Whether `text` has the flag `flag` (`--json`, `-k`) as a whole word.
    fn has_flag(text: &str, flag: &str) -> bool {
        flags_in(text).iter().any(|f| f == flag)
    }

    /// The flags (`--json`, `-k`) written in `text`: a `-` at the start of a word, then
    /// letters, digits and dashes.
    fn flags_in(text: &str) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        let mut flags = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let starts_word = i == 0 || " [(`|/,\"'".contains(chars[i - 1]);
            if chars[i] == '-' && starts_word {
                let mut j = i + 1;
                if chars.get(j) == Some(&'-') {
                    j += 1;
                }
                let start = j;
                while chars
                    .get(j)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '-')
                {
                    j += 1;
                }
                if j > start && chars[start].is_ascii_alphabetic() {
                    flags.push(chars[i..j].iter().collect::<String>());
                }
                i = j.max(i + 1);
            } else {
                i += 1;
            }
        }
        flags
    }

    /// Whether `cmd` accepts `flag` (`--json`, `-k`), hidden flags and `-h` included.
    fn accepts(cmd: &Command, flag: &str) -> bool {
        if flag == "-h" || flag == "--help" {
            return true;
        }
        cmd.get_arguments()
            .any(|arg| match flag.strip_prefix("--") {
                Some(long) => arg.get_long() == Some(long),
                None => flag
                    .strip_prefix('-')
                    .is_some_and(|s| s.chars().eq(arg.get_short())),
            })
    }

    #[test]
    fn every_command_has_a_page_and_every_page_a_command() {
        let paths: Vec<String> = commands().into_iter().map(|(path, _)| path).collect();
        for path in &paths {
            assert_eq!(page(path).path, path, "no help page for '{path}'");
        }
        for page in PAGES {
            assert!(
                paths.iter().any(|p| p == page.path),
                "help page for '{}', which is no command",
                page.path
            );
        }
    }

    #[test]
    fn every_help_renders_in_the_original_layout() {
        for (path, _) in commands() {
            let help = help_of(&path);
            let words: Vec<&str> = path.split(' ').skip(1).collect();
            assert_eq!(help, text(&words), "{path}");
            assert!(help.starts_with(&format!("Usage:\n    {path}")), "{help}");
            assert!(help.ends_with('\n') && !help.ends_with("\n\n"), "{help}");
            assert!(
                help.contains("\nOptions:\n")
                    && help
                        .contains("\n    -h, --help               Print command line options.\n"),
                "{help}"
            );
            for line in help.lines() {
                // The original's `kes key` has one line ending with a space (transcript).
                if line != "    info                     Get information about a crypto key. " {
                    assert_eq!(line.trim_end(), line, "{path}: trailing space");
                }
            }
        }
    }

    #[test]
    fn every_accepted_flag_is_in_its_commands_help() {
        let mut missing = Vec::new();
        for (path, cmd) in commands() {
            let help = help_of(&path);
            for arg in cmd.get_arguments().filter(|arg| !arg.is_positional()) {
                let long = arg.get_long().map(|l| format!("--{l}"));
                let short = arg.get_short().map(|s| format!("-{s}"));
                if arg.is_hide_set() {
                    let name = arg.get_long().unwrap_or_default();
                    if !HIDDEN
                        .iter()
                        .any(|(p, n)| (*p == "*" || *p == path) && *n == name)
                    {
                        missing.push(format!("{path}: {name} is hidden"));
                    }
                    continue;
                }
                for flag in long.iter().chain(short.iter()) {
                    if !has_flag(&help, flag) {
                        missing.push(format!("{path}: {flag}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "accepted, not documented: {missing:?}");
    }

    #[test]
    fn the_free_text_names_only_flags_that_exist() {
        let all = commands();
        for (path, cmd) in &all {
            let page = page(path);
            // The usage lines and the paragraphs speak of the command's own flags.
            for line in page.usage.iter().copied().chain(page.text.lines()) {
                for flag in flags_in(line) {
                    // Other commands' flags appear in quotes: 'kes policy show --json'.
                    let quoted = line.contains(&format!("' {flag}")) || line.contains("'kes ");
                    let known = accepts(cmd, &flag)
                        || (quoted && all.iter().any(|(_, c)| accepts(c, &flag)));
                    assert!(known, "{path}: '{flag}' in \"{line}\"");
                }
            }
            // Every positional argument is named in the usage.
            let usage = page.usage.join("\n");
            for arg in cmd.get_positionals() {
                let name = arg.get_value_names().unwrap()[0].to_lowercase();
                assert!(usage.contains(&name), "{path}: <{name}> not in the usage");
            }
            // Each example's flags belong to the command it runs.
            for example in page.examples {
                for part in example.split(['|', '(']) {
                    let Some(rest) = part.trim().strip_prefix("kes ") else {
                        continue;
                    };
                    let mut target = Cli::command();
                    for word in rest.split_whitespace() {
                        if let Some(sub) = target.find_subcommand(word) {
                            target = sub.clone();
                        } else if word.starts_with('-') {
                            assert!(accepts(&target, word), "{path}: {example}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_layout_is_the_originals() {
        let cmd = Command::new("t")
            .arg(
                Arg::new("from")
                    .long("from")
                    .value_name("PATH")
                    .help("From here"),
            )
            .arg(
                Arg::new("force")
                    .short('f')
                    .long("force")
                    .action(ArgAction::SetTrue)
                    .help("Force."),
            )
            .arg(
                Arg::new("rate")
                    .long("rate")
                    .value_name("DURATION")
                    .default_value("5s")
                    .help("How often, which is a question that needs a long answer to wrap"),
            )
            .arg(
                Arg::new("color")
                    .long("color")
                    .value_name("auto|never|always")
                    .help("Colour"),
            );
        let help = render(&cmd, "nothing");
        assert_eq!(
            help,
            "\
Usage:

Options:
    --from <path>            From here.
    -f, --force              Force.
        --rate <duration>    How often, which is a question that needs a long
                             answer to wrap. Default: 5s.
        --color <auto|never|always>
                             Colour.
"
        );
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(wrap("abcdef g", 4), ["abcdef", "g"]);
        assert!(wrap("", 4).is_empty());
    }

    #[test]
    fn the_docs_name_every_flag_of_every_command() {
        let docs = include_str!("../../../docs/cli.md");
        for (path, cmd) in commands() {
            if cmd.has_subcommands() && path != "kes" {
                continue;
            }
            let name = path.strip_prefix("kes").unwrap_or(&path).trim();
            // The command's synopsis (`kes log [-k] ...`) or table row (`| `key rm ...`).
            let lines: Vec<&str> = docs
                .lines()
                .filter(|line| {
                    let line = line.trim();
                    if name.is_empty() {
                        return line.starts_with("-v, --version") || line.starts_with("-h, --help");
                    }
                    [
                        format!("kes {name} "),
                        format!("| `{name} "),
                        format!("| `kes {name} "),
                    ]
                    .iter()
                    .any(|start| line.starts_with(start.as_str()))
                })
                .collect();
            assert!(!lines.is_empty(), "docs/cli.md has no synopsis of '{path}'");
            // Of a table row, its first cell's code (the rest may quote other commands).
            let synopsis: Vec<&str> = lines
                .iter()
                .map(|line| match line.trim().strip_prefix("| `") {
                    Some(row) => row.split('`').next().unwrap_or(row),
                    None => line,
                })
                .collect();
            let synopsis = synopsis.join("\n");
            for arg in cmd.get_arguments() {
                if arg.is_positional()
                    || arg.is_hide_set()
                    || arg.get_help_heading() == Some(UNSUPPORTED)
                {
                    continue;
                }
                let long = arg.get_long().map(|l| format!("--{l}"));
                let short = arg.get_short().map(|s| format!("-{s}"));
                assert!(
                    long.iter()
                        .chain(short.iter())
                        .any(|f| has_flag(&synopsis, f)),
                    "docs/cli.md: '{path}' does not show {long:?} {short:?}:\n{synopsis}"
                );
            }
            for flag in flags_in(&synopsis) {
                assert!(accepts(&cmd, &flag), "docs/cli.md: '{path}' has no {flag}");
            }
        }
    }

    #[test]
    fn flags_are_found_as_words() {
        assert_eq!(
            flags_in("kes ls [-k] [--json] [-i | -p] base64-encoded <file|-> -f/--force"),
            ["-k", "--json", "-i", "-p", "-f", "--force"]
        );
        assert!(has_flag("`-k`/`--insecure`", "--insecure"));
        assert!(!has_flag("--insecurely", "--insecure"));
    }
}
