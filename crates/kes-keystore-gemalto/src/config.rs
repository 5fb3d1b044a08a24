//! The `keystore.gemalto.keysecure` section of the configuration file (kes-spec §8.7).

use std::path::PathBuf;
use std::sync::Arc;

use kes_config::{Backend, Reader, SecretString, Section};
use kes_keystore::{Error, KeyStore, OpenMode, StoreConfig};

/// The `keystore.gemalto.keysecure` entry of a table of backends.
pub const BACKEND: Backend<Arc<dyn StoreConfig>> = Backend {
    section: "gemalto.keysecure",
    name: "Thales CipherTrust Manager / Gemalto KeySecure",
    keys: GemaltoConfig::KEYS,
    parse: |r, s| GemaltoConfig::parse(r, s).map(|c| Arc::new(c) as Arc<dyn StoreConfig>),
};

/// The `keystore.gemalto.keysecure` section.
#[derive(Clone, Debug)]
pub struct GemaltoConfig {
    /// `endpoint`: the CipherTrust Manager / KeySecure URL.
    pub endpoint: String,
    /// `credentials.token`: the refresh token that obtains the short-lived JWTs.
    pub refresh_token: SecretString,
    /// `credentials.domain`: the domain of the refresh token (empty = the root domain).
    pub domain: String,
    /// `tls.ca`: the CA certificate file or directory the appliance's certificate chains to.
    pub ca: Option<PathBuf>,
}

impl GemaltoConfig {
    /// The keys of the `keystore.gemalto.keysecure` block.
    pub const KEYS: &'static [&'static str] = &["endpoint", "credentials", "tls"];

    /// Reads the `keystore.gemalto.keysecure` block.
    pub fn parse(r: &mut Reader<'_>, s: &Section<'_>) -> Option<GemaltoConfig> {
        let endpoint = s.required(r, "endpoint", "no endpoint specified");
        // `retry` is from older releases: accepted, checked, not used (the final original
        // retries a failed login every 5 s).
        let credentials = s.section(r, "credentials", &["token", "domain", "retry"]);
        let refresh_token = credentials.secret(r, "token");
        if refresh_token.is_none() && !credentials.reported(r, "token") {
            credentials.error(r, "token", "no refresh token specified");
        }
        let domain = credentials.string(r, "domain").trim().to_owned();
        credentials.obsolete_duration(r, "retry");
        let tls = s.section(r, "tls", &["ca"]);
        let ca = tls.file(r, "ca");
        Some(GemaltoConfig {
            endpoint,
            refresh_token: refresh_token?,
            domain,
            ca,
        })
    }
}

#[async_trait::async_trait]
impl StoreConfig for GemaltoConfig {
    fn describe(&self) -> String {
        let mut text = format!("gemalto keystore '{}'", self.endpoint);
        if !self.domain.is_empty() {
            text.push_str(&format!(" domain '{}'", self.domain));
        }
        text
    }

    async fn open(&self, _mode: OpenMode) -> Result<Arc<dyn KeyStore>, Error> {
        // Opening creates nothing: both modes obtain a token.
        Ok(Arc::new(crate::GemaltoKeyStore::connect(self).await?))
    }
}
