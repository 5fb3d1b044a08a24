//! End-to-end tests against a small HTTPS server on 127.0.0.1 that requires a client
//! certificate (accepting any, as KES does with `tls.auth: off`), computes the caller's
//! identity from it and answers from a per-test handler.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use kes_api::{encode_error, encode_json};
use kes_client::{ApiKey, Client, ClientBuilder, Error, RetryPolicy, TlsFailure};
use rustls::DigitallySignedStruct;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use sha2::Digest;
use tokio::net::TcpListener;
use zeroize::Zeroizing;

// ---- test server ------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Req {
    method: String,
    /// The path as sent (still percent-encoded).
    path: String,
    content_type: Option<String>,
    body: Vec<u8>,
    identity: Option<String>,
}

struct Resp {
    status: u16,
    content_type: Option<&'static str>,
    chunks: Vec<Vec<u8>>,
    delay: Duration,
    location: Option<String>,
}

impl Resp {
    /// An immediate reply of `status` with `content_type` (none: no header) and no
    /// `location`, whose body is sent in `chunks`.
    fn new(status: u16, content_type: Option<&'static str>, chunks: Vec<Vec<u8>>) -> Self {
        Resp {
            status,
            content_type,
            chunks,
            delay: Duration::ZERO,
            location: None,
        }
    }

    fn json(status: u16, body: Vec<u8>) -> Self {
        Self::new(status, Some("application/json"), vec![body])
    }

    fn ok_json<T: kes_api::WireBody>(body: &T) -> Self {
        Self::json(200, encode_json(body))
    }

    fn ok() -> Self {
        Self::new(200, None, vec![])
    }

    /// A 200 NDJSON stream (a log, a legacy listing) sent in `chunks`.
    fn ndjson(chunks: Vec<Vec<u8>>) -> Self {
        Self::new(200, Some("application/x-ndjson"), chunks)
    }

    fn error(status: u16, message: &str) -> Self {
        Self::json(status, encode_error(message))
    }
}

type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

struct TestServer {
    addr: SocketAddr,
    ca_pem: String,
    requests: Arc<Mutex<Vec<Req>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    fn requests(&self) -> Vec<Req> {
        self.requests.lock().unwrap().clone()
    }

    /// A client builder trusting this server, with fast retries.
    fn client(&self) -> ClientBuilder {
        Client::builder()
            .endpoint(self.endpoint())
            .ca_pem(&self.ca_pem)
            .retry_policy(fast_retries())
    }

    /// A [`TestServer::client`] authenticating with a fresh API key.
    fn api_key_client(&self) -> Client {
        self.client()
            .api_key(ApiKey::generate().unwrap())
            .build()
            .unwrap()
    }
}

/// A client with a fresh API key for all of `servers`, in order (so it fails over from one to
/// the next), trusting each one's CA, with fast retries.
fn client_for(servers: &[&TestServer]) -> Client {
    servers
        .iter()
        .fold(Client::builder(), |builder, server| {
            builder.endpoint(server.endpoint()).ca_pem(&server.ca_pem)
        })
        .api_key(ApiKey::generate().unwrap())
        .retry_policy(fast_retries())
        .build()
        .unwrap()
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(1),
        max_jitter: Duration::from_millis(2),
    }
}

/// Accepts any client certificate but checks the handshake signatures (KES `tls.auth: off`).
#[derive(Debug)]
struct AnyClientCert(Arc<rustls::crypto::CryptoProvider>);

impl ClientCertVerifier for AnyClientCert {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

fn identity_of(cert_der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).unwrap();
    hex::encode(sha2::Sha256::digest(cert.tbs_certificate.subject_pki.raw))
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn server_pki() -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kes-client test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();

    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf_params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    (ca_cert.pem(), vec![leaf.der().clone()], key)
}

async fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> TestServer {
    start_with_alpn(handler, &[b"h2", b"http/1.1"]).await
}

/// A server that offers the ALPN protocols `alpn` (HTTP/2 and HTTP/1.1 by [`start`]).
async fn start_with_alpn(
    handler: impl Fn(&Req) -> Resp + Send + Sync + 'static,
    alpn: &[&[u8]],
) -> TestServer {
    let handler: Handler = Arc::new(handler);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let (ca_pem, chain, key) = server_pki();
    let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(Arc::new(AnyClientCert(provider)))
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let identity = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| identity_of(c));
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let handler = handler.clone();
                        let log = log.clone();
                        let identity = identity.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes().to_vec())
                                .unwrap_or_default();
                            let req = Req {
                                method: parts.method.to_string(),
                                path: parts.uri.path().to_string(),
                                content_type: parts
                                    .headers
                                    .get("content-type")
                                    .map(|v| v.to_str().unwrap().to_string()),
                                body,
                                identity,
                            };
                            log.lock().unwrap().push(req.clone());
                            let resp = handler(&req);
                            tokio::time::sleep(resp.delay).await;
                            let frames = resp
                                .chunks
                                .into_iter()
                                .map(|c| Ok::<_, Infallible>(Frame::data(Bytes::from(c))));
                            let mut builder = hyper::Response::builder().status(resp.status);
                            if let Some(ct) = resp.content_type {
                                builder = builder.header("content-type", ct);
                            }
                            if let Some(location) = resp.location {
                                builder = builder.header("location", location);
                            }
                            Ok::<_, Infallible>(
                                builder
                                    .body(StreamBody::new(futures_util::stream::iter(frames)))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    TestServer {
        addr,
        ca_pem,
        requests,
        task,
    }
}

/// A port on 127.0.0.1 where nothing listens.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

fn self_describe(req: &Req) -> Resp {
    Resp::ok_json(&kes_api::SelfDescribeResponse {
        identity: req.identity.clone().unwrap_or_default(),
        admin: true,
        ..Default::default()
    })
}

// ---- authentication ---------------------------------------------------------------------

#[tokio::test]
async fn api_key_presents_a_certificate_with_the_key_identity() {
    let server = start(self_describe).await;
    let api_key = ApiKey::generate().unwrap();
    let want = api_key.identity();
    let client = server.client().api_key(api_key).build().unwrap();
    let me = client.describe_self().await.unwrap();
    assert_eq!(me.identity, want);
    assert!(me.admin);

    // The documented vector of spec §5.
    let api_key = ApiKey::parse("kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw").unwrap();
    let client = server.client().api_key(api_key).build().unwrap();
    assert_eq!(
        client.describe_self().await.unwrap().identity,
        "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb"
    );
}

#[tokio::test]
async fn pem_certificate_and_key_are_presented() {
    let server = start(self_describe).await;
    for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ED25519] {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let want = identity_of(cert.der());
        let client = server
            .client()
            .certificate(cert.pem(), key.serialize_pem())
            .build()
            .unwrap();
        assert_eq!(client.describe_self().await.unwrap().identity, want);
    }
}

#[tokio::test]
async fn a_server_that_requires_a_certificate_rejects_a_client_without_one() {
    // A TLS 1.3 server refuses the client after the handshake, with an alert that rustls
    // reports as a value over HTTP/1.1 and that reaches us as text over HTTP/2: both are
    // the same variant.
    for alpn in [&[b"h2".as_slice(), b"http/1.1"][..], &[b"http/1.1"]] {
        let server = start_with_alpn(self_describe, alpn).await;
        let client = server
            .client()
            .retry_policy(RetryPolicy::none())
            .build()
            .unwrap();
        let err = client.describe_self().await.unwrap_err();
        let Error::Tls { failure, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            failure,
            &TlsFailure::ClientCertificateRejected {
                alert: "CertificateRequired".into()
            },
            "{alpn:?}"
        );
        assert_eq!(server.hits(), 0);
    }
}

// ---- server certificate verification -----------------------------------------------------

#[tokio::test]
async fn an_untrusted_server_certificate_is_a_tls_error_unless_insecure() {
    let server = start(|_| Resp::ok_json(&kes_api::VersionResponse::default())).await;
    let api_key = ApiKey::generate().unwrap();
    let client = Client::builder()
        .endpoint(server.endpoint())
        .api_key(api_key)
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    let err = client.version().await.unwrap_err();
    let Error::Tls { endpoint, failure } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(endpoint, &format!("https://{}", server.endpoint()));
    assert_eq!(failure, &TlsFailure::UnknownIssuer);
    assert_eq!(server.hits(), 0);
    // TLS failures are not retried (they would fail the same way).

    let insecure = Client::builder()
        .endpoint(server.endpoint())
        .api_key(ApiKey::generate().unwrap())
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    insecure.version().await.unwrap();
    assert_eq!(server.hits(), 1);
}

// ---- wire format ------------------------------------------------------------------------

#[tokio::test]
async fn requests_match_the_go_sdk_wire_format() {
    let server = start(|req| {
        let p = req.path.as_str();
        if p.starts_with("/v1/key/encrypt/") {
            let r = kes_api::decode_encrypt_request(&req.body).unwrap();
            let mut ct = r.plaintext.to_vec();
            ct.extend_from_slice(&r.context);
            Resp::ok_json(&kes_api::EncryptResponse {
                ciphertext: ct,
                version: None,
            })
        } else if p.starts_with("/v1/key/decrypt/") {
            let r = kes_api::decode_decrypt_request(&req.body).unwrap();
            let plain = r.ciphertext[..r.ciphertext.len() - r.context.len()].to_vec();
            Resp::json(
                200,
                encode_json(&kes_api::DecryptResponse {
                    plaintext: Zeroizing::new(plain),
                }),
            )
        } else if p.starts_with("/v1/key/generate/") {
            let r = kes_api::decode_generate_request(&req.body).unwrap();
            Resp::json(
                200,
                encode_json(&kes_api::GenerateResponse {
                    plaintext: Zeroizing::new(vec![7; 32]),
                    ciphertext: r.context,
                    version: None,
                }),
            )
        } else if p.starts_with("/v1/key/hmac/") {
            let r = kes_api::decode_hmac_request(&req.body).unwrap();
            Resp::ok_json(&kes_api::HmacResponse {
                hmac: r.message.to_vec(),
                version: None,
            })
        } else if p.starts_with("/v1/key/describe/") {
            Resp::ok_json(&kes_api::DescribeKeyResponse {
                name: "a b/c".into(),
                algorithm: "AES256".into(),
                ..Default::default()
            })
        } else if p.starts_with("/v1/key/list") {
            Resp::json(200, br#"{"names":null}"#.to_vec())
        } else if p.starts_with("/v1/identity/list") {
            Resp::ok_json(&kes_api::ListIdentitiesResponse {
                identities: vec!["x".into()],
                continue_at: String::new(),
            })
        } else if p.starts_with("/v1/policy/list") {
            Resp::ok_json(&kes_api::ListPoliciesResponse {
                names: vec!["p".into()],
                continue_at: String::new(),
            })
        } else if p == "/v1/status" {
            Resp::ok_json(&kes_api::StatusResponse {
                version: "v1".into(),
                uptime: 5,
                ..Default::default()
            })
        } else if p == "/v1/metrics" {
            Resp::new(200, Some("text/plain"), vec![b"kes_up 1\n".to_vec()])
        } else if p == "/v1/api" {
            Resp::ok_json(&vec![kes_api::ApiRoute {
                method: "GET".into(),
                path: "/v1/status".into(),
                max_body: 0,
                timeout: 15,
            }])
        } else {
            Resp::ok()
        }
    })
    .await;
    let client = server.api_key_client();

    client.create_key("k1").await.unwrap();
    client.import_key("k2", &[0u8; 32], "AES256").await.unwrap();
    assert_eq!(
        client.encrypt("k1", b"hello", b"ctx").await.unwrap(),
        b"helloctx"
    );
    assert_eq!(
        &client.decrypt("k1", b"helloctx", b"ctx").await.unwrap()[..],
        b"hello"
    );
    let dek = client.generate_key("k1", b"").await.unwrap();
    assert_eq!(&dek.plaintext[..], &[7u8; 32]);
    assert_eq!(client.hmac("k1", b"msg").await.unwrap(), b"msg");
    assert_eq!(client.describe_key("a b/c").await.unwrap().name, "a b/c");
    assert!(client.list_keys("").await.unwrap().names.is_empty());
    client.list_keys("my*").await.unwrap();
    client.delete_key("k1").await.unwrap();
    assert_eq!(client.list_identities("").await.unwrap().identities, ["x"]);
    assert_eq!(client.list_policies("p").await.unwrap().names, ["p"]);
    client
        .write_policy(
            "p",
            &kes_api::PolicyWriteRequest {
                allow: vec!["/v1/key/*".into()],
                deny: vec![],
            },
        )
        .await
        .unwrap();
    client.assign_policy("p", "abc").await.unwrap();
    client.delete_policy("p").await.unwrap();
    client.delete_identity("abc").await.unwrap();
    assert_eq!(client.status().await.unwrap().uptime, 5);
    assert_eq!(client.metrics().await.unwrap(), "kes_up 1\n");
    assert_eq!(client.api().await.unwrap()[0].timeout, 15);
    client.ready().await.unwrap();

    let seen: Vec<(String, String, Option<String>, String)> = server
        .requests()
        .into_iter()
        .map(|r| {
            (
                r.method,
                r.path,
                r.content_type,
                String::from_utf8(r.body).unwrap(),
            )
        })
        .collect();
    let json = Some("application/json".to_string());
    let want: Vec<(&str, &str, Option<String>, &str)> = vec![
        ("POST", "/v1/key/create/k1", None, ""),
        (
            "POST",
            "/v1/key/import/k2",
            json.clone(),
            "{\"key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"cipher\":\"AES256\"}\n",
        ),
        (
            "POST",
            "/v1/key/encrypt/k1",
            json.clone(),
            "{\"plaintext\":\"aGVsbG8=\",\"context\":\"Y3R4\"}\n",
        ),
        (
            "POST",
            "/v1/key/decrypt/k1",
            json.clone(),
            "{\"ciphertext\":\"aGVsbG9jdHg=\",\"context\":\"Y3R4\"}\n",
        ),
        ("POST", "/v1/key/generate/k1", json.clone(), "{}\n"),
        ("PUT", "/v1/key/hmac/k1", None, "{\"message\":\"bXNn\"}\n"),
        ("GET", "/v1/key/describe/a%20b%2Fc", None, ""),
        ("GET", "/v1/key/list", None, ""),
        ("GET", "/v1/key/list/my%2A", None, ""),
        ("DELETE", "/v1/key/delete/k1", None, ""),
        ("GET", "/v1/identity/list", None, ""),
        ("GET", "/v1/policy/list/p", None, ""),
        (
            "POST",
            "/v1/policy/write/p",
            json.clone(),
            "{\"allow\":[\"/v1/key/*\"],\"deny\":[]}\n",
        ),
        (
            "POST",
            "/v1/policy/assign/p",
            json.clone(),
            "{\"identity\":\"abc\"}\n",
        ),
        ("DELETE", "/v1/policy/delete/p", None, ""),
        ("DELETE", "/v1/identity/delete/abc", None, ""),
        ("GET", "/v1/status", None, ""),
        ("GET", "/v1/metrics", None, ""),
        ("GET", "/v1/api", None, ""),
        ("GET", "/v1/ready", None, ""),
    ];
    assert_eq!(seen.len(), want.len(), "{seen:#?}");
    for (got, want) in seen.iter().zip(&want) {
        assert_eq!(
            (got.0.as_str(), got.1.as_str(), &got.2, got.3.as_str()),
            (want.0, want.1, &want.2, want.3)
        );
    }
}

#[tokio::test]
async fn dot_segments_are_refused_before_sending() {
    let server = start(|_| Resp::ok()).await;
    let client = server.api_key_client();
    assert!(matches!(
        client.delete_key("..").await,
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!(server.hits(), 0);
}

// ---- errors -----------------------------------------------------------------------------

#[tokio::test]
async fn error_answers_map_to_typed_errors() {
    let server = start(|req| match req.path.rsplit('/').next().unwrap() {
        "exists" => Resp::error(400, "key already exists"),
        "missing" => Resp::error(404, "key does not exist"),
        "denied" => Resp::error(403, "prohibited by policy"),
        "forged" => Resp::error(400, "decryption failed: ciphertext is not authentic"),
        "nopolicy" => Resp::error(404, "policy does not exist"),
        "noid" => Resp::error(404, "identity does not exist"),
        "badname" => Resp::error(
            400,
            "key name 'x' is empty, too long or contains invalid characters",
        ),
        _ => Resp::new(
            404,
            Some("text/plain; charset=utf-8"),
            vec![b"404 page not found\n".to_vec()],
        ),
    })
    .await;
    let client = server.api_key_client();
    assert_eq!(
        client.create_key("exists").await.unwrap_err(),
        Error::KeyExists
    );
    assert_eq!(
        client.describe_key("missing").await.unwrap_err(),
        Error::KeyNotFound
    );
    assert_eq!(
        client.delete_key("denied").await.unwrap_err(),
        Error::NotAllowed
    );
    assert_eq!(
        client.decrypt("forged", b"x", b"").await.unwrap_err(),
        Error::DecryptionFailed
    );
    assert_eq!(
        client.read_policy("nopolicy").await.unwrap_err(),
        Error::PolicyNotFound
    );
    assert_eq!(
        client.describe_identity("noid").await.unwrap_err(),
        Error::IdentityNotFound
    );
    let err = client.create_key("badname").await.unwrap_err();
    assert_eq!(
        err,
        Error::Api {
            status: 400,
            message: "key name 'x' is empty, too long or contains invalid characters".into()
        }
    );
    assert_eq!(
        client.hmac("other", b"m").await.unwrap_err(),
        Error::Api {
            status: 404,
            message: "404 page not found".into()
        }
    );
    // 4xx answers are neither retried nor failed over.
    assert_eq!(server.hits(), 8);
}

#[tokio::test]
async fn a_200_answer_that_is_not_the_api_shape_is_a_decode_error() {
    let server = start(|_| Resp::json(200, b"{\"plaintext\":\"AAA\"}".to_vec())).await;
    let client = server.api_key_client();
    let err = client.decrypt("k", b"x", b"").await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert!(!err.to_string().contains("AAA"), "{err}");
}

// ---- retries and failover ---------------------------------------------------------------

#[tokio::test]
async fn a_503_is_retried_on_the_same_endpoint() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let server = start(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            Resp::error(503, "busy")
        } else {
            Resp::ok_json(&kes_api::VersionResponse {
                version: "v".into(),
                commit: "c".into(),
            })
        }
    })
    .await;
    let client = server.api_key_client();
    assert_eq!(client.version().await.unwrap().version, "v");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn retries_stop_after_the_policy_limit_and_only_for_503() {
    let server = start(|req| {
        if req.path == "/v1/ready" {
            Resp::error(503, "key store is unavailable")
        } else {
            Resp::error(500, "failed")
        }
    })
    .await;
    let client = server.api_key_client();
    assert_eq!(
        client.ready().await.unwrap_err(),
        Error::Api {
            status: 503,
            message: "key store is unavailable".into()
        }
    );
    assert_eq!(server.hits(), 3, "1 attempt + 2 retries");
    assert!(client.status().await.is_err());
    assert_eq!(server.hits(), 4, "a 500 is not retried");
}

#[tokio::test]
async fn failover_to_the_next_endpoint_when_the_first_refuses_connections() {
    let server = start(self_describe).await;
    let dead = closed_port().await;
    let api_key = ApiKey::generate().unwrap();
    let want = api_key.identity();
    let client = Client::builder()
        .endpoints([dead.clone(), server.endpoint()])
        .ca_pem(&server.ca_pem)
        .api_key(api_key)
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    assert_eq!(client.describe_self().await.unwrap().identity, want);
    assert_eq!(server.hits(), 1);

    // With the dead endpoint alone, the error names it.
    let lonely = Client::builder()
        .endpoint(dead.clone())
        .api_key(ApiKey::generate().unwrap())
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    let err = lonely.describe_self().await.unwrap_err();
    let Error::Connect { endpoint, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(endpoint, &format!("https://{dead}"));
}

#[tokio::test]
async fn failover_on_5xx_but_not_on_501() {
    let broken = start(|req| {
        if req.path == "/version" {
            Resp::error(501, "not implemented")
        } else {
            Resp::error(502, "failed to read key")
        }
    })
    .await;
    let healthy = start(|_| {
        Resp::ok_json(&kes_api::VersionResponse {
            version: "ok".into(),
            commit: String::new(),
        })
    })
    .await;
    // One CA per server: trust both.
    let client = client_for(&[&broken, &healthy]);
    client.ready().await.unwrap();
    assert_eq!((broken.hits(), healthy.hits()), (1, 1));
    // The broken endpoint is now cooling down: the next request goes to the healthy one
    // first, and 501 from the broken one is never seen.
    assert_eq!(client.version().await.unwrap().version, "ok");
    assert_eq!((broken.hits(), healthy.hits()), (1, 2));

    // Alone, the 501 is returned as is (no failover target, no retry).
    let only_broken = broken.api_key_client();
    assert_eq!(
        only_broken.version().await.unwrap_err(),
        Error::Api {
            status: 501,
            message: "not implemented".into()
        }
    );
}

#[tokio::test]
async fn all_endpoints_failing_returns_the_last_error() {
    let a = start(|_| Resp::error(502, "failed to read key")).await;
    let b = start(|_| Resp::error(502, "failed to read key")).await;
    let client = client_for(&[&a, &b]);
    assert_eq!(
        client.describe_key("k").await.unwrap_err(),
        Error::Api {
            status: 502,
            message: "failed to read key".into()
        }
    );
    assert_eq!((a.hits(), b.hits()), (1, 1));
    // Both are cooling down now; the second pass still tries them.
    assert!(client.describe_key("k").await.is_err());
    assert_eq!(a.hits() + b.hits(), 4);
}

#[tokio::test]
async fn slow_answers_time_out() {
    let server = start(|_| Resp {
        delay: Duration::from_secs(5),
        ..Resp::ok()
    })
    .await;
    let client = server
        .client()
        .api_key(ApiKey::generate().unwrap())
        .timeout(Duration::from_millis(200))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let err = client.create_key("k").await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

// ---- log streams ------------------------------------------------------------------------

#[tokio::test]
async fn audit_log_events_are_streamed_and_decoded() {
    let server = start(|req| {
        assert_eq!(req.path, "/v1/log/audit");
        let first = br#"{"time":"2024-01-12T10:39:20.886816Z","request":{"ip":"127.0.0.1","path":"/v1/key/create/k","identity":"abc"},"response":{"code":200,"time":3}}"#;
        let second = br#"{"time":"2024-01-12T10:39:21Z","request":{"path":"/v1/key/delete/k"},"response":{"code":200,"time":1}}"#;
        let mut all = first.to_vec();
        all.push(b'\n');
        all.extend_from_slice(second);
        all.push(b'\n');
        // Split in the middle of a line, as a network may.
        let (a, b) = all.split_at(50);
        Resp::ndjson(vec![a.to_vec(), b.to_vec(), b"\n".to_vec(), b"not json\n".to_vec()])
    })
    .await;
    let client = server.api_key_client();
    let mut events = client.audit_log().await.unwrap();
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(first.request.path, "/v1/key/create/k");
    assert_eq!(first.request.identity.as_deref(), Some("abc"));
    assert_eq!((first.response.code, first.response.time), (200, 3));
    let second = events.next().await.unwrap().unwrap();
    assert_eq!(second.request.path, "/v1/key/delete/k");
    assert_eq!(second.request.ip, None);
    assert!(matches!(
        events.next().await,
        Some(Err(Error::Decode { .. }))
    ));
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn error_log_events_are_streamed() {
    let server = start(|_| {
        Resp::ndjson(vec![
            b"{\"message\":\"one\"}\n{\"message\":\"two\"}".to_vec(),
        ])
    })
    .await;
    let client = server.api_key_client();
    let mut events = client.error_log().await.unwrap();
    assert_eq!(events.next().await.unwrap().unwrap().message, "one");
    // A last line without a newline is still delivered when the stream ends.
    assert_eq!(events.next().await.unwrap().unwrap().message, "two");
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn same_origin_redirects_are_followed_others_are_not() {
    let elsewhere = start(|_| Resp::ok_json(&kes_api::EncryptResponse::default())).await;
    let target = format!("https://{}/v1/key/encrypt/k", elsewhere.endpoint());
    // Go KES answers `GET /v1/key/list` with a 301 to `/v1/key/list/`.
    let server = start(move |req| {
        let redirect = |status, to: &str| Resp {
            location: Some(to.to_owned()),
            ..Resp::new(status, Some("text/html; charset=utf-8"), vec![])
        };
        match req.path.as_str() {
            "/v1/key/list" => redirect(301, "/v1/key/list/"),
            "/v1/key/list/" => Resp::ok_json(&kes_api::ListKeysResponse {
                names: vec!["k".into()],
                continue_at: None,
            }),
            "/v1/policy/list" => redirect(301, "/v1/policy/list"),
            _ => redirect(307, &target),
        }
    })
    .await;
    let client = server
        .client()
        .ca_pem(&elsewhere.ca_pem)
        .api_key(ApiKey::generate().unwrap())
        .build()
        .unwrap();
    assert_eq!(client.list_keys("").await.unwrap().names, ["k"]);
    // A redirect to another host is not followed: the plaintext never leaves.
    let err = client.encrypt("k", b"secret", b"").await.unwrap_err();
    assert_eq!(err.status(), Some(307));
    assert_eq!(elsewhere.hits(), 0);
    // Redirect loops end.
    assert_eq!(
        client.list_policies("").await.unwrap_err().status(),
        Some(301)
    );
}

#[tokio::test]
async fn legacy_ndjson_listings_are_understood() {
    let server =
        start(|_| Resp::ndjson(vec![b"{\"name\":\"a\"}\n{\"name\":\"b\"}\n".to_vec()])).await;
    let client = server.api_key_client();
    assert_eq!(client.list_keys("").await.unwrap().names, ["a", "b"]);
}
