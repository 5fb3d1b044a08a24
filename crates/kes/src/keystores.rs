//! The keystore backends of this build, in one table: how a config file's `keystore` section
//! becomes an opened store, for the server (at start and on every reload) and for
//! `kes migrate`. Nothing else in the program names a backend.
//!
//! Adding a backend is one line here and one cargo feature (docs/keystores.md).

use std::sync::Arc;

use kes_config::{Backend, Config, Errors, FsConfig, Reader, Section};
use kes_keystore::{Error, FsKeyStore, KeyStore, OpenMode, StoreConfig};

/// A backend's validated config: it opens its store.
pub type KeyStoreConfig = Arc<dyn StoreConfig>;

/// The backends of this build. The sections of the original's backends that a build leaves out
/// (cargo features off) are refused with an error naming the feature.
pub static BACKENDS: &[Backend<KeyStoreConfig>] = &[
    Backend {
        section: "fs",
        name: "filesystem",
        keys: FsConfig::KEYS,
        parse: fs,
    },
    #[cfg(feature = "vault")]
    kes_keystore_vault::BACKEND,
    #[cfg(feature = "fortanix")]
    kes_keystore_fortanix::BACKEND,
    #[cfg(feature = "gemalto")]
    kes_keystore_gemalto::BACKEND,
    #[cfg(feature = "entrust")]
    kes_keystore_entrust::BACKEND,
    #[cfg(feature = "aws")]
    kes_keystore_aws::BACKEND,
    #[cfg(feature = "gcp")]
    kes_keystore_gcp::BACKEND,
    #[cfg(feature = "azure")]
    kes_keystore_azure::BACKEND,
];

/// Reads a config file with the backends of this build.
pub fn load(path: &std::path::Path) -> Result<Config<KeyStoreConfig>, Errors> {
    kes_config::load(path, &kes_config::ProcessEnv, BACKENDS)
}

fn fs(r: &mut Reader<'_>, s: &Section<'_>) -> Option<KeyStoreConfig> {
    FsConfig::parse(r, s).map(|config| Arc::new(Fs(config)) as KeyStoreConfig)
}

/// The `fs` keystore, the backend every build has.
#[derive(Debug)]
struct Fs(FsConfig);

#[async_trait::async_trait]
impl StoreConfig for Fs {
    fn describe(&self) -> String {
        let path = std::path::absolute(&self.0.path).unwrap_or_else(|_| self.0.path.clone());
        format!("fs keystore '{}'", path.display())
    }

    async fn open(&self, mode: OpenMode) -> Result<Arc<dyn KeyStore>, Error> {
        Ok(Arc::new(match mode {
            OpenMode::Serve => FsKeyStore::open(&self.0.path).await?,
            OpenMode::Existing => FsKeyStore::open_existing(&self.0.path).await?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every keystore section of the original's format is either a backend of this build or
    /// refused with the feature that adds it: none is silently unknown.
    #[test]
    fn every_section_of_the_original_is_known() {
        let sections: Vec<&str> = BACKENDS.iter().map(|b| b.section).collect();
        assert!(sections.contains(&"fs"));
        #[cfg(feature = "vault")]
        assert!(sections.contains(&"vault"));
        #[cfg(feature = "fortanix")]
        assert!(sections.contains(&"fortanix.sdkms"));
        #[cfg(feature = "gemalto")]
        assert!(sections.contains(&"gemalto.keysecure"));
        #[cfg(feature = "entrust")]
        assert!(sections.contains(&"entrust.keycontrol"));
        #[cfg(feature = "aws")]
        assert!(sections.contains(&"aws.secretsmanager"));
        #[cfg(feature = "gcp")]
        assert!(sections.contains(&"gcp.secretmanager"));
        #[cfg(feature = "azure")]
        assert!(sections.contains(&"azure.keyvault"));
        for section in &sections {
            assert!(
                *section == "fs"
                    || kes_config::GO_KES_BACKENDS
                        .iter()
                        .any(|o| o.section == *section),
                "{section} is not a section of the original's format"
            );
        }
        let mut unique = sections.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            sections.len(),
            "a section twice: {sections:?}"
        );
    }
}
