//! What a command reports when it does not succeed, and the exit code that goes with it.
//!
//! Exit codes (spec §10, docs/cli.md): 0 success (also when the reader of our output went away:
//! a broken pipe), 1 for every error (`Error: <message>` on stderr, optionally followed by a
//! `Hint:` line that says what to do) and for a request interrupted with Ctrl-C (silently), 2
//! for usage: a group command without its subcommand, `-h/--help`, and flags that contradict
//! each other in a way that could lose keys (`kes migrate --force --merge`).

use std::fmt;
use std::process::ExitCode;

use kes_client::{Error as ClientError, TlsFailure};

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
        ClientError::Tls { endpoint, failure } => tls_failure(endpoint, failure),
        ClientError::InvalidEndpoint { .. } => (
            err.to_string(),
            Some("set KES_SERVER to HOST:PORT, e.g. 127.0.0.1:7373.".into()),
        ),
        _ => (err.to_string(), None),
    }
}

/// The message and hint of a TLS failure.
fn tls_failure(endpoint: &str, failure: &TlsFailure) -> (String, Option<String>) {
    let ca_hint = "if you trust this server, set KES_CAPATH to the CA certificate (PEM) that \
                   signed its certificate, or add that CA to the system's trust store; for a \
                   test server with a self-signed certificate, -k/--insecure skips the check.";
    let client_cert_hint = "the server may verify client certificates (tls.auth: on): use a \
                            client certificate (KES_CLIENT_CERT/KES_CLIENT_KEY) signed by a CA \
                            in its tls.ca.";
    let failed = format!("TLS connection to {endpoint} failed");
    let (what, hint) = match failure {
        TlsFailure::UnknownIssuer => (
            "the server's certificate is signed by an unknown authority".to_owned(),
            ca_hint.to_owned(),
        ),
        TlsFailure::NotValidForName => (
            "the server's certificate is not valid for this address".to_owned(),
            "use an address the certificate names (its DNS or IP SANs) in KES_SERVER; \
             -k/--insecure skips the check for a test server."
                .to_owned(),
        ),
        TlsFailure::Expired => (
            "the server's certificate has expired".to_owned(),
            "renew the server's certificate; -k/--insecure skips the check.".to_owned(),
        ),
        TlsFailure::OtherCertificateError(name) => (
            format!("the server's certificate could not be verified ({name})"),
            ca_hint.to_owned(),
        ),
        TlsFailure::ClientCertificateRejected { alert } => (
            format!("the server rejected the client certificate (received fatal alert: {alert})"),
            client_cert_hint.to_owned(),
        ),
        // With TLS 1.2, a server that requires a client certificate and gets none answers
        // with handshake_failure.
        TlsFailure::HandshakeFailure => (
            "the server rejected the client certificate (received fatal alert: \
             HandshakeFailure)"
                .to_owned(),
            client_cert_hint.to_owned(),
        ),
        other => (
            other.to_string(),
            "is this a KES server speaking TLS? For a server whose certificate cannot be \
             verified, set KES_CAPATH or use -k/--insecure."
                .to_owned(),
        ),
    };
    (format!("{failed}: {what}"), Some(hint))
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
    }

    /// The message and hint of `failure` at `https://h:1`.
    fn tls(failure: TlsFailure) -> (String, String) {
        let err = ClientError::Tls {
            endpoint: "https://h:1".into(),
            failure,
        };
        let Failure::Error { message, hint } = Failure::request("x", err) else {
            panic!("not an error");
        };
        (message, hint.unwrap())
    }

    #[test]
    fn tls_failures_have_their_message_and_hint() {
        let ca = "if you trust this server, set KES_CAPATH to the CA certificate (PEM) that \
                  signed its certificate, or add that CA to the system's trust store; for a test \
                  server with a self-signed certificate, -k/--insecure skips the check.";
        let client_cert = "the server may verify client certificates (tls.auth: on): use a \
                           client certificate (KES_CLIENT_CERT/KES_CLIENT_KEY) signed by a CA in \
                           its tls.ca.";
        let other = "is this a KES server speaking TLS? For a server whose certificate cannot \
                     be verified, set KES_CAPATH or use -k/--insecure.";
        let cases = [
            (
                TlsFailure::UnknownIssuer,
                "the server's certificate is signed by an unknown authority",
                ca,
            ),
            (
                TlsFailure::NotValidForName,
                "the server's certificate is not valid for this address",
                "use an address the certificate names (its DNS or IP SANs) in KES_SERVER; \
                 -k/--insecure skips the check for a test server.",
            ),
            (
                TlsFailure::Expired,
                "the server's certificate has expired",
                "renew the server's certificate; -k/--insecure skips the check.",
            ),
            (
                TlsFailure::OtherCertificateError("BadSignature".into()),
                "the server's certificate could not be verified (BadSignature)",
                ca,
            ),
            (
                TlsFailure::ClientCertificateRejected {
                    alert: "CertificateRequired".into(),
                },
                "the server rejected the client certificate (received fatal alert: \
                 CertificateRequired)",
                client_cert,
            ),
            (
                TlsFailure::HandshakeFailure,
                "the server rejected the client certificate (received fatal alert: \
                 HandshakeFailure)",
                client_cert,
            ),
            (
                TlsFailure::ProtocolVersion,
                "received fatal alert: ProtocolVersion",
                other,
            ),
            (
                TlsFailure::Alert("InternalError".into()),
                "received fatal alert: InternalError",
                other,
            ),
            (
                TlsFailure::Other("received corrupt message of type InvalidContentType".into()),
                "received corrupt message of type InvalidContentType",
                other,
            ),
        ];
        for (failure, what, hint) in cases {
            assert_eq!(
                tls(failure),
                (
                    format!("x: TLS connection to https://h:1 failed: {what}"),
                    hint.to_owned()
                )
            );
        }
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
