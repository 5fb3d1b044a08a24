//! The in-memory key store.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::time::Duration;

use parking_lot::RwLock;
use zeroize::Zeroizing;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, KeyStore, Locator};

/// A key store that keeps its values in process memory: they are lost when the process ends
/// (used by `kes server --dev` and by tests).
///
/// Values are wiped from memory when they are deleted and when the store is dropped.
pub struct MemKeyStore {
    keys: RwLock<BTreeMap<String, Zeroizing<Vec<u8>>>>,
    /// Tells this store from every other of the process (see [`KeyStore::locator`]).
    id: u64,
}

impl MemKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self {
            keys: RwLock::default(),
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl Default for MemKeyStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemKeyStore")
            .field("keys", &self.keys.read().len())
            .finish()
    }
}

#[async_trait::async_trait]
impl KeyStore for MemKeyStore {
    async fn status(&self) -> Result<Duration, Error> {
        // Memory is always reachable; there is no latency worth measuring.
        Ok(Duration::ZERO)
    }

    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        let mut keys = self.keys.write();
        if keys.contains_key(name) {
            return Err(Error::Exists);
        }
        keys.insert(name.to_owned(), Zeroizing::new(value.to_vec()));
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.keys.read().get(name).cloned().ok_or(Error::NotFound)
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        match self.keys.write().remove(name) {
            Some(_) => Ok(()),
            None => Err(Error::NotFound),
        }
    }

    async fn replace(&self, name: &str, old: &[u8], new: &[u8]) -> Result<(), Error> {
        let mut keys = self.keys.write();
        match keys.get_mut(name) {
            None => Err(Error::NotFound),
            Some(value) if value.as_slice() != old => Err(Error::Changed),
            Some(value) => {
                *value = Zeroizing::new(new.to_vec());
                Ok(())
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let keys = self.keys.read();
        Ok(keys
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(name, _)| name)
            .take_while(|name| name.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn close(&self) -> Result<(), Error> {
        Ok(())
    }

    fn locator(&self) -> Locator {
        Locator::new(format!("mem:{}:{}", std::process::id(), self.id))
    }
}

#[cfg(test)]
mod tests {
    use super::MemKeyStore;
    use crate::KeyStore;
    use crate::testkit::{ConformanceOptions, run_conformance, run_conformance_with};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn conformance() {
        run_conformance(MemKeyStore::new()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn conformance_through_arc_dyn() {
        let store: std::sync::Arc<dyn KeyStore> = std::sync::Arc::new(MemKeyStore::new());
        run_conformance_with(
            store,
            ConformanceOptions {
                many_keys: 100,
                ..ConformanceOptions::default()
            },
        )
        .await;
    }

    #[tokio::test]
    async fn debug_shows_no_values() {
        let store = MemKeyStore::new();
        store.create("k", b"secret-value").await.unwrap();
        let debug = format!("{store:?}");
        assert_eq!(debug, "MemKeyStore { keys: 1 }");
    }
}
