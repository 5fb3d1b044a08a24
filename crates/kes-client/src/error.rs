//! The client's error type and the mapping of server answers to it (spec §2.2, §11.1).

use std::error::Error as StdError;

/// Everything that can go wrong when building a [`crate::Client`] or calling the server.
///
/// Server errors that clients commonly act on have their own variants, recognised from the
/// HTTP status *and* the exact message, as the Go SDK does (legacy texts of older servers
/// included). Every other server error is [`Error::Api`]. No variant ever holds secret
/// material (keys, plaintexts, API keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// 400 `key already exists` (or the pre-v0.18 `key does already exist`): create or
    /// import of a name that is taken.
    #[error("key already exists")]
    KeyExists,
    /// 404 `key does not exist`.
    #[error("key does not exist")]
    KeyNotFound,
    /// 403 `not authorized: insufficient permissions` (or the pre-v0.18 `prohibited by
    /// policy`): the identity is unknown or its policy denies the request.
    #[error("not authorized: insufficient permissions")]
    NotAllowed,
    /// 400 `decryption failed: ciphertext is not authentic`: wrong key, wrong context, or
    /// a damaged ciphertext.
    #[error("decryption failed: ciphertext is not authentic")]
    DecryptionFailed,
    /// 404 `policy does not exist`.
    #[error("policy does not exist")]
    PolicyNotFound,
    /// 404 `identity does not exist`.
    #[error("identity does not exist")]
    IdentityNotFound,
    /// Any other error answer of the server. `message` is the JSON `error` field if
    /// non-empty, else the JSON `message` field (for `application/json` answers), else the
    /// body text (at most 1 MiB, surrounding white space removed).
    #[error("{}", api_text(*.status, .message))]
    Api {
        /// HTTP status code.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// No connection could be made (refused, unreachable, DNS failure, ...).
    #[error("cannot connect to {endpoint}: {cause}")]
    Connect {
        /// The endpoint (`https://host:port`).
        endpoint: String,
        /// What the operating system or resolver reported.
        cause: String,
    },
    /// The TLS handshake failed or the server's certificate was rejected (untrusted,
    /// expired, wrong name), or the server rejected ours.
    #[error("TLS connection to {endpoint} failed: {failure}")]
    Tls {
        /// The endpoint (`https://host:port`).
        endpoint: String,
        /// What failed.
        failure: TlsFailure,
    },
    /// The request did not complete within the configured timeout.
    #[error("request to {endpoint} timed out")]
    Timeout {
        /// The endpoint (`https://host:port`).
        endpoint: String,
    },
    /// The connection broke while the request or response was under way (reset, closed,
    /// HTTP protocol error).
    #[error("connection to {endpoint} failed: {cause}")]
    Transport {
        /// The endpoint (`https://host:port`).
        endpoint: String,
        /// What went wrong.
        cause: String,
    },
    /// The server answered 200 with a body that is not what the API specifies.
    #[error("invalid response from {endpoint}: {reason}")]
    Decode {
        /// The endpoint (`https://host:port`).
        endpoint: String,
        /// What is wrong with the body.
        reason: String,
    },
    /// The builder was given no endpoint.
    #[error("no KES server endpoint specified")]
    NoEndpoints,
    /// An endpoint is not `host:port`, `https://host:port` or `http://host:port`.
    #[error("invalid KES server endpoint '{endpoint}': {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The client certificate, its private key or the API key cannot be used.
    #[error("invalid client credentials: {reason}")]
    InvalidCredentials {
        /// Why (never the key itself).
        reason: String,
    },
    /// A CA certificate given with `ca_pem`/`ca_file` cannot be used.
    #[error("invalid CA certificate: {reason}")]
    InvalidCaCertificate {
        /// Why.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read '{path}': {cause}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        cause: String,
    },
    /// An argument cannot be sent to the server (for example the key name `..`, which URL
    /// path normalisation would turn into another API path).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {cause}")]
    Setup {
        /// Why.
        cause: String,
    },
}

/// Why a TLS connection failed, from the TLS library's error value (never from its text,
/// except where the HTTP/2 stack passes on only the text: see [`Error::Tls`]'s sources).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsFailure {
    /// The server's certificate is not signed by a CA the client trusts.
    #[error("the server's certificate is signed by an unknown authority")]
    UnknownIssuer,
    /// The server's certificate does not name the host or IP address the client connected to.
    #[error("the server's certificate is not valid for this address")]
    NotValidForName,
    /// The server's certificate has expired.
    #[error("the server's certificate has expired")]
    Expired,
    /// The server's certificate was rejected for another reason: the TLS library's name
    /// for it (`BadSignature`, `NotValidYet`, ...) or, where it has one, its description.
    #[error("the server's certificate could not be verified ({0})")]
    OtherCertificateError(String),
    /// The server refused the client's certificate or its lack of one: it sent one of the
    /// certificate alerts (`CertificateRequired`, `BadCertificate`, `UnsupportedCertificate`,
    /// `CertificateRevoked`, `CertificateExpired`, `CertificateUnknown`, `UnknownCA`), named
    /// here.
    #[error("the server rejected the client certificate (received fatal alert: {alert})")]
    ClientCertificateRejected {
        /// The alert, as the TLS library names it (`CertificateRequired`).
        alert: String,
    },
    /// The server ended the handshake with a `handshake_failure` alert: nothing acceptable
    /// in common (cipher suites, signature schemes) or, with TLS 1.2, a client certificate
    /// required and not given.
    #[error("received fatal alert: HandshakeFailure")]
    HandshakeFailure,
    /// The server ended the handshake with a `protocol_version` alert: no TLS version in
    /// common.
    #[error("received fatal alert: ProtocolVersion")]
    ProtocolVersion,
    /// The server sent another fatal alert, named here (`InternalError`).
    #[error("received fatal alert: {0}")]
    Alert(String),
    /// Any other failure (a peer that does not speak TLS, a corrupt message, ...): the TLS
    /// library's description.
    #[error("{0}")]
    Other(String),
}

impl TlsFailure {
    /// Classifies a rustls error.
    pub(crate) fn from_rustls(err: &rustls::Error) -> TlsFailure {
        use rustls::CertificateError as Cert;
        match err {
            rustls::Error::InvalidCertificate(cert) => match cert {
                Cert::UnknownIssuer => TlsFailure::UnknownIssuer,
                Cert::NotValidForName | Cert::NotValidForNameContext { .. } => {
                    TlsFailure::NotValidForName
                }
                Cert::Expired | Cert::ExpiredContext { .. } => TlsFailure::Expired,
                other => {
                    // The description, without the fields (OIDs, byte strings) of the
                    // variants that rustls prints with `Debug`.
                    let text = other.to_string();
                    let name = text.split(" {").next().unwrap_or(&text);
                    TlsFailure::OtherCertificateError(name.to_owned())
                }
            },
            rustls::Error::AlertReceived(alert) => TlsFailure::from_alert(*alert),
            other => TlsFailure::Other(other.to_string()),
        }
    }

    /// Classifies a fatal alert received from the server.
    fn from_alert(alert: rustls::AlertDescription) -> TlsFailure {
        use rustls::AlertDescription as A;
        match alert {
            A::CertificateRequired
            | A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA => TlsFailure::ClientCertificateRejected {
                alert: format!("{alert:?}"),
            },
            A::HandshakeFailure => TlsFailure::HandshakeFailure,
            A::ProtocolVersion => TlsFailure::ProtocolVersion,
            other => TlsFailure::Alert(format!("{other:?}")),
        }
    }

    /// Classifies the text of a TLS error that reached us without its value: the HTTP/2
    /// stack (the `h2` crate) keeps only the text of the I/O errors of an established
    /// connection, so an alert the server sends after the handshake (TLS 1.3 servers refuse
    /// a client certificate then) arrives as rustls's `received fatal alert: <name>`. The
    /// name is looked up among rustls's own alert names; any other text is
    /// [`TlsFailure::Other`].
    fn from_relayed_text(text: &str) -> TlsFailure {
        let alert = text
            .strip_prefix("received fatal alert: ")
            .and_then(|name| {
                (0..=u8::MAX)
                    .map(rustls::AlertDescription::from)
                    .find(|alert| format!("{alert:?}") == name)
            });
        match alert {
            Some(alert) => TlsFailure::from_alert(alert),
            None => TlsFailure::Other(text.to_owned()),
        }
    }
}

fn api_text(status: u16, message: &str) -> String {
    if message.is_empty() {
        format!("server responded with HTTP status {status}")
    } else {
        message.to_owned()
    }
}

impl Error {
    /// The HTTP status of an error answer of the server (typed variants included), `None`
    /// for errors that are not answers.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::KeyExists | Self::DecryptionFailed => Some(400),
            Self::NotAllowed => Some(403),
            Self::KeyNotFound | Self::PolicyNotFound | Self::IdentityNotFound => Some(404),
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the request may not have reached the server (connection, TLS, timeout or
    /// transport failure). Such errors make the client try the next endpoint.
    #[must_use]
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Tls { .. } | Self::Timeout { .. } | Self::Transport { .. }
        )
    }

    /// Whether the same endpoint is worth asking again: network failures other than TLS
    /// failures (which repeat deterministically).
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Timeout { .. } | Self::Transport { .. }
        )
    }
}

/// Maps an error answer to an [`Error`], as the Go SDK does (kms-go `kes/error.go`): the
/// message comes from the JSON body when the content type is `application/json`, else from
/// the raw body; then `(status, message)` pairs select the typed variants.
pub(crate) fn error_from_response(status: u16, content_type: Option<&str>, body: &[u8]) -> Error {
    let is_json = content_type.is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    let message = is_json
        .then(|| json_message(body))
        .flatten()
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    match (status, message.as_str()) {
        (400, "key already exists" | "key does already exist") => Error::KeyExists,
        (404, "key does not exist") => Error::KeyNotFound,
        (403, "not authorized: insufficient permissions" | "prohibited by policy") => {
            Error::NotAllowed
        }
        (400, "decryption failed: ciphertext is not authentic") => Error::DecryptionFailed,
        (404, "policy does not exist") => Error::PolicyNotFound,
        (404, "identity does not exist") => Error::IdentityNotFound,
        _ => Error::Api { status, message },
    }
}

/// `error` if non-empty, else `message`; `None` if the body is not a JSON object.
fn json_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        error: Option<String>,
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: Body = serde::Deserialize::deserialize(&mut de).ok()?;
    match parsed.error {
        Some(e) if !e.is_empty() => Some(e),
        _ => Some(parsed.message.unwrap_or_default()),
    }
}

/// Classifies a failure of the HTTP stack for `endpoint`.
pub(crate) fn error_from_reqwest(err: &reqwest::Error, endpoint: &str) -> Error {
    let endpoint = endpoint.to_owned();
    if err.is_timeout() {
        return Error::Timeout { endpoint };
    }
    if let Some(tls) = find_rustls_error(err) {
        return Error::Tls {
            endpoint,
            failure: TlsFailure::from_rustls(tls),
        };
    }
    // The TLS stream reports its failures as `InvalidData` I/O errors wrapping the rustls
    // error; over HTTP/2 only their text is left (see `TlsFailure::from_relayed_text`).
    if has_io_kind(err, std::io::ErrorKind::InvalidData) {
        return Error::Tls {
            endpoint,
            failure: TlsFailure::from_relayed_text(&root_cause(err)),
        };
    }
    if err.is_connect() {
        return Error::Connect {
            endpoint,
            cause: root_cause(err),
        };
    }
    Error::Transport {
        endpoint,
        cause: cause_chain(err),
    }
}

/// Walks the source chain, looking through `io::Error` wrappers (whose `source()` skips the
/// wrapped error itself), for a rustls error.
fn find_rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

fn has_io_kind(err: &(dyn StdError + 'static), kind: std::io::ErrorKind) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// The chain of causes below the top-level reqwest error, joined with `: `.
fn cause_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        current = e.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

/// The innermost cause, e.g. `Connection refused (os error 111)`.
fn root_cause(err: &(dyn StdError + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");

    fn json_body(message: &str) -> Vec<u8> {
        kes_api::encode_error(message)
    }

    #[test]
    fn typed_errors_need_status_and_exact_message() {
        let cases = [
            (400, "key already exists", Error::KeyExists),
            (400, "key does already exist", Error::KeyExists),
            (404, "key does not exist", Error::KeyNotFound),
            (
                403,
                "not authorized: insufficient permissions",
                Error::NotAllowed,
            ),
            (403, "prohibited by policy", Error::NotAllowed),
            (
                400,
                "decryption failed: ciphertext is not authentic",
                Error::DecryptionFailed,
            ),
            (404, "policy does not exist", Error::PolicyNotFound),
            (404, "identity does not exist", Error::IdentityNotFound),
        ];
        for (status, msg, want) in cases {
            assert_eq!(
                error_from_response(status, JSON, &json_body(msg)),
                want,
                "{msg}"
            );
            // The same text with another status is not the typed error.
            let other = if status == 404 { 400 } else { 404 };
            assert_eq!(
                error_from_response(other, JSON, &json_body(msg)),
                Error::Api {
                    status: other,
                    message: msg.into()
                }
            );
        }
        assert_eq!(
            error_from_response(400, JSON, &json_body("Key already exists")),
            Error::Api {
                status: 400,
                message: "Key already exists".into()
            }
        );
    }

    #[test]
    fn message_sources_follow_the_sdk() {
        // `error` wins over `message` when non-empty.
        let body = br#"{"message":"m","error":"key does not exist"}"#;
        assert_eq!(error_from_response(404, JSON, body), Error::KeyNotFound);
        let body = br#"{"message":"key does not exist","error":""}"#;
        assert_eq!(error_from_response(404, JSON, body), Error::KeyNotFound);
        // Content type with parameters.
        let body = json_body("key does not exist");
        assert_eq!(
            error_from_response(404, Some("application/json; charset=utf-8"), &body),
            Error::KeyNotFound
        );
        // Non-JSON bodies are the message verbatim (trimmed).
        assert_eq!(
            error_from_response(
                404,
                Some("text/plain; charset=utf-8"),
                b"404 page not found\n"
            ),
            Error::Api {
                status: 404,
                message: "404 page not found".into()
            }
        );
        assert_eq!(
            error_from_response(404, None, b"key does not exist"),
            Error::KeyNotFound
        );
        // A JSON content type with a body that is not JSON falls back to the text.
        assert_eq!(
            error_from_response(502, JSON, b"bad gateway"),
            Error::Api {
                status: 502,
                message: "bad gateway".into()
            }
        );
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(Error::KeyNotFound.to_string(), "key does not exist");
        assert_eq!(
            Error::Api {
                status: 502,
                message: "failed to read key".into()
            }
            .to_string(),
            "failed to read key"
        );
        assert_eq!(
            Error::Api {
                status: 500,
                message: String::new()
            }
            .to_string(),
            "server responded with HTTP status 500"
        );
        let e = Error::Connect {
            endpoint: "https://127.0.0.1:7373".into(),
            cause: "Connection refused (os error 111)".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot connect to https://127.0.0.1:7373: Connection refused (os error 111)"
        );
        assert_eq!(Error::KeyExists.status(), Some(400));
        assert_eq!(e.status(), None);
        assert!(e.is_network() && e.is_retryable());
        let tls = Error::Tls {
            endpoint: "https://x:1".into(),
            failure: TlsFailure::UnknownIssuer,
        };
        assert!(tls.is_network() && !tls.is_retryable());
        assert_eq!(
            tls.to_string(),
            "TLS connection to https://x:1 failed: the server's certificate is signed by an \
             unknown authority"
        );
    }

    #[test]
    fn certificate_errors_are_classified_by_value() {
        use rustls::CertificateError as Cert;
        use rustls_pki_types::{ServerName, UnixTime};
        let cases = [
            (Cert::UnknownIssuer, TlsFailure::UnknownIssuer),
            (Cert::NotValidForName, TlsFailure::NotValidForName),
            (
                Cert::NotValidForNameContext {
                    expected: ServerName::try_from("kes.local").unwrap(),
                    presented: vec!["other.local".into()],
                },
                TlsFailure::NotValidForName,
            ),
            (Cert::Expired, TlsFailure::Expired),
            (
                Cert::ExpiredContext {
                    time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(200)),
                    not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(100)),
                },
                TlsFailure::Expired,
            ),
            (
                Cert::BadSignature,
                TlsFailure::OtherCertificateError("BadSignature".into()),
            ),
            (
                Cert::NotValidYet,
                TlsFailure::OtherCertificateError("NotValidYet".into()),
            ),
            // A revocation list that expired is not an expired certificate.
            (
                Cert::ExpiredRevocationList,
                TlsFailure::OtherCertificateError("ExpiredRevocationList".into()),
            ),
            // Fields printed with `Debug` are left out.
            (
                Cert::UnsupportedSignatureAlgorithmContext {
                    signature_algorithm_id: vec![1, 2, 3],
                    supported_algorithms: Vec::new(),
                },
                TlsFailure::OtherCertificateError("UnsupportedSignatureAlgorithmContext".into()),
            ),
        ];
        for (cert, want) in cases {
            let err = rustls::Error::InvalidCertificate(cert);
            assert_eq!(TlsFailure::from_rustls(&err), want, "{err}");
        }
        assert_eq!(
            TlsFailure::from_rustls(&rustls::Error::DecryptError),
            TlsFailure::Other("cannot decrypt peer's message".into())
        );
    }

    #[test]
    fn alerts_are_classified_by_value_and_by_their_relayed_text() {
        use rustls::AlertDescription as A;
        let rejected = |alert: &str| TlsFailure::ClientCertificateRejected {
            alert: alert.into(),
        };
        let cases = [
            (A::CertificateRequired, rejected("CertificateRequired")),
            (A::BadCertificate, rejected("BadCertificate")),
            (
                A::UnsupportedCertificate,
                rejected("UnsupportedCertificate"),
            ),
            (A::CertificateRevoked, rejected("CertificateRevoked")),
            (A::CertificateExpired, rejected("CertificateExpired")),
            (A::CertificateUnknown, rejected("CertificateUnknown")),
            (A::UnknownCA, rejected("UnknownCA")),
            (A::HandshakeFailure, TlsFailure::HandshakeFailure),
            (A::ProtocolVersion, TlsFailure::ProtocolVersion),
            (A::InternalError, TlsFailure::Alert("InternalError".into())),
        ];
        for (alert, want) in cases {
            let err = rustls::Error::AlertReceived(alert);
            assert_eq!(TlsFailure::from_rustls(&err), want, "{err}");
            // What HTTP/2 passes on is rustls's text of the same error.
            assert_eq!(TlsFailure::from_relayed_text(&err.to_string()), want);
        }
        assert_eq!(
            TlsFailure::from_relayed_text("received fatal alert: Nonsense"),
            TlsFailure::Other("received fatal alert: Nonsense".into())
        );
        assert_eq!(
            TlsFailure::from_relayed_text("stream closed"),
            TlsFailure::Other("stream closed".into())
        );
    }
}
