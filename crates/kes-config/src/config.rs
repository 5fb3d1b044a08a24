//! The validated configuration: plain data, no live clients, no YAML.

use std::path::PathBuf;
use std::time::Duration;

use crate::{LogLevel, SecretString};

/// A validated KES server configuration (kes-spec §7.1).
///
/// Built by [`parse`](crate::parse) / [`load`](crate::load) only when the file had no errors.
#[derive(Clone, Debug)]
pub struct Config {
    /// `address`: where to listen. `None` = not set (the server's default is `0.0.0.0:7373`;
    /// the CLI `--addr` wins over this). `:port` is returned as `0.0.0.0:port`.
    pub address: Option<std::net::SocketAddr>,
    /// `admin.identity` (or the pre-v0.17.3 `root`): never empty. Not otherwise validated: a
    /// value that is no identity (e.g. `disabled`) turns admin access off.
    pub admin: String,
    /// `tls`.
    pub tls: TlsConfig,
    /// `policy.<name>`, in file order.
    pub policies: Vec<PolicyConfig>,
    /// `cache.expiry`.
    pub cache: CacheConfig,
    /// `api.<path>`, in file order. Every path is one of the server's routes (kes-spec §2.4).
    pub api: Vec<ApiConfig>,
    /// `log`.
    pub log: LogConfig,
    /// `keys[].name`: keys to create at startup if missing; no duplicates.
    pub keys: Vec<String>,
    /// `keystore`: exactly one backend.
    pub keystore: KeyStoreConfig,
    /// `limits` (an extension): resource limits.
    pub limits: LimitsConfig,
    /// `mlock` (an extension): whether the process memory is locked against swapping.
    pub mlock: MlockMode,
}

/// The `limits` section (not in Go KES).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitsConfig {
    /// `limits.max_connections`: connections served at once; more are answered with 503 and
    /// closed. `None` = the server's default.
    pub max_connections: Option<usize>,
}

/// The `mlock` setting (not in Go KES).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MlockMode {
    /// Lock memory where the system permits it; go on without otherwise (the default).
    #[default]
    Auto,
    /// Refuse to start unless memory can be locked.
    Required,
    /// Do not lock memory.
    Off,
}

/// The `tls` section.
///
/// [`load`](crate::load) resolves relative `key`, `cert` and `ca` paths against the directory of
/// the configuration file; [`parse`](crate::parse) leaves them as written.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    /// `tls.key`: PEM private key file (required).
    pub key: PathBuf,
    /// `tls.cert`: PEM certificate file (required).
    pub cert: PathBuf,
    /// `tls.password`: decrypts a legacy-encrypted private key. `None` when unset or empty.
    pub password: Option<SecretString>,
    /// `tls.auth`: `None` = not set, `Some(true)` = `on` (verify client certificates against
    /// the system roots and `ca`), `Some(false)` = `off` (require a certificate, do not verify
    /// it). The server treats `None` as `off`.
    pub auth: Option<bool>,
    /// `tls.ca`: extra CA certificates (file or directory) for client verification.
    pub ca: Option<PathBuf>,
    /// `tls.proxy`.
    pub proxy: ProxyConfig,
}

/// The `tls.proxy` section: TLS-terminating proxies trusted to forward client certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// `tls.proxy.identities`: identities of the proxies (empty entries dropped).
    pub identities: Vec<String>,
    /// `tls.proxy.header.cert`: header carrying the forwarded certificate; `None` when unset
    /// (KES's default header is `X-Tls-Client-Cert`).
    pub header_cert: Option<String>,
}

/// One `policy.<name>` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// The policy name (the mapping key); satisfies KES's name rule.
    pub name: String,
    /// `allow` (or the pre-v0.17 `paths`): API path patterns, exactly as written (no `${VAR}`
    /// expansion).
    pub allow: Vec<String>,
    /// `deny`: API path patterns, exactly as written.
    pub deny: Vec<String>,
    /// `identities`: identities bound to this policy (after `${VAR}` expansion, empty entries
    /// dropped, duplicates within the policy removed). An identity belongs to one policy only and
    /// is never the admin or a TLS proxy.
    pub identities: Vec<String>,
}

/// The `cache.expiry` section. `None` = not set or `0` (what Go KES treats as unset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheConfig {
    /// `cache.expiry.any`: drop every cached key after this long.
    pub any: Option<Duration>,
    /// `cache.expiry.unused`: drop a cached key not used for this long.
    pub unused: Option<Duration>,
    /// `cache.expiry.offline`: while the keystore is unreachable, keep serving cached keys for
    /// this long (`None` = offline caching disabled).
    pub offline: Option<Duration>,
}

/// One `api.<path>` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    /// The route path, exactly as in the route table (`/v1/key/create/`, `/v1/status`).
    pub path: String,
    /// `skip_auth`: no policy check at all on this route (the TLS handshake then also admits
    /// clients without a certificate). Default `false`.
    pub skip_auth: bool,
    /// `timeout`: replaces the route's default timeout; `None` = not set or `0`.
    pub timeout: Option<Duration>,
}

/// The `log` section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// `log.error`: default [`LogLevel::INFO`].
    pub error: LogLevel,
    /// `log.audit`: default [`LogLevel::INFO`]. Audit events are INFO, so `off` (and any level
    /// above INFO) disables them.
    pub audit: LogLevel,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            error: LogLevel::INFO,
            audit: LogLevel::INFO,
        }
    }
}

/// The one keystore backend of the `keystore` section.
// One value per configuration load, never in a hot path: boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[non_exhaustive]
#[derive(Clone, Debug)]
pub enum KeyStoreConfig {
    /// `keystore.fs`: one file per key in a directory.
    Fs {
        /// `keystore.fs.path`: the directory (created if missing). Relative paths are relative
        /// to the server's working directory, as in Go KES; `load` does not rewrite it.
        path: PathBuf,
    },
    /// `keystore.vault`: HashiCorp Vault K/V engine.
    Vault(VaultConfig),
}

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

/// The `keystore.vault.tls` section. [`load`](crate::load) resolves relative paths against the
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
