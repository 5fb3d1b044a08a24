//! What a command reports when it does not succeed, and the exit code that goes with it.
//!
//! Exit codes (spec §10, docs/cli.md): 0 success (also when the reader of our output went away:
//! a broken pipe), 1 for every error (`Error: <message>` on stderr, optionally followed by a
//! `Hint:` line that says what to do) and for a request interrupted with Ctrl-C (silently), 2
//! for usage: a group command without its subcommand, `-h/--help`, and flags that contradict
//! each other in a way that could lose keys (`kes migrate --force --merge`).

use std::fmt;
use std::process::ExitCode;

use kes_client::Error as ClientError;

use crate::term;

/// Exit code of every error.
pub const EXIT_ERROR: u8 = 1;
/// Exit code of usage output (`-h`, a group without its subcommand).
pub const EXIT_USAGE: u8 = 2;

/// Why a command stopped early.
#[derive(Debug)]
pub enum Failure {
    /// An error a person should see: `Error: <message>` and an optional `Hint: <hint>`.
    Error {
        /// What went wrong.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
    /// Usage text printed to stderr, exit 2.
    Usage(String),
    /// Interrupted by Ctrl-C or SIGTERM while a request was under way: exit 1, no message.
    Interrupted,
    /// Our standard output was closed by its reader: exit 0, no message.
    BrokenPipe,
}

impl Failure {
    /// An error without a hint.
    pub fn msg(message: impl fmt::Display) -> Failure {
        Failure::Error {
            message: message.to_string(),
            hint: None,
        }
    }

    /// An error with a hint.
    pub fn with_hint(message: impl fmt::Display, hint: impl fmt::Display) -> Failure {
        Failure::Error {
            message: message.to_string(),
            hint: Some(hint.to_string()),
        }
    }

    /// A failed request: `<context>: <what the client reported>`, with a hint for network and
    /// TLS failures (the errors a person can act on).
    pub fn request(context: impl fmt::Display, err: ClientError) -> Failure {
        let (message, hint) = describe(&err);
        Failure::Error {
            message: format!("{context}: {message}"),
            hint,
        }
    }

    /// Prints the failure and returns the process exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Error { message, hint } => {
                term::print_error(&message, hint.as_deref());
                ExitCode::from(EXIT_ERROR)
            }
            Failure::Usage(text) => {
                term::eprint(&text);
                ExitCode::from(EXIT_USAGE)
            }
            Failure::Interrupted => ExitCode::from(EXIT_ERROR),
            Failure::BrokenPipe => ExitCode::SUCCESS,
        }
    }
}

/// A person-readable description of a client error, and a hint where one helps.
fn describe(err: &ClientError) -> (String, Option<String>) {
    match err {
        ClientError::Connect { endpoint, cause } => (
            format!("cannot connect to {endpoint}: {}", tidy_os_error(cause)),
            Some(
                "is the KES server running and reachable at that address? The address comes \
                 from KES_SERVER (or MINIO_KES_SERVER)."
                    .into(),
            ),
        ),
        ClientError::Timeout { endpoint } => (
            format!("no answer from {endpoint} in time"),
            Some("check the address in KES_SERVER and the network path to the server.".into()),
        ),
        ClientError::Tls { endpoint, cause } => tls_failure(endpoint, cause),
        ClientError::InvalidEndpoint { .. } => (
            err.to_string(),
            Some("set KES_SERVER to HOST:PORT, e.g. 127.0.0.1:7373.".into()),
        ),
        _ => (err.to_string(), None),
    }
}

/// Classifies a TLS failure by the TLS library's description (the client reports only text).
fn tls_failure(endpoint: &str, cause: &str) -> (String, Option<String>) {
    let lower = cause.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    let ca_hint = "if you trust this server, set KES_CAPATH to the CA certificate (PEM) that \
                   signed its certificate, or add that CA to the system's trust store; for a \
                   test server with a self-signed certificate, -k/--insecure skips the check.";
    if has("unknownissuer") || has("unknown issuer") || has("unknown authority") {
        return (
            format!(
                "TLS connection to {endpoint} failed: the server's certificate is signed by an \
                 unknown authority"
            ),
            Some(ca_hint.into()),
        );
    }
    if has("notvalidforname") || has("not valid for name") {
        return (
            format!(
                "TLS connection to {endpoint} failed: the server's certificate is not valid for \
                 this address"
            ),
            Some(
                "use an address the certificate names (its DNS or IP SANs) in KES_SERVER; \
                 -k/--insecure skips the check for a test server."
                    .into(),
            ),
        );
    }
    if has("expired") {
        return (
            format!("TLS connection to {endpoint} failed: the server's certificate has expired"),
            Some("renew the server's certificate; -k/--insecure skips the check.".into()),
        );
    }
    if has("invalid peer certificate") {
        return (
            format!(
                "TLS connection to {endpoint} failed: the server's certificate could not be \
                 verified ({})",
                // Only the name of the rustls error, not the OIDs some variants carry.
                cause
                    .strip_prefix("invalid peer certificate: ")
                    .unwrap_or(cause)
                    .split(" {")
                    .next()
                    .unwrap_or(cause)
            ),
            Some(ca_hint.into()),
        );
    }
    if has("certificaterequired")
        || has("certificate required")
        || has("badcertificate")
        || has("bad certificate")
        || has("unknownca")
        || has("unknown ca")
        || has("unsupportedcertificate")
        || has("handshakefailure")
    {
        return (
            format!(
                "TLS connection to {endpoint} failed: the server rejected the client certificate ({cause})"
            ),
            Some(
                "the server may verify client certificates (tls.auth: on): use a client \
                 certificate (KES_CLIENT_CERT/KES_CLIENT_KEY) signed by a CA in its tls.ca."
                    .into(),
            ),
        );
    }
    (
        format!("TLS connection to {endpoint} failed: {cause}"),
        Some(
            "is this a KES server speaking TLS? For a server whose certificate cannot be \
             verified, set KES_CAPATH or use -k/--insecure."
                .into(),
        ),
    )
}

/// `Connection refused (os error 111)` → `connection refused`.
fn tidy_os_error(cause: &str) -> String {
    let text = match cause.rfind(" (os error ") {
        Some(pos) if cause.ends_with(')') => cause.get(..pos).unwrap_or(cause),
        _ => cause,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl From<term::WriteError> for Failure {
    fn from(err: term::WriteError) -> Failure {
        match err {
            term::WriteError::BrokenPipe => Failure::BrokenPipe,
            term::WriteError::Other(e) => Failure::msg(format!("cannot write output: {e}")),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_are_tidied() {
        assert_eq!(
            tidy_os_error("Connection refused (os error 111)"),
            "connection refused"
        );
        assert_eq!(tidy_os_error("dns error"), "dns error");
        assert_eq!(tidy_os_error(""), "");
    }

    #[test]
    fn network_errors_carry_hints() {
        let err = ClientError::Connect {
            endpoint: "https://127.0.0.1:1".into(),
            cause: "Connection refused (os error 111)".into(),
        };
        let Failure::Error { message, hint } = Failure::request("failed to list keys", err) else {
            panic!("not an error");
        };
        assert_eq!(
            message,
            "failed to list keys: cannot connect to https://127.0.0.1:1: connection refused"
        );
        assert!(hint.unwrap().contains("KES_SERVER"));

        let err = ClientError::Tls {
            endpoint: "https://h:1".into(),
            cause: "invalid peer certificate: UnknownIssuer".into(),
        };
        let Failure::Error { message, hint } = Failure::request("x", err) else {
            panic!("not an error");
        };
        assert!(message.contains("unknown authority"), "{message}");
        let hint = hint.unwrap();
        assert!(
            hint.contains("-k/--insecure") && hint.contains("KES_CAPATH"),
            "{hint}"
        );
    }

    #[test]
    fn server_errors_keep_the_servers_message() {
        let Failure::Error { message, hint } =
            Failure::request("failed to create key \"k\"", ClientError::NotAllowed)
        else {
            panic!("not an error");
        };
        assert_eq!(
            message,
            "failed to create key \"k\": not authorized: insufficient permissions"
        );
        assert!(hint.is_none());
    }
}
