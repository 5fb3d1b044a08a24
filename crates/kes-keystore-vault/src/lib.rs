//! The HashiCorp Vault (and OpenBao) key store of the KES server (kes-spec §8.2).
//!
//! Key records live in a K/V secrets engine, v1 or v2, one secret per key with one field named
//! like the key, optionally wrapped by a transit key, optionally in a Vault namespace and under
//! a prefix. The store logs in with AppRole or a Kubernetes service account (or uses a token it
//! is given), renews its token before it expires and logs in again when renewal is no longer
//! possible (see docs/vault.md), checks Vault's health every `status.ping`, retries
//! transient failures with backoff, and fails over between the endpoints of a Vault cluster.
//!
//! What it must never do: overwrite a stored key; put a Vault token, an AppRole secret, a JWT
//! or a stored value into an error, a log line or a `Debug` output (errors name the Vault
//! path, the endpoint and the HTTP status); hold secret bytes in buffers of its own that are
//! not wiped on drop (copies the HTTP and TLS stack makes internally are beyond its reach).
//!
//! Create on K/V v2 is a check-and-set write with `cas = 0`, which Vault performs atomically:
//! of any number of concurrent creates of one name, on any number of KES servers, exactly one
//! succeeds. When a create had to be retried (its connection died with a Vault node) and the
//! retry finds the secret existing, the store compares the stored value with its own: the
//! lost try may have been the one that wrote it, and then the create succeeded. K/V v1 has no
//! conditional write, so create reads first and writes only if the
//! secret is missing, as the original does; creates through one `VaultKeyStore` are
//! serialised per name, but two KES servers creating the same name at the same moment on K/V
//! v1 can both succeed, the later write replacing the earlier. Use K/V v2 for several KES
//! servers.

#![forbid(unsafe_code)]

mod auth;
mod config;
mod error;
mod health;
mod request;
mod retry;
mod transport;
mod wire;

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use kes_config::SecretString;
use kes_keystore::{Error, KeyStore, Locator};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use zeroize::Zeroizing;

use crate::auth::{Auth, Login, renew_task, schedule};
use crate::error::VaultError;
use crate::health::{Health, check_all, verdict};
use crate::request::{Layout, Request};
use crate::transport::{Reply, Transport};
use crate::wire::{DecryptResponse, EncryptResponse, KvV1Read, KvV2Read, ListResponse};

pub use crate::config::{
    BACKEND, VaultAppRole, VaultConfig, VaultKubernetes, VaultKvVersion, VaultTls, VaultTransit,
};
pub use crate::retry::RetryPolicy;

/// Receives the store's background events (failed renewals and logins), one line each.
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

/// Stripes of the per-name lock that serialises K/V v1 creates.
const CREATE_LOCKS: usize = 64;
/// Secrets shorter than this are not searched for in Vault's error messages: a stored value of
/// a few bytes would match ordinary words.
const MIN_REDACT: usize = 6;

/// Options of [`VaultKeyStore::connect_with`].
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// Use this Vault token instead of the configured login method. The token is renewed while
    /// Vault allows it, and never replaced.
    pub token: Option<SecretString>,
    /// How calls to Vault are retried.
    pub retry: RetryPolicy,
    /// Receives a line for each background event worth an operator's attention (a failed
    /// renewal or login). Default: standard error. Lines never contain secrets.
    pub log: Option<LogFn>,
}

impl ConnectOptions {
    /// The defaults: the configured login, the default retry policy, log to standard error.
    pub fn new() -> Self {
        Self::default()
    }

    /// Logs in with `token` instead of the configured method.
    pub fn token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// Retries calls under `policy`.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sends background events to `log`.
    pub fn log(mut self, log: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.log = Some(Arc::new(log));
        self
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("token", &self.token)
            .field("retry", &self.retry)
            .field("log", &self.log.as_ref().map(|_| "Fn"))
            .finish()
    }
}

/// A [`KeyStore`] in a HashiCorp Vault or OpenBao K/V engine.
///
/// Background tasks (token renewal, health checks) run on the tokio runtime of
/// [`connect`](Self::connect) and stop on [`close`](KeyStore::close) or when the store is
/// dropped.
pub struct VaultKeyStore {
    shared: Arc<Shared>,
    tasks: parking_lot::Mutex<Vec<AbortHandle>>,
    locator: Locator,
}

impl fmt::Debug for VaultKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultKeyStore")
            .field("layout", &self.shared.layout)
            .field("closed", &self.shared.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl VaultKeyStore {
    /// Connects to Vault as `config` says: logs in, and starts token renewal and health
    /// checks.
    ///
    /// Fails with [`Error::Unreachable`] when no endpoint answers, and with [`Error::Other`]
    /// for a configuration that cannot work (bad endpoint, unreadable TLS files, no login
    /// method) or a refused login.
    pub async fn connect(config: &VaultConfig) -> Result<Self, Error> {
        Self::connect_with(config, ConnectOptions::default()).await
    }

    /// [`connect`](Self::connect) with options.
    pub async fn connect_with(
        config: &VaultConfig,
        options: ConnectOptions,
    ) -> Result<Self, Error> {
        let transport = Arc::new(Transport::new(config)?);
        let layout = Layout::new(config)?;
        let login = Login::new(config, options.token)?;
        let auth = Arc::new(Auth::new(login, layout.namespace()));
        let lease = auth.login_now(&transport, &options.retry).await?;
        let log: LogFn = options
            .log
            .unwrap_or_else(|| Arc::new(|line: &str| eprintln!("{line}")));
        let (health, health_rx) = watch::channel(Health::default());
        let shared = Arc::new(Shared {
            transport: Arc::clone(&transport),
            layout,
            auth: Arc::clone(&auth),
            health,
            retry: options.retry,
            closed: AtomicBool::new(false),
            create_locks: (0..CREATE_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        });

        // Find the active node (of several endpoints) before the first request.
        let _ = shared.check_health().await;

        let mut tasks = Vec::new();
        if auth.login.can_login() || schedule(&lease, false).is_some() {
            let task = tokio::spawn(renew_task(
                auth,
                transport,
                options.retry,
                health_rx,
                lease,
                log,
            ));
            tasks.push(task.abort_handle());
        }
        let ping = config.status_ping.max(Duration::from_millis(100));
        let checker = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let _ = checker.check_health().await;
            }
        });
        tasks.push(task.abort_handle());
        Ok(Self {
            shared,
            tasks: parking_lot::Mutex::new(tasks),
            locator: locator(config),
        })
    }

    fn stop_tasks(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

/// One engine, prefix and namespace, once for each endpoint it is reached through.
fn locator(config: &VaultConfig) -> Locator {
    let path = |p: &str| p.trim_matches('/').to_owned();
    let namespace = config.namespace.as_deref().map(path).unwrap_or_default();
    let (engine, prefix) = (path(&config.engine), path(&config.prefix));
    Locator::of(config.endpoints.iter().map(|endpoint| {
        let endpoint = endpoint.trim_end_matches('/').to_ascii_lowercase();
        format!("vault:{endpoint} namespace={namespace} engine={engine} prefix={prefix}")
    }))
}

impl Drop for VaultKeyStore {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

#[async_trait::async_trait]
impl KeyStore for VaultKeyStore {
    async fn status(&self) -> Result<Duration, Error> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(VaultError::Closed.into());
        }
        Ok(self.shared.check_health().await?)
    }

    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        self.shared.create(name, value).await
    }

    async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.shared.get(name).await
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        self.shared.delete(name).await
    }

    async fn replace(&self, name: &str, old: &[u8], new: &[u8]) -> Result<(), Error> {
        self.shared.replace(name, old, new).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        self.shared.list(prefix).await
    }

    async fn close(&self) -> Result<(), Error> {
        self.shared.closed.store(true, Ordering::Release);
        self.stop_tasks();
        Ok(())
    }

    fn locator(&self) -> Locator {
        self.locator.clone()
    }
}

/// The state the store shares with its background tasks.
struct Shared {
    transport: Arc<Transport>,
    layout: Layout,
    auth: Arc<Auth>,
    health: watch::Sender<Health>,
    retry: RetryPolicy,
    closed: AtomicBool,
    /// K/V v1 creates of one name (hashed onto a stripe) run one at a time.
    create_locks: Vec<tokio::sync::Mutex<()>>,
}

impl Shared {
    /// Fails when the store is closed or Vault is sealed.
    fn ready(&self) -> Result<(), VaultError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(VaultError::Closed);
        }
        if self.health.borrow().sealed {
            return Err(VaultError::Sealed);
        }
        Ok(())
    }

    /// Sends `request` with the current token.
    async fn call(&self, request: &Request, redact: &[&str]) -> Result<Reply, VaultError> {
        let token = self.auth.token();
        let token = token.as_ref().map(|t| t.as_str());
        let redact: Vec<&str> = redact
            .iter()
            .copied()
            .filter(|s| s.len() >= MIN_REDACT)
            .collect();
        let reply = self
            .transport
            .send(request, token, &self.retry, &redact)
            .await?;
        if reply.status == 403 {
            self.auth.refused();
        }
        Ok(reply)
    }

    /// Checks every endpoint, records the outcome, and returns the latency of the best node.
    async fn check_health(&self) -> Result<Duration, VaultError> {
        let verdict = verdict(check_all(&self.transport).await, self.transport.preferred());
        if let Some(best) = verdict.best {
            self.transport.prefer(best);
        }
        self.health.send_if_modified(|h| {
            let changed = h.sealed != verdict.sealed;
            h.sealed = verdict.sealed;
            changed
        });
        verdict.result
    }

    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        self.ready()?;
        let text = std::str::from_utf8(value).map_err(|_| {
            VaultError::Local(format!(
                "cannot store key '{name}': Vault stores text and the value is not UTF-8"
            ))
        })?;
        let stored = match self.layout.encrypt(value) {
            None => Zeroizing::new(text.to_owned()),
            Some(request) => self.encrypt(&request?, text).await?,
        };
        let write = self.layout.create(name, &stored)?;
        let redact = [text, stored.as_str()];
        match self.layout.version() {
            VaultKvVersion::V1 => {
                let _serialised = match self.create_lock(name) {
                    Some(lock) => Some(lock.lock().await),
                    None => None,
                };
                let reply = self.call(&self.layout.read(name)?, &[]).await?;
                match reply.status {
                    200 => return Err(Error::Exists),
                    404 => {}
                    _ => return Err(reply.error(&[]).into()),
                }
                let reply = self.call(&write, &redact).await?;
                match reply.status {
                    200 | 204 => Ok(()),
                    _ => Err(reply.error(&redact).into()),
                }
            }
            VaultKvVersion::V2 => {
                let reply = self.call(&write, &redact).await?;
                match reply.status {
                    200 | 204 => Ok(()),
                    400 => {
                        let err = reply.error(&redact);
                        if !err.mentions("check-and-set") {
                            return Err(err.into());
                        }
                        // The secret exists. If an earlier try of this very write failed (a
                        // connection lost while the active node died, say), that try may be
                        // what created it: the stored value tells.
                        if reply.retried && self.stored(name).await.is_some_and(|v| *v == *stored) {
                            return Ok(());
                        }
                        Err(Error::Exists)
                    }
                    _ => Err(reply.error(&redact).into()),
                }
            }
        }
    }

    /// The raw stored string of `name` (K/V v2, its newest version), or `None` if it cannot be
    /// read.
    async fn stored(&self, name: &str) -> Option<Zeroizing<String>> {
        let reply = self.call(&self.layout.read(name).ok()?, &[]).await.ok()?;
        if reply.status != 200 {
            return None;
        }
        let mut fields = reply.json::<KvV2Read>().ok()?.data?.data?;
        fields.remove(name)?.0.map(|text| text.0)
    }

    /// The lock of `name`'s stripe (always `Some`: there are `CREATE_LOCKS` stripes).
    fn create_lock(&self, name: &str) -> Option<&tokio::sync::Mutex<()>> {
        let mut hasher = DefaultHasher::new();
        name.hash(&mut hasher);
        let stripe = usize::try_from(hasher.finish() % CREATE_LOCKS as u64).unwrap_or(0);
        self.create_locks.get(stripe)
    }

    async fn encrypt(
        &self,
        request: &Request,
        text: &str,
    ) -> Result<Zeroizing<String>, VaultError> {
        let reply = self.call(request, &[text]).await?;
        if reply.status != 200 {
            return Err(reply.error(&[text]));
        }
        let encrypted: EncryptResponse = reply.json()?;
        let ciphertext = encrypted.data.ciphertext;
        if !is_transit_ciphertext(&ciphertext) {
            return Err(reply.invalid("the transit ciphertext does not start with 'vault:v<N>:'"));
        }
        Ok(Zeroizing::new(ciphertext))
    }

    async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.read(name).await.map(|(value, _)| value)
    }

    /// The value of `name` and, on K/V v2, the version it was read from (0 on v1).
    async fn read(&self, name: &str) -> Result<(Zeroizing<Vec<u8>>, u64), Error> {
        self.ready()?;
        let reply = self.call(&self.layout.read(name)?, &[]).await?;
        match reply.status {
            200 => {}
            404 => return Err(Error::NotFound),
            _ => return Err(reply.error(&[]).into()),
        }
        let (fields, version) = match self.layout.version() {
            VaultKvVersion::V1 => (reply.json::<KvV1Read>()?.data, 0),
            VaultKvVersion::V2 => {
                let data = reply.json::<KvV2Read>()?.data;
                let version = data
                    .as_ref()
                    .and_then(|d| d.metadata.as_ref())
                    .map_or(0, |m| m.version);
                match data.and_then(|d| d.data) {
                    // A deleted (but not destroyed) version: the key is gone.
                    None => return Err(Error::NotFound),
                    fields => (fields, version),
                }
            }
        };
        let mut value = fields
            .and_then(|mut f| f.remove(name))
            .and_then(|field| field.0)
            .ok_or_else(|| reply.invalid(format!("the secret has no text field named '{name}'")))?;
        if !is_transit_ciphertext(&value.0) {
            return Ok((
                Zeroizing::new(std::mem::take(&mut *value.0).into_bytes()),
                version,
            ));
        }
        let Some(request) = self.layout.decrypt(&value.0) else {
            return Err(reply
                .invalid(format!(
                    "key '{name}' is encrypted with a transit key, but no transit key is configured"
                ))
                .into());
        };
        Ok((self.decrypt(&request?).await?, version))
    }

    /// Compare-and-swap on K/V v2: the newest version is read, compared with `old`, and `new`
    /// written with `cas` set to that version, which Vault refuses when another write came
    /// first. K/V v1 has no such condition, so rotation is refused there.
    async fn replace(&self, name: &str, old: &[u8], new: &[u8]) -> Result<(), Error> {
        if self.layout.version() == VaultKvVersion::V1 {
            return Err(Error::Unsupported(
                "Vault K/V v1 has no check-and-set; use a K/V v2 engine to rotate keys",
            ));
        }
        let (current, version) = self.read(name).await?;
        if current.as_slice() != old || version == 0 {
            return Err(Error::Changed);
        }
        let text = std::str::from_utf8(new).map_err(|_| {
            VaultError::Local(format!(
                "cannot store key '{name}': Vault stores text and the value is not UTF-8"
            ))
        })?;
        let stored = match self.layout.encrypt(new) {
            None => Zeroizing::new(text.to_owned()),
            Some(request) => self.encrypt(&request?, text).await?,
        };
        let write = self.layout.replace(name, &stored, version)?;
        let redact = [text, stored.as_str()];
        let reply = self.call(&write, &redact).await?;
        match reply.status {
            200 | 204 => Ok(()),
            400 => {
                let err = reply.error(&redact);
                if !err.mentions("check-and-set") {
                    return Err(err.into());
                }
                // Another write came first; unless it was an earlier try of this very one.
                if reply.retried && self.stored(name).await.is_some_and(|v| *v == *stored) {
                    return Ok(());
                }
                Err(Error::Changed)
            }
            _ => Err(reply.error(&redact).into()),
        }
    }

    async fn decrypt(&self, request: &Request) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let reply = self.call(request, &[]).await?;
        if reply.status != 200 {
            return Err(reply.error(&[]));
        }
        let decrypted: DecryptResponse = reply.json()?;
        base64::engine::general_purpose::STANDARD
            .decode(decrypted.data.plaintext.0.as_bytes())
            .map(Zeroizing::new)
            .map_err(|_| reply.invalid("the transit plaintext is not base64"))
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        self.ready()?;
        let reply = self.call(&self.layout.delete(name)?, &[]).await?;
        match reply.status {
            200 | 204 | 404 => Ok(()),
            _ => Err(reply.error(&[]).into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        self.ready()?;
        let reply = self.call(&self.layout.list(), &[]).await?;
        match reply.status {
            200 => {}
            // Vault answers 404 for a folder without secrets.
            404 => return Ok(Vec::new()),
            _ => return Err(reply.error(&[]).into()),
        }
        let listed: ListResponse = reply.json()?;
        let mut names: Vec<String> = listed
            .data
            .map(|d| d.keys)
            .unwrap_or_default()
            .into_iter()
            // Names ending in `/` are folders below the prefix, not keys.
            .filter(|n| !n.ends_with('/') && n.starts_with(prefix))
            .collect();
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }
}

/// Whether `value` is a transit ciphertext: `vault:v<digits>:…`.
fn is_transit_ciphertext(value: &str) -> bool {
    value
        .strip_prefix("vault:v")
        .and_then(|rest| rest.split_once(':'))
        .is_some_and(|(version, _)| {
            !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One engine, prefix and namespace reached through a shared endpoint is one store (however
    /// the paths are slashed and the endpoints cased); another prefix, engine or namespace, or
    /// no shared endpoint, is another store.
    #[test]
    fn locators_overlap_on_a_shared_endpoint_and_location() {
        let base = crate::request::tests::config(VaultKvVersion::V2);
        let mut same = base.clone();
        same.endpoints = vec!["https://other:8200".into(), "HTTP://127.0.0.1:8200/".into()];
        same.engine = "/kv/".into();
        assert!(locator(&base).overlaps(&locator(&same)));
        let mut other = base.clone();
        other.endpoints = vec!["https://other:8200".into()];
        assert!(!locator(&base).overlaps(&locator(&other)));
        for change in [
            |c: &mut VaultConfig| c.prefix = "app".into(),
            |c: &mut VaultConfig| c.engine = "kv2".into(),
            |c: &mut VaultConfig| c.namespace = Some("team".into()),
        ] {
            let mut changed = base.clone();
            change(&mut changed);
            assert!(!locator(&base).overlaps(&locator(&changed)), "{changed:?}");
        }
    }

    #[test]
    fn transit_ciphertexts_are_recognised() {
        assert!(is_transit_ciphertext("vault:v1:abc"));
        assert!(is_transit_ciphertext("vault:v12:abc"));
        assert!(!is_transit_ciphertext("vault:v:abc"));
        assert!(!is_transit_ciphertext("vault:vx:abc"));
        assert!(!is_transit_ciphertext("vault:v1"));
        assert!(!is_transit_ciphertext(r#"{"bytes":"…"}"#));
    }

    #[test]
    fn connect_options_debug_hides_the_token() {
        let options = ConnectOptions::new()
            .token(SecretString::new("s.supersecret".into()))
            .log(|_| {});
        let debug = format!("{options:?}");
        assert!(!debug.contains("supersecret"), "{debug}");
    }
}
