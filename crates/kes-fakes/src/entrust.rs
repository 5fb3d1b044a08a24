//! A fake Entrust KeyControl secrets vault, written from
//! `testdata/keystore-apis/entrust-keycontrol/shapes.json` (Entrust's pasmcli and
//! Secrets-Vault-Action for the endpoints, request fields, auth header and errors; the original
//! KES client for the listing's answer and its continuation token) and kes-spec §8.9.
//!
//! Every call is `POST /vault/1.0/<Action>/` with a JSON object body (`Content-Type:
//! application/json`); another method → 405; an action without its trailing slash or unknown
//! → 404. Errors are `{"error": <text>}`.
//!
//! - `Login/<vault_id>/` `{"username","password"}` → 200 `{"access_token","expires_at"
//!   (RFC 3339),"user"}`; wrong credentials → 401; an unknown vault → 404.
//! - `Renew/` (with the token) `{}` → 200 `{"access_token","expires_at"}`: a new token.
//! - `GetBox/` `{"box_id"}` (the box's id or name) → 200 with the box; unknown → 404.
//! - `CreateSecret/` `{"box_id","name","secret_data"(string or object), …}` → 200; a name that
//!   exists → 409 `Secret already exists`.
//! - `CheckoutSecret/` `{"box_id","secret_id"(id or name)}` → 200 `{"secret_data",
//!   "secret_subtype_info","lease"}`; missing → 404 `Secret not found`; expired → 400.
//! - `DeleteSecret/` `{"box_id","secret_id"}` → 200; missing → 404 with an empty body (as
//!   pasmcli handles it).
//! - `ListSecretIds/` `{"box_id","max_items"?,"next_token"?,"prefix"?}` → 200
//!   `{"secrets":[{"name","expired",…}],"next_token"}` in name order; `next_token` is standard
//!   base64 of `{"box_id","next_ctx":<first name of the next page>}`, empty on the last page.
//!
//! Every call but the login needs `X-Vault-Auth: <token>` of a live token (expired → 401).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use crate::{FakeServer, Handler, Request, Response};

/// The vault the fake has.
pub const VAULT_ID: &str = "5b3c9a4e-2f1d-4c8b-9e7a-0d6f1b2c3a4e";
/// The id of its box.
pub const BOX_ID: &str = "a1f0c2d3-4b5e-4f60-8172-93a4b5c6d7e8";
/// The box's name (KeyControl accepts either).
pub const BOX_NAME: &str = "kes-box";
/// The user that logs in.
pub const USERNAME: &str = "kes-user";
/// Its password.
pub const PASSWORD: &str = "kc-pass-Vq8sW2xZ7rT4mN";

/// Paths of the API all start with this.
const PREFIX: &str = "/vault/1.0/";
/// The most names one listing page holds.
const MAX_ITEMS: u64 = 1000;

/// One secret of the box.
#[derive(Clone, Debug)]
pub struct Secret {
    /// Its id.
    pub id: String,
    /// `secret_data` as created: a string (KES: base64 of the key record) or an object.
    pub data: Value,
    /// Whether it has expired.
    pub expired: bool,
}

/// The fake's state, open to the test.
#[derive(Debug)]
pub struct State {
    /// The user that may log in, and its password.
    pub username: String,
    /// The password.
    pub password: String,
    /// How long new tokens live.
    pub token_lifetime: Duration,
    /// Live tokens and when they expire.
    pub tokens: BTreeMap<String, Instant>,
    /// The secrets of the box, by name.
    pub secrets: BTreeMap<String, Secret>,
    /// Answer the next this many requests with 503.
    pub fail_next: usize,
    /// Carry out the next this many requests but answer them with 503 (the answer is lost).
    pub fail_after_next: usize,
    /// Refuse renewals (500), so that the client must log in again.
    pub refuse_renewals: bool,
    /// Requests refused because of an expired token.
    pub expired_token_refusals: usize,
    /// Logins made.
    pub logins: usize,
    /// Renewals made.
    pub renewals: usize,
    /// Listing requests answered.
    pub list_requests: usize,
    /// Every request as `METHOD path`.
    pub log: Vec<String>,
    /// Every request body of a listing, as sent.
    pub list_bodies: Vec<Value>,
    next: u64,
}

/// A running fake KeyControl.
pub struct FakeKeyControl {
    /// The HTTPS server.
    pub server: FakeServer,
    /// Its state.
    pub state: Arc<Mutex<State>>,
}

impl FakeKeyControl {
    /// Starts it on 127.0.0.1 with [`VAULT_ID`], [`BOX_ID`] and [`USERNAME`]/[`PASSWORD`], with
    /// tokens of 5 minutes.
    pub async fn start() -> FakeKeyControl {
        let state = Arc::new(Mutex::new(State {
            username: USERNAME.to_owned(),
            password: PASSWORD.to_owned(),
            token_lifetime: Duration::from_secs(300),
            tokens: BTreeMap::new(),
            secrets: BTreeMap::new(),
            fail_next: 0,
            fail_after_next: 0,
            refuse_renewals: false,
            expired_token_refusals: 0,
            logins: 0,
            renewals: 0,
            list_requests: 0,
            log: Vec::new(),
            list_bodies: Vec::new(),
            next: 0,
        }));
        let handler_state = Arc::clone(&state);
        let handler: Handler = Arc::new(move |req: &Request| {
            let mut state = handler_state.lock().expect("fake state");
            handle(&mut state, req)
        });
        FakeKeyControl {
            server: FakeServer::https(handler).await,
            state,
        }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The state, locked.
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake state")
    }
}

/// A continuation token as KeyControl makes them (as the original KES reads them).
pub fn next_token(box_id: &str, next_ctx: &str) -> String {
    B64.encode(json!({"box_id": box_id, "next_ctx": next_ctx}).to_string())
}

fn error(status: u16, text: &str) -> Response {
    Response::json(status, &json!({ "error": text }))
}

fn handle(state: &mut State, req: &Request) -> Response {
    state.log.push(format!("{} {}", req.method, req.path));
    if state.fail_next > 0 {
        state.fail_next -= 1;
        return error(503, "Service unavailable");
    }
    let response = answer(state, req);
    if state.fail_after_next > 0 {
        state.fail_after_next -= 1;
        return error(503, "Service unavailable");
    }
    response
}

fn answer(state: &mut State, req: &Request) -> Response {
    let path = req.decoded_path();
    let Some(action) = path.strip_prefix(PREFIX) else {
        return error(404, "Not found");
    };
    let known = [
        "Login",
        "Renew",
        "GetBox",
        "CreateSecret",
        "CheckoutSecret",
        "DeleteSecret",
        "ListSecretIds",
    ];
    let (name, rest) = action.split_once('/').unwrap_or((action, ""));
    if !known.contains(&name) {
        return error(404, "Not found");
    }
    // `Login/<vault_id>/` (pasmcli accepts it without the final slash); the others `<Action>/`.
    let vault = match (name, rest) {
        ("Login", rest) if !rest.is_empty() => {
            let vault = rest.strip_suffix('/').unwrap_or(rest);
            if vault.contains('/') {
                return error(404, "Not found");
            }
            Some(vault.to_owned())
        }
        ("Login", _) => return error(404, "Not found"),
        (_, "") if action.ends_with('/') => None,
        _ => return error(404, "Not found"),
    };
    if req.method != "POST" {
        return error(405, "Method not allowed");
    }
    let body = match json_body(req) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    if let Some(vault) = vault {
        return login(state, &vault, &body);
    }
    if let Err(refused) = authorized(state, req) {
        return refused;
    }
    if name == "Renew" {
        return renew(state);
    }
    match body.get("box_id") {
        Some(Value::String(b)) if b == BOX_ID || b == BOX_NAME => {}
        Some(Value::String(_)) => return error(404, "Box not found"),
        _ => return error(400, "box_id is required"),
    }
    match name {
        "GetBox" => Response::json(
            200,
            &json!({"box_id": BOX_ID, "name": BOX_NAME, "desc": "KES keys", "secret_count": state.secrets.len()}),
        ),
        "CreateSecret" => create(state, &body),
        "CheckoutSecret" => checkout(state, &body),
        "DeleteSecret" => delete(state, &body),
        _ => list(state, &body),
    }
}

fn json_body(req: &Request) -> Result<Map<String, Value>, Response> {
    if !req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return Err(error(415, "Unsupported media type"));
    }
    if req.body.is_empty() {
        return Ok(Map::new());
    }
    match req.json() {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(error(400, "Invalid JSON body")),
    }
}

fn issue(state: &mut State) -> Response {
    state.next += 1;
    let token = format!("kc-tok-{:08}-{}", state.next, state.next * 7919);
    state
        .tokens
        .insert(token.clone(), Instant::now() + state.token_lifetime);
    let expires = time::OffsetDateTime::now_utc() + state.token_lifetime;
    let expires_at = expires
        .format(&time::format_description::well_known::Rfc3339)
        .expect("an RFC 3339 time");
    Response::json(
        200,
        &json!({"access_token": token, "expires_at": expires_at, "user": state.username}),
    )
}

fn login(state: &mut State, vault: &str, body: &Map<String, Value>) -> Response {
    if vault != VAULT_ID {
        return error(404, "Vault not found");
    }
    let (Some(Value::String(user)), Some(Value::String(password))) =
        (body.get("username"), body.get("password"))
    else {
        return error(400, "username and password are required");
    };
    if *user != state.username || *password != state.password {
        return error(401, "Invalid username or password");
    }
    state.logins += 1;
    issue(state)
}

fn authorized(state: &mut State, req: &Request) -> Result<(), Response> {
    let Some(token) = req.header("x-vault-auth") else {
        return Err(error(401, "Authentication required"));
    };
    match state.tokens.get(token) {
        Some(expires) if *expires > Instant::now() => Ok(()),
        Some(_) => {
            state.expired_token_refusals += 1;
            Err(error(401, "Token expired"))
        }
        None => Err(error(401, "Invalid token")),
    }
}

fn renew(state: &mut State) -> Response {
    if state.refuse_renewals {
        return error(500, "Renewal failed");
    }
    state.renewals += 1;
    issue(state)
}

fn string<'a>(body: &'a Map<String, Value>, key: &str) -> Result<&'a str, Response> {
    match body.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(error(400, &format!("{key} is required"))),
    }
}

fn find<'a>(state: &'a State, id: &str) -> Option<(&'a String, &'a Secret)> {
    state
        .secrets
        .get_key_value(id)
        .or_else(|| state.secrets.iter().find(|(_, s)| s.id == id))
}

fn create(state: &mut State, body: &Map<String, Value>) -> Response {
    let name = match string(body, "name") {
        Ok(name) => name.to_owned(),
        Err(refused) => return refused,
    };
    let data = match body.get("secret_data") {
        Some(data @ (Value::String(_) | Value::Object(_))) => data.clone(),
        _ => return error(400, "secret_data is required"),
    };
    if state.secrets.contains_key(&name) {
        return error(409, "Secret already exists");
    }
    state.next += 1;
    let id = format!("c0ffee00-0000-4000-8000-{:012x}", state.next);
    state.secrets.insert(
        name.clone(),
        Secret {
            id: id.clone(),
            data,
            expired: false,
        },
    );
    Response::json(
        200,
        &json!({"box_id": BOX_ID, "secret_id": id, "name": name}),
    )
}

fn checkout(state: &mut State, body: &Map<String, Value>) -> Response {
    let id = match string(body, "secret_id") {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    match find(state, id) {
        None => error(404, "Secret not found"),
        Some((_, secret)) if secret.expired => error(400, "Secret has expired"),
        Some((name, secret)) => Response::json(
            200,
            &json!({
                "box_id": BOX_ID,
                "secret_id": secret.id,
                "name": name,
                "secret_data": secret.data,
                "secret_subtype_info": {"type": "default", "info": {}},
                "lease": {"lease_id": format!("lease-{}", secret.id), "expires_at": null, "renewable": false},
            }),
        ),
    }
}

fn delete(state: &mut State, body: &Map<String, Value>) -> Response {
    let id = match string(body, "secret_id") {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let Some(name) = find(state, id).map(|(name, _)| name.clone()) else {
        return Response::empty(404);
    };
    state.secrets.remove(&name);
    Response::json(200, &json!({}))
}

fn list(state: &mut State, body: &Map<String, Value>) -> Response {
    state.list_requests += 1;
    state.list_bodies.push(Value::Object(body.clone()));
    let max_items = match body.get("max_items") {
        None => 100,
        Some(n) => match n.as_u64() {
            Some(n) if (1..=MAX_ITEMS).contains(&n) => n,
            _ => return error(400, "max_items must be an integer from 1 to 1000"),
        },
    };
    let prefix = match body.get("prefix") {
        None => "",
        Some(Value::String(p)) => p.as_str(),
        Some(_) => return error(400, "prefix must be a string"),
    };
    let start = match body.get("next_token") {
        None => String::new(),
        Some(Value::String(token)) => match decode_token(token) {
            Some(start) => start,
            None => return error(400, "Invalid next_token"),
        },
        Some(_) => return error(400, "Invalid next_token"),
    };
    let mut names = state
        .secrets
        .range(start..)
        .filter(|(name, _)| name.starts_with(prefix));
    let mut secrets = Vec::new();
    for (name, secret) in names
        .by_ref()
        .take(usize::try_from(max_items).unwrap_or(100))
    {
        secrets.push(json!({"name": name, "secret_id": secret.id, "expired": secret.expired}));
    }
    let next = names
        .next()
        .map(|(name, _)| next_token(BOX_ID, name))
        .unwrap_or_default();
    Response::json(200, &json!({"secrets": secrets, "next_token": next}))
}

/// The name a continuation token starts at, if it is one of this box.
fn decode_token(token: &str) -> Option<String> {
    let raw = B64.decode(token).ok()?;
    let value: Value = serde_json::from_slice(&raw).ok()?;
    let box_id = value.get("box_id")?.as_str()?;
    if box_id != BOX_ID && box_id != BOX_NAME {
        return None;
    }
    Some(value.get("next_ctx")?.as_str()?.to_owned())
}
