//! What a backend's config section offers the program: opening its store, and naming it.

use std::fmt;
use std::sync::Arc;

use crate::{Error, KeyStore};

/// Why a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// For a server: the store may create what it needs to exist (the `fs` directory).
    Serve,
    /// As the source of a copy (`kes migrate --from`): the store must exist already; opening it
    /// creates nothing, and fails with an error that says so when the store does not exist.
    Existing,
}

/// The validated config of one keystore backend, as its section of the configuration file
/// describes it: the program's table of backends maps each section to one of these, and the
/// server and `kes migrate` open stores only through it.
#[async_trait::async_trait]
pub trait StoreConfig: fmt::Debug + Send + Sync + 'static {
    /// The store for people, in messages: `fs keystore '/var/lib/kes'`,
    /// `vault keystore 'https://vault:8200' engine 'kv'`. Never contains a secret.
    fn describe(&self) -> String;

    /// Opens (connects to, logs in to) the store. Background tasks of the store (token
    /// renewal, health checks) run on the current tokio runtime and end on
    /// [`KeyStore::close`] or when the store is dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`] when the backend cannot be reached; [`Error::Other`] when it
    /// refuses (wrong credentials, …) or, in [`OpenMode::Existing`], when the store does not
    /// exist. Errors name the backend and never contain a secret.
    async fn open(&self, mode: OpenMode) -> Result<Arc<dyn KeyStore>, Error>;
}

/// Where a store keeps its values: the names under which its storage is reachable.
///
/// A store reachable under several names (a Vault cluster behind several endpoints, one
/// directory reached through a symbolic link) lists each name it knows; two locators *overlap*
/// when they share one, and then the stores are the same. Names start with the backend
/// (`fs:`, `vault:`), so stores of different backends never overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locator(Vec<String>);

impl Locator {
    /// A store known under one name.
    pub fn new(name: impl Into<String>) -> Self {
        Self(vec![name.into()])
    }

    /// A store known under several names.
    pub fn of(names: impl IntoIterator<Item = String>) -> Self {
        Self(names.into_iter().collect())
    }

    /// Whether both locate the same store.
    pub fn overlaps(&self, other: &Locator) -> bool {
        self.0.iter().any(|name| other.0.contains(name))
    }

    /// The names.
    pub fn names(&self) -> &[String] {
        &self.0
    }
}
