//! A fake Fortanix DSM, written from Fortanix's OpenAPI document
//! (`testdata/keystore-apis/fortanix-dsm/dsm-openapi-subset.json`) and kes-spec §8.8: the
//! operations the keystore calls, with the checks the real service makes.
//!
//! - `GET /sys/v1/health` → 204.
//! - `POST /sys/v1/session/auth` with `Authorization: Basic <api key>` →
//!   `{"token_type":"Bearer","expires_in","access_token","entity_id"}`; a wrong key → 401.
//! - `POST /sys/v1/session/terminate` with the bearer token → 204.
//! - `PUT /crypto/v1/keys` (import): JSON `SobjectRequest` with `obj_type`, `name` (a name that
//!   exists → 409 `sobject already exists`), base64 `value`, `key_ops`, `group_id` (must be a
//!   group of the app) → 201 with the object (without its value).
//! - `POST /crypto/v1/keys/export` with `{"name"}` or `{"kid"}` → 200 with `value`; a missing
//!   object → 404 `sobject does not exist`; an object without `EXPORT` → 403.
//! - `DELETE /crypto/v1/keys/<kid>` → 204; 404 for an unknown kid.
//! - `GET /crypto/v1/keys` with `sort=name:asc|desc`, `start` (inclusive), `limit` (default
//!   1000), `offset`, `with_metadata` → an array of objects (or `{metadata, items}`).
//!
//! Every `/crypto` call needs `Authorization: Bearer <token>` of a live session (an expired
//! token → 401); bodies must be JSON with `Content-Type: application/json`; a wrong method on a
//! known path → 405. Errors are plain text, as the SDKs read them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::{FakeServer, Handler, Request, Response};

/// One security object.
#[derive(Clone, Debug)]
pub struct Sobject {
    /// Its UUID.
    pub kid: String,
    /// Its group.
    pub group_id: String,
    /// The base64 value, as imported.
    pub value: String,
    /// `enabled`.
    pub enabled: bool,
    /// `key_ops`.
    pub key_ops: Vec<String>,
    /// `obj_type`.
    pub obj_type: String,
}

/// The fake's state, open to the test.
#[derive(Debug)]
pub struct State {
    /// The API key that logs in.
    pub api_key: String,
    /// The groups of the app; the first is its default group.
    pub groups: Vec<String>,
    /// How long new session tokens live.
    pub token_lifetime: Duration,
    /// Live session tokens and when they expire.
    pub tokens: BTreeMap<String, Instant>,
    /// The objects, by name.
    pub objects: BTreeMap<String, Sobject>,
    /// Answer the next this many requests with 503.
    pub fail_next: usize,
    /// Requests that were refused because of an expired token.
    pub expired_token_refusals: usize,
    /// Logins made.
    pub logins: usize,
    /// Listing requests answered.
    pub list_requests: usize,
    /// Every request as `METHOD path?query`.
    pub log: Vec<String>,
    next_id: u64,
}

impl State {
    fn uuid(&mut self) -> String {
        self.next_id += 1;
        format!("6f1c0a8e-0000-4000-8000-{:012x}", self.next_id)
    }
}

/// A running fake DSM.
pub struct FakeDsm {
    /// The HTTPS server.
    pub server: FakeServer,
    /// Its state.
    pub state: Arc<Mutex<State>>,
}

/// The API key the fake accepts by default (base64 of `app-id:secret`, as DSM's keys are).
pub const API_KEY: &str = "NmYxYzBhOGUtYXBwOnRvcC1zZWNyZXQtYXBpLWtleQ==";
/// The app's default group.
pub const GROUP: &str = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";

impl FakeDsm {
    /// Starts a fake DSM on 127.0.0.1 that accepts [`API_KEY`], with sessions of 10 minutes.
    pub async fn start() -> FakeDsm {
        let state = Arc::new(Mutex::new(State {
            api_key: API_KEY.to_owned(),
            groups: vec![GROUP.to_owned()],
            token_lifetime: Duration::from_secs(600),
            tokens: BTreeMap::new(),
            objects: BTreeMap::new(),
            fail_next: 0,
            expired_token_refusals: 0,
            logins: 0,
            list_requests: 0,
            log: Vec::new(),
            next_id: 0,
        }));
        let handler_state = Arc::clone(&state);
        let handler: Handler = Arc::new(move |req: &Request| {
            let mut state = handler_state.lock().expect("fake state");
            handle(&mut state, req)
        });
        FakeDsm {
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

fn text(status: u16, message: &str) -> Response {
    Response::text(status, message)
}

fn handle(state: &mut State, req: &Request) -> Response {
    let query: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    state.log.push(if query.is_empty() {
        format!("{} {}", req.method, req.path)
    } else {
        format!("{} {}?{}", req.method, req.path, query.join("&"))
    });
    if state.fail_next > 0 {
        state.fail_next -= 1;
        return text(503, "service unavailable");
    }
    let path = req.decoded_path();
    match path.as_str() {
        "/sys/v1/health" => match req.method.as_str() {
            "GET" => Response::empty(204),
            _ => text(405, "method not allowed"),
        },
        "/sys/v1/session/auth" => match req.method.as_str() {
            "POST" => auth(state, req),
            _ => text(405, "method not allowed"),
        },
        "/sys/v1/session/terminate" => match req.method.as_str() {
            "POST" => match bearer(state, req) {
                Ok(token) => {
                    state.tokens.remove(&token);
                    Response::empty(204)
                }
                Err(refused) => refused,
            },
            _ => text(405, "method not allowed"),
        },
        "/crypto/v1/keys" => {
            if let Err(refused) = bearer(state, req) {
                return refused;
            }
            match req.method.as_str() {
                "PUT" => import(state, req),
                "GET" => list(state, req),
                _ => text(405, "method not allowed"),
            }
        }
        "/crypto/v1/keys/export" => {
            if let Err(refused) = bearer(state, req) {
                return refused;
            }
            match req.method.as_str() {
                "POST" => export(state, req),
                _ => text(405, "method not allowed"),
            }
        }
        other => match other.strip_prefix("/crypto/v1/keys/") {
            Some(kid) if !kid.contains('/') => {
                if let Err(refused) = bearer(state, req) {
                    return refused;
                }
                match req.method.as_str() {
                    "DELETE" => {
                        let name = state
                            .objects
                            .iter()
                            .find(|(_, o)| o.kid == kid)
                            .map(|(n, _)| n.clone());
                        match name {
                            Some(name) => {
                                state.objects.remove(&name);
                                Response::empty(204)
                            }
                            None => text(404, "sobject does not exist"),
                        }
                    }
                    _ => text(405, "method not allowed"),
                }
            }
            _ => text(404, "not found"),
        },
    }
}

fn auth(state: &mut State, req: &Request) -> Response {
    let Some(key) = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
    else {
        return text(401, "missing authorization");
    };
    if key != state.api_key {
        return text(401, "invalid API key");
    }
    state.logins += 1;
    let token = format!("dsm-session-{}", state.uuid());
    let expires = Instant::now() + state.token_lifetime;
    state.tokens.insert(token.clone(), expires);
    let entity = state.uuid();
    Response::json(
        200,
        &json!({
            "token_type": "Bearer",
            "expires_in": state.token_lifetime.as_secs(),
            "access_token": token,
            "entity_id": entity,
        }),
    )
}

/// The session token of a request, or the refusal.
fn bearer(state: &mut State, req: &Request) -> Result<String, Response> {
    let Some(token) = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
    else {
        return Err(text(401, "missing or malformed bearer token"));
    };
    match state.tokens.get(token) {
        Some(expires) if *expires > Instant::now() => Ok(token.to_owned()),
        Some(_) => {
            state.expired_token_refusals += 1;
            Err(text(401, "session expired"))
        }
        None => Err(text(401, "invalid session token")),
    }
}

fn json_body(req: &Request) -> Result<serde_json::Map<String, Value>, Response> {
    if !req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return Err(text(415, "expected Content-Type: application/json"));
    }
    match req.json() {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(text(400, "invalid JSON body")),
    }
}

fn valid_name(name: &str) -> bool {
    // The schema's pattern `^[^\n]*[^\s\n][^\n]*$`, at most 4096 bytes.
    !name.is_empty()
        && name.len() <= 4096
        && !name.contains('\n')
        && name.chars().any(|c| !c.is_whitespace())
}

fn import(state: &mut State, req: &Request) -> Response {
    let body = match json_body(req) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return text(400, "missing field `name`");
    };
    if !valid_name(name) {
        return text(400, "invalid sobject name");
    }
    let Some(obj_type) = body.get("obj_type").and_then(Value::as_str) else {
        return text(400, "missing field `obj_type`");
    };
    if obj_type != "OPAQUE" && obj_type != "SECRET" && obj_type != "AES" {
        return text(400, "unsupported obj_type");
    }
    let Some(value) = body.get("value").and_then(Value::as_str) else {
        return text(400, "missing field `value`");
    };
    if B64.decode(value).is_err() {
        return text(400, "invalid base64 in `value`");
    }
    let key_ops: Vec<String> = match body.get("key_ops") {
        None => vec!["EXPORT".into(), "APPMANAGEABLE".into()],
        Some(Value::Array(ops)) => {
            let ops: Option<Vec<String>> =
                ops.iter().map(|o| o.as_str().map(str::to_owned)).collect();
            match ops {
                Some(ops) => ops,
                None => return text(400, "invalid `key_ops`"),
            }
        }
        Some(_) => return text(400, "invalid `key_ops`"),
    };
    let group_id = match body.get("group_id") {
        None => state.groups.first().cloned().unwrap_or_default(),
        Some(Value::String(g)) if state.groups.contains(g) => g.clone(),
        Some(Value::String(_)) => return text(403, "the app is not a member of this group"),
        Some(_) => return text(400, "invalid `group_id`"),
    };
    let enabled = match body.get("enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return text(400, "invalid `enabled`"),
    };
    if state.objects.contains_key(name) {
        return text(409, "sobject already exists");
    }
    let kid = state.uuid();
    let object = Sobject {
        kid,
        group_id,
        value: value.to_owned(),
        enabled,
        key_ops,
        obj_type: obj_type.to_owned(),
    };
    let shown = describe(name, &object, false);
    state.objects.insert(name.to_owned(), object);
    Response::json(201, &shown)
}

fn describe(name: &str, o: &Sobject, with_value: bool) -> Value {
    let mut v = json!({
        "kid": o.kid,
        "name": name,
        "group_id": o.group_id,
        "obj_type": o.obj_type,
        "key_ops": o.key_ops,
        "enabled": o.enabled,
        "created_at": "20240101T000000Z",
    });
    if with_value && let Some(map) = v.as_object_mut() {
        map.insert("value".into(), Value::String(o.value.clone()));
    }
    v
}

fn export(state: &mut State, req: &Request) -> Response {
    let body = match json_body(req) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let found = match (body.get("name"), body.get("kid")) {
        (Some(Value::String(name)), None) => state.objects.get_key_value(name.as_str()),
        (None, Some(Value::String(kid))) => state.objects.iter().find(|(_, o)| &o.kid == kid),
        _ => return text(400, "expected a SobjectDescriptor: {\"name\"} or {\"kid\"}"),
    };
    match found {
        None => text(404, "sobject does not exist"),
        Some((_, o)) if !o.key_ops.iter().any(|op| op == "EXPORT") => {
            text(403, "operation not allowed: EXPORT")
        }
        Some((name, o)) => Response::json(200, &describe(name, o, true)),
    }
}

fn list(state: &mut State, req: &Request) -> Response {
    state.list_requests += 1;
    let sort = req.query("sort").unwrap_or("name:asc");
    let descending = match sort {
        "name:asc" => false,
        "name:desc" => true,
        _ => return text(400, "invalid `sort`: expected name:asc or name:desc"),
    };
    let limit = match req.query("limit").map(str::parse::<usize>) {
        None => 1000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return text(400, "invalid `limit`"),
    };
    let offset = match req.query("offset").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return text(400, "invalid `offset`"),
    };
    let start = req.query("start");
    let mut names: Vec<(&String, &Sobject)> = state
        .objects
        .iter()
        .filter(|(name, _)| match start {
            None => true,
            Some(start) if descending => name.as_str() <= start,
            Some(start) => name.as_str() >= start,
        })
        .collect();
    if descending {
        names.reverse();
    }
    let items: Vec<Value> = names
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(name, o)| describe(name, o, false))
        .collect();
    if req.query("with_metadata") == Some("true") {
        let total = names.len();
        Response::json(
            200,
            &json!({"metadata": {"total_count": total, "filtered_count": total}, "items": items}),
        )
    } else {
        Response::json(200, &Value::Array(items))
    }
}
