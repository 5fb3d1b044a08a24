//! The GCP Secret Manager keystore (kes-spec §8.5), over Secret Manager's REST API (the same
//! API the original reaches over gRPC): each key is a secret of the project, named as the key,
//! whose version 1 holds the key record, exactly as the original stores it, so that a project
//! the original filled is read unchanged and the other way round.
//!
//! | operation | request                                                                     |
//! |-----------|-----------------------------------------------------------------------------|
//! | status    | `GET <endpoint>` (any HTTP answer: reachable, as the original)             |
//! | create    | `POST /v1/projects/<p>/secrets?secretId=<name>` `{"replication":{"automatic":{}}}`, then `POST /v1/projects/<p>/secrets/<name>:addVersion` `{"payload":{"data":b64}}` |
//! | get       | `GET /v1/projects/<p>/secrets/<name>/versions/1:access` → `{"payload":{"data"}}` |
//! | delete    | `DELETE /v1/projects/<p>/secrets/<name>`                                    |
//! | list      | `GET /v1/projects/<p>/secrets?pageSize=250&pageToken=…` → `{"secrets":[{"name"}],"nextPageToken"}` |
//!
//! Every call carries `Authorization: Bearer <token>` (see [`auth`] for where tokens come
//! from); a token is renewed at half its lifetime, and one the service refuses (401) is
//! replaced once.
//!
//! The original's create is two calls: a secret created without its version (a crash, a lost
//! connection, a racing create) is later "not found" for the original and blocks the name for
//! ever. Here a create that finds the secret without a version completes it, and a create
//! succeeds only when its value became version 1 (the version every reader reads), so racing
//! creates have exactly one winner.

#![deny(unsafe_code)]

mod auth;
mod config;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kes_keystore::retry::RetryPolicy;
use kes_keystore::{Error, KeyStore, Locator};
use kes_keystore_rest::{
    Env, Kind, Method, Op, Reply, Request, Rest, RestError, Session, Token, secret_json, segment,
};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize as _, Zeroizing};

pub use config::{
    BACKEND, DEFAULT_ENDPOINT, DEFAULT_SCOPE, DEFAULT_TOKEN_URI, GcpConfig, ServiceAccount,
};

/// The backend's name, as errors start.
pub(crate) const NAME: &str = "gcp";
/// Secrets per page of a listing.
const PAGE: usize = 250;
/// The most pages one listing reads: a bound against a service that never ends it.
const MAX_PAGES: usize = 100_000;

/// The text of a Google error body `{"error":{"code","message","status"}}`: `STATUS: message`.
pub(crate) fn vendor_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Envelope {
        error: Option<Status>,
    }
    #[derive(Deserialize)]
    struct Status {
        message: Option<String>,
        status: Option<String>,
    }
    let Some(status) = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.error)
    else {
        return String::new();
    };
    match (status.status, status.message) {
        (Some(code), Some(text)) => format!("{code}: {text}"),
        (Some(code), None) => code,
        (None, Some(text)) => text,
        (None, None) => String::new(),
    }
}

/// The google.rpc code name of an error body (`NOT_FOUND`), if any.
fn code(reply: &Reply) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(&reply.body).ok()?;
    value
        .get("error")?
        .get("status")?
        .as_str()
        .map(str::to_owned)
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

/// How [`GcpKeyStore::connect_with`] reaches the service, besides the config.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The retry policy of every call.
    pub policy: RetryPolicy,
    /// A CA certificate file (or directory) to trust instead of the system's roots (which
    /// honour `SSL_CERT_FILE`); the config file has no such key, as the original's.
    pub ca: Option<std::path::PathBuf>,
    /// Where `GOOGLE_APPLICATION_CREDENTIALS`, `GCE_METADATA_HOST`, … are read.
    pub env: Env,
}

/// A GCP Secret Manager keystore: the secrets of one project.
pub struct GcpKeyStore {
    rest: Rest,
    project: String,
    credentials: auth::Credentials,
    session: Session,
    closed: AtomicBool,
}

impl std::fmt::Debug for GcpKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpKeyStore")
            .field("endpoint", &self.rest.base())
            .field("project", &self.project)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct CreateSecret {
    replication: Replication,
}

#[derive(Serialize)]
struct Replication {
    automatic: Automatic,
}

#[derive(Serialize)]
struct Automatic {}

#[derive(Serialize)]
struct AddVersion<'a> {
    payload: Payload<'a>,
}

#[derive(Serialize)]
struct Payload<'a> {
    data: &'a str,
}

#[derive(Deserialize)]
struct Version {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Access {
    payload: Option<AccessPayload>,
}

#[derive(Deserialize)]
struct AccessPayload {
    data: Option<String>,
}

impl Drop for AccessPayload {
    fn drop(&mut self) {
        if let Some(data) = &mut self.data {
            data.zeroize();
        }
    }
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    secrets: Option<Vec<Listed>>,
    #[serde(default, rename = "nextPageToken")]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Listed {
    name: Option<String>,
}

/// The endpoint as a URL: `host:port` (the original's form) becomes `https://host:port`.
fn endpoint_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim();
    if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("https://{endpoint}")
    }
}

impl GcpKeyStore {
    /// Connects as `config` says, with the process environment and the system's roots.
    pub async fn connect(config: &GcpConfig) -> Result<Self, RestError> {
        Self::connect_with(config, Options::default()).await
    }

    /// [`connect`](Self::connect) with `options`: obtains a token and reads one page of the
    /// listing, so that wrong credentials, a wrong project or missing permissions fail here.
    pub async fn connect_with(config: &GcpConfig, options: Options) -> Result<Self, RestError> {
        let ca = options.ca.as_deref();
        let rest = Rest::new(NAME, &endpoint_url(&config.endpoint), ca, vendor_message)?
            .with_policy(options.policy);
        let scopes = if config.scopes.is_empty() {
            vec![DEFAULT_SCOPE.to_owned()]
        } else {
            config.scopes.clone()
        };
        let credentials = auth::Credentials::new(
            config.credentials.as_ref(),
            scopes,
            &options.env,
            ca,
            &options.policy,
        )?;
        let store = Self {
            rest,
            project: config.project_id.clone(),
            credentials,
            session: Session::new(),
            closed: AtomicBool::new(false),
        };
        let op = Op::new("connect");
        let path = format!("{}?pageSize=1", store.secrets());
        let reply = store.call(&op, Method::GET, path, None).await?;
        if reply.status != 200 {
            let mut err = reply.error(&op, &[]);
            match reply.status {
                401 => hint(
                    &mut err,
                    &format!("the token of {} was refused", store.credentials.describe()),
                ),
                403 | 404 => hint(
                    &mut err,
                    &format!(
                        "project '{}' (project_id) not found, or {} may not list its secrets",
                        store.project.escape_debug(),
                        store.credentials.describe()
                    ),
                ),
                _ => {}
            }
            return Err(err);
        }
        Ok(store)
    }

    /// `/v1/projects/<p>/secrets`.
    fn secrets(&self) -> String {
        format!("/v1/projects/{}/secrets", segment(&self.project))
    }

    /// `/v1/projects/<p>/secrets/<name>`.
    fn secret(&self, name: &str) -> String {
        format!("{}/{}", self.secrets(), segment(name))
    }

    /// A token for the next request.
    async fn token(&self, op: &Op) -> Result<Arc<Token>, RestError> {
        self.session.token(|_| self.credentials.token(op)).await
    }

    /// Sends a request with the current token; when the service refuses the token (401),
    /// obtains a new one and sends once more.
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

    /// `addVersion` with `value`: `Ok(true)` when it became version 1 (or version 1 holds
    /// `value` already, after a retried call), `Ok(false)` when another value is version 1.
    async fn add_version(&self, op: &Op, name: &str, value: &[u8]) -> Result<bool, Error> {
        let data = Zeroizing::new(B64.encode(value));
        let body = AddVersion {
            payload: Payload { data: &data },
        };
        let body =
            secret_json(&body, data.len() + 32).map_err(|e| RestError::local(NAME, op, e))?;
        let path = format!("{}:addVersion", self.secret(name));
        let reply = self.call(op, Method::POST, path, Some(body)).await?;
        if reply.status != 200 {
            if reply.status == 404 {
                // Deleted between the two calls: someone else's delete won.
                return Ok(false);
            }
            return Err(reply.error(op, &[]).into());
        }
        let version: Version = reply.json(op)?;
        let number = version
            .name
            .as_deref()
            .and_then(|n| n.rsplit('/').next())
            .unwrap_or_default()
            .to_owned();
        if number == "1" {
            return Ok(true);
        }
        // Another version 1 is what every reader reads: ours only if it holds our value (an
        // earlier try of ours, whose answer was lost).
        match self.get(name).await {
            Ok(stored) => Ok(stored.as_slice() == value),
            Err(Error::NotFound) => Ok(false),
            Err(err) => Err(err),
        }
    }
}

#[async_trait::async_trait]
impl KeyStore for GcpKeyStore {
    async fn status(&self) -> Result<Duration, Error> {
        // As the original: a plain GET of the endpoint; any answer means it is reachable.
        let started = Instant::now();
        let op = Op::new("status");
        self.rest.once(&op, &Request::new(Method::GET, "/")).await?;
        Ok(started.elapsed())
    }

    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        let op = Op::key("create", name);
        let body = secret_json(
            &CreateSecret {
                replication: Replication {
                    automatic: Automatic {},
                },
            },
            64,
        )
        .map_err(|e| RestError::local(NAME, &op, e))?;
        let path = format!("{}?secretId={}", self.secrets(), segment(name));
        let reply = self.call(&op, Method::POST, path, Some(body)).await?;
        match reply.status {
            200 => {}
            409 if code(&reply).as_deref() != Some("ABORTED") => {
                // The secret exists: a key, unless it has no version yet (the original's
                // half-done create, a crash, or a racing create): then complete it.
                match self.get(name).await {
                    Ok(_) => return Err(Error::Exists),
                    Err(Error::NotFound) => {}
                    Err(err) => return Err(err),
                }
            }
            _ => return Err(reply.error(&op, &[]).into()),
        }
        if self.add_version(&op, name, value).await? {
            Ok(())
        } else {
            Err(Error::Exists)
        }
    }

    async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        let op = Op::key("get", name);
        let path = format!("{}/versions/1:access", self.secret(name));
        let reply = self.call(&op, Method::GET, path, None).await?;
        if reply.status == 404 {
            return Err(Error::NotFound);
        }
        if reply.status != 200 {
            return Err(reply.error(&op, &[]).into());
        }
        let access: Access = reply.json(&op)?;
        let data = access
            .payload
            .as_ref()
            .and_then(|p| p.data.as_deref())
            .ok_or_else(|| reply.invalid(&op, "no payload.data in the answer"))?;
        let value = B64
            .decode(data.trim())
            .map_err(|_| reply.invalid(&op, "payload.data is not base64"))?;
        Ok(Zeroizing::new(value))
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        let op = Op::key("delete", name);
        let reply = self
            .call(&op, Method::DELETE, self.secret(name), None)
            .await?;
        match reply.status {
            200 | 204 => Ok(()),
            // A retried delete whose first try was carried out finds nothing: done.
            404 if reply.retried => Ok(()),
            404 => Err(Error::NotFound),
            _ => Err(reply.error(&op, &[]).into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let op = Op::new("list");
        let mut names = Vec::new();
        let mut next: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let mut path = format!("{}?pageSize={PAGE}", self.secrets());
            if let Some(token) = &next {
                path.push_str("&pageToken=");
                path.push_str(&segment(token));
            }
            let reply = self.call(&op, Method::GET, path, None).await?;
            if reply.status != 200 {
                return Err(reply.error(&op, &[]).into());
            }
            let page: Page = reply.json(&op)?;
            // Names are `projects/<project number or id>/secrets/<name>`.
            names.extend(
                page.secrets
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|s| s.name)
                    .filter_map(|n| n.rsplit('/').next().map(str::to_owned))
                    .filter(|n| !n.is_empty() && n.starts_with(prefix)),
            );
            match page.next_page_token.filter(|t| !t.is_empty()) {
                None => {
                    names.sort();
                    names.dedup();
                    return Ok(names);
                }
                Some(token) => {
                    if !seen.insert(token.clone()) {
                        return Err(reply
                            .invalid(&op, "the service sent a nextPageToken it had sent before")
                            .into());
                    }
                    next = Some(token);
                }
            }
        }
        Err(RestError::local(
            NAME,
            &op,
            format!("the listing did not end after {MAX_PAGES} pages"),
        )
        .into())
    }

    async fn close(&self) -> Result<(), Error> {
        self.closed.store(true, Ordering::Release);
        drop(self.session.take().await);
        Ok(())
    }

    fn locator(&self) -> Locator {
        Locator::new(format!("gcp:{} project {}", self.rest.base(), self.project))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_take_the_originals_form() {
        assert_eq!(
            endpoint_url(DEFAULT_ENDPOINT),
            "https://secretmanager.googleapis.com:443"
        );
        assert_eq!(endpoint_url("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }

    #[test]
    fn vendor_messages() {
        assert_eq!(
            vendor_message(
                br#"{"error":{"code":404,"message":"Secret [x] not found.","status":"NOT_FOUND"}}"#
            ),
            "NOT_FOUND: Secret [x] not found."
        );
        assert_eq!(vendor_message(b"<!DOCTYPE html>"), "");
    }
}
