//! The `keystore.aws.secretsmanager` section of the configuration file (kes-spec §8.4).

use std::sync::Arc;

use kes_config::{Backend, Reader, SecretString, Section};
use kes_keystore::{Error, KeyStore, OpenMode, StoreConfig};

/// The `keystore.aws.secretsmanager` entry of a table of backends.
pub const BACKEND: Backend<Arc<dyn StoreConfig>> = Backend {
    section: "aws.secretsmanager",
    name: "AWS Secrets Manager",
    keys: AwsConfig::KEYS,
    parse: |r, s| AwsConfig::parse(r, s).map(|c| Arc::new(c) as Arc<dyn StoreConfig>),
};

/// The `keystore.aws.secretsmanager` section.
#[derive(Clone, Debug)]
pub struct AwsConfig {
    /// `endpoint`: the Secrets Manager endpoint, e.g. `secretsmanager.us-east-2.amazonaws.com`
    /// (the original's form, HTTPS implied) or a URL with an `http://` or `https://` scheme.
    pub endpoint: String,
    /// `region`: the AWS region requests are signed for, e.g. `us-east-2`.
    pub region: String,
    /// `kmskey`: the KMS key (id, ARN or alias) new secrets are encrypted under; `None` = the
    /// account's default key for Secrets Manager (`aws/secretsmanager`).
    pub kms_key: Option<String>,
    /// `credentials`: static credentials; `None` = the standard AWS credential chain.
    pub credentials: Option<AwsCredentials>,
}

/// The `keystore.aws.secretsmanager.credentials` section, when it names credentials.
#[derive(Clone, Debug)]
pub struct AwsCredentials {
    /// `accesskey`: the access key id (not a secret: it names the key, as in IAM's console).
    pub access_key: String,
    /// `secretkey`: the secret access key.
    pub secret_key: SecretString,
    /// `token`: the session token of temporary credentials, if any.
    pub session_token: Option<SecretString>,
}

impl AwsConfig {
    /// The keys of the `keystore.aws.secretsmanager` block.
    pub const KEYS: &'static [&'static str] = &["endpoint", "region", "kmskey", "credentials"];

    /// Reads the `keystore.aws.secretsmanager` block.
    pub fn parse(r: &mut Reader<'_>, s: &Section<'_>) -> Option<AwsConfig> {
        let endpoint = s.required(r, "endpoint", "no endpoint specified");
        let endpoint = endpoint.trim().to_owned();
        if let Some(rest) = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            && rest.is_empty()
        {
            s.error(
                r,
                "endpoint",
                format!("invalid endpoint '{endpoint}': no host"),
            );
        } else if endpoint.contains("://")
            && !endpoint.starts_with("http://")
            && !endpoint.starts_with("https://")
        {
            s.error(
                r,
                "endpoint",
                format!("invalid endpoint '{endpoint}': the scheme must be http:// or https://"),
            );
        }
        let region = s.required(r, "region", "no region specified");
        let kms_key = s.opt_string(r, "kmskey").map(|k| k.trim().to_owned());
        let c = s.section(r, "credentials", &["accesskey", "secretkey", "token"]);
        let access_key = c.opt_string(r, "accesskey").map(|k| k.trim().to_owned());
        let secret_key = c.secret(r, "secretkey");
        let session_token = c.secret(r, "token");
        // All empty: the credential chain (kes-spec §8.4). Anything set: a complete pair.
        let credentials = match (access_key, secret_key) {
            (None, None) => {
                if session_token.is_some() {
                    c.error(
                        r,
                        "token",
                        "a session token needs an access key and a secret key",
                    );
                }
                None
            }
            (Some(access_key), Some(secret_key)) => Some(AwsCredentials {
                access_key,
                secret_key,
                session_token,
            }),
            (Some(_), None) => {
                if !c.reported(r, "secretkey") {
                    c.error(r, "secretkey", "no secret key specified for the access key");
                }
                None
            }
            (None, Some(_)) => {
                if !c.reported(r, "accesskey") {
                    c.error(r, "accesskey", "no access key specified for the secret key");
                }
                None
            }
        };
        if endpoint.is_empty() || region.is_empty() {
            return None;
        }
        Some(AwsConfig {
            endpoint,
            region: region.trim().to_owned(),
            kms_key: kms_key.filter(|k| !k.is_empty()),
            credentials,
        })
    }

    /// The endpoint as a URL: the original's bare host name means HTTPS.
    pub fn endpoint_url(&self) -> String {
        let url = if self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://") {
            self.endpoint.clone()
        } else {
            format!("https://{}", self.endpoint)
        };
        url.trim_end_matches('/').to_owned()
    }
}

#[async_trait::async_trait]
impl StoreConfig for AwsConfig {
    fn describe(&self) -> String {
        let mut text = format!(
            "aws keystore '{}' region '{}'",
            self.endpoint_url(),
            self.region
        );
        if let Some(key) = &self.kms_key {
            text.push_str(&format!(" kmskey '{key}'"));
        }
        text
    }

    async fn open(&self, _mode: OpenMode) -> Result<Arc<dyn KeyStore>, Error> {
        // Opening creates nothing: both modes check that the endpoint answers.
        Ok(Arc::new(crate::AwsKeyStore::connect(self).await?))
    }
}
