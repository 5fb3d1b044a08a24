//! The `keystore` section: which backends exist, and the one that every build has (`fs`).
//!
//! kes-config knows no backend but `fs`. The program that reads a configuration file passes a
//! table of [`Backend`]s to [`parse`](crate::parse) / [`load`](crate::load): for each backend it
//! includes, the section name of the file format, a human name and the parser of its block,
//! which builds the backend's own config type (`K`, the same for every backend of one table:
//! typically a shared trait object that knows how to open its store). A section of the
//! original's format that the table leaves out ([`GO_KES_BACKENDS`]) gets an error naming the
//! cargo feature that includes it.

use std::path::PathBuf;

use crate::{Reader, Section};

/// A keystore backend as the configuration file names it.
pub struct Backend<K> {
    /// The section: `fs`, `vault`, or `vendor.product` for the nested sections of the
    /// original (`aws.secretsmanager`, `gcp.secretmanager`, …).
    pub section: &'static str,
    /// The backend's name for people: "AWS Secrets Manager".
    pub name: &'static str,
    /// The keys its block may contain; any other key is reported as unknown.
    pub keys: &'static [&'static str],
    /// Reads the block. It reports every problem through the reader, and may return `None`
    /// only when it reported one.
    pub parse: fn(&mut Reader<'_>, &Section<'_>) -> Option<K>,
}

impl<K> Backend<K> {
    /// The top-level key under `keystore` (`aws` for `aws.secretsmanager`).
    pub(crate) fn outer(&self) -> &'static str {
        self.section
            .split_once('.')
            .map_or(self.section, |(outer, _)| outer)
    }

    /// The nested key (`secretsmanager` for `aws.secretsmanager`), if any.
    pub(crate) fn inner(&self) -> Option<&'static str> {
        self.section.split_once('.').map(|(_, inner)| inner)
    }
}

impl<K> std::fmt::Debug for Backend<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("section", &self.section)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K> Clone for Backend<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Backend<K> {}

/// The `keystore.fs` section (kes-spec §8.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsConfig {
    /// `path`: the directory (created if missing). Relative paths are relative to the server's
    /// working directory, as in Go KES; [`load`](crate::load) does not rewrite it, since moving
    /// it would silently point the server at a different set of keys.
    pub path: PathBuf,
}

impl FsConfig {
    /// The keys of the `fs` block.
    pub const KEYS: &'static [&'static str] = &["path"];

    /// Reads the `keystore.fs` block.
    pub fn parse(r: &mut Reader<'_>, s: &Section<'_>) -> Option<FsConfig> {
        let dir = s.required(r, "path", "no path specified");
        (!dir.is_empty()).then(|| FsConfig {
            path: PathBuf::from(dir),
        })
    }
}

/// A keystore section of the original's file format that a build may leave out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Optional {
    /// The section, as in [`Backend::section`].
    pub section: &'static str,
    /// The backend's name for people.
    pub name: &'static str,
    /// The cargo feature of the `kes` binary that includes it.
    pub feature: &'static str,
}

/// The keystore sections of the original besides `fs`. A file that names one that the table of
/// backends does not include gets an error naming the feature to build with.
pub const GO_KES_BACKENDS: &[Optional] = &[
    optional("vault", "HashiCorp Vault", "vault"),
    optional("fortanix.sdkms", "Fortanix SDKMS", "fortanix"),
    optional("aws.secretsmanager", "AWS Secrets Manager", "aws"),
    optional(
        "gemalto.keysecure",
        "Thales CipherTrust Manager / Gemalto KeySecure",
        "gemalto",
    ),
    optional("gcp.secretmanager", "GCP Secret Manager", "gcp"),
    optional("azure.keyvault", "Azure Key Vault", "azure"),
    optional("entrust.keycontrol", "Entrust KeyControl", "entrust"),
];

const fn optional(section: &'static str, name: &'static str, feature: &'static str) -> Optional {
    Optional {
        section,
        name,
        feature,
    }
}

impl Optional {
    /// The top-level key under `keystore`.
    pub(crate) fn outer(&self) -> &'static str {
        self.section
            .split_once('.')
            .map_or(self.section, |(outer, _)| outer)
    }
}
