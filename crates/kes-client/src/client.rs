//! The client: builder, request execution (retries, failover) and one method per API.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kes_api::{
    ApiRoute, AuditEvent, DecryptRequest, DecryptResponse, DescribeIdentityResponse,
    DescribeKeyResponse, DescribePolicyResponse, EncryptRequest, EncryptResponse, ErrorEvent,
    GenerateRequest, GenerateResponse, HmacRequest, HmacResponse, ImportRequest,
    ListIdentitiesResponse, ListKeysResponse, ListPoliciesResponse, PolicyAssignRequest,
    PolicyWriteRequest, ReadPolicyResponse, SelfDescribeResponse, StatusResponse, VersionResponse,
    WireBody, paths,
};
use kes_crypto::ApiKey;
use kes_secret::SecretBuf;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::Error;
use crate::endpoint::{self, Endpoint, Endpoints};
use crate::error::{error_from_reqwest, error_from_response};
use crate::path::{list_path, resource_path};
use crate::retry::{RetryPolicy, is_failover_status, is_retryable_status, random_u64};
use crate::stream::EventStream;
use crate::tls::{self, Credentials};

/// Largest body read from an ordinary answer (and from error answers, as the Go SDK).
const MAX_BODY: usize = 1 << 20;
/// Largest body read from a listing or from `/v1/metrics`.
const MAX_LIST_BODY: usize = 16 << 20;

/// Configures and builds a [`Client`].
///
/// ```no_run
/// # fn main() -> Result<(), kes_client::Error> {
/// use std::time::Duration;
/// use kes_client::{ApiKey, ClientBuilder};
///
/// let api_key = ApiKey::parse("kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw")
///     .map_err(|e| kes_client::Error::InvalidCredentials { reason: e.to_string() })?;
/// let client = ClientBuilder::new()
///     .endpoints(["kes-1.example.net:7373", "kes-2.example.net:7373"])
///     .api_key(api_key)
///     .ca_file("/etc/kes/ca.pem")
///     .timeout(Duration::from_secs(30))
///     .build()?;
/// # let _ = client; Ok(()) }
/// ```
pub struct ClientBuilder {
    endpoints: Vec<String>,
    credentials: Option<Credentials>,
    ca_pems: Vec<Vec<u8>>,
    ca_files: Vec<PathBuf>,
    danger_accept_invalid_certs: bool,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    retry: RetryPolicy,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials = match &self.credentials {
            None => "none",
            Some(Credentials::ApiKey(_)) => "API key",
            Some(Credentials::Pem { .. }) => "certificate",
        };
        f.debug_struct("ClientBuilder")
            .field("endpoints", &self.endpoints)
            .field("credentials", &credentials)
            .field("ca_pems", &self.ca_pems.len())
            .field("ca_files", &self.ca_files)
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

impl ClientBuilder {
    /// A builder without endpoints or credentials, trusting the system's CA certificates,
    /// without an overall request timeout, with a 10 s connect timeout (TCP and TLS) and
    /// the Go SDK's [`RetryPolicy`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            endpoints: Vec::new(),
            credentials: None,
            ca_pems: Vec::new(),
            ca_files: Vec::new(),
            danger_accept_invalid_certs: false,
            timeout: None,
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }

    /// Adds one server: `host:port`, `https://host:port` or `http://host:port` (turned into
    /// `https://`, as the KES CLI does). IPv6 addresses go in brackets.
    #[must_use]
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoints.push(endpoint.into());
        self
    }

    /// Adds several servers (see [`ClientBuilder::endpoint`]). With more than one, requests
    /// fail over between them (spec §11.1).
    #[must_use]
    pub fn endpoints<I>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.endpoints.extend(endpoints.into_iter().map(Into::into));
        self
    }

    /// Authenticates with an API key (`kes:v1:…`): the client presents a self-signed
    /// certificate made from it, whose identity is the key's identity. Replaces earlier
    /// credentials.
    #[must_use]
    pub fn api_key(mut self, api_key: ApiKey) -> Self {
        self.credentials = Some(Credentials::ApiKey(api_key));
        self
    }

    /// Authenticates with a PEM certificate (or chain, leaf first) and its PEM private key
    /// (PKCS #8, SEC1 or PKCS #1; Ed25519, ECDSA or RSA; not encrypted: decrypt legacy
    /// encrypted keys with `kes_crypto::legacy_pem` first). The key bytes are kept in a
    /// buffer wiped on drop. Replaces earlier credentials.
    #[must_use]
    pub fn certificate(mut self, cert_pem: impl AsRef<[u8]>, key_pem: impl AsRef<[u8]>) -> Self {
        self.credentials = Some(Credentials::Pem {
            cert: cert_pem.as_ref().to_vec(),
            key: Zeroizing::new(key_pem.as_ref().to_vec()),
        });
        self
    }

    /// Trusts the CA certificates (one or more `CERTIFICATE` PEM blocks) in `pem`, in
    /// addition to the system's.
    #[must_use]
    pub fn ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.ca_pems.push(pem.as_ref().to_vec());
        self
    }

    /// Trusts the CA certificates in the PEM file at `path` (read by
    /// [`ClientBuilder::build`]), in addition to the system's.
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// **Insecure**: accepts any server certificate, like the KES CLI's `-k/--insecure`.
    /// Anyone on the network path can then impersonate the server and read what is sent,
    /// plaintexts and data keys included. For tests and first steps only.
    #[must_use]
    pub fn danger_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.danger_accept_invalid_certs = accept;
        self
    }

    /// Limits each attempt of a request (connecting, sending, and reading the answer) to
    /// `timeout`. For log streams it limits the wait for the answer's headers only.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Limits connecting (TCP and TLS handshake) to `timeout`; default 10 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the per-endpoint retry policy; default [`RetryPolicy::default`].
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Builds the client. Reads the `ca_file`s, parses the credentials and, for an API
    /// key, creates its certificate.
    ///
    /// # Errors
    ///
    /// [`Error::NoEndpoints`], [`Error::InvalidEndpoint`], [`Error::InvalidCredentials`],
    /// [`Error::InvalidCaCertificate`], [`Error::Io`] (a CA file cannot be read) and
    /// [`Error::Setup`].
    pub fn build(self) -> Result<Client, Error> {
        if self.endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let endpoints: Vec<Endpoint> = self
            .endpoints
            .iter()
            .map(|e| endpoint::normalize(e))
            .collect::<Result<_, _>>()?;

        let mut roots = Vec::new();
        for pem in &self.ca_pems {
            roots.extend(ca_certificates(pem, "the given PEM")?);
        }
        for path in &self.ca_files {
            let pem = std::fs::read(path).map_err(|e| Error::Io {
                path: path.display().to_string(),
                cause: e.to_string(),
            })?;
            roots.extend(ca_certificates(&pem, &path.display().to_string())?);
        }

        let tls = tls::client_config(
            self.credentials.as_ref(),
            roots,
            self.danger_accept_invalid_certs,
        )?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .no_proxy()
            .connect_timeout(self.connect_timeout)
            .redirect(same_origin_redirects())
            .user_agent(concat!("kes-rs-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Setup {
                cause: e.to_string(),
            })?;

        // 32 random bits fit a usize everywhere; the value only picks a start position.
        let start = usize::try_from(random_u64() & u64::from(u32::MAX)).unwrap_or(0);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                endpoints: Endpoints::new(endpoints, start),
                retry: self.retry,
                timeout: self.timeout,
            }),
        })
    }
}

/// Follows at most 5 redirects, and only to the same scheme, host and port. Go KES servers
/// redirect `GET /v1/key/list` to `/v1/key/list/`; a redirect elsewhere could carry a
/// request body (plaintext, with 307/308) to another host, so it is not followed and its
/// answer is returned as an error.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().first().is_some_and(|first| {
            first.scheme() == attempt.url().scheme()
                && first.host_str() == attempt.url().host_str()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if !same_origin || attempt.previous().len() > 5 {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

fn ca_certificates(
    pem: &[u8],
    source: &str,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, Error> {
    let certs = tls::parse_certificates(pem);
    if certs.is_empty() {
        return Err(Error::InvalidCaCertificate {
            reason: format!("no CERTIFICATE PEM block found in {source}"),
        });
    }
    Ok(certs)
}

/// A client of one KES deployment (one or more servers). Cheap to clone; clones share
/// connections and endpoint health.
///
/// Every method sends one API request. Name arguments are percent-escaped into the path;
/// the server validates them. Server errors come back as [`Error`] with typed variants for
/// the common cases.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoints: Endpoints,
    retry: RetryPolicy,
    timeout: Option<Duration>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints())
            .field("retry", &self.inner.retry)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// One request, ready to be sent (again) to any endpoint.
struct Request {
    method: Method,
    path: String,
    body: Option<Bytes>,
    /// Whether to send `Content-Type: application/json` with the body.
    json: bool,
    /// Log streams: the timeout covers the answer's headers only.
    streaming: bool,
}

impl Request {
    fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            body: None,
            json: false,
            streaming: false,
        }
    }

    fn json_body<T: WireBody>(mut self, body: &T) -> Self {
        self.body = Some(Bytes::from(kes_api::encode_json(body)));
        self.json = true;
        self
    }

    /// A body holding secrets: its buffer is wiped when the last reference (ours or the
    /// HTTP stack's) is dropped.
    fn secret_json_body<T: WireBody>(mut self, body: &T) -> Self {
        self.body = Some(Bytes::from_owner(SecretBuf::from(
            kes_api::encode_json_secret(body),
        )));
        self.json = true;
        self
    }
}

/// A successful (200) answer and the endpoint that gave it.
struct Answer {
    response: reqwest::Response,
    endpoint: String,
}

impl Client {
    /// Starts a [`ClientBuilder`].
    #[must_use]
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// The servers, normalised (`https://host:port`), in the order given.
    #[must_use]
    pub fn endpoints(&self) -> Vec<&str> {
        self.inner.endpoints.bases().collect()
    }

    // ---- server -------------------------------------------------------------------------

    /// `GET /version`: the server's version.
    pub async fn version(&self) -> Result<VersionResponse, Error> {
        self.json(Request::new(Method::GET, paths::VERSION), MAX_BODY)
            .await
    }

    /// `GET /v1/ready`: succeeds when the server can reach its keystore.
    pub async fn ready(&self) -> Result<(), Error> {
        self.empty(Request::new(Method::GET, paths::READY)).await
    }

    /// `GET /v1/status`: server and keystore status.
    pub async fn status(&self) -> Result<StatusResponse, Error> {
        self.json(Request::new(Method::GET, paths::STATUS), MAX_BODY)
            .await
    }

    /// `GET /v1/api`: the server's routes.
    pub async fn api(&self) -> Result<Vec<ApiRoute>, Error> {
        self.json(Request::new(Method::GET, paths::API), MAX_BODY)
            .await
    }

    /// `GET /v1/metrics`: Prometheus metrics in text exposition format.
    pub async fn metrics(&self) -> Result<String, Error> {
        let answer = self.send(Request::new(Method::GET, paths::METRICS)).await?;
        let endpoint = answer.endpoint.clone();
        let body = read_body(answer.response, MAX_LIST_BODY, &endpoint).await?;
        String::from_utf8(body.to_vec()).map_err(|_| Error::Decode {
            endpoint,
            reason: "metrics are not UTF-8 text".into(),
        })
    }

    // ---- keys ---------------------------------------------------------------------------

    /// `POST /v1/key/create/<name>`: creates a key with a random value.
    ///
    /// [`Error::KeyExists`] if the name is taken.
    pub async fn create_key(&self, name: &str) -> Result<(), Error> {
        let path = resource_path(paths::KEY_CREATE, "key name", name)?;
        self.empty(Request::new(Method::POST, path)).await
    }

    /// `POST /v1/key/import/<name>`: creates a key with the given 256-bit value. `cipher`
    /// is `AES256` or `ChaCha20`.
    ///
    /// [`Error::KeyExists`] if the name is taken.
    pub async fn import_key(&self, name: &str, key: &[u8], cipher: &str) -> Result<(), Error> {
        let path = resource_path(paths::KEY_IMPORT, "key name", name)?;
        let body = ImportRequest {
            key: Zeroizing::new(key.to_vec()),
            cipher: cipher.to_owned(),
        };
        self.empty(Request::new(Method::POST, path).secret_json_body(&body))
            .await
    }

    /// `POST /v1/key/rotate/<name>`: adds a new random version to the key; returns its name
    /// (`v2`, …). With `import`, `(key, cipher)` becomes the new version instead.
    pub async fn rotate_key(
        &self,
        name: &str,
        import: Option<(&[u8], &str)>,
    ) -> Result<String, Error> {
        let path = resource_path(paths::KEY_ROTATE, "key name", name)?;
        let mut request = Request::new(Method::POST, path);
        if let Some((key, cipher)) = import {
            request = request.secret_json_body(&ImportRequest {
                key: Zeroizing::new(key.to_vec()),
                cipher: cipher.to_owned(),
            });
        }
        let reply: kes_api::RotateKeyResponse = self.json(request, MAX_BODY).await?;
        Ok(reply.version)
    }

    /// `DELETE /v1/key/version/delete/<name>/<version>`: removes an old version of the key.
    pub async fn delete_key_version(&self, name: &str, version: &str) -> Result<(), Error> {
        let path = resource_path(paths::KEY_VERSION_DELETE, "key name", name)?;
        let version = resource_path("/", "key version", version)?;
        self.empty(Request::new(Method::DELETE, format!("{path}{version}")))
            .await
    }

    /// `GET /v1/key/describe/<name>`: the key's algorithm, creation time and creator.
    pub async fn describe_key(&self, name: &str) -> Result<DescribeKeyResponse, Error> {
        let path = resource_path(paths::KEY_DESCRIBE, "key name", name)?;
        self.json(Request::new(Method::GET, path), MAX_BODY).await
    }

    /// `GET /v1/key/list/<prefix>`: names of the keys starting with `prefix` (all for an
    /// empty prefix, which requests `/v1/key/list` as the Go SDK does). A non-empty
    /// `continue_at` means the server returned only the first page.
    pub async fn list_keys(&self, prefix: &str) -> Result<ListKeysResponse, Error> {
        let path = list_path(paths::KEY_LIST, prefix)?;
        let (names, continue_at) = self
            .list(Request::new(Method::GET, path), "names", "name")
            .await?;
        Ok(ListKeysResponse { names, continue_at })
    }

    /// `DELETE /v1/key/delete/<name>`.
    ///
    /// [`Error::KeyNotFound`] if there is no such key (some keystores report success).
    pub async fn delete_key(&self, name: &str) -> Result<(), Error> {
        let path = resource_path(paths::KEY_DELETE, "key name", name)?;
        self.empty(Request::new(Method::DELETE, path)).await
    }

    /// `POST /v1/key/generate/<name>`: a new 256-bit data key, in plaintext and encrypted
    /// with the named key. `context` (may be empty) is bound to the ciphertext and must be
    /// given again to decrypt it.
    pub async fn generate_key(
        &self,
        name: &str,
        context: &[u8],
    ) -> Result<GenerateResponse, Error> {
        let path = resource_path(paths::KEY_GENERATE, "key name", name)?;
        let body = GenerateRequest {
            context: context.to_vec(),
            version: String::new(),
        };
        self.json(Request::new(Method::POST, path).json_body(&body), MAX_BODY)
            .await
    }

    /// `POST /v1/key/encrypt/<name>`: encrypts `plaintext` (with `context` as associated
    /// data; may be empty) and returns the ciphertext.
    pub async fn encrypt(
        &self,
        name: &str,
        plaintext: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let path = resource_path(paths::KEY_ENCRYPT, "key name", name)?;
        let body = EncryptRequest {
            plaintext: Zeroizing::new(plaintext.to_vec()),
            context: context.to_vec(),
            version: String::new(),
        };
        let req = Request::new(Method::POST, path).secret_json_body(&body);
        let resp: EncryptResponse = self.json(req, MAX_BODY).await?;
        Ok(resp.ciphertext)
    }

    /// `POST /v1/key/decrypt/<name>`: decrypts `ciphertext` (any format a KES server ever
    /// produced) with the `context` used to encrypt it.
    ///
    /// [`Error::DecryptionFailed`] for a wrong key or context or a damaged ciphertext.
    pub async fn decrypt(
        &self,
        name: &str,
        ciphertext: &[u8],
        context: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let path = resource_path(paths::KEY_DECRYPT, "key name", name)?;
        let body = DecryptRequest {
            ciphertext: ciphertext.to_vec(),
            context: context.to_vec(),
            version: String::new(),
        };
        let resp: DecryptResponse = self
            .json(Request::new(Method::POST, path).json_body(&body), MAX_BODY)
            .await?;
        Ok(resp.plaintext)
    }

    /// `PUT /v1/key/hmac/<name>`: HMAC-SHA256 of `message` with the key's HMAC key.
    ///
    /// Old keys without an HMAC key give [`Error::Api`] with status 409; servers before
    /// 2024 answer 404 or 501.
    pub async fn hmac(&self, name: &str, message: &[u8]) -> Result<Vec<u8>, Error> {
        let path = resource_path(paths::KEY_HMAC, "key name", name)?;
        let body = HmacRequest {
            message: Zeroizing::new(message.to_vec()),
            version: String::new(),
        };
        // Like the SDK: PUT, and no Content-Type header.
        let mut req = Request::new(Method::PUT, path).secret_json_body(&body);
        req.json = false;
        let resp: HmacResponse = self.json(req, MAX_BODY).await?;
        Ok(resp.hmac)
    }

    // ---- policies -----------------------------------------------------------------------

    /// `GET /v1/policy/describe/<name>`.
    ///
    /// [`Error::PolicyNotFound`] if there is no such policy.
    pub async fn describe_policy(&self, name: &str) -> Result<DescribePolicyResponse, Error> {
        let path = resource_path(paths::POLICY_DESCRIBE, "policy name", name)?;
        self.json(Request::new(Method::GET, path), MAX_BODY).await
    }

    /// `GET /v1/policy/read/<name>`: the policy's rules.
    ///
    /// [`Error::PolicyNotFound`] if there is no such policy.
    pub async fn read_policy(&self, name: &str) -> Result<ReadPolicyResponse, Error> {
        let path = resource_path(paths::POLICY_READ, "policy name", name)?;
        self.json(Request::new(Method::GET, path), MAX_BODY).await
    }

    /// `GET /v1/policy/list/<prefix>`: names of the policies starting with `prefix`.
    pub async fn list_policies(&self, prefix: &str) -> Result<ListPoliciesResponse, Error> {
        let path = list_path(paths::POLICY_LIST, prefix)?;
        let (names, continue_at) = self
            .list(Request::new(Method::GET, path), "names", "name")
            .await?;
        Ok(ListPoliciesResponse {
            names,
            continue_at: continue_at.unwrap_or_default(),
        })
    }

    /// `POST /v1/policy/write/<name>`: creates or replaces a policy (runtime admin API of
    /// older servers and of servers that re-add it, spec §3.1).
    pub async fn write_policy(&self, name: &str, policy: &PolicyWriteRequest) -> Result<(), Error> {
        let path = resource_path(paths::POLICY_WRITE, "policy name", name)?;
        self.empty(Request::new(Method::POST, path).json_body(policy))
            .await
    }

    /// `DELETE /v1/policy/delete/<name>` (runtime admin API, spec §3.1).
    pub async fn delete_policy(&self, name: &str) -> Result<(), Error> {
        let path = resource_path(paths::POLICY_DELETE, "policy name", name)?;
        self.empty(Request::new(Method::DELETE, path)).await
    }

    /// `POST /v1/policy/assign/<policy>` with `{"identity": …}`: binds `identity` to
    /// `policy` (runtime admin API, spec §3.1).
    pub async fn assign_policy(&self, policy: &str, identity: &str) -> Result<(), Error> {
        let path = resource_path(paths::POLICY_ASSIGN, "policy name", policy)?;
        let body = PolicyAssignRequest {
            identity: identity.to_owned(),
        };
        self.empty(Request::new(Method::POST, path).json_body(&body))
            .await
    }

    // ---- identities ---------------------------------------------------------------------

    /// `GET /v1/identity/describe/<identity>`.
    ///
    /// [`Error::IdentityNotFound`] if the identity is neither the admin nor assigned.
    pub async fn describe_identity(
        &self,
        identity: &str,
    ) -> Result<DescribeIdentityResponse, Error> {
        let path = resource_path(paths::IDENTITY_DESCRIBE, "identity", identity)?;
        self.json(Request::new(Method::GET, path), MAX_BODY).await
    }

    /// `GET /v1/identity/self/describe`: the caller's identity, role and policy.
    pub async fn describe_self(&self) -> Result<SelfDescribeResponse, Error> {
        self.json(
            Request::new(Method::GET, paths::IDENTITY_SELF_DESCRIBE),
            MAX_BODY,
        )
        .await
    }

    /// `GET /v1/identity/list/<prefix>`: identities starting with `prefix`.
    pub async fn list_identities(&self, prefix: &str) -> Result<ListIdentitiesResponse, Error> {
        let path = list_path(paths::IDENTITY_LIST, prefix)?;
        let (identities, continue_at) = self
            .list(Request::new(Method::GET, path), "identities", "identity")
            .await?;
        Ok(ListIdentitiesResponse {
            identities,
            continue_at: continue_at.unwrap_or_default(),
        })
    }

    /// `DELETE /v1/identity/delete/<identity>`: removes an identity's policy binding
    /// (runtime admin API, spec §3.1).
    pub async fn delete_identity(&self, identity: &str) -> Result<(), Error> {
        let path = resource_path(paths::IDENTITY_DELETE, "identity", identity)?;
        self.empty(Request::new(Method::DELETE, path)).await
    }

    /// `POST /v1/identity/assign/<policy>/<identity>` (the KES ≤ v0.17 route): assigns the
    /// policy to the identity; an identity in another policy moves.
    pub async fn assign_identity(&self, policy: &str, identity: &str) -> Result<(), Error> {
        let base = resource_path(paths::IDENTITY_ASSIGN, "policy name", policy)?;
        let path = resource_path(&format!("{base}/"), "identity", identity)?;
        self.empty(Request::new(Method::POST, path)).await
    }

    /// `DELETE /v1/identity/forget/<identity>` (the KES ≤ v0.17 route): the identity loses its
    /// policy.
    pub async fn forget_identity(&self, identity: &str) -> Result<(), Error> {
        let path = resource_path(paths::IDENTITY_FORGET, "identity", identity)?;
        self.empty(Request::new(Method::DELETE, path)).await
    }

    // ---- logs ---------------------------------------------------------------------------

    /// `GET /v1/log/audit`: a stream of audit events, open until dropped or closed by the
    /// server.
    pub async fn audit_log(&self) -> Result<EventStream<AuditEvent>, Error> {
        self.stream(paths::LOG_AUDIT, crate::stream::json_line)
            .await
    }

    /// `GET /v1/log/audit` as the lines the server sent, undecoded (each a JSON object; a
    /// `{"time","dropped":N}` line reports events the server dropped for a slow follower).
    pub async fn audit_log_lines(&self) -> Result<EventStream<String>, Error> {
        self.stream(paths::LOG_AUDIT, crate::stream::raw_line).await
    }

    /// `GET /v1/log/error` as the lines the server sent, undecoded.
    pub async fn error_log_lines(&self) -> Result<EventStream<String>, Error> {
        self.stream(paths::LOG_ERROR, crate::stream::raw_line).await
    }

    /// `GET /v1/log/error`: a stream of error-log events, open until dropped or closed by
    /// the server.
    pub async fn error_log(&self) -> Result<EventStream<ErrorEvent>, Error> {
        self.stream(paths::LOG_ERROR, crate::stream::json_line)
            .await
    }

    // ---- plumbing -----------------------------------------------------------------------

    async fn stream<T>(
        &self,
        path: &str,
        parse: fn(&[u8]) -> Result<T, String>,
    ) -> Result<EventStream<T>, Error> {
        let mut req = Request::new(Method::GET, path);
        req.streaming = true;
        let answer = self.send(req).await?;
        Ok(EventStream::new(answer.response, answer.endpoint, parse))
    }

    /// Sends `req` and expects 200 with any (ignored) body.
    async fn empty(&self, req: Request) -> Result<(), Error> {
        self.send(req).await.map(drop)
    }

    /// Sends `req` and decodes a 200 JSON answer. The body is read into a buffer that is
    /// wiped on drop, since some answers carry plaintext.
    async fn json<T: DeserializeOwned>(&self, req: Request, limit: usize) -> Result<T, Error> {
        let answer = self.send(req).await?;
        let body = read_body(answer.response, limit, &answer.endpoint).await?;
        decode_json(&body, &answer.endpoint)
    }

    /// Sends a listing request. Returns the names (from `field` of the JSON object) and
    /// `continue_at`; NDJSON answers of servers up to 2023-10 (`{"<legacy_field>": …}` per
    /// line) are understood too.
    async fn list(
        &self,
        req: Request,
        field: &str,
        legacy_field: &str,
    ) -> Result<(Vec<String>, Option<String>), Error> {
        let answer = self.send(req).await?;
        let ndjson =
            content_type(&answer.response).is_some_and(|ct| ct.starts_with("application/x-ndjson"));
        let endpoint = answer.endpoint;
        let body = read_body(answer.response, MAX_LIST_BODY, &endpoint).await?;
        if ndjson {
            return legacy_list(&body, legacy_field, &endpoint).map(|names| (names, None));
        }
        let value: serde_json::Value = decode_json(&body, &endpoint)?;
        let names = match value.get(field) {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(list) => serde_json::from_value(list.clone()).map_err(|e| Error::Decode {
                endpoint: endpoint.clone(),
                reason: format!("field '{field}': {e}"),
            })?,
        };
        let continue_at = value
            .get("continue_at")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Ok((names, continue_at))
    }

    /// Sends `req` to the endpoints in failover order (spec §11.1) and returns the first
    /// 200 answer, or the error of the last endpoint tried.
    async fn send(&self, req: Request) -> Result<Answer, Error> {
        let endpoints = &self.inner.endpoints;
        let several = endpoints.len() > 1;
        let mut last_error = Error::NoEndpoints;
        for index in endpoints.order(Instant::now()) {
            let Some(endpoint) = endpoints.get(index) else {
                continue;
            };
            match self.send_with_retries(endpoint, &req).await {
                Ok(response) if response.status().as_u16() == 200 => {
                    if several {
                        endpoints.mark_ok(index);
                    }
                    return Ok(Answer {
                        response,
                        endpoint: endpoint.base.clone(),
                    });
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let err = read_error(response, &endpoint.base).await;
                    if several && is_failover_status(status) {
                        endpoints.mark_failed(index, Instant::now());
                        last_error = err;
                        continue;
                    }
                    return Err(err);
                }
                Err(err) if several && err.is_network() => {
                    endpoints.mark_failed(index, Instant::now());
                    last_error = err;
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_error)
    }

    /// Sends `req` to one endpoint, retrying network failures and 503 answers as the
    /// retry policy says.
    async fn send_with_retries(
        &self,
        endpoint: &Endpoint,
        req: &Request,
    ) -> Result<reqwest::Response, Error> {
        let policy = self.inner.retry;
        let mut attempt = 0u32;
        loop {
            let retry_left = attempt < policy.max_retries;
            match self.attempt(endpoint, req).await {
                Ok(resp) if retry_left && is_retryable_status(resp.status().as_u16()) => {}
                Ok(resp) => return Ok(resp),
                Err(err) if retry_left && err.is_retryable() => {}
                Err(err) => return Err(err),
            }
            attempt += 1;
            tokio::time::sleep(policy.delay(random_u64())).await;
        }
    }

    async fn attempt(
        &self,
        endpoint: &Endpoint,
        req: &Request,
    ) -> Result<reqwest::Response, Error> {
        let url = format!("{}{}", endpoint.base, req.path);
        let mut builder = self.inner.http.request(req.method.clone(), &url);
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
            if req.json {
                builder = builder.header(CONTENT_TYPE, "application/json");
            }
        }
        let to_error = |e: reqwest::Error| error_from_reqwest(&e, &endpoint.base);
        match (self.inner.timeout, req.streaming) {
            (Some(timeout), true) => match tokio::time::timeout(timeout, builder.send()).await {
                Ok(result) => result.map_err(to_error),
                Err(_) => Err(Error::Timeout {
                    endpoint: endpoint.base.clone(),
                }),
            },
            (Some(timeout), false) => builder.timeout(timeout).send().await.map_err(to_error),
            (None, _) => builder.send().await.map_err(to_error),
        }
    }
}

fn content_type(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

fn decode_json<T: DeserializeOwned>(body: &[u8], endpoint: &str) -> Result<T, Error> {
    // serde_json's messages name the problem and its position, never secret values: our
    // secret fields report base64 errors without the input.
    serde_json::from_slice(body).map_err(|e| Error::Decode {
        endpoint: endpoint.to_owned(),
        reason: e.to_string(),
    })
}

/// Reads an error answer into an [`Error`] (body capped at 1 MiB, as the SDK reads it).
async fn read_error(response: reqwest::Response, endpoint: &str) -> Error {
    let status = response.status().as_u16();
    let content_type = content_type(&response).map(str::to_owned);
    match read_body_capped(response, MAX_BODY, endpoint).await {
        Ok(body) => error_from_response(status, content_type.as_deref(), &body),
        Err(err) => err,
    }
}

/// Reads a whole body; more than `limit` bytes is an error.
async fn read_body(
    response: reqwest::Response,
    limit: usize,
    endpoint: &str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    read_body_inner(response, limit, endpoint, false).await
}

/// Reads at most `limit` bytes of a body and drops the rest.
async fn read_body_capped(
    response: reqwest::Response,
    limit: usize,
    endpoint: &str,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    read_body_inner(response, limit, endpoint, true).await
}

/// Reads a body into a buffer that is wiped on drop and never reallocated in place: when it
/// must grow, the contents move to a new buffer and the old one is wiped.
async fn read_body_inner(
    mut response: reqwest::Response,
    limit: usize,
    endpoint: &str,
    truncate: bool,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut buf = Zeroizing::new(Vec::with_capacity(declared.unwrap_or(512).min(limit)));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| error_from_reqwest(&e, endpoint))?
    {
        let room = limit - buf.len();
        if chunk.len() > room {
            if truncate {
                extend_wiped(&mut buf, chunk.get(..room).unwrap_or_default());
                break;
            }
            return Err(Error::Decode {
                endpoint: endpoint.to_owned(),
                reason: format!("response body larger than {limit} bytes"),
            });
        }
        extend_wiped(&mut buf, &chunk);
    }
    Ok(buf)
}

fn extend_wiped(buf: &mut Zeroizing<Vec<u8>>, data: &[u8]) {
    let needed = buf.len() + data.len();
    if needed > buf.capacity() {
        let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(buf.capacity() * 2)));
        bigger.extend_from_slice(buf);
        *buf = bigger; // the old buffer is wiped as it drops
    }
    buf.extend_from_slice(data);
}

/// Parses an NDJSON listing of older servers: one object per line with the name under
/// `field` (matched case-insensitively: servers up to v0.17 wrote `Name`), or an `error`.
fn legacy_list(body: &[u8], field: &str, endpoint: &str) -> Result<Vec<String>, Error> {
    let decode_err = |reason: String| Error::Decode {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let mut names = Vec::new();
    for line in body
        .split(|b| *b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
    {
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(line).map_err(|e| decode_err(e.to_string()))?;
        let get = |name: &str| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str())
        };
        if let Some(error) = get("error").filter(|e| !e.is_empty()) {
            return Err(decode_err(format!("listing failed: {error}")));
        }
        if let Some(name) = get(field) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_ndjson_listings() {
        let body =
            b"{\"name\":\"a\",\"created_at\":\"0001-01-01T00:00:00Z\"}\n{\"name\":\"b\"}\n\n";
        assert_eq!(legacy_list(body, "name", "e").unwrap(), ["a", "b"]);
        let v017 = b"{\"Name\":\"k1\"}\n{\"Name\":\"k2\"}\n";
        assert_eq!(legacy_list(v017, "name", "e").unwrap(), ["k1", "k2"]);
        let ids = b"{\"identity\":\"abc\",\"policy\":\"p\"}\n";
        assert_eq!(legacy_list(ids, "identity", "e").unwrap(), ["abc"]);
        let err =
            legacy_list(b"{\"name\":\"a\"}\n{\"error\":\"boom\"}\n", "name", "e").unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert!(legacy_list(b"not json\n", "name", "e").is_err());
    }

    #[test]
    fn growing_a_wiped_buffer_keeps_the_data() {
        let mut buf = Zeroizing::new(Vec::with_capacity(2));
        extend_wiped(&mut buf, b"ab");
        extend_wiped(&mut buf, b"cdefg");
        extend_wiped(&mut buf, b"h");
        assert_eq!(&buf[..], b"abcdefgh");
    }

    #[test]
    fn builder_validates_its_input() {
        assert_eq!(
            ClientBuilder::new().build().unwrap_err(),
            Error::NoEndpoints
        );
        assert!(matches!(
            Client::builder().endpoint("ftp://x:1").build().unwrap_err(),
            Error::InvalidEndpoint { .. }
        ));
        assert!(matches!(
            Client::builder()
                .endpoint("127.0.0.1:7373")
                .ca_pem("no pem")
                .build()
                .unwrap_err(),
            Error::InvalidCaCertificate { .. }
        ));
        assert!(matches!(
            Client::builder()
                .endpoint("127.0.0.1:7373")
                .ca_file("/nonexistent/ca.pem")
                .build()
                .unwrap_err(),
            Error::Io { .. }
        ));
        assert!(matches!(
            Client::builder()
                .endpoint("127.0.0.1:7373")
                .certificate("x", "y")
                .build()
                .unwrap_err(),
            Error::InvalidCredentials { .. }
        ));
        let client = Client::builder()
            .endpoints(["127.0.0.1:7373", "http://localhost:7374"])
            .build()
            .unwrap();
        assert_eq!(
            client.endpoints(),
            ["https://127.0.0.1:7373", "https://localhost:7374"]
        );
    }

    #[test]
    fn debug_output_hides_credentials() {
        let b = ClientBuilder::new()
            .certificate("CERT", "SUPER-SECRET-KEY")
            .endpoint("h:1");
        let text = format!("{b:?}");
        assert!(!text.contains("SUPER-SECRET"), "{text}");
        assert!(text.contains("certificate"), "{text}");
    }
}
