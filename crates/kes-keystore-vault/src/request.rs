//! The Vault requests of the key store, built as plain data: method, path, query, namespace,
//! whether the token goes along, and the body. Nothing here talks to the network, so the path
//! layout and the request bodies are tested on their own.
//!
//! Layout (kes-spec §8.2), with `<loc>` = `<prefix>/<name>` (just `<name>` without a prefix):
//!
//! | operation | K/V v1                               | K/V v2                                                  |
//! |-----------|--------------------------------------|---------------------------------------------------------|
//! | create    | `PUT /v1/<engine>/<loc>`             | `PUT /v1/<engine>/data/<loc>` with `options.cas = 0`    |
//! | read      | `GET /v1/<engine>/<loc>`             | `GET /v1/<engine>/data/<loc>` (the newest version)      |
//! | replace   | (none: no check-and-set in v1)       | `PUT /v1/<engine>/data/<loc>` with `options.cas = <N>`  |
//! | delete    | `DELETE /v1/<engine>/<loc>`          | `DELETE /v1/<engine>/metadata/<loc>` (every version)   |
//! | list      | `GET /v1/<engine>/<prefix>?list=true`| `GET /v1/<engine>/metadata/<prefix>?list=true`          |
//!
//! The secret holds one field named like the key, whose value is the stored record (or its
//! transit ciphertext). Every request but the health check carries the `namespace` as
//! `X-Vault-Namespace`; login requests carry the login method's own namespace.

use std::fmt;

use crate::config::{VaultConfig, VaultKvVersion};
use base64::Engine as _;
use bytes::Bytes;
use kes_secret::SecretBuf;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde::Serialize;
use serde::ser::SerializeMap as _;
use zeroize::Zeroizing;

use crate::error::VaultError;

/// Characters left as they are in a path segment: RFC 3986 unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One request to Vault, not yet sent.
#[derive(Clone)]
pub(crate) struct Request {
    /// The HTTP method.
    pub method: Method,
    /// The path, `/v1/…`, percent-encoded.
    pub path: String,
    /// The query string without `?`, if any.
    pub query: Option<&'static str>,
    /// The `X-Vault-Namespace` header, if any.
    pub namespace: Option<String>,
    /// Whether the request carries the Vault token (`X-Vault-Token`).
    pub authenticated: bool,
    /// The JSON body. Bodies that carry secrets are owned by a [`Zeroizing`] buffer, which is
    /// wiped when the HTTP stack drops its last reference.
    pub body: Option<Bytes>,
}

impl Request {
    fn new(method: Method, path: String, namespace: Option<&str>) -> Self {
        Self {
            method,
            path,
            query: None,
            namespace: namespace.map(str::to_owned),
            authenticated: true,
            body: None,
        }
    }

    fn query(mut self, query: &'static str) -> Self {
        self.query = Some(query);
        self
    }

    fn json(mut self, body: &impl Serialize, size_hint: usize) -> Result<Self, VaultError> {
        self.body = Some(secret_json(body, size_hint)?);
        Ok(self)
    }

    /// The path with its query, as errors show it.
    pub fn target(&self) -> String {
        match self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }

    /// The method as a static string, for errors.
    pub fn method_name(&self) -> &'static str {
        match self.method {
            Method::GET => "GET",
            Method::PUT => "PUT",
            Method::POST => "POST",
            Method::DELETE => "DELETE",
            _ => "?",
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("namespace", &self.namespace)
            .field("authenticated", &self.authenticated)
            .field("body", &self.body.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Where and how keys are stored: engine, prefix, K/V version, namespace and transit key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The K/V mount, percent-encoded, without leading or trailing `/`.
    engine: String,
    /// The prefix below the mount, percent-encoded, without leading or trailing `/`; may be
    /// empty.
    prefix: String,
    version: VaultKvVersion,
    namespace: Option<String>,
    /// Transit mount and key name, percent-encoded.
    transit: Option<(String, String)>,
}

impl Layout {
    /// The layout of `config`; fails for mounts, prefixes or namespaces Vault cannot address.
    pub fn new(config: &VaultConfig) -> Result<Self, VaultError> {
        let engine = encode_path(&config.engine, "engine")?;
        if engine.is_empty() {
            return Err(VaultError::Local("the K/V engine path is empty".into()));
        }
        let transit = match &config.transit {
            None => None,
            Some(t) => {
                let engine = encode_path(&t.engine, "transit engine")?;
                if engine.is_empty() {
                    return Err(VaultError::Local("the transit engine path is empty".into()));
                }
                Some((engine, encode_name(&t.key, "transit key")?))
            }
        };
        Ok(Self {
            engine,
            prefix: encode_path(&config.prefix, "prefix")?,
            version: config.version,
            namespace: namespace(config.namespace.as_deref())?,
            transit,
        })
    }

    /// The namespace of K/V and transit requests.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The K/V version.
    pub fn version(&self) -> VaultKvVersion {
        self.version
    }

    /// `/v1/<engine>[/<kind>][/<prefix>][/<name>]`.
    fn path(&self, kind: Option<&str>, name: Option<&str>) -> String {
        let mut path = format!("/v1/{}", self.engine);
        for part in [kind, Some(self.prefix.as_str()), name]
            .into_iter()
            .flatten()
        {
            if !part.is_empty() {
                path.push('/');
                path.push_str(part);
            }
        }
        path
    }

    /// The path of the secret holding `name`, for create and read.
    fn secret_path(&self, name: &str) -> Result<String, VaultError> {
        let name = encode_name(name, "key name")?;
        Ok(match self.version {
            VaultKvVersion::V1 => self.path(None, Some(&name)),
            VaultKvVersion::V2 => self.path(Some("data"), Some(&name)),
        })
    }

    /// Stores `value` under `name`. On v2 the write is check-and-set with `cas = 0`, which
    /// Vault refuses when the secret exists; v1 has no such condition.
    pub fn create(&self, name: &str, value: &str) -> Result<Request, VaultError> {
        let request = Request::new(Method::PUT, self.secret_path(name)?, self.namespace());
        let field = OneField { name, value };
        let hint = 2 * (name.len() + value.len()) + 64;
        match self.version {
            VaultKvVersion::V1 => request.json(&field, hint),
            VaultKvVersion::V2 => request.json(
                &V2Write {
                    options: CasOptions { cas: 0 },
                    data: field,
                },
                hint,
            ),
        }
    }

    /// Reads the secret holding `name` (on v2, its newest version: a key is only ever written
    /// again by a rotation, a check-and-set write on top of the version read; the original
    /// server, which never rotates, reads version 1, the same for a key never rotated).
    pub fn read(&self, name: &str) -> Result<Request, VaultError> {
        Ok(Request::new(
            Method::GET,
            self.secret_path(name)?,
            self.namespace(),
        ))
    }

    /// Writes `value` under `name` on v2 if the secret's newest version is still `version`
    /// (check-and-set): what a key rotation stores.
    pub fn replace(&self, name: &str, value: &str, version: u64) -> Result<Request, VaultError> {
        let request = Request::new(Method::PUT, self.secret_path(name)?, self.namespace());
        let field = OneField { name, value };
        let hint = 2 * (name.len() + value.len()) + 64;
        request.json(
            &V2Write {
                options: CasOptions { cas: version },
                data: field,
            },
            hint,
        )
    }

    /// Deletes the secret holding `name` (on v2 its metadata, so every version goes).
    pub fn delete(&self, name: &str) -> Result<Request, VaultError> {
        let name = encode_name(name, "key name")?;
        let path = match self.version {
            VaultKvVersion::V1 => self.path(None, Some(&name)),
            VaultKvVersion::V2 => self.path(Some("metadata"), Some(&name)),
        };
        Ok(Request::new(Method::DELETE, path, self.namespace()))
    }

    /// Lists the secrets below the prefix.
    pub fn list(&self) -> Request {
        let path = match self.version {
            VaultKvVersion::V1 => self.path(None, None),
            VaultKvVersion::V2 => self.path(Some("metadata"), None),
        };
        Request::new(Method::GET, path, self.namespace()).query("list=true")
    }

    /// Encrypts `plaintext` with the transit key; `None` without transit.
    pub fn encrypt(&self, plaintext: &[u8]) -> Option<Result<Request, VaultError>> {
        let (engine, key) = self.transit.as_ref()?;
        let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(plaintext));
        let request = Request::new(
            Method::POST,
            format!("/v1/{engine}/encrypt/{key}"),
            self.namespace(),
        );
        Some(request.json(
            &Plaintext {
                plaintext: &encoded,
            },
            encoded.len() + 32,
        ))
    }

    /// Decrypts a transit `ciphertext` with the transit key; `None` without transit.
    pub fn decrypt(&self, ciphertext: &str) -> Option<Result<Request, VaultError>> {
        let (engine, key) = self.transit.as_ref()?;
        let request = Request::new(
            Method::POST,
            format!("/v1/{engine}/decrypt/{key}"),
            self.namespace(),
        );
        Some(request.json(&Ciphertext { ciphertext }, ciphertext.len() + 32))
    }
}

/// `GET /v1/sys/health`: no token, and never a namespace (the endpoint lives in the root
/// namespace only).
pub(crate) fn health() -> Request {
    let mut request = Request::new(Method::GET, "/v1/sys/health".into(), None);
    request.authenticated = false;
    request
}

/// `POST /v1/auth/<engine>/login` with `body`, in `namespace`, without a token.
pub(crate) fn login(
    engine: &str,
    namespace: Option<&str>,
    body: &impl Serialize,
) -> Result<Request, VaultError> {
    let engine = encode_path(engine, "auth engine")?;
    let mut request = Request::new(Method::POST, format!("/v1/auth/{engine}/login"), namespace)
        .json(body, 512)?;
    request.authenticated = false;
    Ok(request)
}

/// `POST /v1/auth/token/renew-self` (`increment` 0: the token's own TTL), in `namespace`.
pub(crate) fn renew_self(namespace: Option<&str>) -> Request {
    let mut request = Request::new(Method::POST, "/v1/auth/token/renew-self".into(), namespace);
    request.body = Some(Bytes::from_static(br#"{"increment":0}"#));
    request
}

/// `GET /v1/auth/token/lookup-self`, in `namespace`.
pub(crate) fn lookup_self(namespace: Option<&str>) -> Request {
    Request::new(Method::GET, "/v1/auth/token/lookup-self".into(), namespace)
}

/// The namespace header value for `namespace`: `None` when unset, empty or `/` (the root
/// namespace); fails for values that cannot be a header.
pub(crate) fn namespace(namespace: Option<&str>) -> Result<Option<String>, VaultError> {
    let Some(ns) = namespace.map(str::trim) else {
        return Ok(None);
    };
    let ns = ns.trim_matches('/');
    if ns.is_empty() {
        return Ok(None);
    }
    if ns.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(VaultError::Local(format!(
            "invalid namespace '{}': only visible ASCII characters are allowed",
            ns.escape_debug()
        )));
    }
    Ok(Some(ns.to_owned()))
}

/// Percent-encodes the segments of a mount or prefix path (`a/b/` → `a/b`); `.` and `..` are
/// refused, empty segments dropped.
fn encode_path(path: &str, what: &str) -> Result<String, VaultError> {
    let mut out = Vec::new();
    for segment in path.trim().split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(VaultError::Local(format!(
                "invalid {what} '{}': '.' and '..' are not allowed",
                path.escape_debug()
            )));
        }
        out.push(utf8_percent_encode(segment, SEGMENT).to_string());
    }
    Ok(out.join("/"))
}

/// Percent-encodes a single name; fails for names that are no single path segment.
fn encode_name(name: &str, what: &str) -> Result<String, VaultError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(VaultError::Local(format!(
            "invalid {what} '{}': Vault cannot store it",
            name.escape_debug()
        )));
    }
    Ok(utf8_percent_encode(name, SEGMENT).to_string())
}

/// Serialises `body` into a buffer that is wiped when the last `Bytes` referring to it drops.
fn secret_json(body: &impl Serialize, size_hint: usize) -> Result<Bytes, VaultError> {
    // Sized up front so the buffer is (almost) never reallocated, which would leave a copy of
    // the secret in freed memory.
    let mut buf = SecretBuf::with_capacity(size_hint);
    serde_json::to_writer(&mut buf, body)
        .map_err(|e| VaultError::Local(format!("cannot encode a request body: {e}")))?;
    Ok(Bytes::from_owner(buf))
}

/// `{"<name>": "<value>"}`.
struct OneField<'a> {
    name: &'a str,
    value: &'a str,
}

impl Serialize for OneField<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.name, self.value)?;
        map.end()
    }
}

#[derive(Serialize)]
struct V2Write<'a> {
    options: CasOptions,
    data: OneField<'a>,
}

#[derive(Serialize)]
struct CasOptions {
    cas: u64,
}

#[derive(Serialize)]
struct Plaintext<'a> {
    plaintext: &'a str,
}

#[derive(Serialize)]
struct Ciphertext<'a> {
    ciphertext: &'a str,
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use crate::config::{VaultAppRole, VaultTls, VaultTransit};
    use kes_config::SecretString;

    use super::*;

    pub(crate) fn config(version: VaultKvVersion) -> VaultConfig {
        VaultConfig {
            endpoints: vec!["http://127.0.0.1:8200".into()],
            engine: "kv".into(),
            version,
            namespace: None,
            prefix: String::new(),
            transit: None,
            approle: Some(VaultAppRole {
                engine: "approle".into(),
                namespace: None,
                id: "role".into(),
                secret: SecretString::new("secret".into()),
            }),
            kubernetes: None,
            tls: VaultTls::default(),
            status_ping: Duration::from_secs(15),
        }
    }

    fn body(request: &Request) -> serde_json::Value {
        serde_json::from_slice(request.body.as_ref().unwrap()).unwrap()
    }

    fn line(request: &Request) -> String {
        format!("{} {}", request.method, request.target())
    }

    #[test]
    fn v1_paths() {
        let layout = Layout::new(&config(VaultKvVersion::V1)).unwrap();
        assert_eq!(line(&layout.create("k1", "v").unwrap()), "PUT /v1/kv/k1");
        assert_eq!(line(&layout.read("k1").unwrap()), "GET /v1/kv/k1");
        assert_eq!(line(&layout.delete("k1").unwrap()), "DELETE /v1/kv/k1");
        assert_eq!(line(&layout.list()), "GET /v1/kv?list=true");
        assert_eq!(
            body(&layout.create("k1", "a \"record\"").unwrap()),
            serde_json::json!({"k1": "a \"record\""})
        );
    }

    #[test]
    fn v2_paths_read_the_newest_version_delete_metadata_and_create_with_cas_0() {
        let layout = Layout::new(&config(VaultKvVersion::V2)).unwrap();
        assert_eq!(
            line(&layout.create("k1", "v").unwrap()),
            "PUT /v1/kv/data/k1"
        );
        assert_eq!(line(&layout.read("k1").unwrap()), "GET /v1/kv/data/k1");
        assert_eq!(
            body(&layout.replace("k1", "new", 3).unwrap()),
            serde_json::json!({"options": {"cas": 3}, "data": {"k1": "new"}})
        );
        assert_eq!(
            line(&layout.delete("k1").unwrap()),
            "DELETE /v1/kv/metadata/k1"
        );
        assert_eq!(line(&layout.list()), "GET /v1/kv/metadata?list=true");
        assert_eq!(
            body(&layout.create("k1", "record").unwrap()),
            serde_json::json!({"options": {"cas": 0}, "data": {"k1": "record"}})
        );
    }

    #[test]
    fn prefix_and_engine_sub_paths() {
        let mut cfg = config(VaultKvVersion::V2);
        cfg.engine = "/secret/kes/".into();
        cfg.prefix = "/tenant-1//keys/".into();
        let layout = Layout::new(&cfg).unwrap();
        assert_eq!(
            line(&layout.read("k1").unwrap()),
            "GET /v1/secret/kes/data/tenant-1/keys/k1"
        );
        assert_eq!(
            line(&layout.delete("k1").unwrap()),
            "DELETE /v1/secret/kes/metadata/tenant-1/keys/k1"
        );
        assert_eq!(
            line(&layout.list()),
            "GET /v1/secret/kes/metadata/tenant-1/keys?list=true"
        );

        cfg.version = VaultKvVersion::V1;
        let layout = Layout::new(&cfg).unwrap();
        assert_eq!(
            line(&layout.create("k1", "v").unwrap()),
            "PUT /v1/secret/kes/tenant-1/keys/k1"
        );
        assert_eq!(
            line(&layout.list()),
            "GET /v1/secret/kes/tenant-1/keys?list=true"
        );
    }

    #[test]
    fn odd_characters_are_percent_encoded_and_traversal_is_refused() {
        let mut cfg = config(VaultKvVersion::V1);
        cfg.prefix = "a b/ü".into();
        let layout = Layout::new(&cfg).unwrap();
        assert_eq!(
            line(&layout.read("x?y#z%").unwrap()),
            "GET /v1/kv/a%20b/%C3%BC/x%3Fy%23z%25"
        );
        for bad in ["", ".", "..", "a/b"] {
            let err = layout.read(bad).unwrap_err().to_string();
            assert!(err.starts_with("vault: invalid key name"), "{err}");
        }
        cfg.prefix = "a/../b".into();
        assert!(Layout::new(&cfg).is_err());
        cfg.prefix = String::new();
        cfg.engine = "/".into();
        assert!(Layout::new(&cfg).is_err());
    }

    #[test]
    fn namespace_goes_on_every_kv_and_transit_request_but_not_on_health() {
        let mut cfg = config(VaultKvVersion::V2);
        cfg.namespace = Some("team/kes".into());
        cfg.transit = Some(VaultTransit {
            engine: "transit".into(),
            key: "kes".into(),
        });
        let layout = Layout::new(&cfg).unwrap();
        let requests = [
            layout.create("k", "v").unwrap(),
            layout.read("k").unwrap(),
            layout.delete("k").unwrap(),
            layout.list(),
            layout.encrypt(b"v").unwrap().unwrap(),
            layout.decrypt("vault:v1:x").unwrap().unwrap(),
        ];
        for request in &requests {
            assert_eq!(
                request.namespace.as_deref(),
                Some("team/kes"),
                "{request:?}"
            );
            assert!(request.authenticated);
        }
        let health = health();
        assert_eq!(line(&health), "GET /v1/sys/health");
        assert_eq!(health.namespace, None);
        assert!(!health.authenticated);
    }

    #[test]
    fn namespace_values() {
        assert_eq!(namespace(None).unwrap(), None);
        assert_eq!(namespace(Some("")).unwrap(), None);
        assert_eq!(
            namespace(Some("/")).unwrap(),
            None,
            "'/' is the root namespace"
        );
        assert_eq!(namespace(Some(" ns1/ ")).unwrap().as_deref(), Some("ns1"));
        assert_eq!(namespace(Some("a/b")).unwrap().as_deref(), Some("a/b"));
        assert!(namespace(Some("a\nb")).is_err());
    }

    #[test]
    fn transit_requests() {
        let mut cfg = config(VaultKvVersion::V1);
        assert!(Layout::new(&cfg).unwrap().encrypt(b"x").is_none());
        cfg.transit = Some(VaultTransit {
            engine: "my/transit".into(),
            key: "kes-key".into(),
        });
        let layout = Layout::new(&cfg).unwrap();
        let enc = layout.encrypt(b"record").unwrap().unwrap();
        assert_eq!(line(&enc), "POST /v1/my/transit/encrypt/kes-key");
        assert_eq!(body(&enc), serde_json::json!({"plaintext": "cmVjb3Jk"}));
        let dec = layout.decrypt("vault:v1:abc").unwrap().unwrap();
        assert_eq!(line(&dec), "POST /v1/my/transit/decrypt/kes-key");
        assert_eq!(
            body(&dec),
            serde_json::json!({"ciphertext": "vault:v1:abc"})
        );
    }

    #[test]
    fn token_requests_and_login() {
        let renew = renew_self(Some("ns1"));
        assert_eq!(line(&renew), "POST /v1/auth/token/renew-self");
        assert_eq!(body(&renew), serde_json::json!({"increment": 0}));
        assert_eq!(renew.namespace.as_deref(), Some("ns1"));
        assert!(renew.authenticated);
        let lookup = lookup_self(None);
        assert_eq!(line(&lookup), "GET /v1/auth/token/lookup-self");
        assert_eq!(lookup.namespace, None);

        let login = login(
            "my-approle",
            Some("ns2"),
            &serde_json::json!({"role_id": "r"}),
        )
        .unwrap();
        assert_eq!(line(&login), "POST /v1/auth/my-approle/login");
        assert_eq!(login.namespace.as_deref(), Some("ns2"));
        assert!(!login.authenticated, "a login carries no token");
    }

    #[test]
    fn debug_hides_bodies() {
        let layout = Layout::new(&config(VaultKvVersion::V1)).unwrap();
        let request = layout.create("k", "very-secret-record").unwrap();
        let debug = format!("{request:?}");
        assert!(!debug.contains("very-secret-record"), "{debug}");
    }
}
