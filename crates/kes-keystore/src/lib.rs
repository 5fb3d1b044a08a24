//! Key stores of the KES server: where the stored key records live, as opaque bytes.
//!
//! The [`KeyStore`] trait is the contract every backend implements (kes-spec §8.1). This crate
//! provides the in-memory store [`MemKeyStore`], the filesystem store [`FsKeyStore`] (the
//! original server's directory layout, kes-spec §8.3), and the key cache of the server
//! ([`cache::KeyCache`], kes-spec §7.4). With the `testkit` feature, the `testkit` module holds the
//! conformance suite that every backend must pass.
//!
//! A key store never interprets the values it stores (they are the key records of
//! kes-spec §4.1, parsed by the caller), and never puts a value into an error, a log line or
//! a `Debug` output: only operation and key names.

#![deny(unsafe_code)]

pub mod cache;
mod error;
mod fs;
mod mem;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

pub use error::Error;
pub use fs::FsKeyStore;
pub use mem::MemKeyStore;
pub use open::{Locator, OpenMode, StoreConfig};

mod open;
pub mod retry;

/// A store of named, opaque values: the stored key records.
///
/// Names are compared as exact, case-sensitive strings. Callers validate them (kes-spec §2.3)
/// before they reach a store; a store may reject names it cannot represent with
/// [`Error::Other`]. Every method may also fail with [`Error::Unreachable`] when the
/// backend cannot be reached, or [`Error::Other`] for any other failure.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Checks that the store is reachable and usable, and returns how long the check took.
    ///
    /// Fails with [`Error::Unreachable`] when the backend cannot be reached, and with
    /// [`Error::Other`] when it answers but is not usable.
    async fn status(&self) -> Result<Duration, Error>;

    /// Stores `value` under `name`, which must not exist yet.
    ///
    /// Fails with [`Error::Exists`] when `name` exists; an existing value is never
    /// overwritten, even by concurrent calls: of several creates of one name, exactly one
    /// succeeds. A failed create leaves no value behind.
    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error>;

    /// Returns the value stored under `name`, or fails with [`Error::NotFound`].
    async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error>;

    /// Removes `name` and its value. For a missing name a store may succeed or fail with
    /// [`Error::NotFound`].
    async fn delete(&self, name: &str) -> Result<(), Error>;

    /// Replaces the value of the existing key `name` with `new` if and only if it is still
    /// `old`, atomically (compare-and-swap): key rotation's update, safe against other servers
    /// changing the same key. Readers see the old or the new value, never anything else.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] if the key does not exist, [`Error::Changed`] if its value is not
    /// `old`, [`Error::Unsupported`] (the default) for a backend without an atomic replace.
    async fn replace(&self, name: &str, old: &[u8], new: &[u8]) -> Result<(), Error> {
        let _ = (name, old, new);
        Err(Error::Unsupported(
            "the backend has no compare-and-swap update",
        ))
    }

    /// Returns every name that starts with `prefix` (all names for `""`), sorted byte-wise,
    /// without any limit on their number.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error>;

    /// Releases the resources held by the store (connections, background tasks). Calls made
    /// after `close` may fail.
    async fn close(&self) -> Result<(), Error>;

    /// Where the store keeps its values: two stores with overlapping locators are one store
    /// (see [`Locator`]). `kes migrate` refuses to copy a store onto itself by this.
    fn locator(&self) -> Locator;
}

#[async_trait::async_trait]
impl<S: KeyStore + ?Sized> KeyStore for Arc<S> {
    async fn status(&self) -> Result<Duration, Error> {
        (**self).status().await
    }

    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        (**self).create(name, value).await
    }

    async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        (**self).get(name).await
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        (**self).delete(name).await
    }

    async fn replace(&self, name: &str, old: &[u8], new: &[u8]) -> Result<(), Error> {
        (**self).replace(name, old, new).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        (**self).list(prefix).await
    }

    async fn close(&self) -> Result<(), Error> {
        (**self).close().await
    }

    fn locator(&self) -> Locator {
        (**self).locator()
    }
}
