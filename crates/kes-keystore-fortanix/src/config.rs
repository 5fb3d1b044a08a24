//! The `keystore.fortanix.sdkms` section of the configuration file (kes-spec §8.8).

use std::path::PathBuf;
use std::sync::Arc;

use kes_config::{Backend, Reader, SecretString, Section};
use kes_keystore::{Error, KeyStore, OpenMode, StoreConfig};

/// The `keystore.fortanix.sdkms` entry of a table of backends.
pub const BACKEND: Backend<Arc<dyn StoreConfig>> = Backend {
    section: "fortanix.sdkms",
    name: "Fortanix SDKMS",
    keys: FortanixConfig::KEYS,
    parse: |r, s| FortanixConfig::parse(r, s).map(|c| Arc::new(c) as Arc<dyn StoreConfig>),
};

/// The `keystore.fortanix.sdkms` section.
#[derive(Clone, Debug)]
pub struct FortanixConfig {
    /// `endpoint`: the DSM URL, e.g. `https://sdkms.fortanix.com`.
    pub endpoint: String,
    /// `group_id`: the group new keys are created in; `None` = the app's default group.
    pub group_id: Option<String>,
    /// `credentials.key`: the app's API key, sent as `Authorization: Basic <key>` to log in.
    pub api_key: SecretString,
    /// `tls.ca`: the CA certificate file or directory DSM's certificate must chain to.
    pub ca: Option<PathBuf>,
}

impl FortanixConfig {
    /// The keys of the `keystore.fortanix.sdkms` block.
    pub const KEYS: &'static [&'static str] = &["endpoint", "group_id", "credentials", "tls"];

    /// Reads the `keystore.fortanix.sdkms` block.
    pub fn parse(r: &mut Reader<'_>, s: &Section<'_>) -> Option<FortanixConfig> {
        let endpoint = s.required(r, "endpoint", "no endpoint specified");
        let group_id = s.opt_string(r, "group_id").map(|g| g.trim().to_owned());
        let credentials = s.section(r, "credentials", &["key"]);
        let api_key = credentials.secret(r, "key");
        if api_key.is_none() && !credentials.reported(r, "key") {
            credentials.error(r, "key", "no API key specified");
        }
        let tls = s.section(r, "tls", &["ca"]);
        let ca = tls.file(r, "ca");
        Some(FortanixConfig {
            endpoint,
            group_id: group_id.filter(|g| !g.is_empty()),
            api_key: api_key?,
            ca,
        })
    }
}

#[async_trait::async_trait]
impl StoreConfig for FortanixConfig {
    fn describe(&self) -> String {
        let mut text = format!("fortanix keystore '{}'", self.endpoint);
        if let Some(group) = &self.group_id {
            text.push_str(&format!(" group '{group}'"));
        }
        text
    }

    async fn open(&self, _mode: OpenMode) -> Result<Arc<dyn KeyStore>, Error> {
        // Opening creates nothing: both modes check health and log in.
        Ok(Arc::new(crate::FortanixKeyStore::connect(self).await?))
    }
}
