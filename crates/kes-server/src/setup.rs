//! What the program hands the server: its [`Settings`] and the keystore it serves, turned into
//! a [`Prepared`] configuration that [`Server::new`](crate::Server::new) starts with and
//! [`Server::reload`](crate::Server::reload) swaps in.
//!
//! The server reads no config file and opens no keystore: the program (the `kes` binary) does
//! both, and passes the opened store in. So the server knows no keystore backend.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kes_crypto::{KeyType, KeyVersion};
use kes_keystore::KeyStore;
use kes_keystore::cache::CacheConfig;
use kes_policy::{Policy, PolicySet, PolicySetError};
use rustls::server::ServerSessionMemoryCache;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::policies::{Meta, Policies};
use crate::proxy::{Proxies, ProxyError};
pub use crate::schedule::RotationRule;
pub use crate::state::LogLevels;
use crate::state::State;
use crate::tls::{self, CertifiedKey, ClientAuth, TlsError};

/// Default cache expiry of any key (spec §13: the documented defaults, not the original's bug).
pub const DEFAULT_EXPIRY_ANY: Duration = Duration::from_secs(5 * 60);
/// Default expiry of an unused key.
pub const DEFAULT_EXPIRY_UNUSED: Duration = Duration::from_secs(30);
/// Connections served at once unless `limits.max_connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Connections served at once from one client address unless
/// `limits.max_connections_per_address` says otherwise (at most `max_connections`): a tenth of
/// the default maximum, far more than a MinIO node keeps open (one per request in flight).
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 1_000;
/// How long an HTTP/1.1 or HTTP/2 connection may stay idle unless `limits.idle_timeout` says
/// otherwise: Go's 90 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = crate::timeouts::IDLE_TIMEOUT;

/// How many connections the server serves, from one client address and in all, and how long
/// an idle connection stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; more are answered with 503 and closed.
    pub max: usize,
    /// Connections served at once from one client address (IP, without the port).
    pub per_address: usize,
    /// How long a connection without a request in flight stays open (both protocols).
    pub idle: Duration,
}

impl ConnectionLimits {
    /// The limits of the config file's `limits:` section; what it leaves out has its default:
    /// [`DEFAULT_MAX_CONNECTIONS`], [`DEFAULT_MAX_CONNECTIONS_PER_ADDRESS`] (never more than
    /// the maximum) and [`DEFAULT_IDLE_TIMEOUT`].
    pub fn new(max: Option<usize>, per_address: Option<usize>, idle: Option<Duration>) -> Self {
        let max = max.unwrap_or(DEFAULT_MAX_CONNECTIONS).max(1);
        ConnectionLimits {
            max,
            per_address: per_address
                .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)
                .clamp(1, max),
            idle: idle
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_IDLE_TIMEOUT),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits::new(None, None, None)
    }
}
/// TLS sessions kept for resumption by session ID, for TLS 1.2 clients without session tickets
/// (everyone else resumes with a ticket, which needs no server state; Go's server keeps no
/// session cache at all). rustls allocates the whole cache at start: 4,096 entries ~0.5 MB.
const SESSION_CACHE: usize = 4 * 1024;

/// A failure to prepare the server's configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The TLS configuration is invalid.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// Policies and identities contradict each other.
    #[error("{0}")]
    Policy(#[from] PolicySetError),
    /// The TLS proxy settings are invalid.
    #[error("{0}")]
    Proxy(#[from] ProxyError),
    /// A key of the `keys:` list could not be created.
    #[error("failed to create key '{name}': {source}")]
    Key {
        /// The key.
        name: String,
        /// Why.
        source: KeyError,
    },
}

/// Why a declared key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The random generator failed.
    #[error("{0}")]
    Random(#[from] kes_crypto::RngError),
    /// The key record could not be encoded.
    #[error("{0}")]
    Encode(#[from] kes_crypto::RecordError),
    /// The keystore refused it.
    #[error("{0}")]
    Store(#[from] kes_keystore::Error),
}

/// The server's certificate: files to read (and re-read on reload), or a key already in hand.
#[derive(Debug)]
pub enum Certificate {
    /// `tls.cert` and `tls.key`, the key possibly encrypted with `tls.password`.
    Files {
        /// The certificate chain (PEM).
        cert: PathBuf,
        /// The private key (PEM).
        key: PathBuf,
        /// The password of a legacy-encrypted key.
        password: Option<Zeroizing<String>>,
    },
    /// A certificate made for the occasion (`--dev`, see [`dev_certificate`]).
    Generated(CertifiedKey),
}

/// One policy with the identities assigned to it.
#[derive(Debug, Clone)]
pub struct PolicyEntry {
    /// The name.
    pub name: String,
    /// The rules.
    pub policy: Policy,
    /// The identities it applies to.
    pub identities: Vec<String>,
}

/// One route's settings from the `api:` section.
#[derive(Debug, Clone)]
pub struct RouteOverride {
    /// The route's path, as the route table names it.
    pub path: String,
    /// Serve the route without authentication.
    pub skip_auth: bool,
    /// Replace the route's timeout.
    pub timeout: Option<Duration>,
}

/// Everything the server is configured with, but the keystore.
#[derive(Debug)]
pub struct Settings {
    /// The admin identity (a placeholder such as `disabled` turns admin access off).
    pub admin: String,
    /// The policies.
    pub policies: Vec<PolicyEntry>,
    /// Per-route settings.
    pub api: Vec<RouteOverride>,
    /// Key cache expiry.
    pub cache: CacheConfig,
    /// Log levels.
    pub log: LogLevels,
    /// The server's certificate.
    pub certificate: Certificate,
    /// Verify client certificate chains (`tls.auth: on`).
    pub verify_clients: bool,
    /// Extra CA certificates for client verification.
    pub client_ca: Option<PathBuf>,
    /// Identities of TLS proxies that may forward client certificates.
    pub proxy_identities: Vec<String>,
    /// The header proxies forward certificates in; `None` for the default.
    pub proxy_header: Option<String>,
    /// Connection limits.
    pub connections: ConnectionLimits,
    /// Scheduled key rotations.
    pub rotation: Vec<RotationRule>,
}

impl Settings {
    /// The settings of a development server: `admin` may do everything, nobody else anything;
    /// the default cache and limits.
    pub fn dev(admin: String, certificate: CertifiedKey) -> Settings {
        Settings {
            admin,
            policies: Vec::new(),
            api: Vec::new(),
            cache: CacheConfig {
                any: DEFAULT_EXPIRY_ANY,
                unused: DEFAULT_EXPIRY_UNUSED,
                offline: Duration::ZERO,
            },
            log: LogLevels::default(),
            certificate: Certificate::Generated(certificate),
            verify_clients: false,
            client_ca: None,
            proxy_identities: Vec::new(),
            proxy_header: None,
            connections: ConnectionLimits::default(),
            rotation: Vec::new(),
        }
    }
}

/// A configuration ready to serve: built once at start and once per reload.
pub struct Prepared {
    pub(crate) state: State,
    pub(crate) policies: Policies,
    pub(crate) tls: rustls::ServerConfig,
    pub(crate) log: LogLevels,
    pub(crate) connections: ConnectionLimits,
}

impl Prepared {
    /// The admin identity.
    pub fn admin(&self) -> &str {
        &self.state.admin
    }
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The TLS session cache, shared by every configuration of one server (so that reloads keep
/// the sessions clients may resume).
pub fn session_cache() -> Arc<ServerSessionMemoryCache> {
    ServerSessionMemoryCache::new(SESSION_CACHE)
}

/// Builds the configuration the server runs with from `settings` and the opened `store`.
/// `policies_created_at` is what policies and identities report as their creation time (the
/// server's start); `sessions` is the [`session_cache`] of the server.
///
/// # Errors
///
/// When the certificate cannot be read or is unusable, the policies contradict each other, or
/// the proxy settings are invalid.
pub fn prepare(
    settings: Settings,
    store: Arc<dyn KeyStore>,
    policies_created_at: OffsetDateTime,
    sessions: Arc<ServerSessionMemoryCache>,
) -> Result<Prepared, SetupError> {
    let policies = PolicySet::new(
        settings
            .policies
            .into_iter()
            .map(|p| (p.name, p.policy, p.identities)),
    )?;
    let api: Vec<(String, bool, Option<Duration>)> = settings
        .api
        .iter()
        .map(|a| (a.path.clone(), a.skip_auth, a.timeout))
        .collect();
    let optional = settings.api.iter().any(|a| a.skip_auth);
    let key = match settings.certificate {
        Certificate::Files {
            cert,
            key,
            password,
        } => tls::load_certified_key(&cert, &key, password.as_ref().map(|p| p.as_str()))?,
        Certificate::Generated(key) => key,
    };
    let auth = ClientAuth {
        verify: settings.verify_clients,
        ca: settings.client_ca,
        optional,
    };
    let tls = tls::server_config(key, &auth, sessions)?;
    let verifier = if auth.verify {
        Some(tls::client_verifier(&ClientAuth {
            optional: false,
            ..auth.clone()
        })?)
    } else {
        None
    };
    let proxies = Proxies::new(
        settings.proxy_identities,
        settings.proxy_header.as_deref(),
        verifier,
    )?;
    let meta = Meta {
        created_at: policies_created_at,
        created_by: settings.admin.clone(),
    };
    let policies = Policies::from_config(policies, meta);
    let mut state = State::new(settings.admin, &api, store, settings.cache, proxies);
    state.rotation = settings.rotation;
    Ok(Prepared {
        state,
        policies,
        tls,
        log: settings.log,
        connections: settings.connections,
    })
}

/// Creates the keys of the config file's `keys:` list that do not exist yet, as the admin
/// (kes-spec §7.3).
///
/// # Errors
///
/// [`SetupError::Key`] for the first key that could not be created for another reason than
/// existing already.
pub async fn declare_keys(
    store: &dyn KeyStore,
    names: &[String],
    admin: &str,
) -> Result<(), SetupError> {
    for name in names {
        declare_key(store, name, admin)
            .await
            .map_err(|source| SetupError::Key {
                name: name.clone(),
                source,
            })?;
    }
    Ok(())
}

async fn declare_key(store: &dyn KeyStore, name: &str, admin: &str) -> Result<(), KeyError> {
    let version = KeyVersion::generate(
        KeyType::default_for_new_keys(),
        admin.to_owned(),
        OffsetDateTime::now_utc(),
    )?;
    let record = version.encode()?;
    match store.create(name, record.as_bytes()).await {
        Ok(()) | Err(kes_keystore::Error::Exists) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A self-signed certificate for a development server listening on `addr`: valid for
/// `localhost` and the address's IP (127.0.0.1 when it is unspecified), for 90 days.
///
/// # Errors
///
/// When the certificate cannot be made.
pub fn dev_certificate(addr: std::net::SocketAddr) -> Result<CertifiedKey, TlsError> {
    use std::net::{IpAddr, Ipv4Addr};
    let err = |e: rcgen::Error| TlsError::Certificate(e.to_string());
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    let now = OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = now + time::Duration::days(90);
    let mut sans = vec![rcgen::SanType::DnsName(
        rcgen::string::Ia5String::try_from("localhost").map_err(err)?,
    )];
    if addr.ip().is_unspecified() {
        sans.push(rcgen::SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    } else {
        sans.push(rcgen::SanType::IpAddress(addr.ip()));
    }
    params.subject_alt_names = sans;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let cert = params.self_signed(&key).map_err(err)?;
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| TlsError::PrivateKey(e.to_string()))?;
    Ok(CertifiedKey {
        chain: vec![cert.der().clone()],
        key: key_der,
    })
}
