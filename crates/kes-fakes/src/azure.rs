//! A fake Azure Key Vault (secrets) with a fake Entra ID token endpoint and a fake instance
//! metadata service, written from `testdata/keystore-apis/azure-keyvault/` (exchanges the
//! Azure SDKs recorded against the real service, and the 7.5 REST spec) and kes-spec §8.6.
//!
//! Vault (HTTPS; every call needs `?api-version=7.5`, else 400 `BadParameter`, and
//! `Authorization: Bearer <live token>`, else 401 `Unauthorized` with the
//! `WWW-Authenticate: Bearer authorization=…, resource="https://vault.azure.net"` challenge;
//! errors are `{"error":{"code","message","innererror"?}}`):
//! - `PUT /secrets/<name>` `{"value"}` → a new version (32 hex digits, not in creation order)
//!   with `attributes.created` in whole [`State::tick`]s; a name outside `[0-9A-Za-z-]{1,127}`
//!   → 400; a deleted name → 409 `ObjectIsDeletedButRecoverable` (`ObjectIsBeingDeleted` while
//!   the deletion is still running).
//! - `GET /secrets/<name>/` → the latest version; `GET /secrets/<name>/<version>` → that one;
//!   disabled → 403 `Forbidden`/`SecretDisabled`; missing → 404 `SecretNotFound`.
//! - `GET /secrets/<name>/versions` and `GET /secrets` → `{"value":[…],"nextLink"}`, at most
//!   `maxresults` (≤ 25) items per page, versions in version-id order, `nextLink` absolute
//!   with `:443`-style port and `$skiptoken`; the last page is empty with `"nextLink": null`.
//! - `DELETE /secrets/<name>` → the deleted bundle; the deletion finishes after
//!   [`State::delete_delay`]; `DELETE /deletedsecrets/<name>` → 204, 409
//!   `ObjectIsBeingDeleted` before then, 404 when there is none.
//!
//! Entra ID `POST /<tenant>/oauth2/v2.0/token` (form): `grant_type=client_credentials` with
//! `client_secret` or a `client_assertion` (workload identity) and
//! `scope=https://vault.azure.net/.default`. IMDS (plain HTTP, [`FakeImds`]):
//! `GET /metadata/identity/oauth2/token?api-version&resource` with `Metadata: true`.

#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::{Value, json};

use crate::{FakeServer, Handler, Request, Response};

/// The tenant.
pub const TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The service principal's client id.
pub const CLIENT_ID: &str = "0e3a5c1f-7b9d-4e2a-8c6f-1d3b5a7c9e0f";
/// Its client secret.
pub const CLIENT_SECRET: &str = "kv~Q8s.W2xZ7rT4mN_fakeSecret";
/// The projected service-account token of workload identity.
pub const FEDERATED_TOKEN: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a2VzIn0.sig";
/// The API version the original's SDK sends.
pub const API_VERSION: &str = "7.5";

/// One version of a secret.
#[derive(Clone, Debug)]
pub struct Version {
    /// Its id.
    pub id: String,
    /// Its value.
    pub value: String,
    /// `attributes.created`, in ticks.
    pub created: i64,
    /// `attributes.enabled`.
    pub enabled: bool,
}

/// The fake's state, open to the test.
#[derive(Debug)]
pub struct State {
    /// How long new tokens live.
    pub token_lifetime: Duration,
    /// Live tokens and when they expire.
    pub tokens: BTreeMap<String, Instant>,
    /// The secrets and their versions in creation order.
    pub secrets: BTreeMap<String, Vec<Version>>,
    /// Deleted secrets and when their deletion finishes.
    pub deleted: BTreeMap<String, Instant>,
    /// How long a deletion runs.
    pub delete_delay: Duration,
    /// The resolution of `created` (one second in the real service).
    pub tick: Duration,
    /// Answer the next this many vault requests with 503.
    pub fail_next: usize,
    /// Answer the next this many vault requests with 429 and `Retry-After`.
    pub throttle_next: usize,
    /// Carry out the next this many vault requests but answer them with 503.
    pub fail_after_next: usize,
    /// Requests refused because of an expired token.
    pub expired_token_refusals: usize,
    /// Tokens issued.
    pub logins: usize,
    /// Listing requests answered.
    pub list_requests: usize,
    /// The most items a page holds (25, as the service, unless a test lowers it).
    pub page_limit: usize,
    /// Purges answered 204.
    pub purges: usize,
    /// Every request as `METHOD path`.
    pub log: Vec<String>,
    url: String,
    next: u64,
}

/// A running fake Key Vault with its token endpoint.
pub struct FakeKeyVault {
    /// The HTTPS server (vault and token endpoint).
    pub server: FakeServer,
    /// Its state.
    pub state: Arc<Mutex<State>>,
}

impl FakeKeyVault {
    /// Starts it on 127.0.0.1 with tokens of one hour and created times in seconds.
    pub async fn start() -> FakeKeyVault {
        let state = Arc::new(Mutex::new(State {
            token_lifetime: Duration::from_secs(3600),
            tokens: BTreeMap::new(),
            secrets: BTreeMap::new(),
            deleted: BTreeMap::new(),
            delete_delay: Duration::from_millis(50),
            tick: Duration::from_secs(1),
            fail_next: 0,
            throttle_next: 0,
            fail_after_next: 0,
            expired_token_refusals: 0,
            logins: 0,
            list_requests: 0,
            purges: 0,
            page_limit: 25,
            log: Vec::new(),
            url: String::new(),
            next: 0,
        }));
        let handler_state = Arc::clone(&state);
        let handler: Handler = Arc::new(move |req: &Request| {
            let mut state = handler_state.lock().expect("fake state");
            handle(&mut state, req)
        });
        let server = FakeServer::https(handler).await;
        state.lock().expect("fake state").url = server.url();
        FakeKeyVault { server, state }
    }

    /// `https://127.0.0.1:<port>`: the vault and (as `AZURE_AUTHORITY_HOST`) Entra ID.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The state, locked.
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake state")
    }
}

/// A fake instance metadata service (plain HTTP) issuing tokens of a [`FakeKeyVault`].
pub struct FakeImds {
    /// The HTTP server.
    pub server: FakeServer,
    /// The query strings of the token requests.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FakeImds {
    /// Starts it for `kv`'s tokens.
    pub async fn start(kv: &FakeKeyVault) -> FakeImds {
        let state = Arc::clone(&kv.state);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let handler: Handler = Arc::new(move |req: &Request| {
            let query: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            log.lock().expect("log").push(query.join("&"));
            if req.path != "/metadata/identity/oauth2/token" || req.method != "GET" {
                return Response::text(404, "Not Found");
            }
            if req.header("metadata") != Some("true") {
                return Response::json(
                    400,
                    &json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}),
                );
            }
            if req.query("api-version").is_none()
                || req.query("resource") != Some("https://vault.azure.net")
            {
                return Response::json(
                    400,
                    &json!({"error": "invalid_request", "error_description": "Required query variable 'resource' or 'api-version' is missing or wrong"}),
                );
            }
            let mut state = state.lock().expect("fake state");
            let mut token = issue(&mut state);
            // IMDS sends expires_in as a string.
            token["expires_in"] = token["expires_in"].to_string().into();
            token["resource"] = "https://vault.azure.net".into();
            Response::json(200, &token)
        });
        FakeImds {
            server: FakeServer::http(handler).await,
            requests,
        }
    }

    /// `http://127.0.0.1:<port>`, as `IMDS_ENDPOINT` takes it.
    pub fn url(&self) -> String {
        self.server.url()
    }
}

fn error(status: u16, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut body = json!({"error": {"code": code, "message": message}});
    if let Some(inner) = inner {
        body["error"]["innererror"] = json!({"code": inner});
    }
    Response::json(status, &body)
}

fn issue(state: &mut State) -> Value {
    state.next += 1;
    state.logins += 1;
    let token = format!("eyJ0eXAi.fake-{}", B64URL.encode(state.next.to_be_bytes()));
    state
        .tokens
        .insert(token.clone(), Instant::now() + state.token_lifetime);
    json!({"token_type": "Bearer", "expires_in": state.token_lifetime.as_secs(), "ext_expires_in": state.token_lifetime.as_secs(), "access_token": token})
}

fn handle(state: &mut State, req: &Request) -> Response {
    state.log.push(format!("{} {}", req.method, req.path));
    if req.path.ends_with("/oauth2/v2.0/token") {
        return token(state, req);
    }
    if state.fail_next > 0 {
        state.fail_next -= 1;
        return error(
            503,
            "ServiceUnavailable",
            "The service is unavailable.",
            None,
        );
    }
    if state.throttle_next > 0 {
        state.throttle_next -= 1;
        return error(
            429,
            "Throttled",
            "Request was not processed because too many requests were received.",
            None,
        )
        .with_header("retry-after", "0");
    }
    let response = vault(state, req);
    if state.fail_after_next > 0 {
        state.fail_after_next -= 1;
        return error(
            503,
            "ServiceUnavailable",
            "The service is unavailable.",
            None,
        );
    }
    response
}

fn token(state: &mut State, req: &Request) -> Response {
    let oauth = |status: u16, code: &str, text: &str| {
        Response::json(status, &json!({"error": code, "error_description": text}))
    };
    if req.method != "POST" {
        return oauth(
            405,
            "invalid_request",
            "AADSTS900561: The endpoint only accepts POST requests.",
        );
    }
    if !req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        return oauth(
            400,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
        );
    }
    let tenant = req
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    if tenant != TENANT_ID {
        return oauth(
            400,
            "invalid_request",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    let form: BTreeMap<String, String> = String::from_utf8_lossy(&req.body)
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let d = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (d(k), d(v))
        })
        .collect();
    let get = |k: &str| form.get(k).map(String::as_str);
    if get("grant_type") != Some("client_credentials") {
        return oauth(
            400,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    if get("client_id") != Some(CLIENT_ID) {
        return oauth(
            400,
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory.",
        );
    }
    let secret_ok = get("client_secret") == Some(CLIENT_SECRET);
    let assertion_ok = get("client_assertion_type")
        == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        && get("client_assertion") == Some(FEDERATED_TOKEN);
    if !secret_ok && !assertion_ok {
        return oauth(
            401,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    if get("scope") != Some("https://vault.azure.net/.default") {
        return oauth(
            400,
            "invalid_scope",
            "AADSTS70011: The provided value for the input parameter 'scope' is not valid.",
        );
    }
    Response::json(200, &issue(state))
}

fn now_ticks(tick: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_nanos() / tick.as_nanos().max(1)).unwrap_or(i64::MAX)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn bundle(url: &str, name: &str, v: &Version, with_value: bool) -> Value {
    let mut b = json!({
        "id": format!("{url}/secrets/{name}/{}", v.id),
        "attributes": {"enabled": v.enabled, "created": v.created, "updated": v.created, "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90},
    });
    if with_value {
        b["value"] = v.value.clone().into();
    }
    b
}

fn not_found(name: &str) -> Response {
    error(
        404,
        "SecretNotFound",
        &format!(
            "A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
        None,
    )
}

fn vault(state: &mut State, req: &Request) -> Response {
    match req.query("api-version") {
        Some(API_VERSION) => {}
        Some(other) => {
            return error(
                400,
                "BadParameter",
                &format!(
                    "The specified version ({other}) is not recognized. Consider using the latest supported version (7.5)."
                ),
                None,
            );
        }
        None => {
            return error(
                400,
                "BadParameter",
                "The request is missing the api-version query parameter.",
                None,
            );
        }
    }
    let authorized = match req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    {
        Some(token) => match state.tokens.get(token) {
            Some(expires) if *expires > Instant::now() => true,
            Some(_) => {
                state.expired_token_refusals += 1;
                false
            }
            None => false,
        },
        None => false,
    };
    if !authorized {
        return error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", None).with_header(
            "www-authenticate",
            &format!("Bearer authorization=\"https://login.windows.net/{TENANT_ID}\", resource=\"https://vault.azure.net\""),
        );
    }
    let path = req.decoded_path();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let url = state.url.clone();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["secrets"]) => {
            state.list_requests += 1;
            let names: Vec<Value> = state
                .secrets
                .iter()
                .filter(|(n, _)| !state.deleted.contains_key(*n))
                .map(|(n, v)| {
                    let mut b = bundle(&url, n, &v[0], false);
                    b["id"] = format!("{url}/secrets/{n}").into();
                    b
                })
                .collect();
            page(&url, "/secrets", names, req, state.page_limit)
        }
        ("PUT", ["secrets", name]) => put(state, req, name),
        ("GET", ["secrets", name, ""]) => match state.secrets.get(*name) {
            Some(versions) => get_version(&url, name, versions.last()),
            None => not_found(name),
        },
        ("GET", ["secrets", name, "versions"]) => {
            state.list_requests += 1;
            let Some(versions) = state.secrets.get(*name) else {
                return not_found(name);
            };
            let mut items: Vec<&Version> = versions.iter().collect();
            items.sort_by(|a, b| a.id.cmp(&b.id));
            let items = items
                .into_iter()
                .map(|v| bundle(&url, name, v, false))
                .collect();
            page(
                &url,
                &format!("/secrets/{name}/versions"),
                items,
                req,
                state.page_limit,
            )
        }
        ("GET", ["secrets", name, version]) => match state.secrets.get(*name) {
            Some(versions) => get_version(&url, name, versions.iter().find(|v| v.id == *version)),
            None => not_found(name),
        },
        ("DELETE", ["secrets", name]) => match state.secrets.remove(*name) {
            Some(versions) => {
                let ready = Instant::now() + state.delete_delay;
                state.deleted.insert((*name).to_owned(), ready);
                let mut b = bundle(&url, name, versions.last().expect("a version"), false);
                b["recoveryId"] = format!("{url}/deletedsecrets/{name}").into();
                Response::json(200, &b)
            }
            None => not_found(name),
        },
        ("DELETE", ["deletedsecrets", name]) => match state.deleted.get(*name) {
            Some(ready) if *ready <= Instant::now() => {
                state.deleted.remove(*name);
                state.purges += 1;
                Response::empty(204)
            }
            Some(_) => error(
                409,
                "Conflict",
                "Secret is currently being deleted.",
                Some("ObjectIsBeingDeleted"),
            ),
            None => error(
                404,
                "SecretNotFound",
                &format!("Deleted Secret not found: {name}"),
                None,
            ),
        },
        _ => error(
            404,
            "NotFound",
            "The requested resource was not found.",
            None,
        ),
    }
}

fn get_version(url: &str, name: &str, version: Option<&Version>) -> Response {
    match version {
        Some(v) if !v.enabled => error(
            403,
            "Forbidden",
            "Operation get is not allowed on a disabled secret.",
            Some("SecretDisabled"),
        ),
        Some(v) => Response::json(200, &bundle(url, name, v, true)),
        None => not_found(name),
    }
}

fn put(state: &mut State, req: &Request, name: &str) -> Response {
    if !valid_name(name) {
        return error(
            400,
            "BadParameter",
            "The request URI contains an invalid name: the name must be a 1-127 character string, starting with a letter and containing only 0-9, a-z, A-Z, and -.",
            None,
        );
    }
    let Some(value) = req
        .json()
        .and_then(|b| b["value"].as_str().map(str::to_owned))
    else {
        return error(400, "BadParameter", "Property value is required.", None);
    };
    if let Some(ready) = state.deleted.get(name) {
        return if *ready <= Instant::now() {
            error(
                409,
                "Conflict",
                &format!(
                    "Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."
                ),
                Some("ObjectIsDeletedButRecoverable"),
            )
        } else {
            error(
                409,
                "Conflict",
                "Secret is currently being deleted.",
                Some("ObjectIsBeingDeleted"),
            )
        };
    }
    state.next += 1;
    // Version ids are random: mix the counter.
    let mut x = state.next.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    let id = format!(
        "{:016x}{:016x}",
        x,
        x.rotate_left(17) ^ 0xA5A5_5A5A_0F0F_F0F0
    );
    let version = Version {
        id,
        value,
        created: now_ticks(state.tick),
        enabled: true,
    };
    let url = state.url.clone();
    let b = bundle(&url, name, &version, true);
    state
        .secrets
        .entry(name.to_owned())
        .or_default()
        .push(version);
    Response::json(200, &b)
}

fn page(url: &str, path: &str, items: Vec<Value>, req: &Request, limit: usize) -> Response {
    let size = req
        .query("maxresults")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, 25)
        .min(limit.max(1));
    let start = match req.query("$skiptoken") {
        None => 0,
        Some(t) => match B64URL
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return error(400, "BadParameter", "Invalid skip token.", None),
        },
    };
    let chunk: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    // A page with items always links on; the last page is empty with "nextLink": null.
    let next = if chunk.is_empty() {
        Value::Null
    } else {
        let port = url.rsplit(':').next().unwrap_or_default();
        let host = url.trim_end_matches(&format!(":{port}"));
        format!(
            "{host}:{port}{path}?api-version={API_VERSION}&$skiptoken={}&maxresults={size}",
            B64URL.encode((start + chunk.len()).to_string())
        )
        .into()
    };
    Response::json(200, &json!({"value": chunk, "nextLink": next}))
}
