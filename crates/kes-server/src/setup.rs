//! Turning a config file (or `--dev`) into a running server, and reloading it on SIGHUP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kes_crypto::{KeyType, KeyVersion};
use kes_keystore::cache::CacheConfig;
use kes_keystore::{FsKeyStore, KeyStore, MemKeyStore};
use kes_policy::{Policy, PolicySet};
use rustls::server::ServerSessionMemoryCache;
use time::OffsetDateTime;

use crate::policies::{Meta, Policies};
use crate::process::Mlock;
use crate::proxy::Proxies;
use crate::server::Server;
use crate::state::{LogLevels, State};
use crate::tls::{self, ClientAuth, TlsError};

/// Default listen address of a server started from a config file.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7373);
/// Default listen address of `kes server --dev`.
pub const DEV_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7373);
/// Default cache expiry of any key (spec §13: the documented defaults, not the original's bug).
pub const DEFAULT_EXPIRY_ANY: Duration = Duration::from_secs(5 * 60);
/// Default expiry of an unused key.
pub const DEFAULT_EXPIRY_UNUSED: Duration = Duration::from_secs(30);
/// Connections served at once unless `limits.max_connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// TLS sessions kept for resumption by session ID, for TLS 1.2 clients without session tickets
/// (everyone else resumes with a ticket, which needs no server state; Go's server keeps no
/// session cache at all). rustls allocates the whole cache at start: 4,096 entries ~0.5 MB.
const SESSION_CACHE: usize = 4 * 1024;

/// How `kes server` was invoked.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--addr`.
    pub addr: Option<SocketAddr>,
    /// `--dev`.
    pub dev: bool,
    /// `--auth on|off`: overrides `tls.auth`.
    pub auth: Option<bool>,
}

/// A failure to start or reload the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The config file is invalid.
    #[error("{0}")]
    Config(kes_config::Errors),
    /// The TLS configuration is invalid.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// The keystore could not be opened.
    #[error("failed to open keystore: {0}")]
    KeyStore(String),
    /// Policies and identities contradict each other.
    #[error("{0}")]
    Policy(String),
    /// A declarative key could not be created.
    #[error("failed to create key '{name}': {reason}")]
    Key {
        /// The key.
        name: String,
        /// Why.
        reason: String,
    },
    /// The options contradict each other.
    #[error("{0}")]
    Usage(String),
    /// The listener could not be bound.
    #[error("failed to listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// Everything built from one config file.
pub struct Loaded {
    /// The request-path snapshot.
    pub state: State,
    /// The config file's policies.
    pub policies: Policies,
    /// TLS for new connections.
    pub tls: rustls::ServerConfig,
    /// Where to listen.
    pub addr: SocketAddr,
    /// Log levels.
    pub log: LogLevels,
    /// Connections served at once.
    pub max_connections: usize,
    /// Memory locking.
    pub mlock: Mlock,
}

/// Builds the server's state from a config file.
pub async fn load(
    path: &Path,
    opts: &Options,
    policies_created_at: OffsetDateTime,
    sessions: Arc<ServerSessionMemoryCache>,
) -> Result<Loaded, SetupError> {
    let config = kes_config::load(path, &kes_config::ProcessEnv).map_err(SetupError::Config)?;
    let addr = opts.addr.or(config.address).unwrap_or(DEFAULT_ADDR);

    let mut entries = Vec::with_capacity(config.policies.len());
    for p in &config.policies {
        entries.push((
            p.name.clone(),
            Policy::new(p.allow.clone(), p.deny.clone()),
            p.identities.clone(),
        ));
    }
    let policies = PolicySet::new(entries).map_err(|e| SetupError::Policy(e.to_string()))?;

    let store = open_keystore(&config.keystore).await?;
    for name in &config.keys {
        create_declared_key(store.as_ref(), name, &config.admin).await?;
    }

    let cache = CacheConfig {
        any: config
            .cache
            .any
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_EXPIRY_ANY),
        unused: config
            .cache
            .unused
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_EXPIRY_UNUSED),
        offline: config.cache.offline.unwrap_or(Duration::ZERO),
    };
    let log = LogLevels {
        error: config.log.error.0,
        audit: config.log.audit.0,
    };
    let api: Vec<(String, bool, Option<Duration>)> = config
        .api
        .iter()
        .map(|a| (a.path.clone(), a.skip_auth, a.timeout))
        .collect();
    let optional = config.api.iter().any(|a| a.skip_auth);

    let key = tls::load_certified_key(
        &config.tls.cert,
        &config.tls.key,
        config.tls.password.as_ref().map(|p| p.expose_secret()),
    )?;
    let auth = ClientAuth {
        verify: opts.auth.or(config.tls.auth).unwrap_or(false),
        ca: config.tls.ca.clone(),
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
        config.tls.proxy.identities.iter().cloned(),
        config.tls.proxy.header_cert.as_deref(),
        verifier,
    )
    .map_err(SetupError::Policy)?;
    let meta = Meta {
        created_at: policies_created_at,
        created_by: config.admin.clone(),
    };
    let policies = Policies::from_config(policies, meta);
    let state = State::new(config.admin, &api, store, cache, proxies);
    Ok(Loaded {
        state,
        policies,
        tls,
        addr,
        log,
        max_connections: config
            .limits
            .max_connections
            .unwrap_or(DEFAULT_MAX_CONNECTIONS),
        mlock: match config.mlock {
            kes_config::MlockMode::Auto => Mlock::Auto,
            kes_config::MlockMode::Required => Mlock::Required,
            kes_config::MlockMode::Off => Mlock::Off,
        },
    })
}

/// Opens the keystore a config file's `keystore` section describes, as `kes server` does: every
/// backend the server supports. Used by the server and by `kes migrate`.
///
/// The `fs` directory is created (mode 0700) when it does not exist; a Vault store logs in and
/// starts its background token renewal and health checks on the current tokio runtime, which
/// stop on [`KeyStore::close`] or when the store is dropped.
///
/// # Errors
///
/// [`SetupError::KeyStore`] when the store cannot be opened or reached, or when the section names
/// a backend this version of kes does not implement.
pub async fn open_keystore(
    config: &kes_config::KeyStoreConfig,
) -> Result<Arc<dyn KeyStore>, SetupError> {
    Ok(match config {
        kes_config::KeyStoreConfig::Fs { path } => Arc::new(
            FsKeyStore::open(path)
                .await
                .map_err(|e| SetupError::KeyStore(e.to_string()))?,
        ),
        // keystore-vault (issue 6): Vault / OpenBao K/V engine.
        kes_config::KeyStoreConfig::Vault(cfg) => Arc::new(
            kes_keystore_vault::VaultKeyStore::connect(cfg)
                .await
                .map_err(|e| SetupError::KeyStore(e.to_string()))?,
        ),
        other => {
            return Err(SetupError::KeyStore(format!(
                "the keystore {} is not available in this version of kes",
                keystore_name(other)
            )));
        }
    })
}

fn keystore_name(config: &kes_config::KeyStoreConfig) -> &'static str {
    match config {
        kes_config::KeyStoreConfig::Fs { .. } => "fs",
        kes_config::KeyStoreConfig::Vault(_) => "vault",
        _ => "section",
    }
}

/// Creates a key named in the config file's `keys:` list unless it exists.
async fn create_declared_key(
    store: &dyn KeyStore,
    name: &str,
    admin: &str,
) -> Result<(), SetupError> {
    let fail = |reason: String| SetupError::Key {
        name: name.to_owned(),
        reason,
    };
    let version = KeyVersion::generate(
        KeyType::default_for_new_keys(),
        admin.to_owned(),
        OffsetDateTime::now_utc(),
    )
    .map_err(|e| fail(e.to_string()))?;
    let record = version.encode().map_err(|e| fail(e.to_string()))?;
    match store.create(name, record.as_bytes()).await {
        Ok(()) | Err(kes_keystore::Error::Exists) => Ok(()),
        Err(e) => Err(fail(e.to_string())),
    }
}

/// What `--dev` prints and uses.
pub struct DevSetup {
    /// The admin's API key.
    pub api_key: kes_crypto::ApiKey,
    /// The server state.
    pub loaded: Loaded,
}

/// Builds an in-memory development server: a fresh admin API key, a self-signed certificate
/// for the listen address, an in-memory keystore.
pub fn dev(
    addr: SocketAddr,
    sessions: Arc<ServerSessionMemoryCache>,
) -> Result<DevSetup, SetupError> {
    let api_key = kes_crypto::ApiKey::generate().map_err(|e| SetupError::Usage(e.to_string()))?;
    let key = dev_certificate(addr)?;
    let auth = ClientAuth {
        verify: false,
        ca: None,
        optional: false,
    };
    let tls = tls::server_config(key, &auth, sessions)?;
    let log = LogLevels::default();
    let policies = Policies::from_config(
        PolicySet::default(),
        Meta {
            created_at: OffsetDateTime::now_utc(),
            created_by: api_key.identity(),
        },
    );
    let state = State::new(
        api_key.identity(),
        &[],
        Arc::new(MemKeyStore::new()),
        CacheConfig {
            any: DEFAULT_EXPIRY_ANY,
            unused: DEFAULT_EXPIRY_UNUSED,
            offline: Duration::ZERO,
        },
        Proxies::new(Vec::new(), None, None).map_err(SetupError::Policy)?,
    );
    Ok(DevSetup {
        api_key,
        loaded: Loaded {
            state,
            policies,
            tls,
            addr,
            log,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            mlock: Mlock::Auto,
        },
    })
}

fn dev_certificate(addr: SocketAddr) -> Result<tls::CertifiedKey, SetupError> {
    let err = |e: rcgen::Error| SetupError::Tls(TlsError::Certificate(e.to_string()));
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
        .map_err(|e| SetupError::Tls(TlsError::PrivateKey(e.to_string())))?;
    Ok(tls::CertifiedKey {
        chain: vec![cert.der().clone()],
        key: key_der,
    })
}

/// Runs `kes server` until SIGINT or SIGTERM. SIGHUP reloads the config file.
pub async fn run(opts: Options) -> Result<(), SetupError> {
    let sessions = ServerSessionMemoryCache::new(SESSION_CACHE);
    let started_at = OffsetDateTime::now_utc();
    let (loaded, api_key) = match (&opts.config, opts.dev) {
        (Some(_), true) => {
            return Err(SetupError::Usage(
                "'--config' and '--dev' cannot be used together".into(),
            ));
        }
        (None, false) => {
            return Err(SetupError::Usage(
                "no config file specified: use '--config <file>', or '--dev' for a development server"
                    .into(),
            ));
        }
        (None, true) => {
            let dev = dev(opts.addr.unwrap_or(DEV_ADDR), sessions.clone())?;
            (dev.loaded, Some(dev.api_key))
        }
        (Some(path), false) => (load(path, &opts, started_at, sessions.clone()).await?, None),
    };
    let hardening = crate::process::harden(loaded.mlock).map_err(SetupError::Usage)?;
    crate::process::raise_open_files_limit();
    let addr = loaded.addr;
    let listener = crate::server::bind(addr)
        .await
        .map_err(|source| SetupError::Listen { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    let logs = crate::logs::Logs::new(loaded.log);
    let admin = loaded.state.admin.to_string();
    let max_connections = loaded.max_connections;
    let server = Server::new(loaded.state, loaded.policies, loaded.tls, logs);
    server.set_max_connections(max_connections);
    let signal_task = handle_signals(server.clone(), opts.clone(), sessions);
    print_banner(local, &admin, api_key.as_ref(), &hardening);

    let signals = tokio::spawn(signal_task);
    server.clone().serve(listener).await;
    signals.abort();
    server.logs().flush();
    Ok(())
}

fn print_banner(
    addr: SocketAddr,
    admin: &str,
    api_key: Option<&kes_crypto::ApiKey>,
    hardening: &crate::process::Hardening,
) {
    let host = if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
    } else {
        addr
    };
    let mlock = match (&hardening.locked, &hardening.lock_note) {
        (true, _) => "enabled".to_owned(),
        (false, Some(note)) => format!("disabled: {note}"),
        (false, None) => "disabled".to_owned(),
    };
    let mut text = format!(
        "Version     {}\nAPI         https://{host}\nAdmin       {admin}\nMLock       {mlock}\n",
        crate::handlers_version()
    );
    if let Some(key) = api_key {
        text.push_str(&format!(
            "\nDevelopment server: keys live in memory and are lost when it stops.\n\
             Admin API key: {}\n\n\
             Use it with the kes CLI:\n  \
             export KES_SERVER=https://{host}\n  \
             export KES_API_KEY={}\n  \
             kes key create -k my-key\n",
            &*key.expose_secret(),
            &*key.expose_secret(),
        ));
    }
    text.push_str(&format!("\nListening on {addr}\n"));
    eprint!("{text}");
}

#[cfg(unix)]
/// Registers the signal handlers at once (so a signal that arrives right after startup is
/// handled, not fatal) and returns the task that acts on them.
fn handle_signals(
    server: Arc<Server>,
    opts: Options,
    sessions: Arc<ServerSessionMemoryCache>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let signals = (
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        let (Ok(mut hup), Ok(mut int), Ok(mut term)) = signals else {
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    let Some(path) = &opts.config else { continue };
                    match load(path, &opts, server.started_at(), sessions.clone()).await {
                        Ok(loaded) => {
                            server.logs().set_levels(loaded.log);
                            server.update_tls(loaded.tls);
                            server.set_max_connections(loaded.max_connections);
                            server.update_state(loaded.state, loaded.policies);
                            eprintln!("kes: configuration reloaded from '{}'", path.display());
                        }
                        Err(err) => eprintln!("kes: failed to reload configuration: {err}"),
                    }
                }
                _ = int.recv() => break,
                _ = term.recv() => break,
            }
        }
        server.shutdown();
    }
}

#[cfg(not(unix))]
fn handle_signals(
    server: Arc<Server>,
    _opts: Options,
    _s: Arc<ServerSessionMemoryCache>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    async move {
        let _ = tokio::signal::ctrl_c().await;
        server.shutdown();
    }
}
