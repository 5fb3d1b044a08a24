//! The part of stage two that keystore backends see: a section of the file and typed reads of
//! its values, with every problem recorded where it is (`file:line:column: key.path: message`).
//!
//! A backend's parser (see [`Backend`](crate::Backend)) gets the [`Reader`] and the [`Section`]
//! of its block; it reads values with the section's methods, which expand `${VAR}` references,
//! convert values with Go KES semantics and report problems, and returns its own config type. It
//! never sees the YAML tree, and it does not stop at the first problem: it reads on, so that one
//! run of the server reports every error of the file.

use std::path::PathBuf;
use std::time::Duration;

use super::{Mapping, Reader};
use crate::SecretString;
use crate::yaml::{Value, join};

/// A mapping of the configuration file, such as `keystore.vault` or `keystore.vault.approle`:
/// where it is, and its entries.
///
/// A section that is absent from the file reads as empty: every value is missing, and errors
/// about missing values point at the enclosing section.
#[derive(Clone, Debug)]
pub struct Section<'n> {
    pub(super) map: Mapping<'n>,
    pub(super) path: String,
}

impl std::fmt::Debug for Mapping<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field(
                "keys",
                &self.entries.iter().map(|e| &e.key).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<'n> Section<'n> {
    /// The dotted path of this section (`keystore.vault`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The dotted path of `key` in this section.
    pub fn key_path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Whether `key` is present with a value other than null.
    pub fn has(&self, key: &str) -> bool {
        self.map.node(key).is_some_and(|n| !n.is_null())
    }

    /// The sub-section `key`, reporting keys not in `known` (empty when absent or null).
    pub fn section(&self, r: &mut Reader<'_>, key: &str, known: &[&str]) -> Section<'n> {
        let map = r.section(&self.map, &self.path, key, known);
        Section {
            map,
            path: self.key_path(key),
        }
    }

    /// A string value, `${VAR}` expanded; empty when absent, null or not a string (reported).
    pub fn string(&self, r: &mut Reader<'_>, key: &str) -> String {
        r.string(self.map.node(key), &self.key_path(key))
    }

    /// A string value: `None` when absent, null, empty or not a string.
    pub fn opt_string(&self, r: &mut Reader<'_>, key: &str) -> Option<String> {
        r.opt_string(self.map.node(key), &self.key_path(key))
    }

    /// A string that must be set: reports `missing` (at the value, or at this section when the
    /// key is absent) when it is absent or empty, unless the value was reported as unreadable.
    pub fn required(&self, r: &mut Reader<'_>, key: &str, missing: &str) -> String {
        r.required(&self.map, &self.path, key, missing)
    }

    /// A secret value (password, token, private key): `None` when absent, null or empty.
    /// Errors never contain the value.
    pub fn secret(&self, r: &mut Reader<'_>, key: &str) -> Option<SecretString> {
        r.secret(self.map.node(key), &self.key_path(key))
    }

    /// A file path. A relative path is relative to the directory of the configuration file
    /// when it was read with [`load`](crate::load), and kept as written by
    /// [`parse`](crate::parse).
    pub fn file(&self, r: &mut Reader<'_>, key: &str) -> Option<PathBuf> {
        let path = r.path(self.map.node(key), &self.key_path(key))?;
        Some(match r.base {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        })
    }

    /// A boolean (YAML 1.1 words accepted, as yaml.v3 does for a Go `bool`).
    pub fn bool(&self, r: &mut Reader<'_>, key: &str) -> Option<bool> {
        r.bool(self.map.node(key), &self.key_path(key))
    }

    /// A Go duration that must not be negative: `None` when absent or `0`. `negative` builds the
    /// message for a negative value from the text as written.
    pub fn duration(
        &self,
        r: &mut Reader<'_>,
        key: &str,
        negative: impl FnOnce(&str) -> String,
    ) -> Option<Duration> {
        r.positive_duration(self.map.node(key), &self.key_path(key), negative)
    }

    /// Checks that `key`, when present, is a Go duration, and ignores its value (for settings of
    /// older releases that are accepted but no longer used).
    pub fn obsolete_duration(&self, r: &mut Reader<'_>, key: &str) {
        r.duration(self.map.node(key), &self.key_path(key));
    }

    /// A list of strings, `${VAR}` expanded, with empty items dropped. Null is empty; a scalar is
    /// an error (as in yaml.v3).
    pub fn strings(&self, r: &mut Reader<'_>, key: &str) -> Vec<String> {
        r.strings(self.map.node(key), &self.key_path(key), true)
            .into_iter()
            .map(|s| s.value.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// One string or a list of strings (such as Vault's `endpoint`), trimmed, empties dropped.
    pub fn one_or_more(&self, r: &mut Reader<'_>, key: &str) -> Vec<String> {
        match self.map.node(key) {
            Some(node) if matches!(node.value, Value::Seq(_)) => self.strings(r, key),
            node => r
                .opt_string(node, &self.key_path(key))
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .into_iter()
                .collect(),
        }
    }

    /// Reports `message` about `key`: at its value when present, else at this section.
    pub fn error(&self, r: &mut Reader<'_>, key: &str, message: impl Into<String>) {
        r.error(self.map.pos_of(key), &self.key_path(key), message);
    }

    /// Reports `message` about this section as a whole.
    pub fn error_here(&self, r: &mut Reader<'_>, message: impl Into<String>) {
        r.error(self.map.pos, &self.path, message);
    }

    /// Whether `key` (or this section, or a value inside `key`) was already reported as
    /// unreadable: then a "missing" error on top of it would only repeat it.
    pub fn reported(&self, r: &Reader<'_>, key: &str) -> bool {
        r.reported(&self.key_path(key))
    }

    /// Whether this section itself was reported as unreadable.
    pub fn reported_here(&self, r: &Reader<'_>) -> bool {
        r.reported(&self.path)
    }
}
