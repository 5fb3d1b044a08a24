//! A string that must not be printed: passwords, AppRole secrets, JWTs.

use std::fmt;

use zeroize::Zeroizing;

/// A secret string from the configuration file (or from the environment variable it named).
///
/// The memory is wiped when the value is dropped. `Debug` prints `[REDACTED]`; there is no
/// `Display`. Read the value with [`expose_secret`](Self::expose_secret).
#[derive(Clone)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps `value`.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret value. Call this only where the value is used (a login request, a key
    /// decryption), never to log or format it.
    pub fn expose_secret(&self) -> &str {
        self.0.as_str()
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([REDACTED])")
    }
}
