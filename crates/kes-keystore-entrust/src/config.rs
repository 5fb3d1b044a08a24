//! The `keystore.entrust.keycontrol` section of the configuration file (kes-spec §8.9).

use std::path::PathBuf;
use std::sync::Arc;

use kes_config::{Backend, Reader, SecretString, Section};
use kes_keystore::{Error, KeyStore, OpenMode, StoreConfig};

/// The `keystore.entrust.keycontrol` entry of a table of backends.
pub const BACKEND: Backend<Arc<dyn StoreConfig>> = Backend {
    section: "entrust.keycontrol",
    name: "Entrust KeyControl",
    keys: EntrustConfig::KEYS,
    parse: |r, s| EntrustConfig::parse(r, s).map(|c| Arc::new(c) as Arc<dyn StoreConfig>),
};

/// The `keystore.entrust.keycontrol` section.
#[derive(Clone, Debug)]
pub struct EntrustConfig {
    /// `endpoint`: the KeyControl URL.
    pub endpoint: String,
    /// `vault_id`: the secrets vault the user logs in to.
    pub vault_id: String,
    /// `box_id`: the box (id or name) that holds the keys.
    pub box_id: String,
    /// `credentials.username`: the vault user.
    pub username: String,
    /// `credentials.password`: its password.
    pub password: SecretString,
    /// `tls.ca`: the CA certificate file or directory the appliance's certificate chains to.
    pub ca: Option<PathBuf>,
}

impl EntrustConfig {
    /// The keys of the `keystore.entrust.keycontrol` block.
    pub const KEYS: &'static [&'static str] =
        &["endpoint", "vault_id", "box_id", "credentials", "tls"];

    /// Reads the `keystore.entrust.keycontrol` block: every key but `tls` is required.
    pub fn parse(r: &mut Reader<'_>, s: &Section<'_>) -> Option<EntrustConfig> {
        let endpoint = s.required(r, "endpoint", "no endpoint specified");
        let vault_id = s.required(r, "vault_id", "no vault ID specified");
        let box_id = s.required(r, "box_id", "no box ID specified");
        let credentials = s.section(r, "credentials", &["username", "password"]);
        let username = credentials.required(r, "username", "no username specified");
        let password = credentials.secret(r, "password");
        if password.is_none() && !credentials.reported(r, "password") {
            credentials.error(r, "password", "no password specified");
        }
        let tls = s.section(r, "tls", &["ca"]);
        let ca = tls.file(r, "ca");
        Some(EntrustConfig {
            endpoint,
            vault_id: vault_id.trim().to_owned(),
            box_id: box_id.trim().to_owned(),
            username,
            password: password?,
            ca,
        })
    }
}

#[async_trait::async_trait]
impl StoreConfig for EntrustConfig {
    fn describe(&self) -> String {
        format!(
            "entrust keystore '{}' vault '{}' box '{}'",
            self.endpoint, self.vault_id, self.box_id
        )
    }

    async fn open(&self, _mode: OpenMode) -> Result<Arc<dyn KeyStore>, Error> {
        // Opening creates nothing: both modes log in and look the box up.
        Ok(Arc::new(crate::EntrustKeyStore::connect(self).await?))
    }
}
