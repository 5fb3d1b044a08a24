//! The `keystore.vault` section of the configuration file (kes-spec §8.2): its types, with
//! defaults applied, and its parser.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kes_config::{Backend, Reader, SecretString, Section};
use kes_keystore::{Error, KeyStore, OpenMode, StoreConfig};

/// The `keystore.vault` entry of a table of backends (see [`kes_config::Backend`]).
pub const BACKEND: Backend<Arc<dyn StoreConfig>> = Backend {
    section: "vault",
    name: "HashiCorp Vault",
    keys: VaultConfig::KEYS,
    parse: |r, s| VaultConfig::parse(r, s).map(|c| Arc::new(c) as Arc<dyn StoreConfig>),
};

/// `status.ping` when not set (or `0`).
const DEFAULT_PING: Duration = Duration::from_secs(15);

/// The `keystore.vault` section (kes-spec §8.2), with defaults applied.
#[derive(Clone, Debug)]
pub struct VaultConfig {
    /// `endpoint`: one URL or a list of them; never empty.
    pub endpoints: Vec<String>,
    /// `engine`: K/V engine mount path; default `kv`.
    pub engine: String,
    /// `version`: K/V engine version; default v1.
    pub version: VaultKvVersion,
    /// `namespace`: sent as `X-Vault-Namespace`; `None` when unset.
    pub namespace: Option<String>,
    /// `prefix`: sub-path below the engine under which keys are stored; empty when unset.
    pub prefix: String,
    /// `transit`: optional extra wrapping of stored values with a transit key.
    pub transit: Option<VaultTransit>,
    /// `approle`: AppRole login. Exactly one of `approle` and `kubernetes` is `Some`.
    pub approle: Option<VaultAppRole>,
    /// `kubernetes`: Kubernetes service-account login.
    pub kubernetes: Option<VaultKubernetes>,
    /// `tls`: client certificate and CA for talking to Vault.
    pub tls: VaultTls,
    /// `status.ping`: health-check interval; default 15 s (also for `0`).
    pub status_ping: Duration,
}

/// Vault K/V secrets engine version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VaultKvVersion {
    /// K/V version 1 (`version: v1`, the default).
    #[default]
    V1,
    /// K/V version 2 (`version: v2`).
    V2,
}

/// The `keystore.vault.transit` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultTransit {
    /// `engine`: transit engine mount path; default `transit`.
    pub engine: String,
    /// `key`: transit key name (required).
    pub key: String,
}

/// The `keystore.vault.approle` section.
#[derive(Clone, Debug)]
pub struct VaultAppRole {
    /// `engine`: auth method mount path; default `approle`.
    pub engine: String,
    /// `namespace`: namespace of the login request, `None` = the Vault `namespace`;
    /// `Some("/")` = the root namespace.
    pub namespace: Option<String>,
    /// `id`: the role ID (required).
    pub id: String,
    /// `secret`: the secret ID (empty when not set, for roles that bind none).
    pub secret: SecretString,
}

/// The `keystore.vault.kubernetes` section.
#[derive(Clone, Debug)]
pub struct VaultKubernetes {
    /// `engine`: auth method mount path; default `kubernetes`.
    pub engine: String,
    /// `namespace`: as for [`VaultAppRole::namespace`].
    pub namespace: Option<String>,
    /// `role`: the Vault role (required).
    pub role: String,
    /// `jwt`: the service-account token (required), or, when it contains `/`, the path of a
    /// file holding it (re-read on every login).
    pub jwt: SecretString,
}

/// The `keystore.vault.tls` section. `kes_config::load` resolves relative paths against the
/// directory of the configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VaultTls {
    /// `key`: client private key for mTLS with Vault.
    pub key: Option<PathBuf>,
    /// `cert`: client certificate for mTLS with Vault.
    pub cert: Option<PathBuf>,
    /// `ca`: CA certificate file or directory that Vault's certificate must chain to.
    pub ca: Option<PathBuf>,
}

impl VaultConfig {
    /// The keys of the `keystore.vault` block.
    pub const KEYS: &'static [&'static str] = &[
        "endpoint",
        "engine",
        "version",
        "namespace",
        "prefix",
        "transit",
        "approle",
        "kubernetes",
        "tls",
        "status",
    ];

    /// Reads the `keystore.vault` block.
    pub fn parse(r: &mut Reader<'_>, vault: &Section<'_>) -> Option<VaultConfig> {
        let endpoints = vault.one_or_more(r, "endpoint");
        if endpoints.is_empty() && !vault.reported(r, "endpoint") {
            vault.error(r, "endpoint", "no endpoint specified");
        }
        let engine = vault.opt_string(r, "engine").unwrap_or_else(|| "kv".into());
        let version = match vault.string(r, "version").as_str() {
            "" | "v1" => VaultKvVersion::V1,
            "v2" => VaultKvVersion::V2,
            other => {
                let message =
                    format!("invalid K/V engine version '{other}': expected 'v1' or 'v2'");
                vault.error(r, "version", message);
                VaultKvVersion::V1
            }
        };
        let namespace = vault.opt_string(r, "namespace");
        let prefix = vault.string(r, "prefix");

        // transit: a block whose fields are all empty counts as absent.
        let transit = vault.section(r, "transit", &["engine", "key"]);
        let transit = match (
            transit.opt_string(r, "engine"),
            transit.opt_string(r, "key"),
        ) {
            (None, None) => None,
            (engine, Some(key)) => Some(VaultTransit {
                engine: engine.unwrap_or_else(|| "transit".into()),
                key,
            }),
            (Some(_), None) => {
                transit.error(r, "key", "no transit key specified");
                None
            }
        };

        // approle / kubernetes. Old sample configs carry both blocks with empty values, so a
        // block counts as used when one of its credentials is set. `retry` is from KES v0.19 –
        // v0.22 and is read but not used.
        let approle = vault.section(
            r,
            "approle",
            &["engine", "namespace", "id", "secret", "retry"],
        );
        let approle_engine = approle.opt_string(r, "engine");
        let approle_namespace = approle.opt_string(r, "namespace");
        let approle_id = approle.string(r, "id");
        let approle_secret = approle.secret(r, "secret");
        approle.obsolete_duration(r, "retry");

        let k8s = vault.section(
            r,
            "kubernetes",
            &["engine", "namespace", "role", "jwt", "retry"],
        );
        let k8s_engine = k8s.opt_string(r, "engine");
        let k8s_namespace = k8s.opt_string(r, "namespace");
        let k8s_role = k8s.string(r, "role");
        let k8s_jwt = k8s.secret(r, "jwt");
        k8s.obsolete_duration(r, "retry");

        let use_approle = !approle_id.is_empty() || approle_secret.is_some();
        let use_k8s = !k8s_role.is_empty() || k8s_jwt.is_some();
        let (mut approle_config, mut k8s_config) = (None, None);
        match (use_approle, use_k8s) {
            (true, true) => vault.error_here(
                r,
                "more than one authentication method specified: use either 'approle' or 'kubernetes'",
            ),
            (false, false) if approle.reported_here(r) || k8s.reported_here(r) => {}
            (false, false) => vault.error_here(
                r,
                "no authentication method specified: set 'approle' (id, secret) or 'kubernetes' (role, jwt)",
            ),
            (true, false) => {
                if approle_id.is_empty() {
                    approle.error(r, "id", "no AppRole role ID specified");
                }
                approle_config = Some(VaultAppRole {
                    engine: approle_engine.unwrap_or_else(|| "approle".into()),
                    namespace: approle_namespace,
                    id: approle_id,
                    secret: approle_secret.unwrap_or_else(|| SecretString::new(String::new())),
                });
            }
            (false, true) => {
                if k8s_role.is_empty() {
                    k8s.error(r, "role", "no Kubernetes role specified");
                }
                if k8s_jwt.is_none() {
                    k8s.error(r, "jwt", "no Kubernetes JWT specified");
                }
                k8s_config = Some(VaultKubernetes {
                    engine: k8s_engine.unwrap_or_else(|| "kubernetes".into()),
                    namespace: k8s_namespace,
                    role: k8s_role,
                    jwt: k8s_jwt.unwrap_or_else(|| SecretString::new(String::new())),
                });
            }
        }

        let tls = vault.section(r, "tls", &["key", "cert", "ca"]);
        let tls = VaultTls {
            key: tls.file(r, "key"),
            cert: tls.file(r, "cert"),
            ca: tls.file(r, "ca"),
        };
        let status = vault.section(r, "status", &["ping"]);
        let status_ping = status
            .duration(r, "ping", |d| {
                format!("invalid status ping interval '{d}': must not be negative")
            })
            .unwrap_or(DEFAULT_PING);

        Some(VaultConfig {
            endpoints,
            engine,
            version,
            namespace,
            prefix,
            transit,
            approle: approle_config,
            kubernetes: k8s_config,
            tls,
            status_ping,
        })
    }
}

#[async_trait::async_trait]
impl StoreConfig for VaultConfig {
    fn describe(&self) -> String {
        let mut text = format!(
            "vault keystore '{}' engine '{}'",
            self.endpoints.join(", "),
            self.engine
        );
        if let Some(namespace) = &self.namespace {
            text.push_str(&format!(" namespace '{namespace}'"));
        }
        if !self.prefix.is_empty() {
            text.push_str(&format!(" prefix '{}'", self.prefix));
        }
        text
    }

    async fn open(&self, _mode: OpenMode) -> Result<Arc<dyn KeyStore>, Error> {
        // Opening a Vault store creates nothing: both modes connect and log in.
        Ok(Arc::new(crate::VaultKeyStore::connect(self).await?))
    }
}
