//! A fake Thales CipherTrust Manager (KeySecure's successor), written from
//! `testdata/keystore-apis/thales-ciphertrust/shapes.json` (Thales' Terraform provider and
//! sample code for tokens and errors; the original KES client for the vault/secrets calls) and
//! kes-spec §8.7.
//!
//! - `POST /api/v1/auth/tokens` `{"grant_type":"refresh_token","refresh_token","domain"}` →
//!   200 `{"token_type":"Bearer","jwt","duration"}`; an unknown refresh token or a wrong domain
//!   → 401; other grant types or fields missing → 400.
//! - `POST /api/v1/vault/secrets` `{"dataType":"blob|password|seed","material","name"}` → 201;
//!   a name that exists → 409.
//! - `POST /api/v1/vault/secrets/<name>/export?type=name` → 200 `{"material", …}`; 404.
//! - `DELETE /api/v1/vault/secrets/<name>?type=name` → 204; 404.
//! - `GET /api/v1/vault/secrets?limit&skip` → `{"skip","limit","total","resources":[{"name",…}]}`
//!   (in creation order, as the appliance lists by default).
//! - `GET /` → 200 (the web console), for the original's status probe.
//!
//! Every vault call needs `Authorization: Bearer <jwt>` of a live JWT (expired → 401). Errors
//! are `{"code","codeDesc"}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{FakeServer, Handler, Request, Response};

/// The refresh token the fake accepts by default.
pub const REFRESH_TOKEN: &str = "ct-refresh-4kq9Zr2vXw8LmN3pQs7T";
/// Its domain.
pub const DOMAIN: &str = "kes-domain";

/// The fake's state, open to the test.
#[derive(Debug)]
pub struct State {
    /// The refresh token that obtains JWTs.
    pub refresh_token: String,
    /// Its domain.
    pub domain: String,
    /// How long new JWTs live.
    pub token_lifetime: Duration,
    /// Live JWTs and when they expire.
    pub tokens: BTreeMap<String, Instant>,
    /// Secrets by name: (dataType, material), in creation order by `order`.
    pub secrets: BTreeMap<String, (String, String, u64)>,
    /// Answer the next this many requests with 503.
    pub fail_next: usize,
    /// Requests refused because of an expired JWT.
    pub expired_token_refusals: usize,
    /// Tokens issued.
    pub logins: usize,
    /// Listing requests answered.
    pub list_requests: usize,
    /// Every request as `METHOD path?query`.
    pub log: Vec<String>,
    next: u64,
}

/// A running fake CipherTrust Manager.
pub struct FakeCipherTrust {
    /// The HTTPS server.
    pub server: FakeServer,
    /// Its state.
    pub state: Arc<Mutex<State>>,
}

impl FakeCipherTrust {
    /// Starts it on 127.0.0.1, accepting [`REFRESH_TOKEN`] in [`DOMAIN`], with 5-minute JWTs.
    pub async fn start() -> FakeCipherTrust {
        let state = Arc::new(Mutex::new(State {
            refresh_token: REFRESH_TOKEN.to_owned(),
            domain: DOMAIN.to_owned(),
            token_lifetime: Duration::from_secs(300),
            tokens: BTreeMap::new(),
            secrets: BTreeMap::new(),
            fail_next: 0,
            expired_token_refusals: 0,
            logins: 0,
            list_requests: 0,
            log: Vec::new(),
            next: 0,
        }));
        let handler_state = Arc::clone(&state);
        let handler: Handler = Arc::new(move |req: &Request| {
            let mut state = handler_state.lock().expect("fake state");
            handle(&mut state, req)
        });
        FakeCipherTrust {
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

fn error(status: u16, code: i64, desc: &str) -> Response {
    Response::json(status, &json!({"code": code, "codeDesc": desc}))
}

fn not_found() -> Response {
    error(404, 16, "NCERRResourceNotFound: Resource not found")
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
        return error(503, 1, "service unavailable");
    }
    let path = req.decoded_path();
    let method = req.method.as_str();
    if path == "/" {
        return Response::text(200, "<html>CipherTrust Manager</html>");
    }
    if path == "/api/v1/auth/tokens" {
        return match method {
            "POST" => tokens(state, req),
            _ => error(405, 10, "method not allowed"),
        };
    }
    let Some(rest) = path.strip_prefix("/api/v1/vault/secrets") else {
        return not_found();
    };
    if let Err(refused) = bearer(state, req) {
        return refused;
    }
    match (method, rest) {
        ("POST", "") => create(state, req),
        ("GET", "") => list(state, req),
        (_, "") => error(405, 10, "method not allowed"),
        (_, rest) => {
            let rest = rest.trim_start_matches('/');
            if let Some(name) = rest.strip_suffix("/export") {
                if method != "POST" {
                    return error(405, 10, "method not allowed");
                }
                if req.query("type") != Some("name") {
                    // Without type=name the segment is an id, and no secret has this one.
                    return not_found();
                }
                return match state.secrets.get(name) {
                    Some((data_type, material, _)) => Response::json(
                        200,
                        &json!({"id": format!("id-{name}"), "name": name, "dataType": data_type, "material": material}),
                    ),
                    None => not_found(),
                };
            }
            if rest.contains('/') {
                return not_found();
            }
            match method {
                "DELETE" => {
                    if req.query("type") != Some("name") {
                        return not_found();
                    }
                    match state.secrets.remove(rest) {
                        Some(_) => Response::empty(204),
                        None => not_found(),
                    }
                }
                _ => error(405, 10, "method not allowed"),
            }
        }
    }
}

fn json_body(req: &Request) -> Result<serde_json::Map<String, Value>, Response> {
    if !req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return Err(error(415, 4, "unsupported media type"));
    }
    match req.json() {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(error(400, 4, "invalid JSON body")),
    }
}

fn tokens(state: &mut State, req: &Request) -> Response {
    let body = match json_body(req) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    match body.get("grant_type").and_then(Value::as_str) {
        Some("refresh_token") => {}
        Some("password") => {
            return error(401, 6, "NCERRInvalidCredentials: Invalid user credentials");
        }
        _ => return error(400, 4, "grant_type is required"),
    }
    let Some(token) = body.get("refresh_token").and_then(Value::as_str) else {
        return error(400, 4, "refresh_token is required");
    };
    let domain = body.get("domain").and_then(Value::as_str).unwrap_or("");
    if token != state.refresh_token || domain != state.domain {
        return error(401, 6, "NCERRInvalidCredentials: Invalid refresh token");
    }
    state.logins += 1;
    state.next += 1;
    let jwt = format!("eyJhbGciOiJSUzI1NiJ9.ct-{}.sig", state.next);
    state
        .tokens
        .insert(jwt.clone(), Instant::now() + state.token_lifetime);
    Response::json(
        200,
        &json!({
            "jwt": jwt,
            "token_type": "Bearer",
            "duration": state.token_lifetime.as_secs(),
            "refresh_token": "",
        }),
    )
}

fn bearer(state: &mut State, req: &Request) -> Result<(), Response> {
    let Some(token) = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
    else {
        return Err(error(
            401,
            3,
            "NCERRAuthenticationRequired: Token is missing",
        ));
    };
    match state.tokens.get(token) {
        Some(expires) if *expires > Instant::now() => Ok(()),
        Some(_) => {
            state.expired_token_refusals += 1;
            Err(error(401, 3, "Token is expired"))
        }
        None => Err(error(401, 3, "Token is invalid")),
    }
}

fn create(state: &mut State, req: &Request) -> Response {
    let body = match json_body(req) {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let Some(name) = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return error(400, 4, "name is required");
    };
    let Some(data_type) = body.get("dataType").and_then(Value::as_str) else {
        return error(400, 4, "dataType is required");
    };
    if !["blob", "password", "seed"].contains(&data_type) {
        return error(400, 4, "dataType must be one of blob, password, seed");
    }
    let Some(material) = body.get("material").and_then(Value::as_str) else {
        return error(400, 4, "material is required");
    };
    if state.secrets.contains_key(name) {
        return error(
            409,
            5,
            "NCERRResourceAlreadyExists: Resource already exists",
        );
    }
    state.next += 1;
    state.secrets.insert(
        name.to_owned(),
        (data_type.to_owned(), material.to_owned(), state.next),
    );
    Response::json(
        201,
        &json!({"id": format!("id-{name}"), "name": name, "dataType": data_type}),
    )
}

fn list(state: &mut State, req: &Request) -> Response {
    state.list_requests += 1;
    let number = |key: &str, default: usize| match req.query(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| error(400, 4, "invalid query parameter")),
    };
    let (limit, skip) = match (number("limit", 10), number("skip", 0)) {
        (Ok(l), Ok(s)) => (l, s),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let mut all: Vec<(&String, u64)> = state.secrets.iter().map(|(n, (_, _, o))| (n, *o)).collect();
    all.sort_by_key(|(_, order)| std::cmp::Reverse(*order));
    let resources: Vec<Value> = all
        .iter()
        .skip(skip)
        .take(limit)
        .map(|(name, _)| json!({"id": format!("id-{name}"), "name": name}))
        .collect();
    Response::json(
        200,
        &json!({"skip": skip, "limit": limit, "total": all.len(), "resources": resources}),
    )
}
