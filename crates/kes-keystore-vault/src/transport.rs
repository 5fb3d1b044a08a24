//! Sending requests to Vault: the HTTP client (with the TLS settings of `keystore.vault.tls`),
//! the list of endpoints with failover between them, and the retry policy.
//!
//! The endpoint that answered last is tried first by the next call, so after a failover every
//! call goes to a working node straight away. Redirects are not followed: a Vault standby
//! answers some requests with a redirect to the active node, and following it would send the
//! token to whatever address the redirect names. A redirect instead counts as a transient
//! failure of that endpoint, and the call moves on to the next configured one.
//!
//! Connections are kept alive for 30 s (the original disabled keep-alive; reusing connections
//! spares a TLS handshake per call and changes nothing a client sees).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::config::VaultConfig;
use kes_secret::SecretBuf;
use reqwest::header::HeaderValue;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::error::{Call, VaultError};
use crate::request::Request;
use crate::retry::{self, Outcome, RetryPolicy};

/// The largest answer read from Vault (a listing of many keys is the largest).
const MAX_BODY: usize = 32 << 20;
/// How long connecting to an endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one health check may take.
pub(crate) const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// An answer from Vault, whatever its status.
pub(crate) struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body, wiped on drop (it may hold a stored value or a token).
    pub body: SecretBuf,
    /// The call that got this answer, for errors.
    pub call: Call,
    /// Whether earlier tries of the call failed: one of them may have reached Vault and been
    /// carried out although its answer was lost.
    pub retried: bool,
}

impl Reply {
    /// Parses the body as JSON. Errors name the position only: serde's messages may quote
    /// the input, which can be secret.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, VaultError> {
        serde_json::from_slice(&self.body).map_err(|e| VaultError::Response {
            call: self.call.clone(),
            reason: format!(
                "malformed JSON ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        })
    }

    /// The error for an answer the operation did not expect.
    pub fn error(&self, redact: &[&str]) -> VaultError {
        VaultError::status(self.call.clone(), self.status, &self.body, redact)
    }

    /// An error saying what is wrong with this answer.
    pub fn invalid(&self, reason: impl Into<String>) -> VaultError {
        VaultError::Response {
            call: self.call.clone(),
            reason: reason.into(),
        }
    }
}

/// The HTTP client and the endpoints of one Vault cluster.
pub(crate) struct Transport {
    client: reqwest::Client,
    /// Base URLs without a trailing `/`.
    endpoints: Vec<String>,
    /// The endpoint tried first.
    preferred: AtomicUsize,
}

impl Transport {
    /// Builds the client for `config`: endpoints, CA, client certificate.
    pub fn new(config: &VaultConfig) -> Result<Self, VaultError> {
        let endpoints = config
            .endpoints
            .iter()
            .map(|e| endpoint(e))
            .collect::<Result<Vec<_>, _>>()?;
        if endpoints.is_empty() {
            return Err(VaultError::Local("no endpoint specified".into()));
        }
        let mut builder = reqwest::Client::builder()
            .tls_backend_rustls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("kes-rs/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.tls.ca {
            builder = builder.tls_certs_only(read_ca(ca)?);
        }
        match (&config.tls.cert, &config.tls.key) {
            (None, None) => {}
            (Some(cert), Some(key)) => builder = builder.identity(read_identity(cert, key)?),
            (Some(_), None) => {
                return Err(VaultError::Local(
                    "tls.cert is set but tls.key is not: mTLS needs both".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(VaultError::Local(
                    "tls.key is set but tls.cert is not: mTLS needs both".into(),
                ));
            }
        }
        let client = builder.build().map_err(|e| {
            VaultError::Local(format!("cannot build the HTTP client: {}", causes(&e)))
        })?;
        Ok(Self {
            client,
            endpoints,
            preferred: AtomicUsize::new(0),
        })
    }

    /// The number of endpoints.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// The endpoint tried first.
    pub fn preferred(&self) -> usize {
        self.preferred.load(Ordering::Relaxed)
    }

    /// Makes `index` the endpoint tried first.
    pub fn prefer(&self, index: usize) {
        if index < self.endpoints.len() {
            self.preferred.store(index, Ordering::Relaxed);
        }
    }

    /// Sends `request` under `policy`, failing over between endpoints and retrying transient
    /// failures. Returns the first answer that is not transient, whatever its status. `redact`
    /// lists secrets (besides the token) that must not appear in errors.
    pub async fn send(
        &self,
        request: &Request,
        token: Option<&str>,
        policy: &RetryPolicy,
        redact: &[&str],
    ) -> Result<Reply, VaultError> {
        let mut hide: Vec<&str> = redact.to_vec();
        hide.extend(token);
        let hide = &hide;
        let attempts = &std::sync::atomic::AtomicU32::new(0);
        let (index, result) = retry::run(
            policy,
            self.endpoints.len(),
            self.preferred(),
            |i| async move {
                attempts.fetch_add(1, Ordering::Relaxed);
                match self.once(i, request, token, None).await {
                    Err(err @ VaultError::Network { .. }) => Outcome::Retry(err),
                    // A local problem or an unusable answer: another try would not help.
                    Err(err) => Outcome::Done(Err(err)),
                    Ok(reply) if is_transient(reply.status, &reply.body) => {
                        Outcome::Retry(reply.error(hide))
                    }
                    Ok(reply) => Outcome::Done(Ok(reply)),
                }
            },
            tokio::time::sleep,
            retry::jitter,
        )
        .await?;
        let mut reply = result?;
        self.prefer(index);
        reply.retried = attempts.load(Ordering::Relaxed) > 1;
        Ok(reply)
    }

    /// Sends `request` once to endpoint `index`, with an optional shorter timeout.
    pub async fn once(
        &self,
        index: usize,
        request: &Request,
        token: Option<&str>,
        timeout: Option<Duration>,
    ) -> Result<Reply, VaultError> {
        let base = self
            .endpoints
            .get(index)
            .ok_or_else(|| VaultError::Local(format!("no endpoint #{index}")))?;
        let call = Call {
            method: request.method_name(),
            path: request.target(),
            endpoint: base.clone(),
        };
        let mut url = format!("{base}{}", request.path);
        if let Some(query) = request.query {
            url.push('?');
            url.push_str(query);
        }
        let mut builder = self.client.request(request.method.clone(), url);
        if let Some(ns) = &request.namespace {
            let value = HeaderValue::from_str(ns).map_err(|_| {
                VaultError::Local("the namespace is not a valid header value".into())
            })?;
            builder = builder.header("X-Vault-Namespace", value);
        }
        if request.authenticated {
            let token = token.ok_or_else(|| VaultError::Local("not logged in to Vault".into()))?;
            let mut value = HeaderValue::from_str(token).map_err(|_| {
                VaultError::Local("the Vault token is not a valid header value".into())
            })?;
            value.set_sensitive(true);
            builder = builder.header("X-Vault-Token", value);
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        if let Some(timeout) = timeout {
            builder = builder.timeout(timeout);
        }
        let network = |e: reqwest::Error, call: &Call| VaultError::Network {
            call: call.clone(),
            cause: causes(&e),
        };
        let mut response = builder.send().await.map_err(|e| network(e, &call))?;
        let status = response.status().as_u16();
        let expected = response
            .content_length()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        if expected > MAX_BODY {
            return Err(VaultError::Response {
                call,
                reason: format!("answer larger than {MAX_BODY} bytes"),
            });
        }
        // Sized up front where possible: growing the buffer would leave copies behind.
        let mut body = SecretBuf::with_capacity(expected);
        while let Some(chunk) = response.chunk().await.map_err(|e| network(e, &call))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(VaultError::Response {
                    call,
                    reason: format!("answer larger than {MAX_BODY} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            body,
            call,
            retried: false,
        })
    }
}

/// Whether an answer is worth trying again, possibly at another endpoint: a standby's
/// redirect, Vault's "not the active node / try later" statuses, gateway errors, and the
/// few seconds after a K/V v2 mount is created while Vault upgrades it.
pub(crate) fn is_transient(status: u16, body: &[u8]) -> bool {
    match status {
        307 | 308 | 412 | 429 | 500 | 502 | 503 | 504 => true,
        400 => contains(body, b"Waiting for the primary to upgrade"),
        _ => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Checks an endpoint URL and returns it without a trailing `/`.
fn endpoint(raw: &str) -> Result<String, VaultError> {
    let raw = raw.trim();
    let invalid =
        |why: &str| VaultError::Local(format!("invalid endpoint '{}': {why}", raw.escape_debug()));
    let url = reqwest::Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(invalid("the scheme must be https or http"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Not quoted: the URL holds a password.
        return Err(VaultError::Local(
            "invalid endpoint: credentials in the URL are not supported".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a query or fragment is not allowed"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// The certificates of a CA file, or of every file in a CA directory.
fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, VaultError> {
    let read_err = |p: &Path, e: std::io::Error| {
        VaultError::Local(format!(
            "cannot read the CA certificate '{}': {e}",
            p.display()
        ))
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
            // In a directory, files that are no certificates (a README, say) are skipped.
            Err(_) if files.len() > 1 || path.is_dir() => {}
            Err(e) => {
                return Err(VaultError::Local(format!(
                    "invalid CA certificate '{}': {}",
                    file.display(),
                    causes(&e)
                )));
            }
        }
    }
    if certs.is_empty() {
        return Err(VaultError::Local(format!(
            "no CA certificate found in '{}'",
            path.display()
        )));
    }
    Ok(certs)
}

/// The client certificate and private key for mTLS with Vault.
fn read_identity(cert: &Path, key: &Path) -> Result<reqwest::Identity, VaultError> {
    let read = |p: &Path, what: &str| {
        std::fs::read(p).map(Zeroizing::new).map_err(|e| {
            VaultError::Local(format!(
                "cannot read the client {what} '{}': {e}",
                p.display()
            ))
        })
    };
    let mut pem = read(cert, "certificate")?;
    let key_pem = read(key, "private key")?;
    let mut both = Zeroizing::new(Vec::with_capacity(pem.len() + key_pem.len() + 1));
    both.append(&mut pem);
    both.push(b'\n');
    both.extend_from_slice(&key_pem);
    reqwest::Identity::from_pem(&both).map_err(|e| {
        VaultError::Local(format!(
            "invalid client certificate '{}' or key '{}': {}",
            cert.display(),
            key.display(),
            causes(&e)
        ))
    })
}

/// An error and its causes, `a: b: c`, without the URL reqwest adds.
fn causes(err: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut first = true;
    while let Some(e) = current {
        let part = if first {
            // reqwest's own message, e.g. "error sending request"; its URL is in `call`.
            let shown = e.to_string();
            shown
                .split(" for url (")
                .next()
                .unwrap_or_default()
                .to_owned()
        } else {
            e.to_string()
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
mod tests {
    use super::*;

    #[test]
    fn transient_answers() {
        for status in [307, 308, 412, 429, 500, 502, 503, 504] {
            assert!(is_transient(status, b""), "{status}");
        }
        for status in [200, 204, 400, 403, 404, 405, 501] {
            assert!(!is_transient(status, b"{}"), "{status}");
        }
        let upgrading = br#"{"errors":["Waiting for the primary to upgrade from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service when the primary is finished."]}"#;
        assert!(is_transient(400, upgrading));
    }

    #[test]
    fn endpoints_are_checked() {
        assert_eq!(
            endpoint(" https://vault:8200/ ").unwrap(),
            "https://vault:8200"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:8200").unwrap(),
            "http://127.0.0.1:8200"
        );
        assert_eq!(
            endpoint("https://lb.example/vault/").unwrap(),
            "https://lb.example/vault"
        );
        for bad in [
            "vault:8200",
            "ftp://vault",
            "https://user:pw@vault:8200",
            "https://vault:8200/?x=1",
            "",
        ] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
        let err = endpoint("https://user:pw@vault").unwrap_err().to_string();
        assert!(!err.contains("pw"), "{err}");
    }

    #[test]
    fn tls_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = read_ca(&missing).unwrap_err().to_string();
        assert!(err.contains("cannot read the CA certificate"), "{err}");
        std::fs::write(dir.path().join("README"), "not a certificate").unwrap();
        let err = read_ca(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no CA certificate found"), "{err}");

        let pki = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/pki");
        if pki.join("ca.crt").is_file() {
            assert_eq!(read_ca(&pki.join("ca.crt")).unwrap().len(), 1);
            std::fs::copy(pki.join("ca.crt"), dir.path().join("ca.pem")).unwrap();
            assert_eq!(
                read_ca(dir.path()).unwrap().len(),
                1,
                "the README is skipped"
            );
            read_identity(&pki.join("admin.crt"), &pki.join("admin.key")).unwrap();
            let err = read_identity(&pki.join("admin.crt"), &pki.join("ca.crt")).unwrap_err();
            assert!(
                err.to_string().contains("invalid client certificate"),
                "{err}"
            );
        }
    }
}
