//! The heap cost of one cached key: a regression guard for the memory of a server that caches
//! many keys (the project target is ≤ 64 MB peak RSS for 100,000 cached keys plus 1,024 idle
//! connections).
//!
//! A counting global allocator (this file is its own test binary, with a single test, so no
//! other test allocates meanwhile) measures the heap that stays allocated after N keys were
//! read through a [`KeyCache`] of parsed [`KeyVersion`]s, as the server does. Two figures per
//! key are reported: the bytes requested from the allocator, and what they cost in glibc
//! malloc (every allocation takes a chunk of `max(32, (n + 8) rounded up to 16)` bytes), which
//! is what resident memory sees. The bound is asserted on the glibc figure.

#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use kes_crypto::{KeyType, KeyVersion};
use kes_keystore::cache::{CacheConfig, KeyCache};
use kes_keystore::{KeyStore, MemKeyStore};
use time::OffsetDateTime;

/// Counts the live heap: requested bytes and glibc chunk bytes.
struct Counting;

static REQUESTED: AtomicIsize = AtomicIsize::new(0);
static CHUNKS: AtomicIsize = AtomicIsize::new(0);

/// The size of the glibc malloc chunk that serves a request of `size` bytes (64-bit).
fn chunk(layout: Layout) -> isize {
    let size = layout.size().max(1);
    // Over-aligned requests go through memalign; they are rare (the shard array) and one-off.
    let size = if layout.align() > 16 {
        size + layout.align()
    } else {
        size
    };
    ((size + 8 + 15) & !15).max(32) as isize
}

fn add(layout: Layout) {
    REQUESTED.fetch_add(layout.size() as isize, Ordering::Relaxed);
    CHUNKS.fetch_add(chunk(layout), Ordering::Relaxed);
}

fn sub(layout: Layout) {
    REQUESTED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    CHUNKS.fetch_sub(chunk(layout), Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are only
// bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            add(layout);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            add(layout);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) };
        sub(layout);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is passed on unchanged.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            sub(layout);
            // SAFETY: `realloc` succeeded, so `new_size` with this alignment is a valid layout.
            add(unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) });
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> (isize, isize) {
    (
        REQUESTED.load(Ordering::SeqCst),
        CHUNKS.load(Ordering::SeqCst),
    )
}

/// The identity that created the keys: one 64-hex identity for all, as on a real server where
/// one admin or one MinIO deployment creates the keys.
const CREATOR: &str = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22";

/// Keys read through the cache.
const N: usize = 10_000;

/// Bytes of glibc heap one cached key may cost at most.
const BOUND: isize = 200;

#[test]
fn heap_per_cached_key() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Arc::new(MemKeyStore::new());
        let now = OffsetDateTime::now_utc();
        // The names of the benchmark (`bench-000042`): short names, as most are.
        let names: Vec<String> = (0..=N).map(|i| format!("bench-{i:06}")).collect();
        for name in &names {
            let record = KeyVersion::generate(KeyType::Aes256, CREATOR.to_owned(), now)
                .unwrap()
                .encode()
                .unwrap();
            store.create(name, record.as_bytes()).await.unwrap();
        }
        let config = CacheConfig {
            any: Duration::ZERO,
            unused: Duration::ZERO,
            offline: Duration::ZERO,
        };
        let cache = KeyCache::new(store as Arc<dyn KeyStore>, config, |bytes: &[u8]| {
            KeyVersion::parse(bytes)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .with_probe_interval(Duration::ZERO);
        // One read first, so that one-off allocations (task machinery, lazies) are not counted.
        let (warmup, keys) = names.split_first().unwrap();
        assert_eq!(cache.get(warmup).await.unwrap().created_by(), CREATOR);
        tokio::task::yield_now().await;

        let (requested_before, chunks_before) = live();
        for name in keys {
            let key = cache.get(name).await.unwrap();
            assert_eq!(key.created_by(), CREATOR);
        }
        tokio::task::yield_now().await;
        let (requested_after, chunks_after) = live();

        let n = keys.len() as isize;
        let requested = (requested_after - requested_before) / n;
        let chunks = (chunks_after - chunks_before) / n;
        println!(
            "{n} cached keys: {requested} bytes requested per key, {chunks} bytes of glibc heap per key"
        );
        // Every key stays cached (the store no longer has them), and hits keep no memory.
        for name in keys {
            cache.store().delete(name).await.unwrap();
        }
        for name in keys {
            assert_eq!(cache.get(name).await.unwrap().created_by(), CREATOR);
        }
        let after_hits = live();
        for name in keys {
            assert_eq!(cache.get(name).await.unwrap().created_by(), CREATOR);
        }
        assert_eq!(live(), after_hits, "cache hits keep no memory");
        assert!(
            chunks <= BOUND,
            "a cached key costs {chunks} bytes of heap (requested {requested}), more than {BOUND}"
        );
    });
}
