#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::sleep;
use zeroize::Zeroizing;

use super::{CacheConfig, CacheError, Entries, INLINE_NAME, KeyCache, Name};
use crate::{Error, KeyStore, MemKeyStore};

/// A store in memory that counts its calls, can be switched off, and can be slow.
#[derive(Default)]
struct TestStore {
    keys: MemKeyStore,
    gets: AtomicUsize,
    statuses: AtomicUsize,
    down: AtomicBool,
    /// How long `get` sleeps after reading the value.
    get_delay: Duration,
}

impl TestStore {
    fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn slow(get_delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            get_delay,
            ..Self::default()
        })
    }

    async fn with_key(self: Arc<Self>, name: &str, value: &[u8]) -> Arc<Self> {
        self.keys.create(name, value).await.unwrap();
        self
    }

    fn gets(&self) -> usize {
        self.gets.load(Ordering::SeqCst)
    }

    fn statuses(&self) -> usize {
        self.statuses.load(Ordering::SeqCst)
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::unreachable("test store is down"));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl KeyStore for TestStore {
    async fn status(&self) -> Result<Duration, Error> {
        self.statuses.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        Ok(Duration::from_millis(1))
    }

    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        self.check()?;
        self.keys.create(name, value).await
    }

    async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        let value = self.keys.get(name).await;
        sleep(self.get_delay).await;
        value
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        self.check()?;
        self.keys.delete(name).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        self.check()?;
        self.keys.list(prefix).await
    }

    async fn close(&self) -> Result<(), Error> {
        Ok(())
    }

    fn locator(&self) -> crate::Locator {
        self.keys.locator()
    }
}

const S: Duration = Duration::from_secs(1);

fn config(any: u64, unused: u64, offline: u64) -> CacheConfig {
    CacheConfig {
        any: S * any as u32,
        unused: S * unused as u32,
        offline: S * offline as u32,
    }
}

/// A cache whose keys are the stored bytes; the value `bad` does not parse.
fn cache(store: &Arc<TestStore>, config: CacheConfig) -> KeyCache<Vec<u8>> {
    let store: Arc<dyn KeyStore> = Arc::clone(store) as Arc<dyn KeyStore>;
    KeyCache::new(store, config, |value: &[u8]| {
        if value == b"bad" {
            return Err("not a key record".into());
        }
        Ok(value.to_vec())
    })
}

/// Sleeps until `secs` seconds after `start` (paused clock: instant and exact).
async fn at(start: tokio::time::Instant, secs: f64) {
    tokio::time::sleep_until(start + Duration::from_secs_f64(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn hits_do_not_touch_the_store() {
    let store = TestStore::new().with_key("k", b"value").await;
    let cache = cache(&store, config(0, 0, 0));
    let first = cache.get("k").await.unwrap();
    assert_eq!(*first, b"value");
    assert_eq!(store.gets(), 1);
    store.set_down(true);
    for _ in 0..10 {
        let again = cache.get("k").await.unwrap();
        assert!(Arc::ptr_eq(&first, &again));
    }
    assert_eq!(store.gets(), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_misses_share_one_read() {
    let store = TestStore::slow(Duration::from_millis(100))
        .with_key("k", b"value")
        .await;
    let cache = cache(&store, config(0, 0, 0));

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("k").await })
        })
        .collect();
    let mut keys = Vec::new();
    for task in tasks {
        keys.push(task.await.unwrap().unwrap());
    }
    assert_eq!(store.gets(), 1);
    assert!(keys.iter().all(|k| Arc::ptr_eq(k, &keys[0])));
    assert_eq!(*keys[0], b"value");

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.get("missing").await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(task.await.unwrap(), Err(CacheError::NotFound)));
    }
    assert_eq!(store.gets(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_caller_giving_up_does_not_stop_the_read() {
    let store = TestStore::slow(Duration::from_millis(100))
        .with_key("k", b"value")
        .await;
    let cache = cache(&store, config(0, 0, 0));
    let gave_up = tokio::time::timeout(Duration::from_millis(10), cache.get("k")).await;
    assert!(gave_up.is_err());
    assert_eq!(*cache.get("k").await.unwrap(), b"value");
    assert_eq!(store.gets(), 1);
}

#[tokio::test(start_paused = true)]
async fn errors_are_not_cached() {
    let store = TestStore::new().with_key("bad", b"bad").await;
    let cache = cache(&store, config(0, 0, 0));

    let err = cache.get("bad").await.unwrap_err();
    assert!(matches!(&err, CacheError::Parse { name, .. } if name == "bad"));
    assert_eq!(err.to_string(), "cannot parse key 'bad': not a key record");
    assert!(cache.get("bad").await.is_err());
    assert_eq!(store.gets(), 2);

    assert!(matches!(
        cache.get("later").await,
        Err(CacheError::NotFound)
    ));
    store.keys.create("later", b"now").await.unwrap();
    assert_eq!(*cache.get("later").await.unwrap(), b"now");

    store.set_down(true);
    let err = cache.get("other").await.unwrap_err();
    assert!(matches!(err, CacheError::Unreachable(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "keystore is unreachable: test store is down"
    );
    store.set_down(false);
    assert!(matches!(
        cache.get("other").await,
        Err(CacheError::NotFound)
    ));
}

#[tokio::test(start_paused = true)]
async fn create_list_and_delete_pass_through() {
    let store = TestStore::new();
    let cache = cache(&store, config(0, 0, 0));

    cache.create("k", b"value").await.unwrap();
    assert_eq!(store.keys.get("k").await.unwrap().as_slice(), b"value");
    assert_eq!(store.gets(), 0, "create must not fill the cache by reading");
    assert!(matches!(
        cache.create("k", b"other").await,
        Err(CacheError::Exists)
    ));
    assert_eq!(cache.list("").await.unwrap(), ["k"]);
    assert_eq!(cache.list("x").await.unwrap(), Vec::<String>::new());

    assert_eq!(*cache.get("k").await.unwrap(), b"value");
    assert_eq!(store.gets(), 1);
    assert_eq!(cache.inner.entries.len(), 1);

    cache.delete("k").await.unwrap();
    assert_eq!(cache.inner.entries.len(), 0);
    assert!(matches!(cache.get("k").await, Err(CacheError::NotFound)));
    assert_eq!(store.gets(), 2);
    assert!(matches!(cache.delete("k").await, Err(CacheError::NotFound)));
}

#[tokio::test(start_paused = true)]
async fn delete_evicts_even_when_the_store_fails() {
    let store = TestStore::new().with_key("k", b"value").await;
    let cache = cache(&store, config(0, 0, 0));
    cache.get("k").await.unwrap();
    store.set_down(true);
    assert!(matches!(
        cache.delete("k").await,
        Err(CacheError::Unreachable(_))
    ));
    assert!(matches!(
        cache.get("k").await,
        Err(CacheError::Unreachable(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_read_under_way_cannot_bring_back_a_deleted_key() {
    // The slow store reads the value first and answers 100 ms later.
    let store = TestStore::slow(Duration::from_millis(100))
        .with_key("k", b"old")
        .await;
    let cache = cache(&store, config(0, 0, 0));
    let reader = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get("k").await })
    };
    sleep(Duration::from_millis(10)).await;
    assert_eq!(store.gets(), 1);
    cache.delete("k").await.unwrap();
    // The read began before the delete, so its caller may see the old key...
    assert_eq!(*reader.await.unwrap().unwrap(), b"old");
    // ...but the cache must not keep it.
    assert!(matches!(cache.get("k").await, Err(CacheError::NotFound)));
    assert_eq!(store.gets(), 2);
}

#[tokio::test(start_paused = true)]
async fn any_expiry_drops_even_busy_keys() {
    let store = TestStore::new().with_key("k", b"value").await;
    let start = tokio::time::Instant::now();
    let cache = cache(&store, config(60, 0, 0));
    cache.get("k").await.unwrap();
    for t in [10.0, 30.0, 59.0] {
        at(start, t).await;
        cache.get("k").await.unwrap();
        assert_eq!(store.gets(), 1, "expired early, at {t} s");
    }
    at(start, 61.0).await;
    cache.get("k").await.unwrap();
    assert_eq!(store.gets(), 2, "not expired after `any`");
    at(start, 119.0).await;
    cache.get("k").await.unwrap();
    assert_eq!(store.gets(), 2);
    at(start, 121.0).await;
    cache.get("k").await.unwrap();
    assert_eq!(store.gets(), 3);
}

#[tokio::test(start_paused = true)]
async fn unused_expiry_drops_idle_keys_only() {
    // unused = 10 s: ticks at 5, 10, 15, 20 s.
    let store = TestStore::new()
        .with_key("busy", b"1")
        .await
        .with_key("idle", b"2")
        .await;
    let start = tokio::time::Instant::now();
    let cache = cache(&store, config(0, 10, 0));
    cache.get("busy").await.unwrap();
    cache.get("idle").await.unwrap();
    assert_eq!(store.gets(), 2);

    // 5 s: both were used since the start, both stay.
    at(start, 6.0).await;
    cache.get("busy").await.unwrap();
    assert_eq!(cache.inner.entries.len(), 2);
    // 10 s: `idle` was not used since 5 s and goes; `busy` stays.
    at(start, 11.0).await;
    assert_eq!(cache.inner.entries.len(), 1);
    cache.get("busy").await.unwrap();
    assert_eq!(store.gets(), 2);
    // An idle key survives one tick after its last use...
    at(start, 16.0).await;
    assert_eq!(cache.inner.entries.len(), 1);
    // ...but not two.
    at(start, 21.0).await;
    assert_eq!(cache.inner.entries.len(), 0);
    cache.get("busy").await.unwrap();
    assert_eq!(store.gets(), 3);
}

#[tokio::test(start_paused = true)]
async fn probe_marks_the_store_offline_and_online() {
    let store = TestStore::new();
    let start = tokio::time::Instant::now();
    let cache = cache(&store, config(0, 0, 0)).with_probe_interval(S);
    assert!(!cache.is_offline());
    cache.status().await.unwrap();

    store.set_down(true);
    at(start, 1.5).await;
    assert!(cache.is_offline());
    let probes = store.statuses();
    let err = cache.status().await.unwrap_err();
    assert!(matches!(err, CacheError::Unreachable(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "keystore is unreachable: test store is down"
    );
    assert_eq!(
        store.statuses(),
        probes,
        "status must not ask an offline store"
    );

    store.set_down(false);
    at(start, 2.5).await;
    assert!(!cache.is_offline());
    cache.status().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn default_probe_interval_is_ten_seconds() {
    let store = TestStore::new();
    let start = tokio::time::Instant::now();
    let cache = cache(&store, config(0, 0, 0));
    store.set_down(true);
    at(start, 9.5).await;
    assert!(!cache.is_offline());
    assert_eq!(store.statuses(), 0);
    at(start, 10.5).await;
    assert!(cache.is_offline());
    assert_eq!(store.statuses(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_store_is_marked_offline() {
    struct Hanging;
    #[async_trait::async_trait]
    impl KeyStore for Hanging {
        async fn status(&self) -> Result<Duration, Error> {
            std::future::pending().await
        }
        async fn create(&self, _: &str, _: &[u8]) -> Result<(), Error> {
            std::future::pending().await
        }
        async fn get(&self, _: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
            std::future::pending().await
        }
        async fn delete(&self, _: &str) -> Result<(), Error> {
            std::future::pending().await
        }
        async fn list(&self, _: &str) -> Result<Vec<String>, Error> {
            std::future::pending().await
        }
        async fn close(&self) -> Result<(), Error> {
            Ok(())
        }
        fn locator(&self) -> crate::Locator {
            crate::Locator::new("hanging")
        }
    }
    let start = tokio::time::Instant::now();
    let cache = KeyCache::new(
        Arc::new(Hanging),
        config(0, 0, 0),
        |v: &[u8]| Ok(v.to_vec()),
    )
    .with_probe_interval(S);
    at(start, 1.5).await;
    assert!(!cache.is_offline());
    at(start, 2.5).await;
    assert!(cache.is_offline());
    assert!(
        cache
            .status()
            .await
            .unwrap_err()
            .to_string()
            .contains("did not answer its health check within 1s")
    );
}

#[tokio::test(start_paused = true)]
async fn offline_store_keeps_cached_keys_until_offline_expiry() {
    let store = TestStore::new()
        .with_key("k", b"value")
        .await
        .with_key("uncached", b"x")
        .await;
    let start = tokio::time::Instant::now();
    let cache = cache(&store, config(10, 4, 60)).with_probe_interval(S);
    cache.get("k").await.unwrap();
    store.set_down(true);

    at(start, 1.5).await;
    assert!(cache.is_offline());
    // Well past `any` and `unused`: still served, without asking the store.
    at(start, 30.0).await;
    assert_eq!(*cache.get("k").await.unwrap(), b"value");
    assert_eq!(store.gets(), 1);
    // Misses still go to the store.
    assert!(matches!(
        cache.get("uncached").await,
        Err(CacheError::Unreachable(_))
    ));
    assert_eq!(store.gets(), 2);
    at(start, 59.5).await;
    assert_eq!(*cache.get("k").await.unwrap(), b"value");
    // The offline ticker fires at 60 s.
    at(start, 60.5).await;
    assert!(matches!(
        cache.get("k").await,
        Err(CacheError::Unreachable(_))
    ));

    // Back online: keys are read again and expire normally.
    store.set_down(false);
    at(start, 61.5).await;
    assert!(!cache.is_offline());
    cache.get("k").await.unwrap();
    let gets = store.gets();
    at(start, 70.5).await;
    cache.get("k").await.unwrap();
    assert_eq!(
        store.gets(),
        gets + 1,
        "`any` expiry must resume when online"
    );
}

#[tokio::test(start_paused = true)]
async fn without_offline_caching_keys_expire_while_offline() {
    let store = TestStore::new().with_key("k", b"value").await;
    let start = tokio::time::Instant::now();
    let cache = cache(&store, config(10, 0, 0)).with_probe_interval(S);
    cache.get("k").await.unwrap();
    store.set_down(true);
    at(start, 9.5).await;
    assert!(cache.is_offline());
    cache.get("k").await.unwrap();
    at(start, 10.5).await;
    assert!(matches!(
        cache.get("k").await,
        Err(CacheError::Unreachable(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn close_stops_the_background_tasks() {
    let store = TestStore::new().with_key("k", b"value").await;
    let start = tokio::time::Instant::now();
    let cache = cache(&store, config(10, 4, 0)).with_probe_interval(S);
    cache.get("k").await.unwrap();
    cache.close();
    store.set_down(true);
    at(start, 30.0).await;
    assert!(!cache.is_offline(), "the probe still runs");
    assert_eq!(store.statuses(), 0);
    assert_eq!(*cache.get("k").await.unwrap(), b"value");
    assert_eq!(store.gets(), 1, "expiry still runs");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_cache_stops_the_background_tasks() {
    let store = TestStore::new().with_key("k", b"value").await;
    let cache = cache(&store, config(10, 4, 60)).with_probe_interval(S);
    let clone = cache.clone();
    clone.get("k").await.unwrap();
    drop(cache);
    sleep(Duration::from_millis(1)).await;
    assert!(Arc::strong_count(&store) > 1, "a clone is still alive");
    drop(clone);
    sleep(Duration::from_millis(1)).await;
    assert_eq!(
        Arc::strong_count(&store),
        1,
        "a background task still holds the store"
    );
}

#[tokio::test(start_paused = true)]
async fn debug_shows_no_keys() {
    let store = TestStore::new().with_key("k", b"SECRET").await;
    let cache = cache(&store, config(1, 2, 3));
    cache.get("k").await.unwrap();
    let debug = format!("{cache:?}");
    assert!(debug.contains("entries: 1"), "{debug}");
    assert!(
        !debug.contains("SECRET") && !debug.contains("83, 69, 67"),
        "{debug}"
    );
}

#[test]
fn store_errors_map_to_cache_errors() {
    assert!(matches!(
        CacheError::from(Error::NotFound),
        CacheError::NotFound
    ));
    assert!(matches!(
        CacheError::from(Error::Exists),
        CacheError::Exists
    ));
    let err = CacheError::from(Error::unreachable("no route"));
    assert_eq!(err.to_string(), "keystore is unreachable: no route");
    let err = CacheError::from(Error::other("disk on fire"));
    assert!(matches!(&err, CacheError::Store(_)));
    assert_eq!(err.to_string(), "disk on fire");
}

#[tokio::test(start_paused = true)]
async fn huge_periods_never_fire_and_zero_probe_interval_stops_the_probe() {
    let store = TestStore::new().with_key("k", b"value").await;
    let huge = CacheConfig {
        any: Duration::MAX,
        unused: Duration::from_secs(50 * 365 * 24 * 3600),
        offline: Duration::MAX,
    };
    let cache = cache(&store, huge).with_probe_interval(Duration::ZERO);
    cache.get("k").await.unwrap();
    store.set_down(true);
    sleep(Duration::from_secs(365 * 24 * 3600)).await;
    assert_eq!(*cache.get("k").await.unwrap(), b"value");
    assert_eq!(store.gets(), 1);
    assert_eq!(store.statuses(), 0);
    assert!(!cache.is_offline());
}

/// An entry of a shard is 32 bytes: the name (inline up to 21 bytes) with the `used` flag, and
/// the `Arc` of the key.
#[test]
fn entries_are_compact() {
    assert_eq!(std::mem::size_of::<Name>(), 24);
    assert_eq!(std::mem::size_of::<(Name, Arc<Vec<u8>>)>(), 32);
}

#[test]
// The `used` flag of a `Name` takes no part in its hash or equality.
#[allow(clippy::mutable_key_type)]
fn names_keep_their_bytes_inline_or_on_the_heap() {
    let mut map = std::collections::HashMap::new();
    for len in [0, 1, INLINE_NAME - 1, INLINE_NAME, INLINE_NAME + 1, 80, 300] {
        let text: String = (0..len)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let name = Name::new(&text);
        assert_eq!(name.as_bytes(), text.as_bytes(), "{len}");
        assert_eq!(
            matches!(name, Name::Inline { .. }),
            len <= INLINE_NAME,
            "{len}"
        );
        assert!(name.used().load(std::sync::atomic::Ordering::Relaxed));
        assert!(name == Name::new(&text));
        map.insert(name, len);
    }
    // Looked up by bytes, whichever way each name is stored (hashing agrees with `[u8]`).
    for (name, len) in map.iter() {
        assert_eq!(map.get(name.as_bytes()), Some(len));
    }
    assert_eq!(map.get("abc".as_bytes()), None);
    assert_eq!(map.get("ab".as_bytes()), None);
    assert!(Name::new("ab") != Name::new("abc"));
}

#[test]
fn entries_track_use_for_inline_and_heap_names() {
    let entries = Entries::<u8>::new();
    let long = "l".repeat(80);
    for name in ["short", long.as_str()] {
        entries.insert(name, Arc::new(1));
    }
    assert_eq!(entries.len(), 2);
    // Inserted entries count as used once.
    entries.evict_unused();
    assert_eq!(entries.len(), 2);
    // A read marks either kind of name used again.
    assert_eq!(entries.lookup(&long).as_deref(), Some(&1));
    entries.evict_unused();
    assert_eq!(entries.len(), 1);
    assert!(entries.lookup("short").is_none());
    // Inserting an existing name replaces the key and marks the entry used.
    entries.evict_unused();
    entries.insert(&long, Arc::new(2));
    entries.evict_unused();
    assert_eq!(entries.lookup(&long).as_deref(), Some(&2));
    entries.remove(&long);
    assert_eq!(entries.len(), 0);
}
