//! The Entrust KeyControl keystore (kes-spec §8.9): each key record is a secret of one box of a
//! KeyControl secrets vault, whose `secret_data` is the standard base64 of the record, exactly
//! as the original stores it, so that a box the original filled is read unchanged and the
//! other way round.
//!
//! | operation | request (all `POST`, JSON bodies)                                          |
//! |-----------|----------------------------------------------------------------------------|
//! | log in    | `/vault/1.0/Login/<vault_id>/` `{"username","password"}` → `{"access_token","expires_at"}` |
//! | renew     | `/vault/1.0/Renew/` `{}` → `{"access_token","expires_at"}`                  |
//! | status    | `/vault/1.0/GetBox/` `{"box_id"}` → 200                                     |
//! | create    | `/vault/1.0/CreateSecret/` `{"box_id","name","secret_data":b64}` → 200      |
//! | get       | `/vault/1.0/CheckoutSecret/` `{"box_id","secret_id":<name>}` → `{"secret_data"}` |
//! | delete    | `/vault/1.0/DeleteSecret/` `{"box_id","secret_id":<name>}` → 200            |
//! | list      | `/vault/1.0/ListSecretIds/` `{"box_id","max_items":256,"next_token"?}` → `{"secrets":[{"name","expired"}],"next_token"}` |
//!
//! Every call but the login carries `X-Vault-Auth: <token>`. The token is renewed once half of
//! its lifetime (until `expires_at`; 5 minutes when the answer names none) has passed; when the
//! renewal is refused the store logs in again, and a token the vault refuses (401) is replaced
//! by a new login. The listing follows the vault's `next_token` until it is empty, skips expired
//! secrets and, unlike the original, never returns empty names.

#![deny(unsafe_code)]

mod config;

use std::collections::HashSet;
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
use zeroize::{Zeroize as _, Zeroizing};

pub use config::{BACKEND, EntrustConfig};

/// The backend's name, as errors start.
const NAME: &str = "entrust";
/// The authorization header.
const AUTH: &str = "x-vault-auth";
/// Names per page of a listing (the original's page size).
const PAGE: usize = 256;
/// The most pages one listing reads: a bound against a vault that never ends it.
const MAX_PAGES: usize = 10_000;
/// The token lifetime assumed when the login names no expiry (as the original).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// The shortest lifetime counted for a token, so that a vault clock behind this one does not
/// make every request renew first (a token refused as expired is replaced anyway).
const MIN_LIFETIME: Duration = Duration::from_secs(2);

/// The error text of a KeyControl error body `{"error"}`.
fn vendor_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Failure {
        error: Option<String>,
    }
    serde_json::from_slice::<Failure>(body)
        .ok()
        .and_then(|f| f.error)
        .unwrap_or_default()
}

/// An Entrust KeyControl keystore: one box of one secrets vault.
pub struct EntrustKeyStore {
    rest: Rest,
    vault_id: String,
    box_id: String,
    username: String,
    password: Zeroizing<String>,
    session: Session,
    closed: AtomicBool,
}

impl std::fmt::Debug for EntrustKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntrustKeyStore")
            .field("endpoint", &self.rest.base())
            .field("vault_id", &self.vault_id)
            .field("box_id", &self.box_id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct LoginRequest<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_at: Option<String>,
}

impl Drop for TokenResponse {
    fn drop(&mut self) {
        if let Some(token) = &mut self.access_token {
            token.zeroize();
        }
    }
}

#[derive(Serialize)]
struct BoxRequest<'a> {
    box_id: &'a str,
}

#[derive(Serialize)]
struct CreateRequest<'a> {
    box_id: &'a str,
    name: &'a str,
    secret_data: &'a str,
}

#[derive(Serialize)]
struct SecretRequest<'a> {
    box_id: &'a str,
    secret_id: &'a str,
}

#[derive(Deserialize)]
struct Checkout {
    secret_data: Option<serde_json::Value>,
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(serde_json::Value::String(data)) = &mut self.secret_data {
            data.zeroize();
        }
    }
}

#[derive(Serialize)]
struct ListRequest<'a> {
    box_id: &'a str,
    max_items: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<&'a str>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    secrets: Option<Vec<Listed>>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
struct Listed {
    name: Option<String>,
    #[serde(default)]
    expired: Option<bool>,
}

/// The lifetime of a token that expires at `expires_at` (RFC 3339), from now.
fn lifetime(expires_at: Option<&str>) -> Result<Duration, String> {
    let Some(text) = expires_at.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_LIFETIME);
    };
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            format!(
                "expires_at '{}' is not an RFC 3339 time",
                text.escape_debug()
            )
        })?;
    let left = at - time::OffsetDateTime::now_utc();
    let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
    Ok(left.max(MIN_LIFETIME))
}

impl EntrustKeyStore {
    /// Connects as `config` says: logs in to the vault and looks the box up.
    pub async fn connect(config: &EntrustConfig) -> Result<Self, RestError> {
        Self::connect_with(config, RetryPolicy::default()).await
    }

    /// [`connect`](Self::connect) with another retry policy.
    pub async fn connect_with(
        config: &EntrustConfig,
        policy: RetryPolicy,
    ) -> Result<Self, RestError> {
        let rest = Rest::new(NAME, &config.endpoint, config.ca.as_deref(), vendor_message)?
            .with_policy(policy);
        let store = Self {
            rest,
            vault_id: config.vault_id.clone(),
            box_id: config.box_id.clone(),
            username: config.username.clone(),
            password: Zeroizing::new(config.password.expose_secret().to_owned()),
            session: Session::new(),
            closed: AtomicBool::new(false),
        };
        let op = Op::new("connect");
        store.session.token(|_| store.login(&op)).await?;
        let reply = store.get_box(&op).await?;
        if reply.status != 200 {
            let mut err = reply.error(&op, &[]);
            if reply.status == 404 {
                hint(
                    &mut err,
                    &format!(
                        "box '{}' (box_id) not found in vault '{}', or the user may not read it",
                        store.box_id.escape_debug(),
                        store.vault_id.escape_debug()
                    ),
                );
            }
            return Err(err);
        }
        Ok(store)
    }

    /// `POST /vault/1.0/Login/<vault_id>/` with the username and password: a new token.
    async fn login(&self, op: &Op) -> Result<Token, RestError> {
        let body = LoginRequest {
            username: &self.username,
            password: &self.password,
        };
        let body = secret_json(&body, self.username.len() + self.password.len() + 40)
            .map_err(|e| RestError::local(NAME, op, e))?;
        let path = format!("/vault/1.0/Login/{}/", segment(&self.vault_id));
        let request = Request::new(Method::POST, path).body(body);
        let reply = self.rest.send(op, &request, &[&self.password]).await?;
        if reply.status != 200 {
            let mut err = reply.error(op, &[&self.password]);
            match reply.status {
                400 | 401 | 403 => hint(
                    &mut err,
                    "the username or password (credentials) was refused",
                ),
                404 => hint(
                    &mut err,
                    &format!(
                        "vault '{}' (vault_id) not found",
                        self.vault_id.escape_debug()
                    ),
                ),
                _ => {}
            }
            return Err(err);
        }
        token(&reply, op)
    }

    /// `POST /vault/1.0/Renew/` with `old`: a new token.
    async fn renew(&self, old: &Token, op: &Op) -> Result<Token, RestError> {
        /// The renewal's body: `{}`.
        #[derive(Serialize)]
        struct Empty {}
        let body = secret_json(&Empty {}, 8).map_err(|e| RestError::local(NAME, op, e))?;
        let request = Request::new(Method::POST, "/vault/1.0/Renew/")
            .body(body)
            .auth(AUTH, old.expose());
        let reply = self.rest.send(op, &request, &[]).await?;
        if reply.status != 200 {
            return Err(reply.error(op, &[]));
        }
        token(&reply, op)
    }

    /// A token for the next request: the current one, or (when half of its lifetime has
    /// passed) a renewed one, or (when the renewal is refused, or there is none) a new login.
    async fn token(&self, op: &Op) -> Result<std::sync::Arc<Token>, RestError> {
        self.session
            .token(|old| async move {
                if let Some(old) = old.filter(|t| !t.expired()) {
                    match self.renew(&old, op).await {
                        Ok(token) => return Ok(token),
                        // No answer: a login would not get one either.
                        Err(err) if err.is_network() => return Err(err),
                        Err(_) => {}
                    }
                }
                self.login(op).await
            })
            .await
    }

    /// Sends `body` to `/vault/1.0/<action>/` with the current token; when the vault refuses
    /// the token (401), logs in again and sends once more.
    async fn call(&self, op: &Op, action: &str, body: &impl Serialize) -> Result<Reply, RestError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(RestError::local(NAME, op, "the keystore is closed"));
        }
        let body = secret_json(body, 256).map_err(|e| RestError::local(NAME, op, e))?;
        let request = Request::new(Method::POST, format!("/vault/1.0/{action}/")).body(body);
        let mut refused = false;
        loop {
            let token = self.token(op).await?;
            let authorized = request.clone().auth(AUTH, token.expose());
            let reply = self.rest.send(op, &authorized, &[]).await?;
            if reply.status == 401 && !refused {
                refused = true;
                self.session.invalidate(&token).await;
                continue;
            }
            return Ok(reply);
        }
    }

    async fn get_box(&self, op: &Op) -> Result<Reply, RestError> {
        self.call(
            op,
            "GetBox",
            &BoxRequest {
                box_id: &self.box_id,
            },
        )
        .await
    }

    /// Whether a 404 answer means the secret is missing (not the box): KeyControl says
    /// `Secret not found`, or nothing.
    fn secret_missing(reply: &Reply) -> bool {
        if reply.status != 404 {
            return false;
        }
        let message = reply.message(&[]).to_ascii_lowercase();
        message.is_empty() || message.contains("secret not found")
    }
}

/// Adds `why` to the vendor's text of a status error.
fn hint(err: &mut RestError, why: &str) {
    if let Kind::Status { message, .. } = &mut err.kind {
        *message = if message.is_empty() {
            why.to_owned()
        } else {
            format!("{message} ({why})")
        };
    }
}

/// The token of a login or renewal answer.
fn token(reply: &Reply, op: &Op) -> Result<Token, RestError> {
    let mut answer: TokenResponse = reply.json(op)?;
    let secret = answer
        .access_token
        .take()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| reply.invalid(op, "no access_token in the answer"))?;
    let lifetime = lifetime(answer.expires_at.as_deref()).map_err(|e| reply.invalid(op, e))?;
    Ok(Token::new(secret, lifetime))
}

#[async_trait::async_trait]
impl KeyStore for EntrustKeyStore {
    async fn status(&self) -> Result<Duration, Error> {
        // As the original: the box must answer 200.
        let started = Instant::now();
        let op = Op::new("status");
        let reply = self.get_box(&op).await?;
        if reply.status != 200 {
            return Err(reply.error(&op, &[]).into());
        }
        Ok(started.elapsed())
    }

    async fn create(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        let op = Op::key("create", name);
        let data = Zeroizing::new(B64.encode(value));
        let body = CreateRequest {
            box_id: &self.box_id,
            name,
            secret_data: &data,
        };
        let reply = self.call(&op, "CreateSecret", &body).await?;
        match reply.status {
            200 | 201 => Ok(()),
            // An earlier try may have been carried out: ours, if it holds our value.
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
        let body = SecretRequest {
            box_id: &self.box_id,
            secret_id: name,
        };
        let reply = self.call(&op, "CheckoutSecret", &body).await?;
        if Self::secret_missing(&reply) {
            return Err(Error::NotFound);
        }
        if reply.status != 200 {
            return Err(reply.error(&op, &[]).into());
        }
        let checkout: Checkout = reply.json(&op)?;
        let Some(serde_json::Value::String(data)) = &checkout.secret_data else {
            return Err(reply
                .invalid(&op, "secret_data is not a string (not a secret KES wrote)")
                .into());
        };
        let value = B64.decode(data.trim()).map_err(|_| {
            reply.invalid(&op, "secret_data is not base64 (not a secret KES wrote)")
        })?;
        Ok(Zeroizing::new(value))
    }

    async fn delete(&self, name: &str) -> Result<(), Error> {
        let op = Op::key("delete", name);
        let body = SecretRequest {
            box_id: &self.box_id,
            secret_id: name,
        };
        let reply = self.call(&op, "DeleteSecret", &body).await?;
        if Self::secret_missing(&reply) {
            return Err(Error::NotFound);
        }
        match reply.status {
            200 | 204 => Ok(()),
            _ => Err(reply.error(&op, &[]).into()),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let op = Op::new("list");
        let mut names = Vec::new();
        let mut next: Option<String> = None;
        let mut seen = HashSet::new();
        for _ in 0..MAX_PAGES {
            let body = ListRequest {
                box_id: &self.box_id,
                max_items: PAGE,
                next_token: next.as_deref(),
            };
            let reply = self.call(&op, "ListSecretIds", &body).await?;
            if reply.status != 200 {
                return Err(reply.error(&op, &[]).into());
            }
            let page: Page = reply.json(&op)?;
            names.extend(
                page.secrets
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| s.expired != Some(true))
                    .filter_map(|s| s.name)
                    .filter(|n| !n.is_empty() && n.starts_with(prefix)),
            );
            match page.next_token.filter(|t| !t.is_empty()) {
                None => {
                    names.sort();
                    names.dedup();
                    return Ok(names);
                }
                Some(token) => {
                    if !seen.insert(token.clone()) {
                        return Err(reply
                            .invalid(&op, "the vault sent a next_token it had sent before")
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
        Locator::new(format!(
            "entrust:{} vault {} box {}",
            self.rest.base(),
            self.vault_id,
            self.box_id
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_come_from_expires_at() {
        assert_eq!(lifetime(None).unwrap(), DEFAULT_LIFETIME);
        assert_eq!(lifetime(Some("")).unwrap(), DEFAULT_LIFETIME);
        let soon = time::OffsetDateTime::now_utc() + Duration::from_secs(600);
        let text = soon
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let got = lifetime(Some(&text)).unwrap();
        assert!(
            got > Duration::from_secs(590) && got <= Duration::from_secs(600),
            "{got:?}"
        );
        assert_eq!(
            lifetime(Some("2001-01-01T00:00:00+02:00")).unwrap(),
            MIN_LIFETIME
        );
        let err = lifetime(Some("tomorrow")).unwrap_err();
        assert_eq!(err, "expires_at 'tomorrow' is not an RFC 3339 time");
    }

    #[test]
    fn vendor_messages() {
        assert_eq!(
            vendor_message(br#"{"error":"Secret not found"}"#),
            "Secret not found"
        );
        assert_eq!(vendor_message(b""), "");
        assert_eq!(vendor_message(b"<html>"), "");
    }

    #[test]
    fn list_bodies_omit_an_empty_next_token() {
        let body = ListRequest {
            box_id: "b",
            max_items: PAGE,
            next_token: None,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"box_id":"b","max_items":256}"#
        );
    }
}
