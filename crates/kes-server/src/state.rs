//! The server's configuration as one immutable snapshot (policies have their own, see
//! [`crate::policies`]). A request loads the current snapshot
//! once; a reload (SIGHUP) builds a new one and swaps it in atomically, so the request path
//! takes no lock.

use std::sync::Arc;
use std::time::Duration;

use kes_crypto::KeyRing;
use kes_keystore::KeyStore;
use kes_keystore::cache::{CacheConfig, KeyCache};

use crate::proxy::Proxies;
use crate::routes::{Auth, ROUTES};

/// The effective settings of one route after the config file's `api:` overrides.
#[derive(Debug, Clone, Copy)]
pub struct RouteSettings {
    /// Timeout; zero = none.
    pub timeout: Duration,
    /// Authentication.
    pub auth: Auth,
}

/// Log levels of the two logs, as slog-style numbers (DEBUG −4, INFO 0, WARN 4, ERROR 8).
/// The default is INFO for both.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogLevels {
    /// Error log level.
    pub error: i32,
    /// Audit log level; audit events are INFO, so a level above INFO disables them.
    pub audit: i32,
}

/// One snapshot of everything a request needs.
pub struct State {
    /// The admin identity; requests from it bypass policies.
    pub admin: Arc<str>,
    /// Per-route settings, indexed like [`ROUTES`].
    pub routes: Vec<RouteSettings>,
    /// The keystore behind the key cache.
    pub keys: KeyCache<KeyRing>,
    /// TLS proxies allowed to forward client certificates.
    pub proxies: Proxies,
    /// Serializes this server's updates of one key (rotation, version removal), by a stripe of
    /// its name, so that they do not race each other's compare-and-swap; other servers' updates
    /// still can, and are retried.
    pub key_updates: Box<[tokio::sync::Mutex<()>]>,
    /// The config file's scheduled rotations.
    pub rotation: Vec<crate::schedule::RotationRule>,
}

/// Stripes of [`State::key_updates`].
const UPDATE_STRIPES: usize = 64;

impl State {
    /// The update lock of `name`'s stripe (always `Some`).
    pub fn key_update_lock(&self, name: &str) -> Option<&tokio::sync::Mutex<()>> {
        use std::hash::{BuildHasher as _, BuildHasherDefault};
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(name);
        let stripe = usize::try_from(hash % UPDATE_STRIPES as u64).unwrap_or(0);
        self.key_updates.get(stripe)
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Builds a snapshot. `api` lists the config file's `api:` overrides as (path, skip_auth,
    /// timeout); unknown paths are ignored for routing.
    pub fn new(
        admin: String,
        api: &[(String, bool, Option<Duration>)],
        store: Arc<dyn KeyStore>,
        cache: CacheConfig,
        proxies: Proxies,
    ) -> State {
        let mut routes: Vec<RouteSettings> = ROUTES
            .iter()
            .map(|r| RouteSettings {
                timeout: r.timeout,
                auth: r.auth,
            })
            .collect();
        for (path, skip_auth, timeout) in api {
            if let Some(settings) = crate::routes::index_of(path).and_then(|i| routes.get_mut(i)) {
                if *skip_auth {
                    settings.auth = Auth::None;
                }
                if let Some(t) = timeout.filter(|t| !t.is_zero()) {
                    settings.timeout = t;
                }
            }
        }
        let keys = KeyCache::new(store, cache, |bytes: &[u8]| {
            KeyRing::parse(bytes)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        });
        State {
            admin: Arc::from(admin),
            routes,
            keys,
            proxies,
            key_updates: (0..UPDATE_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            rotation: Vec::new(),
        }
    }

    /// The settings of the route with the given index.
    pub fn route(&self, index: usize) -> RouteSettings {
        self.routes.get(index).copied().unwrap_or(RouteSettings {
            timeout: Duration::from_secs(15),
            auth: Auth::Policy,
        })
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.keys.close();
    }
}
