//! API errors: an HTTP status and the exact message text KES clients compare against.
//!
//! The status of an error comes from the error value itself, never from its message text. The
//! (status, message) pairs are those of the original server (spec §2.2): the Go SDK compares
//! both, so a different text breaks `errors.Is` checks in MinIO.

use std::borrow::Cow;

use http::StatusCode;

/// An error answered to the client as `{"message": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
}

impl ApiError {
    /// An error with any status and message.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// 400 key already exists.
    pub fn key_exists() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "key already exists")
    }

    /// 404 key does not exist.
    pub fn key_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "key does not exist")
    }

    /// 403 for unknown identities and policy denials.
    pub fn not_allowed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "not authorized: insufficient permissions",
        )
    }

    /// 400 for every decryption failure.
    pub fn decrypt_failed() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "decryption failed: ciphertext is not authentic",
        )
    }

    /// 404 policy does not exist.
    pub fn policy_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "policy does not exist")
    }

    /// 404 identity does not exist.
    pub fn identity_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "identity does not exist")
    }

    /// 400 for a key name that breaks the naming rules.
    pub fn invalid_key_name(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("key name '{name}' is empty, too long or contains invalid characters"),
        )
    }

    /// 400 for a policy name that breaks the naming rules.
    pub fn invalid_policy_name(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("policy name '{name}' is empty, too long or contains invalid characters"),
        )
    }

    /// 400 for a well-formed name that is not an identity (64 lower-case hex characters).
    pub fn not_an_identity(identity: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!(
                "identity '{identity}' is invalid: an identity is 64 lower-case hexadecimal characters"
            ),
        )
    }

    /// 400: a policy change that would change the caller's own permissions.
    pub fn own_policy(action: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("identity cannot {action} the policy assigned to itself"),
        )
    }

    /// 400: the identity is empty, too long or not of the name alphabet.
    pub fn invalid_identity(identity: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("identity '{identity}' is empty, too long or contains invalid characters"),
        )
    }

    /// 400 for an invalid listing pattern.
    pub fn invalid_pattern(pattern: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            format!("listing pattern '{pattern}' is empty, too long or is invalid"),
        )
    }

    /// 400 for a request body that is not valid JSON or too large.
    pub fn invalid_body() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid request body")
    }

    /// 400 for an import body that is not valid JSON or too large.
    pub fn invalid_import_body() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid import key request body")
    }

    /// 405 for a request with the wrong method.
    pub fn method_not_allowed(got: &str, want: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("received method '{got}' expected '{want}'"),
        )
    }

    /// 400 when a route needs a client certificate and none was sent.
    pub fn certificate_required() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "tls: client certificate is required",
        )
    }

    /// 400 when a client sent more than one leaf certificate.
    pub fn too_many_certificates() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "tls: received more than one client certificate",
        )
    }

    /// 409 for HMAC on a legacy key without HMAC key.
    pub fn hmac_unsupported() -> Self {
        Self::new(StatusCode::CONFLICT, "key does not support HMAC")
    }

    /// 400 for a `version` that is not `v<N>` or `<N>`.
    pub fn invalid_key_version() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid key version")
    }

    /// 404 for a version the key does not keep (never made, or removed).
    pub fn key_version_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "key version does not exist")
    }

    /// 400 for a rotation or version removal the key's versions do not allow.
    pub fn versions_refused(why: &kes_crypto::RingError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, why.to_string())
    }

    /// 501 when the keystore cannot update a key atomically, which rotation needs.
    pub fn rotation_unsupported() -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            "key rotation is not supported by this keystore",
        )
    }

    /// 409 when other servers kept changing the key while it was being rotated.
    pub fn key_busy() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "key was changed concurrently: try again",
        )
    }

    /// 502 when the keystore fails to store a new version of a key.
    pub fn rotate_failed() -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "failed to update key")
    }

    /// 502 when the keystore fails to create a key.
    pub fn create_failed() -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "failed to create key")
    }

    /// 500 when creating or importing a key fails in the server itself (the random generator,
    /// encoding the record), before the keystore is asked: not the keystore's fault, so not 502.
    pub fn create_failed_locally() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "failed to create key")
    }

    /// 502 when the keystore fails to read a key or its record cannot be parsed.
    pub fn read_failed() -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "failed to read key")
    }

    /// 502 when the keystore fails to delete a key.
    pub fn delete_failed() -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "failed to delete key")
    }

    /// 502 when the keystore fails to list keys.
    pub fn list_failed() -> Self {
        Self::new(StatusCode::BAD_GATEWAY, "failed to list keys")
    }

    /// 500 when the random number generator fails.
    pub fn generate_failed() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to generate encryption key",
        )
    }

    /// 500 when sealing fails.
    pub fn encrypt_failed() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to encrypt plaintext",
        )
    }

    /// 503 when a route's timeout expires before the handler finished.
    pub fn timeout() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "request timeout exceeded")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}
