//! Located configuration errors.

use std::fmt;

/// One problem found in a configuration file, with where it is.
///
/// Displayed as `file:line:column: path: message`; the `path: ` part is left out when `path` is
/// empty, and `line:column: ` is left out when `line` is 0 (an error about the file as a whole,
/// for example one that cannot be read).
///
/// Messages never contain the value of a secret (passwords, AppRole secrets, JWTs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The file name as given to [`parse`](crate::parse) or [`load`](crate::load).
    pub file: String,
    /// 1-based line; 0 when the error has no position in the file.
    pub line: usize,
    /// 1-based column (in characters); 0 when the error has no position in the file.
    pub column: usize,
    /// Dotted path of the configuration key the error is about (`keystore.vault.approle.id`,
    /// `policy.my-app.identities[1]`); empty for errors about the document itself.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for Error {}

/// Every error found in a configuration file, ordered by position in the file.
///
/// Parsing does not stop at the first problem: all of them are reported at once. The list is
/// never empty when returned by [`parse`](crate::parse) or [`load`](crate::load).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Errors(pub Vec<Error>);

impl Errors {
    /// The errors, ordered by position.
    pub fn iter(&self) -> std::slice::Iter<'_, Error> {
        self.0.iter()
    }

    /// The number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no errors (never the case for a returned `Errors`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Errors {
    /// One error per line, without a trailing newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

impl<'a> IntoIterator for &'a Errors {
    type Item = &'a Error;
    type IntoIter = std::slice::Iter<'a, Error>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for Errors {
    type Item = Error;
    type IntoIter = std::vec::IntoIter<Error>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
