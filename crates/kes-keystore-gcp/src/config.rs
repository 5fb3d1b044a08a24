//! The `keystore.gcp.secretmanager` section of the configuration file (kes-spec §8.5).

use std::sync::Arc;

use kes_config::{Backend, Reader, SecretString, Section};
use kes_keystore::{Error, KeyStore, OpenMode, StoreConfig};

/// The `keystore.gcp.secretmanager` entry of a table of backends.
pub const BACKEND: Backend<Arc<dyn StoreConfig>> = Backend {
    section: "gcp.secretmanager",
    name: "GCP Secret Manager",
    keys: GcpConfig::KEYS,
    parse: |r, s| GcpConfig::parse(r, s).map(|c| Arc::new(c) as Arc<dyn StoreConfig>),
};

/// The endpoint of the original's default (its gRPC address).
pub const DEFAULT_ENDPOINT: &str = "secretmanager.googleapis.com:443";
/// The token URI the original writes into the service-account JSON it builds.
pub const DEFAULT_TOKEN_URI: &str = "https://accounts.google.com/o/oauth2/token";
/// The scope Secret Manager declares, the SDK's default.
pub const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The `keystore.gcp.secretmanager` section.
#[derive(Clone, Debug)]
pub struct GcpConfig {
    /// `project_id`: the project that holds the secrets.
    pub project_id: String,
    /// `endpoint`: `host:port` as the original takes it, or an `https://` / `http://` URL.
    pub endpoint: String,
    /// `scopes`: the OAuth 2.0 scopes of the tokens (default: cloud-platform).
    pub scopes: Vec<String>,
    /// `credentials`: a service-account key; `None` = application default credentials.
    pub credentials: Option<ServiceAccount>,
}

/// A service-account key, as `credentials` gives it (or a key file holds it).
#[derive(Clone, Debug)]
pub struct ServiceAccount {
    /// `client_email`: the account, the JWT's issuer.
    pub client_email: String,
    /// `client_id`: the account's numeric id (not sent; kept as the original keeps it).
    pub client_id: String,
    /// `private_key_id`: the key's id, the JWT's `kid`.
    pub private_key_id: String,
    /// `private_key`: the PEM private key (a literal `\n` read as a line break).
    pub private_key: SecretString,
    /// `token_uri`: where the JWT is exchanged for a token. Not a key of the original's
    /// section (which always uses [`DEFAULT_TOKEN_URI`]); the original ignores it.
    pub token_uri: String,
}

impl GcpConfig {
    /// The keys of the `keystore.gcp.secretmanager` block.
    pub const KEYS: &'static [&'static str] = &["project_id", "endpoint", "scopes", "credentials"];

    /// Reads the `keystore.gcp.secretmanager` block.
    pub fn parse(r: &mut Reader<'_>, s: &Section<'_>) -> Option<GcpConfig> {
        let project_id = s.required(r, "project_id", "no project ID specified");
        let endpoint = s
            .opt_string(r, "endpoint")
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let scopes: Vec<String> = s
            .strings(r, "scopes")
            .into_iter()
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect();
        let c = s.section(
            r,
            "credentials",
            &[
                "client_email",
                "client_id",
                "private_key_id",
                "private_key",
                "token_uri",
            ],
        );
        let client_email = c.string(r, "client_email").trim().to_owned();
        let client_id = c.string(r, "client_id").trim().to_owned();
        let private_key_id = c.string(r, "private_key_id").trim().to_owned();
        let private_key = c.secret(r, "private_key");
        let token_uri = c.opt_string(r, "token_uri").map(|t| t.trim().to_owned());
        let key_set = private_key
            .as_ref()
            .is_some_and(|k| !k.expose_secret().trim().is_empty());
        // As the original: all four empty = application default credentials; any one set
        // needs all four.
        let any = !client_email.is_empty()
            || !client_id.is_empty()
            || !private_key_id.is_empty()
            || key_set;
        let credentials = if any {
            let mut complete = true;
            for (key, value, what) in [
                ("client_email", &client_email, "no client email specified"),
                ("client_id", &client_id, "no client ID specified"),
                (
                    "private_key_id",
                    &private_key_id,
                    "no private key ID specified",
                ),
            ] {
                if value.is_empty() {
                    complete = false;
                    if !c.reported(r, key) {
                        c.error(r, key, what);
                    }
                }
            }
            if !key_set {
                complete = false;
                if !c.reported(r, "private_key") {
                    c.error(r, "private_key", "no private key specified");
                }
            }
            if !complete {
                return None;
            }
            let pem = private_key?.expose_secret().replace("\\n", "\n");
            Some(ServiceAccount {
                client_email,
                client_id,
                private_key_id,
                private_key: SecretString::new(pem),
                token_uri: token_uri.unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned()),
            })
        } else {
            None
        };
        if project_id.trim().is_empty() {
            return None;
        }
        Some(GcpConfig {
            project_id: project_id.trim().to_owned(),
            endpoint,
            scopes,
            credentials,
        })
    }
}

#[async_trait::async_trait]
impl StoreConfig for GcpConfig {
    fn describe(&self) -> String {
        format!(
            "gcp keystore '{}' project '{}'",
            self.endpoint, self.project_id
        )
    }

    async fn open(&self, _mode: OpenMode) -> Result<Arc<dyn KeyStore>, Error> {
        // Opening creates nothing: both modes obtain a token and read the listing once.
        Ok(Arc::new(crate::GcpKeyStore::connect(self).await?))
    }
}
