//! Errors of the AWS Secrets Manager keystore.
//!
//! Every error names the backend, the operation and its key, the Secrets Manager action and
//! the endpoint, and — when the service answered — the HTTP status and the service's error code
//! (`ResourceExistsException`, `ThrottlingException`, `AccessDeniedException`, …) with its
//! message. None carries a secret: the SDK's errors hold no credentials, and the service's
//! message is cut to a bounded length, stripped of control characters, and cleared of the value
//! the call sent before it is kept.

use std::fmt;

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// The backend's name, as errors start.
pub(crate) const NAME: &str = "aws";

/// The longest excerpt of the service's message kept in an error.
const MAX_MESSAGE: usize = 300;

/// The error codes with which AWS says "slow down" (the SDK's throttling list).
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// One keystore operation, as errors name it: `create 'my-key'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Op {
    /// `create`, `get`, `delete`, `list`, `status`, `connect`.
    pub name: &'static str,
    /// The key the operation is about, if any.
    pub key: Option<String>,
}

impl Op {
    pub(crate) fn new(name: &'static str) -> Self {
        Self { name, key: None }
    }

    pub(crate) fn key(name: &'static str, key: &str) -> Self {
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

/// Why an operation of the AWS keystore failed.
#[derive(Debug)]
pub struct AwsError {
    op: Op,
    /// `CreateSecret at https://secretsmanager.us-east-2.amazonaws.com`.
    call: String,
    kind: Kind,
}

/// What went wrong.
#[derive(Debug)]
enum Kind {
    /// The service answered with an error.
    Service {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer: connection refused or reset, DNS, TLS, or a timeout.
    Network { cause: String },
    /// No usable credentials: the chain found none, or a provider of it failed.
    Credentials { cause: String },
    /// An answer that could not be understood.
    Invalid { reason: String },
    /// A problem found without the service.
    Local(String),
}

impl AwsError {
    /// The error of a failed SDK call; `redact` are strings the call sent that must not appear.
    pub(crate) fn sdk<E>(
        op: &Op,
        call: String,
        err: &SdkError<E, HttpResponse>,
        redact: &[&str],
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let kind = if let Some(cause) = credentials_cause(err) {
            Kind::Credentials { cause }
        } else {
            match err {
                SdkError::ServiceError(ctx) => {
                    let body = ctx.raw().body().bytes().unwrap_or_default();
                    let (code, message) = match ctx.err().code() {
                        Some(code) => (code.to_owned(), ctx.err().message().unwrap_or("")),
                        // Not the JSON error of the service (a proxy's, an emulator's XML): the
                        // `<Code>` and `<Message>` of an AWS XML error, if it is one.
                        None => (
                            xml_element(body, "Code").unwrap_or_default().to_owned(),
                            xml_element(body, "Message").unwrap_or_default(),
                        ),
                    };
                    Kind::Service {
                        status: ctx.raw().status().as_u16(),
                        code: clean(&code, &[]),
                        message: clean(message, redact),
                    }
                }
                SdkError::TimeoutError(_) => Kind::Network {
                    cause: "timed out".to_owned(),
                },
                SdkError::DispatchFailure(_) => Kind::Network {
                    cause: clean(&chain(err), redact),
                },
                SdkError::ResponseError(_) => Kind::Invalid {
                    reason: clean(&chain(err), redact),
                },
                // Construction failures and any kind a later SDK adds.
                _ => Kind::Local(clean(&chain(err), redact)),
            }
        };
        Self {
            op: op.clone(),
            call,
            kind,
        }
    }

    /// A network failure outside the SDK (the status check).
    pub(crate) fn network(op: &Op, call: String, cause: String) -> Self {
        Self {
            op: op.clone(),
            call,
            kind: Kind::Network { cause },
        }
    }

    /// An answer that could not be used.
    pub(crate) fn invalid(op: &Op, call: String, reason: impl Into<String>) -> Self {
        Self {
            op: op.clone(),
            call,
            kind: Kind::Invalid {
                reason: reason.into(),
            },
        }
    }

    /// A problem found before anything was sent.
    pub(crate) fn local(op: &Op, message: impl Into<String>) -> Self {
        Self {
            op: op.clone(),
            call: String::new(),
            kind: Kind::Local(message.into()),
        }
    }

    /// The service's error code (`ResourceNotFoundException`, …), when it answered with one.
    pub fn code(&self) -> Option<&str> {
        match &self.kind {
            Kind::Service { code, .. } if !code.is_empty() => Some(code),
            _ => None,
        }
    }

    /// Whether this error means that the service cannot be reached or cannot serve now: no
    /// answer, a 5xx, or throttling that outlasted the retries.
    pub fn is_unreachable(&self) -> bool {
        match &self.kind {
            Kind::Network { .. } => true,
            Kind::Service { status, code, .. } => {
                *status >= 500 || *status == 429 || THROTTLING.contains(&code.as_str())
            }
            Kind::Credentials { .. } | Kind::Invalid { .. } | Kind::Local(_) => false,
        }
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{NAME}: {}: ", self.op)?;
        if !self.call.is_empty() {
            write!(f, "{}: ", self.call)?;
        }
        match &self.kind {
            Kind::Service {
                status,
                code,
                message,
            } => {
                if code.is_empty() {
                    write!(f, "HTTP {status}")?;
                } else {
                    write!(f, "{code} (HTTP {status})")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                if matches!(
                    code.as_str(),
                    "UnrecognizedClientException" | "InvalidClientTokenId"
                ) {
                    f.write_str(" (the access key is not known: check credentials.accesskey)")?;
                } else if matches!(
                    code.as_str(),
                    "InvalidSignatureException" | "SignatureDoesNotMatch"
                ) {
                    f.write_str(" (check credentials.secretkey and the region)")?;
                } else if code == "ExpiredTokenException" {
                    f.write_str(" (the session token has expired: renew credentials.token)")?;
                }
                Ok(())
            }
            Kind::Network { cause } => write!(f, "no answer: {cause}"),
            Kind::Credentials { cause } => write!(f, "no usable AWS credentials: {cause}"),
            Kind::Invalid { reason } => write!(f, "invalid response: {reason}"),
            Kind::Local(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for AwsError {}

impl From<AwsError> for kes_keystore::Error {
    fn from(err: AwsError) -> Self {
        if err.is_unreachable() {
            kes_keystore::Error::unreachable(err)
        } else {
            kes_keystore::Error::other(err)
        }
    }
}

/// The text of a credentials provider's failure in `err`'s chain of sources, if any.
fn credentials_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    // A bounded walk: a chain of sources is short, but it is not ours.
    for _ in 0..32 {
        let current = source?;
        if let Some(found) =
            current.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
        {
            return Some(clean(&DisplayErrorContext(found).to_string(), &[]));
        }
        source = current.source();
    }
    None
}

/// The text of the first `<tag>` element of an XML body, if it is short plain text.
fn xml_element<'a>(body: &'a [u8], tag: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = text.find(&open)?.checked_add(open.len())?;
    let rest = text.get(start..)?;
    let value = rest.get(..rest.find('<')?)?;
    (value.len() <= 1000).then_some(value)
}

/// `err` and its sources, as the SDK prints them.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    DisplayErrorContext(err).to_string()
}

/// Strings shorter than this are not redacted: replacing every `x` of a message would only
/// garble it, and a key record is never that short.
const MIN_REDACTED: usize = 8;

/// `text` without the strings of `redact`, without control characters, cut to length.
pub(crate) fn clean(text: &str, redact: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in redact {
        if secret.len() >= MIN_REDACTED {
            text = text.replace(secret, "[REDACTED]");
        }
    }
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE)
        .collect();
    if text.chars().count() > MAX_MESSAGE {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_redacted_cleaned_and_cut() {
        let text = clean(
            "bad value {\"bytes\":\"c2VjcmV0\"}\nnext",
            &["{\"bytes\":\"c2VjcmV0\"}"],
        );
        assert_eq!(text, "bad value [REDACTED] next");
        let long = clean(&"x".repeat(1000), &[]);
        assert!(long.chars().count() == MAX_MESSAGE + 1 && long.ends_with('…'));
    }

    #[test]
    fn xml_errors_give_their_code() {
        let body = b"<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>bad</Message></Error></Errors></ErrorResponse>";
        assert_eq!(xml_element(body, "Code"), Some("InvalidClientTokenId"));
        assert_eq!(xml_element(body, "Message"), Some("bad"));
        assert_eq!(xml_element(b"{}", "Code"), None);
        assert_eq!(xml_element(b"<Code>unterminated", "Code"), None);
    }

    #[test]
    fn operations_name_their_key() {
        assert_eq!(Op::key("create", "my-key").to_string(), "create 'my-key'");
        assert_eq!(Op::new("list").to_string(), "list");
        let err = AwsError::local(&Op::key("get", "k\n"), "closed");
        assert_eq!(err.to_string(), "aws: get 'k\\n': closed");
        assert!(!err.is_unreachable());
    }

    #[test]
    fn unreachable_is_no_answer_5xx_and_throttling() {
        let op = Op::new("get");
        let service = |status: u16, code: &str| AwsError {
            op: op.clone(),
            call: "GetSecretValue at https://x".into(),
            kind: Kind::Service {
                status,
                code: code.into(),
                message: String::new(),
            },
        };
        assert!(service(400, "ThrottlingException").is_unreachable());
        assert!(service(429, "").is_unreachable());
        assert!(service(503, "ServiceUnavailable").is_unreachable());
        assert!(!service(400, "AccessDeniedException").is_unreachable());
        assert_eq!(
            service(400, "ThrottlingException").to_string(),
            "aws: get: GetSecretValue at https://x: ThrottlingException (HTTP 400)"
        );
        assert_eq!(service(400, "X").code(), Some("X"));
        assert!(AwsError::network(&op, "c".into(), "refused".into()).is_unreachable());
    }
}
