//! The validated configuration: plain data, no live clients, no YAML.

use std::path::PathBuf;
use std::time::Duration;

use crate::{LogLevel, SecretString};

/// A validated KES server configuration (kes-spec §7.1).
///
/// Built by [`parse`](crate::parse) / [`load`](crate::load) only when the file had no errors.
#[derive(Clone, Debug)]
pub struct Config<K> {
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
    /// `keystore`: exactly one backend, as the backend table given to [`parse`](crate::parse)
    /// reads it.
    pub keystore: K,
    /// `limits` (an extension): resource limits.
    pub limits: LimitsConfig,
    /// `rotation` (an extension): keys rotated on a schedule, in file order.
    pub rotation: Vec<RotationConfig>,
    /// `mlock` (an extension): whether the process memory is locked against swapping.
    pub mlock: MlockMode,
}

/// One entry of the `rotation` section (not in Go KES): `<name or pattern>: <period>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationConfig {
    /// A key name, or a listing pattern (a prefix ending in `*`).
    pub pattern: String,
    /// How old a key's newest version may get before it is rotated (at least 1 s).
    pub period: std::time::Duration,
}

/// The `limits` section (not in Go KES).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitsConfig {
    /// `limits.max_connections`: connections served at once; more are answered with 503 and
    /// closed. `None` = the server's default.
    pub max_connections: Option<usize>,
    /// `limits.max_connections_per_address`: connections served at once from one client IP
    /// address. `None` = the server's default (1,000, at most `max_connections`).
    pub max_connections_per_address: Option<usize>,
    /// `limits.idle_timeout`: how long an HTTP/1.1 or HTTP/2 connection without a request in
    /// flight stays open. `None` = the server's default (90 s, as Go's server).
    pub idle_timeout: Option<std::time::Duration>,
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
