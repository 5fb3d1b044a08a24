//! The keystore backends of the tests of this crate.

use std::path::PathBuf;

use kes_config::{Backend, FsConfig};
use kes_keystore_vault::VaultConfig;

/// The keystores of these tests: the built-in `fs` and one backend of its own crate (Vault);
/// the original's other sections are left out, as in a slim build.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
// smoke.rs parses without looking at the result.
#[allow(dead_code)]
pub enum KeyStoreConfig {
    Fs { path: PathBuf },
    Vault(VaultConfig),
}

pub const BACKENDS: &[Backend<KeyStoreConfig>] = &[
    Backend {
        section: "fs",
        name: "filesystem",
        keys: FsConfig::KEYS,
        parse: |r, s| FsConfig::parse(r, s).map(|c| KeyStoreConfig::Fs { path: c.path }),
    },
    Backend {
        section: "vault",
        name: "HashiCorp Vault",
        keys: VaultConfig::KEYS,
        parse: |r, s| VaultConfig::parse(r, s).map(KeyStoreConfig::Vault),
    },
];
