//! The JSON-over-HTTPS client that the enterprise keystore backends share (Fortanix DSM,
//! Thales CipherTrust / Gemalto KeySecure, Entrust KeyControl, kes-spec §8.7–8.9): one HTTP
//! client with the backend's CA, bounded retries of transient failures
//! ([`kes_keystore::retry`]), replies read into wiped buffers, errors that name the backend, the
//! operation, the key and the vendor's error text (never a credential or a stored value), and a
//! bearer-token [`Session`] that renews its token before it expires.
//!
//! Nothing here knows a vendor: each backend builds its [`Request`]s, reads its [`Reply`]s, and
//! passes the function that finds the error text in its vendor's error bodies.

#![deny(unsafe_code)]

mod env;
mod error;
mod session;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use kes_keystore::retry::{self, Outcome, RetryPolicy};
use kes_secret::SecretBuf;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
pub use reqwest::Method;
use reqwest::header::HeaderValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use env::Env;
pub use error::{Kind, Op, RestError, clean};
pub use session::{Session, Token};

/// The largest answer read from a key manager (a page of a listing is the largest).
const MAX_BODY: usize = 16 << 20;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Characters left as they are in a path segment: RFC 3986 unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `value` percent-encoded for one path segment or query value.
pub fn segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// Finds the vendor's error text in an error body (empty when there is none).
pub type VendorMessage = fn(&[u8]) -> String;

/// One request, not yet sent.
#[derive(Clone)]
pub struct Request {
    /// The HTTP method.
    pub method: Method,
    /// The path with its query, percent-encoded: `/crypto/v1/keys?sort=name:asc`.
    pub path: String,
    /// An authorization header (name, value): the value is a credential, sent marked
    /// sensitive and kept out of every error.
    pub auth: Option<(&'static str, String)>,
    /// The JSON body; bodies that carry stored values are built by [`secret_json`].
    pub body: Option<Bytes>,
    /// The body's media type (`application/json` unless [`Request::form`] set another).
    pub content_type: &'static str,
    /// Further headers that are not credentials (`Metadata-Flavor: Google`).
    pub headers: Vec<(&'static str, String)>,
}

impl Request {
    /// A request without authorization or body.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            auth: None,
            body: None,
            content_type: "application/json",
            headers: Vec::new(),
        }
    }

    /// With an `application/x-www-form-urlencoded` body (OAuth 2.0 token requests), built
    /// into a wiped buffer by [`secret_form`].
    pub fn form(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self.content_type = "application/x-www-form-urlencoded";
        self
    }

    /// With the header `name: value` (not a credential: it may appear in Debug output).
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// With the authorization header `name: value`.
    pub fn auth(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.auth = Some((name, value.into()));
        self
    }

    /// With a JSON body.
    pub fn body(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self
    }

    /// `METHOD /path` (without the query, which may name a key), for errors.
    pub fn call(&self) -> String {
        let path = self.path.split('?').next().unwrap_or_default();
        format!("{} {path}", self.method)
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("auth", &self.auth.as_ref().map(|(name, _)| name))
            .field("body", &self.body.as_ref().map(Bytes::len))
            .field("content_type", &self.content_type)
            .field("headers", &self.headers)
            .finish()
    }
}

/// Serialises `body` into a buffer that is wiped when the HTTP stack drops its last reference.
pub fn secret_json(body: &impl Serialize, size_hint: usize) -> Result<Bytes, String> {
    let mut buf = SecretBuf::with_capacity(size_hint.max(64));
    serde_json::to_writer(&mut buf, body).map_err(|e| format!("cannot encode a request: {e}"))?;
    Ok(Bytes::from_owner(buf))
}

/// An `application/x-www-form-urlencoded` body of `pairs`, in a buffer that is wiped when the
/// HTTP stack drops its last reference (the values may be credentials).
pub fn secret_form(pairs: &[(&str, &str)]) -> Bytes {
    let size: usize = pairs.iter().map(|(k, v)| k.len() + 3 * v.len() + 2).sum();
    let mut buf = SecretBuf::with_capacity(size.max(64));
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(b"&");
        }
        buf.extend_from_slice(segment(name).as_bytes());
        buf.extend_from_slice(b"=");
        // `segment` allocates a plain String: build the encoding straight into the buffer.
        for part in utf8_percent_encode(value, SEGMENT) {
            buf.extend_from_slice(part.as_bytes());
        }
    }
    Bytes::from_owner(buf)
}

/// An answer, whatever its status.
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body, wiped on drop (it may hold a stored value or a token).
    pub body: SecretBuf,
    /// `METHOD /path at <endpoint>`, for errors.
    pub call: String,
    /// Whether earlier tries failed (one of them may have been carried out).
    pub retried: bool,
    vendor: VendorMessage,
    backend: &'static str,
}

impl Reply {
    /// Parses the body as JSON. The error names the position only: serde's messages may quote
    /// the input, which can be secret.
    pub fn json<T: DeserializeOwned>(&self, op: &Op) -> Result<T, RestError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            self.invalid(
                op,
                format!(
                    "malformed JSON ({:?} error at line {}, column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
            )
        })
    }

    /// The vendor's error text in the body, redacted and cut to length.
    pub fn message(&self, redact: &[&str]) -> String {
        clean(&(self.vendor)(&self.body), redact)
    }

    /// The error for a status the operation does not expect.
    pub fn error(&self, op: &Op, redact: &[&str]) -> RestError {
        RestError::new(
            self.backend,
            op,
            Kind::Status {
                call: self.call.clone(),
                status: self.status,
                message: self.message(redact),
            },
        )
    }

    /// An error saying what is wrong with this answer.
    pub fn invalid(&self, op: &Op, reason: impl Into<String>) -> RestError {
        RestError::new(
            self.backend,
            op,
            Kind::Invalid {
                call: self.call.clone(),
                reason: reason.into(),
            },
        )
    }
}

/// The HTTP client of one key manager.
pub struct Rest {
    client: reqwest::Client,
    base: String,
    backend: &'static str,
    vendor: VendorMessage,
    policy: RetryPolicy,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest")
            .field("backend", &self.backend)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Rest {
    /// A client for `endpoint` (an `https://` or `http://` URL) that trusts the certificates of
    /// `ca` (a PEM file or a directory of them) instead of the system's roots when given.
    /// `backend` starts every error (`fortanix`, `gemalto`, `entrust`).
    pub fn new(
        backend: &'static str,
        endpoint: &str,
        ca: Option<&Path>,
        vendor: VendorMessage,
    ) -> Result<Self, RestError> {
        let op = Op::new("connect");
        let local = |message: String| RestError::new(backend, &op, Kind::Local(message));
        let base = base_url(endpoint).map_err(local)?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_rustls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("kes-rs/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = ca {
            builder = builder.tls_certs_only(read_ca(ca).map_err(local)?);
        }
        let client = builder
            .build()
            .map_err(|e| local(format!("cannot build the HTTP client: {}", causes(&e))))?;
        Ok(Self {
            client,
            base,
            backend,
            vendor,
            policy: RetryPolicy::default(),
        })
    }

    /// With another retry policy (tests use short ones).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The endpoint, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The backend's name, as errors start.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// An error of `kind` for `op`.
    pub fn error(&self, op: &Op, kind: Kind) -> RestError {
        RestError::new(self.backend, op, kind)
    }

    /// Sends `request`, retrying network failures and 429/5xx answers under the retry policy.
    /// Returns the first answer that is not transient, whatever its status; when every try
    /// failed, the last failure (an unreachable error for network failures and 502–504).
    /// `redact` lists secrets besides the authorization that must not appear in errors.
    pub async fn send(
        &self,
        op: &Op,
        request: &Request,
        redact: &[&str],
    ) -> Result<Reply, RestError> {
        let mut hide: Vec<&str> = redact.to_vec();
        if let Some((_, value)) = &request.auth {
            hide.push(value);
        }
        let hide = &hide;
        let tries = &std::sync::atomic::AtomicU32::new(0);
        let (_, result) = retry::retry(&self.policy, 1, 0, |_| async move {
            tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match self.once(op, request).await {
                Err(err) if err.is_network() => Outcome::Retry(err),
                Err(err) => Outcome::Done(Err(err)),
                Ok(reply) if is_transient(reply.status) => Outcome::Retry(reply.error(op, hide)),
                Ok(reply) => Outcome::Done(Ok(reply)),
            }
        })
        .await?;
        let mut reply = result?;
        reply.retried = tries.load(std::sync::atomic::Ordering::Relaxed) > 1;
        Ok(reply)
    }

    /// Sends `request` once.
    pub async fn once(&self, op: &Op, request: &Request) -> Result<Reply, RestError> {
        let call = format!("{} at {}", request.call(), self.base);
        let url = format!("{}{}", self.base, request.path);
        let mut builder = self.client.request(request.method.clone(), url);
        if let Some((name, value)) = &request.auth {
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                self.error(
                    op,
                    Kind::Local("the credential is not a valid header value".into()),
                )
            })?;
            value.set_sensitive(true);
            builder = builder.header(*name, value);
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, request.content_type)
                .body(body.clone());
        }
        let network = |e: reqwest::Error, call: &str| {
            self.error(
                op,
                Kind::Network {
                    call: call.to_owned(),
                    cause: causes(&e),
                },
            )
        };
        let too_large = |call: &str| {
            self.error(
                op,
                Kind::Invalid {
                    call: call.to_owned(),
                    reason: format!("answer larger than {MAX_BODY} bytes"),
                },
            )
        };
        let mut response = builder.send().await.map_err(|e| network(e, &call))?;
        let status = response.status().as_u16();
        let expected = response
            .content_length()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        if expected > MAX_BODY {
            return Err(too_large(&call));
        }
        let mut body = SecretBuf::with_capacity(expected);
        while let Some(chunk) = response.chunk().await.map_err(|e| network(e, &call))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(too_large(&call));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            body,
            call,
            retried: false,
            vendor: self.vendor,
            backend: self.backend,
        })
    }
}

/// Whether an answer is worth trying again: throttling and server-side failures.
pub fn is_transient(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// Checks an endpoint URL and returns it without a trailing `/`.
fn base_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let invalid = |why: &str| format!("invalid endpoint '{}': {why}", raw.escape_debug());
    let url = reqwest::Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(invalid("the scheme must be https or http"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not quoted: the URL holds a password.
        return Err("invalid endpoint: credentials in the URL are not supported".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a query or fragment is not allowed"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The certificates of a CA file, or of every file in a CA directory.
fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let read_err = |p: &Path, e: std::io::Error| {
        format!("cannot read the CA certificate '{}': {e}", p.display())
    };
    let files = if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| read_err(path, e))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_owned()]
    };
    let mut certs = Vec::new();
    for file in &files {
        let pem = std::fs::read(file).map_err(|e| read_err(file, e))?;
        match reqwest::Certificate::from_pem_bundle(&pem) {
            Ok(found) => certs.extend(found),
            Err(_) if path.is_dir() => {}
            Err(e) => {
                return Err(format!(
                    "invalid CA certificate '{}': {}",
                    file.display(),
                    causes(&e)
                ));
            }
        }
    }
    if certs.is_empty() {
        return Err(format!("no CA certificate found in '{}'", path.display()));
    }
    Ok(certs)
}

/// An error and its causes, `a: b: c`, without the URL reqwest adds.
fn causes(err: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut first = true;
    while let Some(e) = current {
        let shown = e.to_string();
        let part = if first {
            shown
                .split(" for url (")
                .next()
                .unwrap_or_default()
                .to_owned()
        } else {
            shown
        };
        if !part.is_empty() && !text.ends_with(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        first = false;
        current = e.source();
    }
    if err.is_timeout() && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        assert_eq!(base_url(" https://h:443/ ").unwrap(), "https://h");
        assert_eq!(base_url("https://h:8443/").unwrap(), "https://h:8443");
        assert_eq!(base_url("https://h/api/").unwrap(), "https://h/api");
        for bad in ["h:443", "ftp://h", "https://u:pw@h", "https://h/?x=1", ""] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
        assert!(!base_url("https://u:pw@h").unwrap_err().contains("pw"));
    }

    #[test]
    fn ca_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_ca(&dir.path().join("missing")).unwrap_err();
        assert!(err.contains("cannot read the CA certificate"), "{err}");
        std::fs::write(dir.path().join("README"), "no certificate").unwrap();
        let err = read_ca(dir.path()).unwrap_err();
        assert!(err.contains("no CA certificate found"), "{err}");
        let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/pki/ca.crt");
        assert_eq!(read_ca(&ca).unwrap().len(), 1);
    }

    #[test]
    fn segments_are_encoded_and_calls_hide_the_query() {
        assert_eq!(segment("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(segment("my-key_1.x~"), "my-key_1.x~");
        let r = Request::new(Method::POST, "/x/y?type=name&name=secret").auth("A", "tok");
        assert_eq!(r.call(), "POST /x/y");
        let debug = format!("{r:?}");
        assert!(!debug.contains("tok"), "{debug}");
    }

    #[test]
    fn forms_are_encoded() {
        let body = secret_form(&[("grant_type", "a:b"), ("assertion", "x y&z")]);
        assert_eq!(&body[..], b"grant_type=a%3Ab&assertion=x%20y%26z");
        let r = Request::new(Method::POST, "/token").form(body);
        assert_eq!(r.content_type, "application/x-www-form-urlencoded");
    }

    #[test]
    fn transient_statuses() {
        for s in [429, 500, 502, 503, 504] {
            assert!(is_transient(s));
        }
        for s in [200, 201, 204, 400, 401, 403, 404, 409, 501] {
            assert!(!is_transient(s));
        }
    }
}
