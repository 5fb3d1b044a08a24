//! The `keystore.azure.keyvault` section of the configuration file (kes-spec §8.6).

use std::sync::Arc;

use kes_config::{Backend, Reader, SecretString, Section};
use kes_keystore::{Error, KeyStore, OpenMode, StoreConfig};

/// The `keystore.azure.keyvault` entry of a table of backends.
pub const BACKEND: Backend<Arc<dyn StoreConfig>> = Backend {
    section: "azure.keyvault",
    name: "Azure Key Vault",
    keys: AzureConfig::KEYS,
    parse: |r, s| AzureConfig::parse(r, s).map(|c| Arc::new(c) as Arc<dyn StoreConfig>),
};

/// The `keystore.azure.keyvault` section.
#[derive(Clone, Debug)]
pub struct AzureConfig {
    /// `endpoint`: the vault URL, `https://<vault>.vault.azure.net`.
    pub endpoint: String,
    /// How the store authenticates.
    pub auth: AzureAuth,
}

/// How the store authenticates to Entra ID (Azure AD).
#[derive(Clone, Debug)]
pub enum AzureAuth {
    /// `credentials`: a service principal's client secret (client-credentials grant).
    ClientSecret {
        /// `tenant_id`.
        tenant_id: String,
        /// `client_id`.
        client_id: String,
        /// `client_secret`.
        client_secret: SecretString,
    },
    /// `managed_identity`: the VM's or pod's managed identity (`client_id` of a
    /// user-assigned identity, `None` for the system-assigned one).
    ManagedIdentity {
        /// `managed_identity.client_id`.
        client_id: Option<String>,
    },
    /// Neither: the default chain (environment, workload identity, managed identity).
    Default,
}

impl AzureConfig {
    /// The keys of the `keystore.azure.keyvault` block.
    pub const KEYS: &'static [&'static str] = &["endpoint", "credentials", "managed_identity"];

    /// Reads the `keystore.azure.keyvault` block.
    pub fn parse(r: &mut Reader<'_>, s: &Section<'_>) -> Option<AzureConfig> {
        let endpoint = s.required(r, "endpoint", "no endpoint specified");
        let auth = if s.has("credentials") {
            if s.has("managed_identity") {
                s.error(
                    r,
                    "managed_identity",
                    "credentials and managed_identity cannot both be specified",
                );
            }
            let c = s.section(
                r,
                "credentials",
                &["tenant_id", "client_id", "client_secret"],
            );
            let tenant_id = c.required(r, "tenant_id", "no tenant ID specified");
            let client_id = c.required(r, "client_id", "no client ID specified");
            let client_secret = c.secret(r, "client_secret");
            if client_secret.is_none() && !c.reported(r, "client_secret") {
                c.error(r, "client_secret", "no client secret specified");
            }
            AzureAuth::ClientSecret {
                tenant_id: tenant_id.trim().to_owned(),
                client_id: client_id.trim().to_owned(),
                client_secret: client_secret?,
            }
        } else if s.has("managed_identity") {
            let m = s.section(r, "managed_identity", &["client_id"]);
            AzureAuth::ManagedIdentity {
                client_id: m
                    .opt_string(r, "client_id")
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            }
        } else {
            AzureAuth::Default
        };
        if endpoint.trim().is_empty() {
            return None;
        }
        Some(AzureConfig {
            endpoint: endpoint.trim().to_owned(),
            auth,
        })
    }
}

#[async_trait::async_trait]
impl StoreConfig for AzureConfig {
    fn describe(&self) -> String {
        format!("azure keystore '{}'", self.endpoint)
    }

    async fn open(&self, _mode: OpenMode) -> Result<Arc<dyn KeyStore>, Error> {
        // Opening creates nothing: both modes obtain a token and read the listing once.
        Ok(Arc::new(crate::AzureKeyStore::connect(self).await?))
    }
}
