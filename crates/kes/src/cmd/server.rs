//! `kes server`: the program around the server library. It checks the flags, reads the config
//! file (or makes a development setup), opens the keystore through the backend table, hardens
//! the process, binds the listener, prints the banner, and turns signals into reloads (SIGHUP)
//! and a graceful stop (SIGINT, SIGTERM).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kes_keystore::cache::CacheConfig;
use kes_keystore::{KeyStore, MemKeyStore, OpenMode};
use kes_server::Server;
use kes_server::process::{Hardening, Mlock};
use kes_server::setup::{self, Certificate, LogLevels, PolicyEntry, RouteOverride, Settings};
use rustls::server::ServerSessionMemoryCache;
use time::OffsetDateTime;

use crate::cli::{OnOff, ServerArgs};
use crate::fail::Failure;
use crate::keystores::{self, KeyStoreConfig};
use crate::term;

/// Default listen address of a server started from a config file.
const DEFAULT_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7373);
/// Default listen address of `kes server --dev`.
const DEV_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7373);

/// Why the server could not start (or a reload failed).
#[derive(Debug, thiserror::Error)]
enum StartError {
    /// The config file is invalid.
    #[error("{0}")]
    Config(kes_config::Errors),
    /// The keystore could not be opened.
    #[error("failed to open keystore: {0}")]
    KeyStore(kes_keystore::Error),
    /// The server's configuration could not be prepared.
    #[error("{0}")]
    Setup(#[from] setup::SetupError),
    /// No API key for the development admin: the random generator failed.
    #[error("cannot generate the admin API key: {0}")]
    ApiKey(kes_crypto::RngError),
    /// `mlock: required`, and memory cannot be locked.
    #[error("{0}")]
    Harden(String),
    /// The listener could not be bound.
    #[error("failed to listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// The flags that shape the configuration.
#[derive(Debug, Clone)]
struct Options {
    config: Option<PathBuf>,
    addr: Option<SocketAddr>,
    auth: Option<bool>,
}

/// What one reading of the configuration gives.
struct Loaded {
    prepared: kes_server::Prepared,
    addr: SocketAddr,
    mlock: Mlock,
}

/// Starts the server and blocks until it stops.
pub fn run(args: ServerArgs) -> Result<(), Failure> {
    if args.key.is_some() || args.cert.is_some() {
        term::eprint(
            "Warning: '--key' and '--cert' are deprecated and ignored: set tls.key and tls.cert in the config file\n",
        );
    }
    match (&args.config, args.dev) {
        (Some(_), true) => {
            return Err(Failure::msg(
                "'--config' and '--dev' cannot be used together",
            ));
        }
        (None, false) => {
            return Err(Failure::msg(
                "no config file specified: use '--config <file>', or '--dev' for a development server",
            ));
        }
        _ => {}
    }
    let opts = Options {
        config: args.config,
        addr: args.addr,
        auth: args.auth.map(|a| a == OnOff::On),
    };
    let runtime = kes_server::process::runtime()
        .map_err(|e| Failure::msg(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve(opts)).map_err(Failure::msg)
}

/// Runs the server until SIGINT or SIGTERM.
async fn serve(opts: Options) -> Result<(), StartError> {
    let sessions = setup::session_cache();
    let started_at = OffsetDateTime::now_utc();
    let (loaded, api_key) = match &opts.config {
        Some(path) => (load(path, &opts, started_at, sessions.clone()).await?, None),
        None => {
            let (loaded, key) = dev(opts.addr.unwrap_or(DEV_ADDR), sessions.clone())?;
            (loaded, Some(key))
        }
    };
    let hardening = kes_server::process::harden(loaded.mlock).map_err(StartError::Harden)?;
    kes_server::process::raise_open_files_limit();
    let addr = loaded.addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    let admin = loaded.prepared.admin().to_owned();
    let server = Server::start(loaded.prepared);
    let signal_task = handle_signals(server.clone(), opts, sessions);
    print_banner(local, &admin, api_key.as_ref(), &hardening);

    let signals = tokio::spawn(signal_task);
    server.clone().serve(listener).await;
    signals.abort();
    server.logs().flush();
    Ok(())
}

/// Reads the config file, opens its keystore, creates its declared keys and prepares the
/// server's configuration.
async fn load(
    path: &Path,
    opts: &Options,
    started_at: OffsetDateTime,
    sessions: Arc<ServerSessionMemoryCache>,
) -> Result<Loaded, StartError> {
    let config = keystores::load(path).map_err(StartError::Config)?;
    let addr = opts.addr.or(config.address).unwrap_or(DEFAULT_ADDR);
    let mlock = match config.mlock {
        kes_config::MlockMode::Auto => Mlock::Auto,
        kes_config::MlockMode::Required => Mlock::Required,
        kes_config::MlockMode::Off => Mlock::Off,
    };
    let store = open_store(&config.keystore).await?;
    setup::declare_keys(store.as_ref(), &config.keys, &config.admin).await?;
    let settings = settings(config, opts);
    let prepared = setup::prepare(settings, store, started_at, sessions)?;
    Ok(Loaded {
        prepared,
        addr,
        mlock,
    })
}

async fn open_store(config: &KeyStoreConfig) -> Result<Arc<dyn KeyStore>, StartError> {
    config
        .open(OpenMode::Serve)
        .await
        .map_err(StartError::KeyStore)
}

/// The server's settings from a config file.
fn settings(config: kes_config::Config<KeyStoreConfig>, opts: &Options) -> Settings {
    Settings {
        policies: config
            .policies
            .into_iter()
            .map(|p| PolicyEntry {
                name: p.name,
                policy: kes_policy::Policy::new(p.allow, p.deny),
                identities: p.identities,
            })
            .collect(),
        api: config
            .api
            .into_iter()
            .map(|a| RouteOverride {
                path: a.path,
                skip_auth: a.skip_auth,
                timeout: a.timeout,
            })
            .collect(),
        cache: CacheConfig {
            any: config
                .cache
                .any
                .filter(|d| !d.is_zero())
                .unwrap_or(setup::DEFAULT_EXPIRY_ANY),
            unused: config
                .cache
                .unused
                .filter(|d| !d.is_zero())
                .unwrap_or(setup::DEFAULT_EXPIRY_UNUSED),
            offline: config.cache.offline.unwrap_or(Duration::ZERO),
        },
        log: LogLevels {
            error: config.log.error.0,
            audit: config.log.audit.0,
        },
        certificate: Certificate::Files {
            cert: config.tls.cert,
            key: config.tls.key,
            password: config
                .tls
                .password
                .map(|p| zeroize::Zeroizing::new(p.expose_secret().to_owned())),
        },
        verify_clients: opts.auth.or(config.tls.auth).unwrap_or(false),
        client_ca: config.tls.ca,
        proxy_identities: config.tls.proxy.identities,
        proxy_header: config.tls.proxy.header_cert,
        rotation: config
            .rotation
            .iter()
            .map(|r| setup::RotationRule {
                pattern: r.pattern.clone(),
                period: r.period,
            })
            .collect(),
        connections: setup::ConnectionLimits::new(
            config.limits.max_connections,
            config.limits.max_connections_per_address,
            config.limits.idle_timeout,
        ),
        admin: config.admin,
    }
}

/// A development server: a fresh admin API key, a self-signed certificate for the listen
/// address, an in-memory keystore.
fn dev(
    addr: SocketAddr,
    sessions: Arc<ServerSessionMemoryCache>,
) -> Result<(Loaded, kes_crypto::ApiKey), StartError> {
    let api_key = kes_crypto::ApiKey::generate().map_err(StartError::ApiKey)?;
    let certificate = setup::dev_certificate(addr).map_err(setup::SetupError::from)?;
    let settings = Settings::dev(api_key.identity(), certificate);
    let prepared = setup::prepare(
        settings,
        Arc::new(MemKeyStore::new()),
        OffsetDateTime::now_utc(),
        sessions,
    )?;
    Ok((
        Loaded {
            prepared,
            addr,
            mlock: Mlock::Auto,
        },
        api_key,
    ))
}

fn print_banner(
    addr: SocketAddr,
    admin: &str,
    api_key: Option<&kes_crypto::ApiKey>,
    hardening: &Hardening,
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
        kes_server::version()
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
    term::eprint(&text);
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
                            server.reload(loaded.prepared);
                            term::eprint(&format!(
                                "kes: configuration reloaded from '{}'\n",
                                path.display()
                            ));
                        }
                        Err(err) => {
                            term::eprint(&format!("kes: failed to reload configuration: {err}\n"));
                        }
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
