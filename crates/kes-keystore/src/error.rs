//! The error type of key stores.

/// A boxed error from a backend.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a [`KeyStore`](crate::KeyStore) operation failed.
///
/// No variant ever carries a stored value: backends put the operation and the key name into
/// their errors, never the bytes they read or were asked to write.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named key does not exist: returned by `get`, and by `delete` in stores that
    /// report deleting a missing key.
    #[error("key does not exist")]
    NotFound,

    /// A key of that name already exists: returned by `create`, which never overwrites.
    #[error("key already exists")]
    Exists,

    /// The stored value is no longer the one a `replace` expected: someone else changed the
    /// key meanwhile (compare-and-swap lost the race). Read it again and retry.
    #[error("the key was changed concurrently")]
    Changed,

    /// The backend cannot replace a value atomically (compare-and-swap), so operations that
    /// need it (key rotation) are refused.
    #[error("this keystore cannot replace a key atomically: {0}")]
    Unsupported(&'static str),

    /// The backend cannot be reached (network failure, timeout, sealed or missing storage).
    /// The server reports such a store as unreachable and may keep serving cached keys.
    #[error("keystore is unreachable: {0}")]
    Unreachable(BoxError),

    /// Any other failure: the backend answered but refused or failed the operation, the name
    /// cannot be stored by this backend, the stored value is unusable, and so on.
    #[error(transparent)]
    Other(BoxError),
}

impl Error {
    /// An [`Error::Unreachable`] caused by `cause`.
    pub fn unreachable(cause: impl Into<BoxError>) -> Self {
        Self::Unreachable(cause.into())
    }

    /// An [`Error::Other`] caused by `cause`.
    pub fn other(cause: impl Into<BoxError>) -> Self {
        Self::Other(cause.into())
    }
}
