//! Errors of the Vault key store.
//!
//! Every error that comes from a call names the call — method, Vault path and endpoint — and,
//! when Vault answered, the HTTP status and Vault's own messages. None ever carries the Vault
//! token or a stored value: Vault's messages are cut to a bounded length, stripped of control
//! characters, and every secret the call sent is replaced by `[REDACTED]` before the message is
//! kept.

use std::fmt;

/// The longest excerpt of Vault's error messages kept in an error.
const MAX_MESSAGES: usize = 300;

/// One call to Vault, as errors name it: `PUT /v1/kv/data/my-key at https://vault:8200`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    /// The HTTP method.
    pub method: &'static str,
    /// The request path with its query, e.g. `/v1/kv/data/my-key?version=1`.
    pub path: String,
    /// The endpoint (scheme, host and port) the call went to.
    pub endpoint: String,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} at {}", self.method, self.path, self.endpoint)
    }
}

/// Why a Vault operation failed.
#[derive(Debug)]
pub(crate) enum VaultError {
    /// The call did not get an answer: connection refused or reset, timeout, TLS failure.
    Network {
        /// The call.
        call: Call,
        /// What went wrong, from the HTTP stack (no URL, no headers).
        cause: String,
    },
    /// Vault answered with a status the operation does not expect.
    Status {
        /// The call.
        call: Call,
        /// The HTTP status code.
        status: u16,
        /// Vault's `errors`, joined, redacted and cut to length (may be empty).
        messages: String,
    },
    /// Vault's answer could not be understood (bad JSON, missing field, too large).
    Response {
        /// The call.
        call: Call,
        /// What is wrong with it.
        reason: String,
    },
    /// The health checks found every reachable Vault endpoint sealed or uninitialized.
    Sealed,
    /// The key store was closed.
    Closed,
    /// A problem found before anything was sent: an unusable name, configuration or file.
    Local(String),
}

impl VaultError {
    /// A [`VaultError::Status`] with Vault's messages from `body`, with every string of
    /// `redact` removed from them.
    pub fn status(call: Call, status: u16, body: &[u8], redact: &[&str]) -> Self {
        let messages = vault_messages(body);
        Self::Status {
            call,
            status,
            messages: clean(&messages, redact),
        }
    }

    /// Whether this error means that Vault could not be reached or cannot serve requests.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Network { .. } | Self::Sealed => true,
            Self::Status { status, .. } => *status == 503,
            Self::Response { .. } | Self::Closed | Self::Local(_) => false,
        }
    }

    /// The HTTP status Vault answered with, if it did.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether Vault's messages contain `text`.
    pub fn mentions(&self, text: &str) -> bool {
        matches!(self, Self::Status { messages, .. } if messages.contains(text))
    }
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network { call, cause } => write!(f, "vault: {call}: {cause}"),
            Self::Status {
                call,
                status,
                messages,
            } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "vault: {call}: {status}")?;
                if !reason.is_empty() {
                    write!(f, " {reason}")?;
                }
                if !messages.is_empty() {
                    write!(f, ": {messages}")?;
                }
                Ok(())
            }
            Self::Response { call, reason } => {
                write!(f, "vault: {call}: invalid response: {reason}")
            }
            Self::Sealed => f.write_str("vault: key store is sealed"),
            Self::Closed => f.write_str("vault: key store is closed"),
            Self::Local(message) => write!(f, "vault: {message}"),
        }
    }
}

impl std::error::Error for VaultError {}

impl From<VaultError> for kes_keystore::Error {
    fn from(err: VaultError) -> Self {
        if err.is_unreachable() {
            kes_keystore::Error::unreachable(err)
        } else {
            kes_keystore::Error::other(err)
        }
    }
}

/// Vault's error messages from an error body (`{"errors":["…", …]}`), joined with `; `.
///
/// Vault often wraps a message in a Go multi-error (`1 error occurred:\n\t* permission
/// denied\n\n`); the wrapper is dropped and only the messages are kept.
fn vault_messages(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<String>,
    }
    let Ok(parsed) = serde_json::from_slice::<Errors>(body) else {
        // Not Vault's JSON (a proxy's HTML page, say): keep nothing of it.
        return String::new();
    };
    let mut messages = Vec::new();
    for error in &parsed.errors {
        for line in error.lines() {
            let line = line.trim();
            let line = line.strip_prefix("* ").unwrap_or(line).trim();
            let wrapper = line.split_once(' ').is_some_and(|(n, rest)| {
                n.bytes().all(|b| b.is_ascii_digit())
                    && (rest == "error occurred:" || rest == "errors occurred:")
            });
            if !line.is_empty() && !wrapper {
                messages.push(line);
            }
        }
    }
    messages.join("; ")
}

/// `text` without the strings of `redact`, without control characters, cut to length.
pub(crate) fn clean(text: &str, redact: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in redact {
        if !secret.is_empty() {
            text = text.replace(secret, "[REDACTED]");
        }
    }
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGES)
        .collect();
    if text.chars().count() > MAX_MESSAGES {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> Call {
        Call {
            method: "GET",
            path: "/v1/kv/data/my-key?version=1".into(),
            endpoint: "https://127.0.0.1:8200".into(),
        }
    }

    #[test]
    fn status_errors_name_method_path_endpoint_status_and_vault_messages() {
        let err = VaultError::status(call(), 403, br#"{"errors":["permission denied"]}"#, &[]);
        assert_eq!(
            err.to_string(),
            "vault: GET /v1/kv/data/my-key?version=1 at https://127.0.0.1:8200: 403 Forbidden: permission denied"
        );
        assert!(!err.is_unreachable());
        assert!(matches!(
            kes_keystore::Error::from(err),
            kes_keystore::Error::Other(_)
        ));
    }

    #[test]
    fn several_messages_are_joined_and_a_non_json_body_is_dropped() {
        let err = VaultError::status(call(), 400, br#"{"errors":["a","b"]}"#, &[]);
        assert!(
            err.to_string().ends_with(": 400 Bad Request: a; b"),
            "{err}"
        );
        let err = VaultError::status(call(), 502, b"<html>token=abc</html>", &[]);
        assert!(err.to_string().ends_with(": 502 Bad Gateway"), "{err}");
    }

    #[test]
    fn secrets_in_vault_messages_are_redacted() {
        let token = "hvs.CAESIsecrettoken";
        let body = format!(r#"{{"errors":["bad token {token}\nsecond line"]}}"#);
        let err = VaultError::status(call(), 403, body.as_bytes(), &[token, ""]);
        let text = err.to_string();
        assert!(!text.contains(token), "{text}");
        assert!(text.contains("bad token [REDACTED]; second line"), "{text}");
    }

    #[test]
    fn go_multi_errors_are_unwrapped() {
        let body = br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#;
        let err = VaultError::status(call(), 403, body, &[]);
        assert!(
            err.to_string()
                .ends_with(": 403 Forbidden: permission denied"),
            "{err}"
        );
        let body = br#"{"errors":["2 errors occurred:\n\t* a\n\t* b\n\n"]}"#;
        let err = VaultError::status(call(), 400, body, &[]);
        assert!(
            err.to_string().ends_with(": 400 Bad Request: a; b"),
            "{err}"
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let body = format!(r#"{{"errors":["{}"]}}"#, "x".repeat(10_000));
        let text = VaultError::status(call(), 500, body.as_bytes(), &[]).to_string();
        assert!(text.len() < 500, "{}", text.len());
        assert!(text.ends_with('…'));
    }

    #[test]
    fn unreachable_covers_network_sealed_and_503() {
        let network = VaultError::Network {
            call: call(),
            cause: "connection refused".into(),
        };
        assert_eq!(
            network.to_string(),
            "vault: GET /v1/kv/data/my-key?version=1 at https://127.0.0.1:8200: connection refused"
        );
        assert!(network.is_unreachable());
        assert!(matches!(
            kes_keystore::Error::from(network),
            kes_keystore::Error::Unreachable(_)
        ));
        assert!(VaultError::Sealed.is_unreachable());
        assert_eq!(VaultError::Sealed.to_string(), "vault: key store is sealed");
        let sealed = VaultError::status(call(), 503, br#"{"errors":["Vault is sealed"]}"#, &[]);
        assert!(sealed.is_unreachable());
        assert!(!VaultError::Closed.is_unreachable());
        assert!(!VaultError::Local("x".into()).is_unreachable());
    }
}
