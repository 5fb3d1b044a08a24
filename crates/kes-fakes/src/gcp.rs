//! A fake GCP Secret Manager with its OAuth 2.0 token endpoint and a fake metadata server,
//! written from `testdata/keystore-apis/gcp-secretmanager/` (the REST discovery document of
//! `secretmanager:v1`, the google.rpc error envelope and code table, and the JWT-bearer
//! exchange of golang.org/x/oauth2) and kes-spec §8.5.
//!
//! Secret Manager (HTTPS; every call needs `Authorization: Bearer <live token>`, else 401
//! `UNAUTHENTICATED`; another project → 403 `PERMISSION_DENIED`; errors are
//! `{"error":{"code","message","status"}}`; an unknown path or method → 404 with an HTML
//! page, as Google's front end):
//! - `POST /v1/projects/<p>/secrets?secretId=<id>` `{"replication":{…}}` → the Secret; an id
//!   outside `[A-Za-z0-9_-]{1,255}` or no replication → 400 `INVALID_ARGUMENT`; a name that
//!   exists → 409 `ALREADY_EXISTS`.
//! - `POST /v1/projects/<p>/secrets/<id>:addVersion` `{"payload":{"data":b64}}` → the
//!   SecretVersion `{"name": ".../versions/<n>", "state": "ENABLED"}`; no secret → 404.
//! - `GET /v1/projects/<p>/secrets/<id>/versions/<n|latest>:access` → `{"name","payload":
//!   {"data"}}`; no secret or version → 404 `NOT_FOUND`.
//! - `DELETE /v1/projects/<p>/secrets/<id>` → `{}`; missing → 404.
//! - `GET /v1/projects/<p>/secrets?pageSize&pageToken` → `{"secrets":[…],"nextPageToken",
//!   "totalSize"}`, newest first (as the schema says); names use the project number.
//! - `GET /` → 404 HTML (what the original's status probe gets from the real endpoint).
//!
//! Token endpoint `POST /token` (`application/x-www-form-urlencoded`): the JWT-bearer grant
//! with an RS256 assertion signed by [`private_key_pem`] (`kid` [`KEY_ID`], `iss`
//! [`CLIENT_EMAIL`], `aud` the endpoint's URL, `exp - iat` ≤ 3600 and not expired) or the
//! refresh grant of [`USER_CLIENT_ID`]; refusals are 400 `{"error":"invalid_grant",
//! "error_description"}`.
//!
//! Metadata server (plain HTTP, [`FakeMetadata`]):
//! `GET /computeMetadata/v1/instance/service-accounts/default/token?scopes=…` with
//! `Metadata-Flavor: Google` (else 403) → `{"access_token","expires_in","token_type"}`.

// Test support: JSON values are read by index (a missing field reads as null, never panics).
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use serde_json::{Value, json};

use crate::{FakeServer, Handler, Request, Response};

/// The project the fake has.
pub const PROJECT: &str = "kes-test-project";
/// Its number, which the service puts into resource names.
pub const PROJECT_NUMBER: &str = "435468002770";
/// The service account.
pub const CLIENT_EMAIL: &str = "kes-server@kes-test-project.iam.gserviceaccount.com";
/// Its numeric id.
pub const CLIENT_ID: &str = "117301427123456789012";
/// The id of its key.
pub const KEY_ID: &str = "3c1f8a0e7b2d4c6e9f0a1b2c3d4e5f60718293a4";
/// The OAuth client of the gcloud user credentials (`authorized_user`).
pub const USER_CLIENT_ID: &str = "764086051850-kes.apps.googleusercontent.com";
/// Its secret.
pub const USER_CLIENT_SECRET: &str = "d-FL95Q19q7MQmFpd7hHD0Ty";
/// The user's refresh token.
pub const USER_REFRESH_TOKEN: &str = "1//0gKES-refresh-token-for-tests";
/// The scope Secret Manager needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The service account's private key (PKCS#8 PEM, `testdata/cloud/gcp-service-account.key`).
pub fn private_key_pem() -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/cloud/gcp-service-account.key"),
    )
    .expect("testdata/cloud/gcp-service-account.key")
}

/// A service-account key file as the console downloads it, for `GOOGLE_APPLICATION_CREDENTIALS`.
pub fn key_file(token_uri: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": KEY_ID,
        "private_key": private_key_pem(),
        "client_email": CLIENT_EMAIL,
        "client_id": CLIENT_ID,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    })
    .to_string()
}

/// One secret.
#[derive(Clone, Debug, Default)]
pub struct Secret {
    /// Its versions' payloads (version n is `versions[n-1]`).
    pub versions: Vec<Vec<u8>>,
    /// Creation order (the listing is newest first).
    pub created: u64,
}

/// The fake's state, open to the test.
#[derive(Debug)]
pub struct State {
    /// How long new tokens live.
    pub token_lifetime: Duration,
    /// Live tokens and when they expire.
    pub tokens: BTreeMap<String, Instant>,
    /// The secrets, by id.
    pub secrets: BTreeMap<String, Secret>,
    /// The most secrets one listing page holds.
    pub page_limit: usize,
    /// Answer the next this many Secret Manager requests with 503 `UNAVAILABLE`.
    pub fail_next: usize,
    /// Answer the next this many Secret Manager requests with 429 `RESOURCE_EXHAUSTED`.
    pub throttle_next: usize,
    /// Carry out the next this many requests but answer them with 503 (the answer is lost).
    pub fail_after_next: usize,
    /// Fail the next addVersion with 503 before carrying it out, as a crash between the
    /// original's two calls leaves a secret.
    pub drop_next_add_version: bool,
    /// Requests refused because of an expired token.
    pub expired_token_refusals: usize,
    /// Tokens issued (by grant or by the metadata server).
    pub logins: usize,
    /// Listing requests answered.
    pub list_requests: usize,
    /// Every request as `METHOD path`.
    pub log: Vec<String>,
    /// The claims of every assertion accepted.
    pub assertions: Vec<Value>,
    token_uri: String,
    next: u64,
}

/// A running fake Secret Manager (with its token endpoint at `/token`).
pub struct FakeSecretManager {
    /// The HTTPS server.
    pub server: FakeServer,
    /// Its state.
    pub state: Arc<Mutex<State>>,
}

impl FakeSecretManager {
    /// Starts it on 127.0.0.1 with [`PROJECT`] and tokens of one hour.
    pub async fn start() -> FakeSecretManager {
        let state = new_state();
        let handler_state = Arc::clone(&state);
        let handler: Handler = Arc::new(move |req: &Request| {
            let mut state = handler_state.lock().expect("fake state");
            handle(&mut state, req)
        });
        let server = FakeServer::https(handler).await;
        state.lock().expect("fake state").token_uri = format!("{}/token", server.url());
        FakeSecretManager { server, state }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The token URI: `https://127.0.0.1:<port>/token`.
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.url())
    }

    /// The state, locked.
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake state")
    }

    /// Issues a token as the metadata server would (for [`FakeMetadata`]).
    pub fn issue(&self) -> Value {
        issue(&mut self.state())
    }
}

/// A fake metadata server (plain HTTP, as on a VM) that issues tokens of a [`FakeSecretManager`].
pub struct FakeMetadata {
    /// The HTTP server.
    pub server: FakeServer,
    /// Token requests answered.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FakeMetadata {
    /// Starts it for `sm`'s tokens.
    pub async fn start(sm: &FakeSecretManager) -> FakeMetadata {
        let state = Arc::clone(&sm.state);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let handler: Handler = Arc::new(move |req: &Request| {
            log.lock().expect("log").push(format!(
                "{} {}?scopes={}",
                req.method,
                req.path,
                req.query("scopes").unwrap_or_default()
            ));
            if req.path != "/computeMetadata/v1/instance/service-accounts/default/token" {
                return Response::text(404, "Not Found");
            }
            if req.method != "GET" {
                return Response::text(405, "Method Not Allowed");
            }
            if req.header("metadata-flavor") != Some("Google") {
                return Response::text(
                    403,
                    "Missing required header \"Metadata-Flavor\": \"Google\"",
                );
            }
            let mut state = state.lock().expect("fake state");
            Response::json(200, &issue(&mut state))
        });
        FakeMetadata {
            server: FakeServer::http(handler).await,
            requests,
        }
    }

    /// `127.0.0.1:<port>`, as `GCE_METADATA_HOST` takes it.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }
}

fn new_state() -> Arc<Mutex<State>> {
    Arc::new(Mutex::new(State {
        token_lifetime: Duration::from_secs(3600),
        tokens: BTreeMap::new(),
        secrets: BTreeMap::new(),
        page_limit: 25_000,
        fail_next: 0,
        throttle_next: 0,
        fail_after_next: 0,
        drop_next_add_version: false,
        expired_token_refusals: 0,
        logins: 0,
        list_requests: 0,
        log: Vec::new(),
        assertions: Vec::new(),
        token_uri: String::new(),
        next: 0,
    }))
}

fn error(code: u16, status: &str, message: &str) -> Response {
    Response::json(
        code,
        &json!({"error": {"code": code, "message": message, "status": status}}),
    )
}

fn not_routable() -> Response {
    let mut r = Response::text(
        404,
        "<!DOCTYPE html>\n<html lang=en>\n<title>Error 404 (Not Found)!!1</title>\n<p><b>404.</b> <ins>That's an error.</ins>\n",
    );
    r.headers = vec![("content-type".into(), "text/html; charset=UTF-8".into())];
    r
}

fn oauth_error(text: &str) -> Response {
    Response::json(
        400,
        &json!({"error": "invalid_grant", "error_description": text}),
    )
}

fn issue(state: &mut State) -> Value {
    state.next += 1;
    state.logins += 1;
    let token = format!(
        "ya29.fake-{}-{}",
        state.next,
        B64URL.encode(state.next.to_be_bytes())
    );
    state
        .tokens
        .insert(token.clone(), Instant::now() + state.token_lifetime);
    json!({
        "access_token": token,
        "expires_in": state.token_lifetime.as_secs(),
        "token_type": "Bearer",
    })
}

fn handle(state: &mut State, req: &Request) -> Response {
    state.log.push(format!("{} {}", req.method, req.path));
    if req.path == "/token" {
        return token(state, req);
    }
    if req.path.starts_with("/v1/") {
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return error(503, "UNAVAILABLE", "The service is currently unavailable.");
        }
        if state.throttle_next > 0 {
            state.throttle_next -= 1;
            return error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Access requests' of service 'secretmanager.googleapis.com'.",
            );
        }
    }
    let response = api(state, req);
    if state.fail_after_next > 0 && req.path.starts_with("/v1/") {
        state.fail_after_next -= 1;
        return error(503, "UNAVAILABLE", "The service is currently unavailable.");
    }
    response
}

fn token(state: &mut State, req: &Request) -> Response {
    if req.method != "POST" {
        return not_routable();
    }
    if !req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        return Response::json(
            400,
            &json!({"error": "invalid_request", "error_description": "Invalid Content-Type"}),
        );
    }
    let form: BTreeMap<String, String> = String::from_utf8_lossy(&req.body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect();
    match form.get("grant_type").map(String::as_str) {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let Some(assertion) = form.get("assertion") else {
                return Response::json(
                    400,
                    &json!({"error": "invalid_request", "error_description": "Missing required parameter: assertion"}),
                );
            };
            match check_assertion(assertion, &state.token_uri) {
                Ok(claims) => {
                    state.assertions.push(claims);
                    Response::json(200, &issue(state))
                }
                Err(why) => oauth_error(&why),
            }
        }
        Some("refresh_token") => {
            if form.get("client_id").map(String::as_str) != Some(USER_CLIENT_ID)
                || form.get("client_secret").map(String::as_str) != Some(USER_CLIENT_SECRET)
            {
                return Response::json(
                    401,
                    &json!({"error": "invalid_client", "error_description": "The OAuth client was not found."}),
                );
            }
            if form.get("refresh_token").map(String::as_str) != Some(USER_REFRESH_TOKEN) {
                return oauth_error("Bad Request");
            }
            Response::json(200, &issue(state))
        }
        _ => Response::json(
            400,
            &json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}),
        ),
    }
}

/// Checks an RS256 assertion as Google's token endpoint does; returns its claims.
fn check_assertion(assertion: &str, token_uri: &str) -> Result<Value, String> {
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe".into(),
        );
    };
    let decode = |part: &str| -> Result<Value, String> {
        let bytes = B64URL
            .decode(part)
            .map_err(|_| "Invalid JWT Signature.".to_owned())?;
        serde_json::from_slice(&bytes).map_err(|_| "Invalid JWT Signature.".to_owned())
    };
    let header = decode(header)?;
    let claims_value = decode(claims)?;
    if header["alg"] != "RS256" {
        return Err("Invalid JWT Signature.".into());
    }
    if header.get("kid").is_some_and(|k| k != KEY_ID) {
        return Err("Invalid JWT Signature.".into());
    }
    let pem = private_key_pem();
    let der = B64
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .map_err(|e| e.to_string())?;
    let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| e.to_string())?;
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref());
    let signed = format!("{}.{}", parts[0], parts[1]);
    let signature = B64URL
        .decode(signature)
        .map_err(|_| "Invalid JWT Signature.".to_owned())?;
    public
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "Invalid JWT Signature.".to_owned())?;
    if claims_value["iss"] != CLIENT_EMAIL {
        return Err("Invalid JWT Signature.".into());
    }
    if claims_value["aud"] != token_uri {
        return Err("Invalid JWT: Failed audience check.".into());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (Some(iat), Some(exp)) = (claims_value["iat"].as_u64(), claims_value["exp"].as_u64())
    else {
        return Err(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe".into(),
        );
    };
    if exp <= now || iat > now + 60 || exp.saturating_sub(iat) > 3600 {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.".into());
    }
    if !claims_value["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|s| s == SCOPE))
    {
        return Err("Invalid OAuth scope or ID token audience provided.".into());
    }
    Ok(claims_value)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn api(state: &mut State, req: &Request) -> Response {
    let path = req.decoded_path();
    let Some(rest) = path.strip_prefix("/v1/projects/") else {
        return not_routable();
    };
    // Authentication before anything about the resource, as Google's front end.
    match req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    {
        Some(token) => match state.tokens.get(token) {
            Some(expires) if *expires > Instant::now() => {}
            Some(_) => {
                state.expired_token_refusals += 1;
                return error(
                    401,
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                );
            }
            None => {
                return error(
                    401,
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                );
            }
        },
        None => {
            return error(
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            );
        }
    }
    let (project, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(rest) = rest.strip_prefix("secrets") else {
        return not_routable();
    };
    if project != PROJECT && project != PROJECT_NUMBER {
        return error(
            403,
            "PERMISSION_DENIED",
            &format!(
                "Permission 'secretmanager.secrets.list' denied for resource 'projects/{project}' (or it may not exist)."
            ),
        );
    }
    let base = format!("projects/{PROJECT_NUMBER}/secrets");
    if rest.is_empty() {
        return match req.method.as_str() {
            "POST" => create(state, req, &base),
            "GET" => list(state, req, &base),
            _ => not_routable(),
        };
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return not_routable();
    };
    if let Some(id) = rest.strip_suffix(":addVersion") {
        if req.method != "POST" {
            return not_routable();
        }
        return add_version(state, req, &base, id);
    }
    if let Some((id, version)) = rest.split_once("/versions/") {
        let Some(version) = version.strip_suffix(":access") else {
            return not_routable();
        };
        if req.method != "GET" {
            return not_routable();
        }
        return access(state, &base, id, version);
    }
    if rest.contains('/') || rest.contains(':') {
        return not_routable();
    }
    match req.method.as_str() {
        "DELETE" => match state.secrets.remove(rest) {
            Some(_) => Response::json(200, &json!({})),
            None => not_found(&base, rest),
        },
        "GET" => match state.secrets.get(rest) {
            Some(_) => Response::json(
                200,
                &json!({"name": format!("{base}/{rest}"), "replication": {"automatic": {}}}),
            ),
            None => not_found(&base, rest),
        },
        _ => not_routable(),
    }
}

fn not_found(base: &str, id: &str) -> Response {
    error(
        404,
        "NOT_FOUND",
        &format!("Secret [{base}/{id}] not found."),
    )
}

fn create(state: &mut State, req: &Request, base: &str) -> Response {
    let Some(id) = req.query("secretId") else {
        return error(
            400,
            "INVALID_ARGUMENT",
            "The request must specify a secret_id.",
        );
    };
    if !valid_id(id) {
        return error(
            400,
            "INVALID_ARGUMENT",
            "Secret ID must be at most 255 characters long and contain only letters, numbers, hyphens and underscores.",
        );
    }
    if !req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    }
    let Some(body) = req.json() else {
        return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    if !body.get("replication").is_some_and(Value::is_object) {
        return error(400, "INVALID_ARGUMENT", "Secret.replication is required.");
    }
    if state.secrets.contains_key(id) {
        return error(
            409,
            "ALREADY_EXISTS",
            &format!("Secret [{base}/{id}] already exists."),
        );
    }
    state.next += 1;
    let created = state.next;
    state.secrets.insert(
        id.to_owned(),
        Secret {
            versions: Vec::new(),
            created,
        },
    );
    Response::json(
        200,
        &json!({"name": format!("{base}/{id}"), "replication": body["replication"], "createTime": "2026-01-01T00:00:00Z"}),
    )
}

fn add_version(state: &mut State, req: &Request, base: &str, id: &str) -> Response {
    let Some(body) = req.json() else {
        return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    let Some(data) = body["payload"]["data"].as_str() else {
        return error(400, "INVALID_ARGUMENT", "SecretPayload.data is required.");
    };
    let Ok(data) = B64.decode(data) else {
        return error(
            400,
            "INVALID_ARGUMENT",
            "Invalid value at 'payload.data' (TYPE_BYTES).",
        );
    };
    if state.drop_next_add_version {
        state.drop_next_add_version = false;
        return error(503, "UNAVAILABLE", "The service is currently unavailable.");
    }
    let Some(secret) = state.secrets.get_mut(id) else {
        return not_found(base, id);
    };
    secret.versions.push(data);
    let n = secret.versions.len();
    Response::json(
        200,
        &json!({"name": format!("{base}/{id}/versions/{n}"), "state": "ENABLED", "createTime": "2026-01-01T00:00:00Z"}),
    )
}

fn access(state: &State, base: &str, id: &str, version: &str) -> Response {
    let Some(secret) = state.secrets.get(id) else {
        return not_found(base, id);
    };
    let n = match version {
        "latest" => secret.versions.len(),
        v => v.parse::<usize>().unwrap_or(0),
    };
    match n.checked_sub(1).and_then(|i| secret.versions.get(i)) {
        Some(data) => Response::json(
            200,
            &json!({"name": format!("{base}/{id}/versions/{n}"), "payload": {"data": B64.encode(data)}}),
        ),
        None => error(
            404,
            "NOT_FOUND",
            &format!("Secret Version [{base}/{id}/versions/{version}] not found."),
        ),
    }
}

fn list(state: &mut State, req: &Request, base: &str) -> Response {
    state.list_requests += 1;
    let size = match req.query("pageSize").map(str::parse::<usize>) {
        None => 25_000,
        Some(Ok(n)) if n <= 25_000 => n.max(1),
        Some(_) => return error(400, "INVALID_ARGUMENT", "Invalid page size."),
    }
    .min(state.page_limit);
    let start = match req.query("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match B64URL
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.strip_prefix("offset:").and_then(|n| n.parse().ok()))
        {
            Some(n) => n,
            None => return error(400, "INVALID_ARGUMENT", "Invalid page token."),
        },
    };
    let mut all: Vec<(&String, &Secret)> = state.secrets.iter().collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.1.created));
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(size)
        .map(|(id, _)| json!({"name": format!("{base}/{id}"), "replication": {"automatic": {}}}))
        .collect();
    let mut body = json!({"secrets": page, "totalSize": all.len()});
    if start + size < all.len() {
        body["nextPageToken"] = B64URL.encode(format!("offset:{}", start + size)).into();
    }
    if all.is_empty() {
        // Proto3 JSON leaves out empty fields.
        body = json!({});
    }
    Response::json(200, &body)
}
