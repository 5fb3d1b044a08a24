//! The Azure Key Vault keystore (kes-spec §8.6), over Key Vault's REST API (api-version 7.5,
//! the service version of the `azsecrets` module the original uses): each key is a secret of
//! the vault, named as the key, whose value is the key record as text, exactly as the original
//! stores it, so that a vault the original filled is read unchanged and the other way round.
//!
//! | operation | requests (all with `?api-version=7.5`)                                    |
//! |-----------|---------------------------------------------------------------------------|
//! | status    | `GET <endpoint>/` (any HTTP answer: reachable, as the original)          |
//! | create    | `GET /secrets/<name>/` (200: exists), `PUT /secrets/<name>` `{"value"}`; on 409 `ObjectIsDeletedButRecoverable` / `ObjectIsBeingDeleted`: `DELETE /deletedsecrets/<name>` (purge) and `PUT` again |
//! | get       | `GET /secrets/<name>/versions` (every page), the version created first, `GET /secrets/<name>/<version>` |
//! | delete    | `DELETE /secrets/<name>`, then `DELETE /deletedsecrets/<name>` (purge)    |
//! | list      | `GET /secrets?maxresults=25`, following `nextLink`                         |
//!
//! Every call carries `Authorization: Bearer <token>` (see [`auth`]); a token is renewed at half
//! its lifetime, and one the vault refuses (401) is replaced once.
//!
//! Key Vault has no "create if absent": a `PUT` of an existing name adds a version. As the
//! original, readers read the version created first; unlike the original, a create succeeds
//! only if its version is that one: it waits until the vault's clock (whole seconds) has moved
//! past its version, then lists the versions, so that of racing creates exactly one wins. The
//! original also reads only the first page of versions (and fails on more); here every page is
//! read.

#![deny(unsafe_code)]

mod auth;
mod config;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kes_keystore::retry::RetryPolicy;
use kes_keystore::{Error, KeyStore, Locator};
use kes_keystore_rest::{
    Env, Kind, Method, Op, Reply, Request, Rest, RestError, Session, Token, secret_json, segment,
};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize as _, Zeroizing};

pub use config::{AzureAuth, AzureConfig, BACKEND};

/// The backend's name, as errors start.
pub(crate) const NAME: &str = "azure";
/// The service version the original's SDK speaks.
pub const API_VERSION: &str = "7.5";
/// The most pages one listing reads.
const MAX_PAGES: usize = 100_000;
/// How often a purge is tried (the original's bound).
const PURGE_TRIES: usize = 25;
/// How often a create retries its `PUT` after a purge (the original's bound).
const SET_TRIES: usize = 7;

/// The text of a Key Vault error body `{"error":{"code","message","innererror":{"code"}}}`:
/// `code (inner code): message`.
pub(crate) fn vendor_message(body: &[u8]) -> String {
    let Some(error) = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").cloned())
    else {
        return String::new();
    };
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    let code = text(error.get("code"));
    let inner = text(error.get("innererror").and_then(|i| i.get("code")));
    let message = text(error.get("message"));
    let mut out = code.unwrap_or_default();
    if let Some(inner) = inner {
        out.push_str(&format!(" ({inner})"));
    }
    if let Some(message) = message {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&message);
    }
    out
}

/// The inner error code of an error answer (`ObjectIsBeingDeleted`), else its code.
fn inner_code(reply: &Reply) -> String {
    let value: serde_json::Value = serde_json::from_slice(&reply.body).unwrap_or_default();
    let error = value.get("error");
    error
        .and_then(|e| e.get("innererror"))
        .and_then(|i| i.get("code"))
        .or_else(|| error.and_then(|e| e.get("code")))
        .and_then(|c| c.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Adds `why` to the vendor's text of a status error.
pub(crate) fn hint(err: &mut RestError, why: &str) {
    if let Kind::Status { message, .. } = &mut err.kind {
        *message = if message.is_empty() {
            why.to_owned()
        } else {
            format!("{message} ({why})")
        };
    }
}

/// How [`AzureKeyStore::connect_with`] reaches the service, besides the config.
#[derive(Clone, Debug)]
pub struct Options {
    /// The retry policy of every call.
    pub policy: RetryPolicy,
    /// A CA certificate file (or directory) to trust instead of the system's roots (which
    /// honour `SSL_CERT_FILE`); the config file has no such key, as the original's.
    pub ca: Option<std::path::PathBuf>,
    /// Where `AZURE_AUTHORITY_HOST`, `AZURE_CLIENT_ID`, … are read.
    pub env: Env,
    /// How long a create waits after its `PUT` before it checks that its version is the first:
    /// longer than the resolution of the vault's `created` times (whole seconds).
    pub settle: Duration,
    /// The pause between tries of a purge that the vault cannot do yet.
    pub purge_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            policy: RetryPolicy::default(),
            ca: None,
            env: Env::default(),
            settle: Duration::from_millis(1100),
            purge_delay: Duration::from_secs(1),
        }
    }
}

/// An Azure Key Vault keystore: the secrets of one vault.
pub struct AzureKeyStore {
    rest: Rest,
    credentials: auth::Credentials,
    session: Session,
    closed: AtomicBool,
    settle: Duration,
    purge_delay: Duration,
}

impl std::fmt::Debug for AzureKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureKeyStore")
            .field("endpoint", &self.rest.base())
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct SetSecret<'a> {
    value: &'a str,
}

#[derive(Deserialize)]
struct Bundle {
    value: Option<String>,
    id: Option<String>,
    attributes: Option<Attributes>,
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Some(value) = &mut self.value {
            value.zeroize();
        }
    }
}

#[derive(Deserialize, Clone, Default)]
struct Attributes {
    enabled: Option<bool>,
    nbf: Option<i64>,
    exp: Option<i64>,
    created: Option<i64>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Option<Vec<Item>>,
    #[serde(default, rename = "nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    id: Option<String>,
    #[serde(default)]
    attributes: Option<Attributes>,
}

/// The last path segment of a secret id (`…/secrets/<name>[/<version>]`).
fn last_segment(id: &str) -> &str {
    id.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

/// `https://host[:port]` without a default port, lower case, for comparing origins.
fn origin(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = url.get(start..).unwrap_or_default();
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let scheme = url.get(..start).unwrap_or_default().to_ascii_lowercase();
    let authority = authority.to_ascii_lowercase();
    let authority = match (scheme.as_str(), authority.rsplit_once(':')) {
        ("https://", Some((host, "443"))) | ("http://", Some((host, "80"))) => host.to_owned(),
        _ => authority,
    };
    format!("{scheme}{authority}")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl AzureKeyStore {
    /// Connects as `config` says, with the process environment and the system's roots.
    pub async fn connect(config: &AzureConfig) -> Result<Self, RestError> {
        Self::connect_with(config, Options::default()).await
    }

    /// [`connect`](Self::connect) with `options`: obtains a token and reads one page of the
    /// listing, so that wrong credentials or missing permissions fail here.
    pub async fn connect_with(config: &AzureConfig, options: Options) -> Result<Self, RestError> {
        let ca = options.ca.as_deref();
        let rest =
            Rest::new(NAME, &config.endpoint, ca, vendor_message)?.with_policy(options.policy);
        let credentials = auth::Credentials::new(&config.auth, &options.env, ca, options.policy)?;
        let store = Self {
            rest,
            credentials,
            session: Session::new(),
            closed: AtomicBool::new(false),
            settle: options.settle,
            purge_delay: options.purge_delay,
        };
        let op = Op::new("connect");
        let reply = store
            .call(
                &op,
                Method::GET,
                format!("/secrets?api-version={API_VERSION}&maxresults=1"),
                None,
            )
            .await?;
        if reply.status != 200 {
            let mut err = reply.error(&op, &[]);
            if matches!(reply.status, 401 | 403) {
                hint(
                    &mut err,
                    &format!(
                        "{} may not list the vault's secrets (the 'Key Vault Secrets Officer' role or a secrets access policy is needed)",
                        store.credentials.describe()
                    ),
                );
            }
            return Err(err);
        }
        Ok(store)
    }

    fn path(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}api-version={API_VERSION}")
    }

    async fn token(&self, op: &Op) -> Result<Arc<Token>, RestError> {
        self.session.token(|_| self.credentials.token(op)).await
    }

    /// Sends a request with the current token; when the vault refuses it (401), obtains a new
    /// one and sends once more.
    async fn call(
        &self,
        op: &Op,
        method: Method,
        path: String,
        body: Option<bytes::Bytes>,
    ) -> Result<Reply, RestError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RestError::local(NAME, op, "the keystore is closed"));
        }
        let mut request = Request::new(method, path);
        if let Some(body) = body {
            request = request.body(body);
        }
        let mut refused = false;
        loop {
            let token = self.token(op).await?;
            let bearer = Zeroizing::new(format!("Bearer {}", token.expose()));
            let authorized = request.clone().auth("authorization", bearer.as_str());
            let reply = self.rest.send(op, &authorized, &[token.expose()]).await?;
            if reply.status == 401 && !refused {
                refused = true;
                self.session.invalidate(&token).await;
                continue;
            }
            return Ok(reply);
        }
    }

    /// Every item of a paged listing that starts at `path`, following `nextLink` on this vault.
    async fn pages(&self, op: &Op, path: String) -> Result<Option<Vec<Item>>, Error> {
        let mut items = Vec::new();
        let mut next = path;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let reply = self.call(op, Method::GET, next.clone(), None).await?;
            if reply.status == 404 {
                return Ok(None);
            }
            if reply.status != 200 {
                return Err(reply.error(op, &[]).into());
            }
            let page: Page = reply.json(op)?;
            items.extend(page.value.unwrap_or_default());
            let Some(link) = page.next_link.filter(|l| !l.is_empty()) else {
                return Ok(Some(items));
            };
            // The token goes to this vault only.
            if origin(&link) != origin(self.rest.base()) {
                return Err(reply
                    .invalid(op, "nextLink points to another host than the vault")
                    .into());
            }
            let start = link.find("://").map_or(0, |i| i + 3);
            let path = link
                .get(start..)
                .and_then(|r| r.find('/').and_then(|i| r.get(i..)))
                .unwrap_or("/")
                .to_owned();
            if !seen.insert(path.clone()) {
                return Err(reply
                    .invalid(op, "the vault sent a nextLink it had sent before")
                    .into());
            }
            next = path;
        }
        Err(RestError::local(
            NAME,
            op,
            format!("the listing did not end after {MAX_PAGES} pages"),
        )
        .into())
    }

    /// The version every reader reads: the one created first (the first listed of those
    /// created in the same second, as the original picks it). `None`: no such secret.
    async fn first_version(&self, op: &Op, name: &str) -> Result<Option<String>, Error> {
        let path = self.path(&format!("/secrets/{}/versions", segment(name)));
        let Some(items) = self.pages(op, path).await? else {
            return Ok(None);
        };
        let mut first: Option<(i64, String)> = None;
        for item in items {
            let Some(id) = item.id else { continue };
            let created = item
                .attributes
                .unwrap_or_default()
                .created
                .unwrap_or(i64::MAX);
            if first.as_ref().is_none_or(|(c, _)| created < *c) {
                first = Some((created, last_segment(&id).to_owned()));
            }
        }
        Ok(first.map(|(_, version)| version))
    }

    /// Purges the deleted secret `name`, retrying while the vault is still deleting it.
    async fn purge(&self, op: &Op, name: &str) -> Result<(), Error> {
        let path = self.path(&format!("/deletedsecrets/{}", segment(name)));
        let mut last = None;
        for _ in 0..PURGE_TRIES {
            let reply = self.call(op, Method::DELETE, path.clone(), None).await?;
            match reply.status {
                200 | 204 => return Ok(()),
                // Not deleted yet (deletion is asynchronous), or being deleted.
                404 | 409 => {
                    last = Some(reply.error(op, &[]));
                    tokio::time::sleep(self.purge_delay).await;
                }
                _ => return Err(reply.error(op, &[]).into()),
            }
        }
        Err(last
            .unwrap_or_else(|| RestError::local(NAME, op, "the purge did not succeed"))
            .into())
    }

    /// `PUT /secrets/<name>`, purging a deleted secret of the same name first when the vault
    /// says so. Returns the new version and whether the `PUT` was retried.
    async fn set(&self, op: &Op, name: &str, value: &str) -> Result<(String, bool), Error> {
        let path = self.path(&format!("/secrets/{}", segment(name)));
        for _ in 0..SET_TRIES {
            let body = secret_json(&SetSecret { value }, value.len() + 16)
                .map_err(|e| RestError::local(NAME, op, e))?;
            let reply = self.call(op, Method::PUT, path.clone(), Some(body)).await?;
            match reply.status {
                200 | 201 => {
                    let bundle: Bundle = reply.json(op)?;
                    let id = bundle
                        .id
                        .as_deref()
                        .map(last_segment)
                        .unwrap_or_default()
                        .to_owned();
                    return Ok((id, reply.retried));
                }
                409 if matches!(
                    inner_code(&reply).as_str(),
                    "ObjectIsDeletedButRecoverable" | "ObjectIsBeingDeleted"
                ) =>
                {
                    self.purge(op, name).await?;
                }
                _ => return Err(reply.error(op, &[]).into()),
            }
        }
        Err(RestError::local(
            NAME,
            op,
            format!("the secret could not be set after {SET_TRIES} purges"),
        )
        .into())
    }
}

#[async_trait::async_trait]
impl KeyStore for AzureKeyStore {
    async fn status(&self) -> Result<Duration, Error> {
        let started = Instant::now();
        let op = Op::new("status");
        self.rest.once(&op, &Request::new(Method::GET, "/")).await?;
        Ok(started.elapsed())
    }

    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        let op = Op::key("create", name);
        let text = std::str::from_utf8(value).map_err(|_| {
            RestError::local(
                NAME,
                &op,
                "Key Vault secrets hold text: the value is not UTF-8",
            )
        })?;
        let latest = self.path(&format!("/secrets/{}/", segment(name)));
        let reply = self.call(&op, Method::GET, latest, None).await?;
        match reply.status {
            200 => return Err(Error::Exists),
            404 => {}
            _ => return Err(reply.error(&op, &[]).into()),
        }
        let (version, retried) = self.set(&op, name, text).await?;
        // Later PUTs get later `created` seconds than ours once this has passed.
        tokio::time::sleep(self.settle).await;
        match self.first_version(&op, name).await? {
            Some(first) if first == version => Ok(()),
            // An earlier try of ours whose answer was lost may be the first.
            Some(_) if retried => match self.get(name).await {
                Ok(stored) if stored.as_slice() == value => Ok(()),
                _ => Err(Error::Exists),
            },
            _ => Err(Error::Exists),
        }
    }

    async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        let op = Op::key("get", name);
        let Some(version) = self.first_version(&op, name).await? else {
            return Err(Error::NotFound);
        };
        let path = self.path(&format!("/secrets/{}/{}", segment(name), segment(&version)));
        let reply = self.call(&op, Method::GET, path, None).await?;
        if reply.status == 404 {
            return Err(Error::NotFound);
        }
        if reply.status != 200 {
            return Err(reply.error(&op, &[]).into());
        }
        let mut bundle: Bundle = reply.json(&op)?;
        let attributes = bundle.attributes.clone().unwrap_or_default();
        let now = unix_now();
        if attributes.enabled == Some(false) {
            return Err(reply.invalid(&op, "the secret is disabled").into());
        }
        if attributes.nbf.is_some_and(|nbf| nbf > now) {
            return Err(reply
                .invalid(&op, "the secret is not valid yet (nbf)")
                .into());
        }
        if attributes.exp.is_some_and(|exp| exp <= now) {
            return Err(reply.invalid(&op, "the secret has expired (exp)").into());
        }
        let value = bundle
            .value
            .take()
            .ok_or_else(|| reply.invalid(&op, "no value in the answer"))?;
        Ok(Zeroizing::new(value.into_bytes()))
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        let op = Op::key("delete", name);
        let path = self.path(&format!("/secrets/{}", segment(name)));
        let reply = self.call(&op, Method::DELETE, path, None).await?;
        match reply.status {
            200 => {}
            404 if reply.retried => return Ok(()),
            404 => return Err(Error::NotFound),
            _ => return Err(reply.error(&op, &[]).into()),
        }
        // As the original: purge, so that the name can be used again at once. A vault with
        // purge protection refuses; the key is deleted all the same, and a later create of the
        // name purges or reports the vault's error.
        match self.purge(&op, name).await {
            Ok(()) | Err(Error::Other(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let op = Op::new("list");
        let path = self.path("/secrets?maxresults=25");
        let items = self.pages(&op, path).await?.unwrap_or_default();
        let mut names: Vec<String> = items
            .into_iter()
            .filter_map(|i| i.id)
            .map(|id| last_segment(&id).to_owned())
            .filter(|n| !n.is_empty() && n.starts_with(prefix))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn close(&self) -> Result<(), Error> {
        self.closed.store(true, Ordering::Release);
        drop(self.session.take().await);
        Ok(())
    }

    fn locator(&self) -> Locator {
        Locator::new(format!("azure:{}", self.rest.base()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_segments() {
        assert_eq!(
            origin("https://v.vault.azure.net:443/secrets?x"),
            "https://v.vault.azure.net"
        );
        assert_eq!(
            origin("https://V.vault.azure.net"),
            "https://v.vault.azure.net"
        );
        assert_ne!(
            origin("https://evil.example/secrets"),
            origin("https://v.vault.azure.net")
        );
        assert_eq!(last_segment("https://v/secrets/name/abc"), "abc");
        assert_eq!(last_segment("https://v/secrets/name"), "name");
    }

    #[test]
    fn vendor_messages() {
        assert_eq!(
            vendor_message(br#"{"error":{"code":"Forbidden","message":"Operation get is not allowed on a disabled secret.","innererror":{"code":"SecretDisabled"}}}"#),
            "Forbidden (SecretDisabled): Operation get is not allowed on a disabled secret."
        );
        assert_eq!(vendor_message(b""), "");
    }
}
