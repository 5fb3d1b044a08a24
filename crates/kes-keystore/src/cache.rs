//! The key cache of the server (kes-spec §7.4).
//!
//! The server reads each key from the key store once, parses it, and keeps the parsed key in
//! memory for later requests. Entries expire in three ways, each switched off by a zero
//! duration in [`CacheConfig`]:
//!
//! * every `any`, all entries are dropped, so a key lives at most `any` in the cache;
//! * every `unused / 2`, entries that were not read since the previous such tick are dropped,
//!   so an idle key lives between `unused / 2` and `unused`;
//! * every `offline`, all entries are dropped if the store is offline.
//!
//! A health probe calls [`KeyStore::status`] every 10 seconds and marks the store offline when
//! it fails (or does not answer within the interval) and online when it succeeds. While the
//! store is offline and `offline` is not zero, the `any` and `unused` expiries pause, so cached
//! keys keep being served until the `offline` expiry; cache misses still go to the store. The
//! tickers run on fixed schedules from the creation of the cache, as in the original.
//!
//! The original server's command line replaced a missing `unused` by setting `any` to 30 s
//! (kes-spec §7.4); that bug is fixed by the caller, which passes `any` = 5 min and
//! `unused` = 30 s by default.
//!
//! A cache hit touches neither the key store nor any lock shared by all requests: entries are
//! spread over 64 independently locked shards, and a hit takes one shard's read lock.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::{Error, KeyStore};

/// An error from a backend or from a parse function.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error that can be handed to every caller waiting for the same read.
type SharedError = Arc<dyn std::error::Error + Send + Sync>;

/// Turns a stored value into the cached key.
type ParseFn<T> = dyn Fn(&[u8]) -> Result<T, BoxError> + Send + Sync;

/// The number of independently locked parts of the cache.
const SHARDS: usize = 64;

/// How often the health probe checks the store unless told otherwise.
const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// How often [`KeyCache::refresh`] reads one key from the store at most.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Expiry periods longer than this never fire (and cannot overflow the clock).
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The expiry periods of a [`KeyCache`]; [`Duration::ZERO`] switches an expiry off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Every `any`, all cached keys are dropped (`cache.expiry.any`).
    pub any: Duration,
    /// Keys not used for between `unused / 2` and `unused` are dropped
    /// (`cache.expiry.unused`).
    pub unused: Duration,
    /// While the store is offline, cached keys are kept and served until the next tick of
    /// this period, which drops them all (`cache.expiry.offline`). Zero: keys expire as usual
    /// while the store is offline.
    pub offline: Duration,
}

/// A cache of parsed keys in front of a [`KeyStore`]. Cloning is cheap and shares the cache.
///
/// The background tasks (expiry tickers and health probe) run on the tokio runtime the cache
/// was created in, and stop when the last clone is dropped or [`KeyCache::close`] is called.
pub struct KeyCache<T: Send + Sync + 'static> {
    inner: Arc<Inner<T>>,
}

impl<T: Send + Sync + 'static> KeyCache<T> {
    /// Creates a cache of `store` that turns stored values into keys with `parse`, and starts
    /// its background tasks.
    ///
    /// The errors of `parse` are shown to operators and must not contain the value.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime, or in one without its time driver.
    pub fn new(
        store: Arc<dyn KeyStore>,
        config: CacheConfig,
        parse: impl Fn(&[u8]) -> Result<T, BoxError> + Send + Sync + 'static,
    ) -> Self {
        let (shutdown, _) = watch::channel(false);
        let (probe_interval, _) = watch::channel(DEFAULT_PROBE_INTERVAL);
        let entries = Arc::new(Entries::new());
        let health = Arc::new(Health::default());
        // The intervals are made here rather than in the tasks, so that a runtime without a
        // timer fails loudly now instead of silently killing the tasks.
        let half_unused = if config.unused.is_zero() {
            Duration::ZERO
        } else {
            (config.unused / 2).max(Duration::from_nanos(1))
        };
        let tickers = Tickers {
            any: ticker(config.any),
            unused: ticker(half_unused),
            offline: ticker(config.offline),
        };
        tokio::spawn(expire(
            Arc::clone(&entries),
            Arc::clone(&health),
            config,
            tickers,
            shutdown.subscribe(),
        ));
        tokio::spawn(probe(
            Arc::clone(&store),
            Arc::clone(&health),
            ticker(DEFAULT_PROBE_INTERVAL),
            probe_interval.subscribe(),
            shutdown.subscribe(),
        ));
        let inner = Inner {
            entries,
            health,
            store,
            parse: Box::new(parse),
            flights: Mutex::new(HashMap::new()),
            refreshed: Mutex::new(HashMap::new()),
            config,
            shutdown,
            probe_interval,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Makes the health probe run every `interval` (default 10 s) instead; zero stops it.
    /// The new schedule starts now.
    pub fn with_probe_interval(self, interval: Duration) -> Self {
        self.inner.probe_interval.send_replace(interval);
        self
    }

    /// Returns the key `name`.
    ///
    /// A cached key is returned without asking the store. Otherwise the store is read and the
    /// value parsed and cached; concurrent calls for the same missing key share one read. The
    /// read goes on even if the caller stops waiting, so that the others still get the key.
    ///
    /// # Errors
    ///
    /// [`CacheError::NotFound`] when the store has no such key, [`CacheError::Parse`] when
    /// the stored value is not a valid key, and the store's errors otherwise. Errors are not
    /// cached: the next call asks the store again.
    pub async fn get(&self, name: &str) -> Result<Arc<T>, CacheError> {
        if let Some(key) = self.inner.entries.lookup(name) {
            return Ok(key);
        }
        let mut done = match self.inner.join(name) {
            Joined::Hit(key) => return Ok(key),
            Joined::Wait(done) => done,
        };
        match done.wait_for(Option::is_some).await {
            Ok(result) => match &*result {
                Some(result) => result.clone(),
                None => Err(interrupted(name)),
            },
            Err(_) => Err(interrupted(name)),
        }
    }

    /// Stores a new key. The cache is not filled: the key is cached on its first use.
    ///
    /// # Errors
    ///
    /// [`CacheError::Exists`] when the key exists, and the store's errors otherwise.
    pub async fn create(&self, name: &str, value: &[u8]) -> Result<(), CacheError> {
        Ok(self.inner.store.create(name, value).await?)
    }

    /// Replaces a key's stored value `old` with `new` (compare-and-swap, see
    /// [`KeyStore::replace`]) and drops this cache's entry, so that the next use reads the new
    /// value. Other servers' caches keep the old value until it expires or they
    /// [`refresh`](Self::refresh) it.
    ///
    /// # Errors
    ///
    /// [`CacheError::NotFound`], [`CacheError::Changed`] when the stored value is no longer
    /// `old`, [`CacheError::Unsupported`] for a store without atomic replace, and the store's
    /// other errors.
    pub async fn replace(&self, name: &str, old: &[u8], new: &[u8]) -> Result<(), CacheError> {
        let result = self.inner.store.replace(name, old, new).await;
        self.inner.evict(name);
        Ok(result?)
    }

    /// Reads the key again from the store, at most once per [`REFRESH_INTERVAL`] per key:
    /// what a server does when a request names something its cached key does not have (a
    /// version another server added). Within the interval the cached key is returned as it is,
    /// so that requests cannot turn into a read of the store each.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    pub async fn refresh(&self, name: &str) -> Result<Arc<T>, CacheError> {
        let now = Instant::now();
        let due = {
            let mut refreshed = self.inner.refreshed.lock();
            if refreshed.len() > 1024 {
                refreshed.retain(|_, at| now.duration_since(*at) < REFRESH_INTERVAL);
            }
            match refreshed.get(name) {
                Some(at) if now.duration_since(*at) < REFRESH_INTERVAL => false,
                _ => {
                    refreshed.insert(name.to_owned(), now);
                    true
                }
            }
        };
        if due {
            self.inner.evict(name);
        }
        self.get(name).await
    }

    /// Deletes a key from the store and from this cache (other servers' caches keep it until
    /// it expires there). The local entry goes even when the store fails, and a read of the
    /// key that was under way cannot put it back.
    ///
    /// # Errors
    ///
    /// The store's errors, including [`CacheError::NotFound`] if the store reports it.
    pub async fn delete(&self, name: &str) -> Result<(), CacheError> {
        let result = self.inner.store.delete(name).await;
        self.inner.evict(name);
        Ok(result?)
    }

    /// Lists the names in the store that start with `prefix`, sorted.
    ///
    /// # Errors
    ///
    /// The store's errors.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, CacheError> {
        Ok(self.inner.store.list(prefix).await?)
    }

    /// Checks the store and returns its latency. While the health probe has the store marked
    /// offline, this fails at once with [`CacheError::Unreachable`] without asking the store.
    ///
    /// # Errors
    ///
    /// [`CacheError::Unreachable`] when the store is offline or unreachable, and the store's
    /// other errors.
    pub async fn status(&self) -> Result<Duration, CacheError> {
        if let Some(cause) = self.inner.health.offline_cause() {
            return Err(CacheError::Unreachable(cause));
        }
        Ok(self.inner.store.status().await?)
    }

    /// Reports whether the health probe has the store marked offline.
    pub fn is_offline(&self) -> bool {
        self.inner.health.is_offline()
    }

    /// The store behind this cache.
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.inner.store
    }

    /// The expiry periods of this cache.
    pub fn config(&self) -> CacheConfig {
        self.inner.config
    }

    /// Stops the expiry tickers and the health probe of this cache (and of all its clones).
    /// The cache keeps answering, but keys no longer expire and the offline mark no longer
    /// changes. The store is not closed.
    pub fn close(&self) {
        self.inner.shutdown.send_replace(true);
    }
}

impl<T: Send + Sync + 'static> Clone for KeyCache<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for KeyCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field("config", &self.inner.config)
            .field("offline", &self.is_offline())
            .field("entries", &self.inner.entries.len())
            .finish_non_exhaustive()
    }
}

/// Why a [`KeyCache`] operation failed. Cloneable, because the callers sharing one read of
/// the store all receive its error.
#[derive(Clone, Debug, thiserror::Error)]
pub enum CacheError {
    /// The key does not exist in the store.
    #[error("key does not exist")]
    NotFound,

    /// A key of that name already exists (from `create`).
    #[error("key already exists")]
    Exists,

    /// The store cannot be reached, or the health probe has it marked offline.
    #[error("keystore is unreachable: {0}")]
    Unreachable(SharedError),

    /// The stored value changed meanwhile (from `replace`): read it again and retry.
    #[error("the key was changed concurrently")]
    Changed,

    /// The store cannot replace a value atomically (from `replace`).
    #[error("this keystore cannot replace a key atomically: {0}")]
    Unsupported(&'static str),

    /// Any other failure of the store.
    #[error(transparent)]
    Store(Arc<Error>),

    /// The stored value of the key is not a valid key: the parse function refused it.
    #[error("cannot parse key '{}': {cause}", .name.escape_debug())]
    Parse {
        /// The name of the key.
        name: String,
        /// The parse function's error.
        cause: SharedError,
    },
}

impl From<Error> for CacheError {
    fn from(err: Error) -> Self {
        match err {
            Error::NotFound => Self::NotFound,
            Error::Exists => Self::Exists,
            Error::Changed => Self::Changed,
            Error::Unsupported(why) => Self::Unsupported(why),
            Error::Unreachable(cause) => Self::Unreachable(Arc::from(cause)),
            other => Self::Store(Arc::new(other)),
        }
    }
}

struct Inner<T> {
    entries: Arc<Entries<T>>,
    health: Arc<Health>,
    store: Arc<dyn KeyStore>,
    parse: Box<ParseFn<T>>,
    /// Reads of the store under way, by key name. Lock order: `flights`, then a shard.
    flights: Mutex<HashMap<String, Arc<Flight<T>>>>,
    /// When each key was last refreshed (see [`KeyCache::refresh`]).
    refreshed: Mutex<HashMap<String, Instant>>,
    config: CacheConfig,
    /// Set to `true` by `close`; dropping it (with the cache) stops the background tasks too.
    shutdown: watch::Sender<bool>,
    probe_interval: watch::Sender<Duration>,
}

/// One read of the store, shared by every caller that missed the same key meanwhile.
struct Flight<T> {
    /// `None` until the read is done.
    done: watch::Sender<Option<Result<Arc<T>, CacheError>>>,
}

enum Joined<T> {
    Hit(Arc<T>),
    Wait(watch::Receiver<Option<Result<Arc<T>, CacheError>>>),
}

impl<T: Send + Sync + 'static> Inner<T> {
    /// Joins the read of `name` under way, or starts one.
    fn join(self: &Arc<Self>, name: &str) -> Joined<T> {
        let mut flights = self.flights.lock();
        if let Some(flight) = flights.get(name) {
            return Joined::Wait(flight.done.subscribe());
        }
        // A read may have finished between the caller's miss and taking the lock.
        if let Some(key) = self.entries.lookup(name) {
            return Joined::Hit(key);
        }
        let flight = Arc::new(Flight {
            done: watch::channel(None).0,
        });
        let done = flight.done.subscribe();
        flights.insert(name.to_owned(), Arc::clone(&flight));
        drop(flights);
        tokio::spawn(Arc::clone(self).fetch(name.to_owned(), flight));
        Joined::Wait(done)
    }

    /// Reads, parses and caches `name`, then hands the result to everyone waiting.
    async fn fetch(self: Arc<Self>, name: String, flight: Arc<Flight<T>>) {
        // Unregisters the flight if this task ends early (a panicking parse function, or the
        // runtime shutting down), so that waiters get an error instead of waiting forever.
        let _guard = FlightGuard {
            inner: &self,
            name: &name,
            flight: &flight,
        };
        let result = match self.store.get(&name).await {
            Ok(value) => (self.parse)(&value)
                .map(Arc::new)
                .map_err(|cause| CacheError::Parse {
                    name: name.clone(),
                    cause: Arc::from(cause),
                }),
            Err(err) => Err(CacheError::from(err)),
        };
        {
            let mut flights = self.flights.lock();
            // A delete of the key unregisters the flight: then the value read may be stale
            // and must not be cached.
            if flights.get(&name).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                flights.remove(&name);
                if let Ok(key) = &result {
                    self.entries.insert(&name, Arc::clone(key));
                }
            }
        }
        flight.done.send_replace(Some(result));
    }

    fn evict(&self, name: &str) {
        let mut flights = self.flights.lock();
        flights.remove(name);
        self.entries.remove(name);
    }
}

struct FlightGuard<'a, T> {
    inner: &'a Inner<T>,
    name: &'a str,
    flight: &'a Arc<Flight<T>>,
}

impl<T> Drop for FlightGuard<'_, T> {
    fn drop(&mut self) {
        let mut flights = self.inner.flights.lock();
        if flights
            .get(self.name)
            .is_some_and(|f| Arc::ptr_eq(f, self.flight))
        {
            flights.remove(self.name);
        }
    }
}

fn interrupted(name: &str) -> CacheError {
    #[derive(Debug, thiserror::Error)]
    #[error("cache: the read of key '{0}' from the keystore was interrupted")]
    struct Interrupted(String);

    CacheError::Store(Arc::new(Error::other(Interrupted(
        name.escape_debug().to_string(),
    ))))
}

/// The cached keys, spread over shards by name.
struct Entries<T> {
    shards: [Shard<T>; SHARDS],
}

/// Aligned to two cache lines, so that the locks of neighbouring shards do not contend.
#[repr(align(128))]
struct Shard<T>(RwLock<HashMap<Name, Arc<T>>>);

/// The name of a cached key, with the key's `used` flag: 24 bytes, so that an entry of a shard
/// (name and `Arc`) takes 32 bytes, and names of up to [`INLINE_NAME`] bytes (most names) need
/// no heap block of their own.
///
/// Names are compared and hashed as their bytes only (the `used` flag, the one mutable part,
/// takes no part); the map is searched with `name.as_bytes()`.
enum Name {
    Inline {
        /// Set by every read; cleared by each `unused / 2` tick.
        used: AtomicBool,
        len: u8,
        bytes: [u8; INLINE_NAME],
    },
    Heap {
        /// Set by every read; cleared by each `unused / 2` tick.
        used: AtomicBool,
        bytes: Box<[u8]>,
    },
}

/// The longest name stored inside a [`Name`].
const INLINE_NAME: usize = 21;

impl Name {
    /// `name`, marked used.
    fn new(name: &str) -> Name {
        let used = AtomicBool::new(true);
        let mut bytes = [0; INLINE_NAME];
        match (bytes.get_mut(..name.len()), u8::try_from(name.len())) {
            (Some(prefix), Ok(len)) => {
                prefix.copy_from_slice(name.as_bytes());
                Name::Inline { used, len, bytes }
            }
            _ => Name::Heap {
                used,
                bytes: Box::from(name.as_bytes()),
            },
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Name::Inline { len, bytes, .. } => bytes.get(..usize::from(*len)).unwrap_or(&[]),
            Name::Heap { bytes, .. } => bytes,
        }
    }

    fn used(&self) -> &AtomicBool {
        match self {
            Name::Inline { used, .. } | Name::Heap { used, .. } => used,
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Name {}

/// Hashes as the name's bytes do, as `Borrow<[u8]>` requires.
impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<T> Entries<T> {
    fn new() -> Self {
        Self {
            shards: std::array::from_fn(|_| Shard(RwLock::new(HashMap::new()))),
        }
    }

    fn shard(&self, name: &str) -> &RwLock<HashMap<Name, Arc<T>>> {
        // FNV-1a: cheap and good enough to spread names; the maps inside the shards use
        // randomized hashing, so a crafted set of names can only crowd one shard.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        #[allow(clippy::indexing_slicing)]
        // The index is reduced modulo the array length.
        let shard = &self.shards[(hash % SHARDS as u64) as usize];
        &shard.0
    }

    fn lookup(&self, name: &str) -> Option<Arc<T>> {
        let shard = self.shard(name).read();
        let (name, key) = shard.get_key_value(name.as_bytes())?;
        // Avoid writing the shared cache line when the flag is already set.
        let used = name.used();
        if !used.load(Ordering::Relaxed) {
            used.store(true, Ordering::Relaxed);
        }
        Some(Arc::clone(key))
    }

    fn insert(&self, name: &str, key: Arc<T>) {
        let mut shard = self.shard(name).write();
        // An existing entry keeps its `Name`, so mark that one used.
        if shard.insert(Name::new(name), key).is_some()
            && let Some((existing, _)) = shard.get_key_value(name.as_bytes())
        {
            existing.used().store(true, Ordering::Relaxed);
        }
    }

    fn remove(&self, name: &str) {
        self.shard(name).write().remove(name.as_bytes());
    }

    fn clear(&self) {
        for shard in &self.shards {
            shard.0.write().clear();
        }
    }

    /// Drops the entries not used since the last call, and marks the others unused.
    fn evict_unused(&self) {
        for shard in &self.shards {
            shard
                .0
                .write()
                .retain(|name, _| name.used().swap(false, Ordering::Relaxed));
        }
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.0.read().len()).sum()
    }
}

/// Whether the health probe found the store offline, and why.
#[derive(Default)]
struct Health {
    offline: AtomicBool,
    cause: Mutex<Option<SharedError>>,
}

impl Health {
    fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    fn offline_cause(&self) -> Option<SharedError> {
        if !self.is_offline() {
            return None;
        }
        let cause = self.cause.lock().clone();
        Some(cause.unwrap_or_else(|| Arc::new(ProbeFailed)))
    }

    fn set_offline(&self, cause: SharedError) {
        *self.cause.lock() = Some(cause);
        self.offline.store(true, Ordering::Release);
    }

    fn set_online(&self) {
        self.offline.store(false, Ordering::Release);
        *self.cause.lock() = None;
    }
}

/// The cause reported when the probe's own error is no longer at hand.
#[derive(Debug, thiserror::Error)]
#[error("the keystore failed its last health check")]
struct ProbeFailed;

#[derive(Debug, thiserror::Error)]
#[error("the keystore did not answer its health check within {0:?}")]
struct ProbeTimeout(Duration);

/// The intervals of the expiry tickers; `None` for those switched off.
struct Tickers {
    any: Option<Interval>,
    unused: Option<Interval>,
    offline: Option<Interval>,
}

/// The expiry tickers.
async fn expire<T>(
    entries: Arc<Entries<T>>,
    health: Arc<Health>,
    config: CacheConfig,
    mut tickers: Tickers,
    mut shutdown: watch::Receiver<bool>,
) {
    let paused = || !config.offline.is_zero() && health.is_offline();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tick(&mut tickers.any) => {
                if !paused() {
                    entries.clear();
                }
            }
            () = tick(&mut tickers.unused) => {
                if !paused() {
                    entries.evict_unused();
                }
            }
            () = tick(&mut tickers.offline) => {
                if health.is_offline() {
                    entries.clear();
                }
            }
        }
    }
}

/// The health probe.
async fn probe(
    store: Arc<dyn KeyStore>,
    health: Arc<Health>,
    mut interval: Option<Interval>,
    mut period: watch::Receiver<Duration>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            changed = period.changed() => {
                if changed.is_err() {
                    return;
                }
                interval = ticker(*period.borrow_and_update());
            }
            () = tick(&mut interval) => {
                let limit = interval.as_ref().map_or(DEFAULT_PROBE_INTERVAL, Interval::period);
                let status = tokio::select! {
                    _ = shutdown.changed() => return,
                    status = tokio::time::timeout(limit, store.status()) => status,
                };
                match status {
                    Ok(Ok(_)) => health.set_online(),
                    Ok(Err(Error::Unreachable(cause))) => health.set_offline(Arc::from(cause)),
                    Ok(Err(err)) => health.set_offline(Arc::new(err)),
                    Err(_) => health.set_offline(Arc::new(ProbeTimeout(limit))),
                }
            }
        }
    }
}

/// An interval whose first tick is one period from now, or `None` for a zero (or absurdly
/// long) period.
fn ticker(period: Duration) -> Option<Interval> {
    if period.is_zero() || period > NEVER {
        return None;
    }
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    Some(interval)
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
