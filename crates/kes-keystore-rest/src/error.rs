//! Errors of the enterprise keystores: `<backend>: <operation> '<key>': <call>: <what>`.
//!
//! None ever carries a credential or a stored value: the vendor's error text is cut to a
//! bounded length, stripped of control characters, and every secret the call sent is replaced
//! by `[REDACTED]` before it is kept.

use std::fmt;

/// The longest excerpt of a vendor's error text kept in an error.
const MAX_MESSAGE: usize = 300;

/// The operation a call belongs to, as errors name it: `create 'my-key'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// `create`, `get`, `delete`, `list`, `status`, `login`, …
    pub name: &'static str,
    /// The key the operation is about, if any.
    pub key: Option<String>,
}

impl Op {
    /// An operation about no key.
    pub fn new(name: &'static str) -> Self {
        Self { name, key: None }
    }

    /// An operation about `key`.
    pub fn key(name: &'static str, key: &str) -> Self {
        Self {
            name,
            key: Some(key.to_owned()),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        if let Some(key) = &self.key {
            write!(f, " '{}'", key.escape_debug())?;
        }
        Ok(())
    }
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// No answer: connection refused or reset, timeout, TLS failure.
    Network {
        /// `METHOD /path at <endpoint>`.
        call: String,
        /// What the HTTP stack said (no URL, no headers).
        cause: String,
    },
    /// An answer with a status the operation does not expect.
    Status {
        /// `METHOD /path at <endpoint>`.
        call: String,
        /// The HTTP status.
        status: u16,
        /// The vendor's error text, redacted and cut to length (may be empty).
        message: String,
    },
    /// An answer that could not be understood.
    Invalid {
        /// `METHOD /path at <endpoint>`.
        call: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing was sent: a bad name, configuration or file, or the store is closed.
    Local(String),
}

/// Why an operation of an enterprise keystore failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestError {
    /// `fortanix`, `gemalto`, `entrust`.
    pub backend: &'static str,
    /// The operation.
    pub op: Op,
    /// What went wrong.
    pub kind: Kind,
}

impl RestError {
    /// An error of `backend` in `op`.
    pub fn new(backend: &'static str, op: &Op, kind: Kind) -> Self {
        Self {
            backend,
            op: op.clone(),
            kind,
        }
    }

    /// A local error (nothing was sent).
    pub fn local(backend: &'static str, op: &Op, message: impl Into<String>) -> Self {
        Self::new(backend, op, Kind::Local(message.into()))
    }

    /// Whether the call got no answer.
    pub fn is_network(&self) -> bool {
        matches!(self.kind, Kind::Network { .. })
    }

    /// The HTTP status of the answer, if there was one with an unexpected status.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            Kind::Status { status, .. } => Some(status),
            _ => None,
        }
    }

    /// Whether the key manager could not be reached or cannot serve requests now.
    pub fn is_unreachable(&self) -> bool {
        match &self.kind {
            Kind::Network { .. } => true,
            Kind::Status { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

impl fmt::Display for RestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: ", self.backend, self.op)?;
        match &self.kind {
            Kind::Network { call, cause } => write!(f, "{call}: {cause}"),
            Kind::Status {
                call,
                status,
                message,
            } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "{call}: {status}")?;
                if !reason.is_empty() {
                    write!(f, " {reason}")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Kind::Invalid { call, reason } => write!(f, "{call}: invalid response: {reason}"),
            Kind::Local(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for RestError {}

impl From<RestError> for kes_keystore::Error {
    fn from(err: RestError) -> Self {
        if err.is_unreachable() {
            kes_keystore::Error::unreachable(err)
        } else {
            kes_keystore::Error::other(err)
        }
    }
}

/// `text` without the strings of `redact`, without control characters, cut to length.
pub fn clean(text: &str, redact: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in redact {
        if !secret.is_empty() {
            text = text.replace(secret, "[REDACTED]");
        }
    }
    let mut out: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE)
        .collect();
    if text.trim().chars().count() > MAX_MESSAGE {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_backend_operation_key_call_status_and_vendor_text() {
        let err = RestError::new(
            "fortanix",
            &Op::key("create", "my-key"),
            Kind::Status {
                call: "PUT /crypto/v1/keys at https://dsm".into(),
                status: 409,
                message: clean("sobject already exists\n", &[]),
            },
        );
        assert_eq!(
            err.to_string(),
            "fortanix: create 'my-key': PUT /crypto/v1/keys at https://dsm: 409 Conflict: sobject already exists"
        );
        assert!(!err.is_unreachable());
        assert!(matches!(
            kes_keystore::Error::from(err),
            kes_keystore::Error::Other(_)
        ));
        let err = RestError::new(
            "entrust",
            &Op::new("status"),
            Kind::Network {
                call: "POST /vault/1.0/GetBox/ at https://kc".into(),
                cause: "connection refused".into(),
            },
        );
        assert!(err.is_unreachable());
        assert!(matches!(
            kes_keystore::Error::from(err),
            kes_keystore::Error::Unreachable(_)
        ));
    }

    #[test]
    fn secrets_are_redacted_and_long_texts_cut() {
        assert_eq!(
            clean("bad token abc123 here", &["abc123", ""]),
            "bad token [REDACTED] here"
        );
        let long = clean(&"x".repeat(5000), &[]);
        assert!(long.chars().count() <= MAX_MESSAGE + 1);
        assert!(long.ends_with('…'));
    }
}
