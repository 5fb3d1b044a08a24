//! The Fortanix DSM (formerly SDKMS) keystore (kes-spec §8.8), storing each key record as an
//! exportable opaque security object, exactly as the original does, so that a group the
//! original filled is read unchanged and the other way round.
//!
//! | operation | request                                                                 |
//! |-----------|-------------------------------------------------------------------------|
//! | log in    | `POST /sys/v1/session/auth` with `Authorization: Basic <api key>`       |
//! | status    | `GET /sys/v1/health` → 204                                              |
//! | create    | `PUT /crypto/v1/keys` `{"obj_type":"OPAQUE","name","group_id"?,"key_ops":["EXPORT","APPMANAGEABLE"],"value":b64,"enabled":true}` → 201 |
//! | get       | `POST /crypto/v1/keys/export` `{"name"}` → `{"value":b64,"enabled"}`    |
//! | delete    | export to learn the `kid`, then `DELETE /crypto/v1/keys/<kid>` → 204    |
//! | list      | `GET /crypto/v1/keys?sort=name:asc&limit=100&start=<name>`, page by page |
//!
//! Every call but the login and the health check carries the session's bearer token, which is
//! renewed (a new login) once half of its `expires_in` has passed, and obtained again when DSM
//! refuses it (401). The original's listing never moved its cursor and looped forever once a
//! key existed; here each page starts at the last name of the previous one, and the listing
//! ends with the first page that brings no new name.

#![deny(unsafe_code)]

mod config;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use kes_keystore::retry::RetryPolicy;
use kes_keystore::{Error, KeyStore, Locator};
use kes_keystore_rest::{
    Kind, Method, Op, Reply, Request, Rest, RestError, Session, Token, secret_json, segment,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use config::{BACKEND, FortanixConfig};

/// The backend's name, as errors start.
const NAME: &str = "fortanix";
/// Names per page of a listing (the original's page size).
const PAGE: usize = 100;
/// The most pages one listing reads (1,000,000 keys): a bound, so that a key manager that keeps
/// answering never keeps a listing going forever.
const MAX_PAGES: usize = 10_000;
/// The lifetime assumed when DSM names none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);

/// Where the original keeps the DSM error text: a JSON `{"message"}` or the plain body.
fn vendor_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_slice::<Message>(body) {
        Ok(m) => m.message,
        Err(_) if body.first() == Some(&b'{') || body.first() == Some(&b'<') => String::new(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

/// A Fortanix DSM keystore.
pub struct FortanixKeyStore {
    rest: Rest,
    api_key: Zeroizing<String>,
    group_id: Option<String>,
    session: Session,
    closed: AtomicBool,
}

impl std::fmt::Debug for FortanixKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FortanixKeyStore")
            .field("endpoint", &self.rest.base())
            .field("group_id", &self.group_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct AuthResponse {
    access_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Serialize)]
struct ImportRequest<'a> {
    obj_type: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_id: Option<&'a str>,
    key_ops: [&'static str; 2],
    value: &'a str,
    enabled: bool,
}

#[derive(Deserialize)]
struct Exported {
    kid: Option<String>,
    value: Option<String>,
    enabled: Option<bool>,
}

impl Drop for Exported {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        if let Some(value) = &mut self.value {
            value.zeroize();
        }
    }
}

#[derive(Deserialize)]
struct Listed {
    name: Option<String>,
}

/// A listing answer: an array, or `{metadata, items}` (with `with_metadata`).
#[derive(Deserialize)]
#[serde(untagged)]
enum ListResponse {
    Plain(Vec<Listed>),
    WithMetadata { items: Vec<Listed> },
}

impl FortanixKeyStore {
    /// Connects as `config` says: checks DSM's health and logs in with the API key.
    pub async fn connect(config: &FortanixConfig) -> Result<Self, RestError> {
        Self::connect_with(config, RetryPolicy::default()).await
    }

    /// [`connect`](Self::connect) with another retry policy.
    pub async fn connect_with(
        config: &FortanixConfig,
        policy: RetryPolicy,
    ) -> Result<Self, RestError> {
        let rest = Rest::new(NAME, &config.endpoint, config.ca.as_deref(), vendor_message)?
            .with_policy(policy);
        let store = Self {
            rest,
            api_key: Zeroizing::new(config.api_key.expose_secret().to_owned()),
            group_id: config.group_id.clone(),
            session: Session::new(),
            closed: AtomicBool::new(false),
        };
        store.health(&Op::new("connect")).await?;
        let op = Op::new("connect");
        store.session.token(|_| store.login(&op)).await?;
        Ok(store)
    }

    async fn health(&self, op: &Op) -> Result<(), RestError> {
        let reply = self
            .rest
            .send(op, &Request::new(Method::GET, "/sys/v1/health"), &[])
            .await?;
        match reply.status {
            200 | 204 => Ok(()),
            _ => Err(reply.error(op, &[])),
        }
    }

    /// `POST /sys/v1/session/auth` with the API key: a new session token.
    async fn login(&self, op: &Op) -> Result<Token, RestError> {
        let basic = format!("Basic {}", self.api_key.as_str());
        let basic = Zeroizing::new(basic);
        let request = Request::new(Method::POST, "/sys/v1/session/auth")
            .auth("authorization", basic.as_str());
        let reply = self.rest.send(op, &request, &[&self.api_key]).await?;
        if reply.status != 200 && reply.status != 201 {
            return Err(self.login_error(op, &reply));
        }
        let auth: AuthResponse = reply.json(op)?;
        let token = auth
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| reply.invalid(op, "no access_token in the session"))?;
        let lifetime = auth
            .expires_in
            .filter(|s| *s > 0)
            .map_or(DEFAULT_LIFETIME, Duration::from_secs);
        Ok(Token::new(token, lifetime))
    }

    fn login_error(&self, op: &Op, reply: &Reply) -> RestError {
        let mut err = reply.error(op, &[&self.api_key]);
        if matches!(reply.status, 401 | 403)
            && let Kind::Status { message, .. } = &mut err.kind
        {
            let why = "the API key (credentials.key) was refused";
            *message = if message.is_empty() {
                why.to_owned()
            } else {
                format!("{message} ({why})")
            };
        }
        err
    }

    /// Sends `build(token)` with the current session token; when DSM refuses the token (401),
    /// logs in again and sends once more.
    async fn call(
        &self,
        op: &Op,
        build: impl Fn() -> Result<Request, RestError>,
    ) -> Result<Reply, RestError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RestError::local(NAME, op, "the keystore is closed"));
        }
        let mut refused = false;
        loop {
            let token = self.session.token(|_| self.login(op)).await?;
            let bearer = Zeroizing::new(format!("Bearer {}", token.expose()));
            let request = build()?.auth("authorization", bearer.as_str());
            let reply = self.rest.send(op, &request, &[]).await?;
            if reply.status == 401 && !refused {
                refused = true;
                self.session.invalidate(&token).await;
                continue;
            }
            return Ok(reply);
        }
    }

    async fn export(&self, op: &Op, name: &str) -> Result<Exported, Error> {
        let body = secret_json(&serde_json::json!({ "name": name }), name.len() + 16)
            .map_err(|e| RestError::local(NAME, op, e))?;
        let reply = self
            .call(op, || {
                Ok(Request::new(Method::POST, "/crypto/v1/keys/export").body(body.clone()))
            })
            .await?;
        match reply.status {
            200 => Ok(reply.json(op)?),
            404 => Err(Error::NotFound),
            _ => Err(reply.error(op, &[]).into()),
        }
    }

    async fn list_all(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let op = Op::new("list");
        let mut names: Vec<String> = Vec::new();
        let mut cursor: Option<String> = (!prefix.is_empty()).then(|| prefix.to_owned());
        for _ in 0..MAX_PAGES {
            let mut path = format!("/crypto/v1/keys?sort=name:asc&limit={PAGE}");
            if let Some(start) = &cursor {
                path.push_str("&start=");
                path.push_str(&segment(start));
            }
            let reply = self
                .call(&op, || Ok(Request::new(Method::GET, path.clone())))
                .await?;
            if reply.status != 200 {
                return Err(reply.error(&op, &[]).into());
            }
            let page = match reply.json::<ListResponse>(&op)? {
                ListResponse::Plain(items) | ListResponse::WithMetadata { items } => items,
            };
            let full = page.len() >= PAGE;
            let mut advanced = false;
            let mut past_prefix = false;
            for name in page.into_iter().filter_map(|o| o.name) {
                // `start` may be inclusive: what the previous page ended with comes again.
                if names
                    .last()
                    .is_some_and(|last| name.as_str() <= last.as_str())
                {
                    continue;
                }
                if name.as_str() < prefix {
                    continue;
                }
                advanced = true;
                if !name.starts_with(prefix) {
                    past_prefix = true;
                    break;
                }
                cursor = Some(name.clone());
                names.push(name);
            }
            if past_prefix || !full || !advanced {
                return Ok(names);
            }
        }
        Err(RestError::local(
            NAME,
            &op,
            format!("the listing did not end after {MAX_PAGES} pages"),
        )
        .into())
    }
}

#[async_trait::async_trait]
impl KeyStore for FortanixKeyStore {
    async fn status(&self) -> Result<Duration, Error> {
        let started = Instant::now();
        self.health(&Op::new("status")).await?;
        Ok(started.elapsed())
    }

    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        let op = Op::key("create", name);
        let encoded = Zeroizing::new(B64.encode(value));
        let request = ImportRequest {
            obj_type: "OPAQUE",
            name,
            group_id: self.group_id.as_deref(),
            key_ops: ["EXPORT", "APPMANAGEABLE"],
            value: &encoded,
            enabled: true,
        };
        let body = secret_json(&request, encoded.len() + name.len() + 160)
            .map_err(|e| RestError::local(NAME, &op, e))?;
        let reply = self
            .call(&op, || {
                Ok(Request::new(Method::PUT, "/crypto/v1/keys").body(body.clone()))
            })
            .await?;
        match reply.status {
            200 | 201 => Ok(()),
            409 if reply.retried => {
                // An earlier try may have been carried out although its answer was lost: then
                // the object holds this very value, and the create succeeded.
                match self.get(name).await {
                    Ok(stored) if stored.as_slice() == value => Ok(()),
                    _ => Err(Error::Exists),
                }
            }
            409 => Err(Error::Exists),
            _ => Err(reply.error(&op, &[]).into()),
        }
    }

    async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        let op = Op::key("get", name);
        let exported = self.export(&op, name).await?;
        if exported.enabled == Some(false) {
            return Err(RestError::local(NAME, &op, "the security object is disabled").into());
        }
        let value = exported.value.as_deref().ok_or_else(|| {
            RestError::new(
                NAME,
                &op,
                Kind::Invalid {
                    call: format!("POST /crypto/v1/keys/export at {}", self.rest.base()),
                    reason: "no value in the security object (is it exportable?)".into(),
                },
            )
        })?;
        let decoded = B64.decode(value).map_err(|_| {
            RestError::local(NAME, &op, "the security object's value is not base64")
        })?;
        Ok(Zeroizing::new(decoded))
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        let op = Op::key("delete", name);
        let exported = self.export(&op, name).await?;
        let kid = exported
            .kid
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| RestError::local(NAME, &op, "DSM named no kid for the object"))?;
        let path = format!("/crypto/v1/keys/{}", segment(&kid));
        let reply = self
            .call(&op, || Ok(Request::new(Method::DELETE, path.clone())))
            .await?;
        match reply.status {
            200 | 204 => Ok(()),
            404 => Err(Error::NotFound),
            _ => Err(reply.error(&op, &[]).into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        self.list_all(prefix).await
    }

    async fn close(&self) -> Result<(), Error> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(token) = self.session.take().await
            && !token.expired()
        {
            let op = Op::new("close");
            let bearer = Zeroizing::new(format!("Bearer {}", token.expose()));
            let request = Request::new(Method::POST, "/sys/v1/session/terminate")
                .auth("authorization", bearer.as_str());
            // Ending the session is a courtesy: DSM drops it when it expires anyway.
            let _ = self.rest.once(&op, &request).await;
        }
        Ok(())
    }

    fn locator(&self) -> Locator {
        Locator::new(format!("fortanix:{}", self.rest.base()))
    }
}
