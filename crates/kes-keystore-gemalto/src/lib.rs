//! The Thales CipherTrust Manager / Gemalto KeySecure keystore (kes-spec §8.7). CipherTrust
//! Manager is KeySecure's successor with the same API. Each key record is a secret of data type
//! `seed` whose `material` is the record text, exactly as the original stores it, so that a
//! vault the original filled is read unchanged and the other way round.
//!
//! | operation | request                                                                     |
//! |-----------|-----------------------------------------------------------------------------|
//! | token     | `POST /api/v1/auth/tokens` `{"grant_type":"refresh_token","refresh_token","domain"}` → `{"jwt","duration"}` |
//! | status    | `GET <endpoint>`: any answer is reachable                                    |
//! | create    | `POST /api/v1/vault/secrets` `{"dataType":"seed","material","name"}` → 201  |
//! | get       | `POST /api/v1/vault/secrets/<name>/export?type=name` → `{"material"}`       |
//! | delete    | `DELETE /api/v1/vault/secrets/<name>?type=name` → 204                       |
//! | list      | `GET /api/v1/vault/secrets?limit=200&skip=<n>` → `{"skip","total","resources"}` |
//!
//! Every call but the token request carries `Authorization: Bearer <jwt>`. The JWT (5 minutes
//! on CipherTrust) is renewed once half of its `duration` has passed, and obtained again when
//! the appliance refuses it (401).

#![deny(unsafe_code)]

mod config;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kes_keystore::retry::RetryPolicy;
use kes_keystore::{Error, KeyStore, Locator};
use kes_keystore_rest::{
    Method, Op, Reply, Request, Rest, RestError, Session, Token, secret_json, segment,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use config::{BACKEND, GemaltoConfig};

/// The backend's name, as errors start.
const NAME: &str = "gemalto";
/// Secrets per page of a listing (the original's page size).
const PAGE: usize = 200;
/// The most pages one listing reads: a bound against an appliance that never ends it.
const MAX_PAGES: usize = 10_000;
/// The JWT lifetime assumed when the appliance names none (CipherTrust's 5 minutes).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// The error text of a CipherTrust error body `{"code","codeDesc"}`.
fn vendor_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Failure {
        code: Option<i64>,
        #[serde(rename = "codeDesc")]
        code_desc: Option<String>,
    }
    match serde_json::from_slice::<Failure>(body) {
        Ok(Failure {
            code: Some(code),
            code_desc: Some(desc),
        }) => format!("{desc} (code {code})"),
        Ok(Failure {
            code_desc: Some(desc),
            ..
        }) => desc,
        _ => String::new(),
    }
}

/// A CipherTrust Manager / KeySecure keystore.
pub struct GemaltoKeyStore {
    rest: Rest,
    refresh_token: Zeroizing<String>,
    domain: String,
    session: Session,
    closed: AtomicBool,
}

impl std::fmt::Debug for GemaltoKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GemaltoKeyStore")
            .field("endpoint", &self.rest.base())
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct TokenRequest<'a> {
    grant_type: &'static str,
    refresh_token: &'a str,
    domain: &'a str,
}

#[derive(Deserialize)]
struct TokenResponse {
    jwt: Option<String>,
    duration: Option<u64>,
}

#[derive(Serialize)]
struct CreateRequest<'a> {
    #[serde(rename = "dataType")]
    data_type: &'static str,
    material: &'a str,
    name: &'a str,
}

#[derive(Deserialize)]
struct Exported {
    material: Option<String>,
}

impl Drop for Exported {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        if let Some(m) = &mut self.material {
            m.zeroize();
        }
    }
}

#[derive(Deserialize)]
struct Page {
    skip: Option<u64>,
    total: Option<u64>,
    #[serde(default)]
    resources: Vec<Resource>,
}

#[derive(Deserialize)]
struct Resource {
    name: Option<String>,
}

impl GemaltoKeyStore {
    /// Connects as `config` says: obtains a first JWT with the refresh token.
    pub async fn connect(config: &GemaltoConfig) -> Result<Self, RestError> {
        Self::connect_with(config, RetryPolicy::default()).await
    }

    /// [`connect`](Self::connect) with another retry policy.
    pub async fn connect_with(
        config: &GemaltoConfig,
        policy: RetryPolicy,
    ) -> Result<Self, RestError> {
        let rest = Rest::new(NAME, &config.endpoint, config.ca.as_deref(), vendor_message)?
            .with_policy(policy);
        let store = Self {
            rest,
            refresh_token: Zeroizing::new(config.refresh_token.expose_secret().to_owned()),
            domain: config.domain.clone(),
            session: Session::new(),
            closed: AtomicBool::new(false),
        };
        let op = Op::new("connect");
        store.session.token(|_| store.login(&op)).await?;
        Ok(store)
    }

    /// `POST /api/v1/auth/tokens` with the refresh token: a new JWT.
    async fn login(&self, op: &Op) -> Result<Token, RestError> {
        let body = TokenRequest {
            grant_type: "refresh_token",
            refresh_token: &self.refresh_token,
            domain: &self.domain,
        };
        let body = secret_json(&body, self.refresh_token.len() + self.domain.len() + 80)
            .map_err(|e| RestError::local(NAME, op, e))?;
        let request = Request::new(Method::POST, "/api/v1/auth/tokens").body(body);
        let reply = self.rest.send(op, &request, &[&self.refresh_token]).await?;
        if reply.status != 200 && reply.status != 201 {
            return Err(self.login_error(op, &reply));
        }
        let token: TokenResponse = reply.json(op)?;
        let jwt = token
            .jwt
            .filter(|t| !t.is_empty())
            .ok_or_else(|| reply.invalid(op, "no jwt in the token answer"))?;
        let lifetime = token
            .duration
            .filter(|s| *s > 0)
            .map_or(DEFAULT_LIFETIME, Duration::from_secs);
        Ok(Token::new(jwt, lifetime))
    }

    fn login_error(&self, op: &Op, reply: &Reply) -> RestError {
        let mut err = reply.error(op, &[&self.refresh_token]);
        if matches!(reply.status, 400 | 401 | 403)
            && let kes_keystore_rest::Kind::Status { message, .. } = &mut err.kind
        {
            let why = "the refresh token (credentials.token) or its domain was refused";
            *message = if message.is_empty() {
                why.to_owned()
            } else {
                format!("{message} ({why})")
            };
        }
        err
    }

    /// Sends `build()` with the current JWT; when the appliance refuses it (401), obtains a new
    /// one and sends once more.
    async fn call(&self, op: &Op, request: Request) -> Result<Reply, RestError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RestError::local(NAME, op, "the keystore is closed"));
        }
        let mut refused = false;
        loop {
            let token = self.session.token(|_| self.login(op)).await?;
            let bearer = Zeroizing::new(format!("Bearer {}", token.expose()));
            let authorized = request.clone().auth("authorization", bearer.as_str());
            let reply = self.rest.send(op, &authorized, &[]).await?;
            if reply.status == 401 && !refused {
                refused = true;
                self.session.invalidate(&token).await;
                continue;
            }
            return Ok(reply);
        }
    }
}

#[async_trait::async_trait]
impl KeyStore for GemaltoKeyStore {
    async fn status(&self) -> Result<Duration, Error> {
        // As the original: a plain GET of the endpoint; any answer means reachable.
        let started = Instant::now();
        self.rest
            .send(&Op::new("status"), &Request::new(Method::GET, "/"), &[])
            .await?;
        Ok(started.elapsed())
    }

    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        let op = Op::key("create", name);
        let material = std::str::from_utf8(value).map_err(|_| {
            RestError::local(
                NAME,
                &op,
                "the value is not text (secrets hold UTF-8 material)",
            )
        })?;
        let body = CreateRequest {
            data_type: "seed",
            material,
            name,
        };
        let body = secret_json(&body, value.len() + name.len() + 64)
            .map_err(|e| RestError::local(NAME, &op, e))?;
        let reply = self
            .call(
                &op,
                Request::new(Method::POST, "/api/v1/vault/secrets").body(body),
            )
            .await?;
        match reply.status {
            200 | 201 => Ok(()),
            409 if reply.retried => match self.get(name).await {
                Ok(stored) if stored.as_slice() == value => Ok(()),
                _ => Err(Error::Exists),
            },
            409 => Err(Error::Exists),
            _ => Err(reply.error(&op, &[]).into()),
        }
    }

    async fn get(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
        let op = Op::key("get", name);
        let path = format!("/api/v1/vault/secrets/{}/export?type=name", segment(name));
        let reply = self.call(&op, Request::new(Method::POST, path)).await?;
        match reply.status {
            200 => {}
            404 => return Err(Error::NotFound),
            _ => return Err(reply.error(&op, &[]).into()),
        }
        let exported: Exported = reply.json(&op)?;
        let material = exported
            .material
            .as_deref()
            .ok_or_else(|| reply.invalid(&op, "no material in the exported secret"))?;
        Ok(Zeroizing::new(material.as_bytes().to_vec()))
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        let op = Op::key("delete", name);
        let path = format!("/api/v1/vault/secrets/{}?type=name", segment(name));
        let reply = self.call(&op, Request::new(Method::DELETE, path)).await?;
        match reply.status {
            200 | 204 => Ok(()),
            404 => Err(Error::NotFound),
            _ => Err(reply.error(&op, &[]).into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let op = Op::new("list");
        let mut names = Vec::new();
        let mut skip: u64 = 0;
        for _ in 0..MAX_PAGES {
            let path = format!("/api/v1/vault/secrets?limit={PAGE}&skip={skip}");
            let reply = self.call(&op, Request::new(Method::GET, path)).await?;
            if reply.status != 200 {
                return Err(reply.error(&op, &[]).into());
            }
            let page: Page = reply.json(&op)?;
            if page.skip.is_some_and(|s| s != skip) {
                return Err(reply
                    .invalid(
                        &op,
                        format!("asked to skip {skip}, the page skipped {:?}", page.skip),
                    )
                    .into());
            }
            let count = page.resources.len() as u64;
            names.extend(
                page.resources
                    .into_iter()
                    .filter_map(|r| r.name)
                    .filter(|n| !n.is_empty() && n.starts_with(prefix)),
            );
            skip += count;
            let total = page.total.unwrap_or(0);
            if count == 0 || skip >= total {
                names.sort();
                names.dedup();
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

    async fn close(&self) -> Result<(), Error> {
        self.closed.store(true, Ordering::Release);
        drop(self.session.take().await);
        Ok(())
    }

    fn locator(&self) -> Locator {
        Locator::new(format!(
            "gemalto:{} domain {}",
            self.rest.base(),
            self.domain
        ))
    }
}
