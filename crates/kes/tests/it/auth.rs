//! Client authentication: mutual TLS, proof of key possession, `tls.auth`, `skip_auth`,
//! server certificate rules.

use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::{Kes, Who, client, config, pki, send, shared_testdata};

/// Presents one certificate with another certificate's private key.
#[derive(Debug)]
struct Mismatched(Arc<CertifiedKey>);

impl ResolvesClientCert for Mismatched {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// The test PKI's CA as the only trusted root.
fn test_ca() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki().join("ca.crt")).unwrap())
        .unwrap();
    roots
}

/// Sends `GET path` over a raw TLS connection whose client presents `cert` signed with `key`;
/// returns what the server answered, or the error.
async fn raw_get(kes: &Kes, cert: &str, key: &str, path: &str) -> Result<String, String> {
    let pki = pki();
    let chain = vec![CertificateDer::from_pem_file(pki.join(cert)).unwrap()];
    let key = PrivateKeyDer::from_pem_file(pki.join(key)).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let signer = provider.key_provider.load_private_key(key).unwrap();
    let certified = Arc::new(CertifiedKey::new(chain, signer));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(test_ca())
        .with_client_cert_resolver(Arc::new(Mismatched(certified)));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(kes.addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out).await {
        Ok(_) if out.is_empty() => Err("connection closed without a reply".into()),
        Ok(_) => Ok(String::from_utf8_lossy(&out).into_owned()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn a_stolen_admin_certificate_without_its_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), ""));
    // The control: the admin's certificate with its own key works over the same raw path.
    let ok = raw_get(&kes, "admin.crt", "admin.key", "/v1/status")
        .await
        .unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    // The admin's certificate signed with the app's key: the handshake signature fails, and
    // the client gets the server's alert (written although the handshake failed).
    let err = raw_get(&kes, "admin.crt", "app.key", "/v1/status")
        .await
        .unwrap_err();
    assert!(err.contains("received fatal alert"), "{err}");
    // Same in verifying mode.
    drop(kes);
    let kes = Kes::start(
        dir.path(),
        &config(&dir.path().join("keys"), "").replace(
            "tls:\n",
            &format!(
                "tls:\n  auth: on\n  ca: {}\n",
                pki().join("ca.crt").display()
            ),
        ),
    );
    let res = raw_get(&kes, "admin.crt", "app.key", "/v1/status").await;
    assert!(
        res.is_err() || !res.as_ref().unwrap().contains(" 200 "),
        "{res:?}"
    );
}

/// A client configuration for `admin.crt` speaking `version` that keeps sessions (rustls'
/// in-memory cache) to resume them.
fn admin_config(version: &'static rustls::SupportedProtocolVersion) -> Arc<rustls::ClientConfig> {
    let pki = pki();
    let chain = vec![CertificateDer::from_pem_file(pki.join("admin.crt")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(pki.join("admin.key")).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(test_ca())
    .with_client_auth_cert(chain, key)
    .unwrap();
    Arc::new(config)
}

/// `GET /v1/status` on a new connection with `config`, the request sent `after` the handshake;
/// returns how the handshake went and the reply. Bounded: a server that waits for the client
/// while the client waits for the server fails the test instead of hanging it.
async fn status_once(
    kes: &Kes,
    config: &Arc<rustls::ClientConfig>,
    after: std::time::Duration,
) -> (rustls::HandshakeKind, String) {
    let exchange = async {
        let connector = tokio_rustls::TlsConnector::from(config.clone());
        let tcp = tokio::net::TcpStream::connect(kes.addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        tokio::time::sleep(after).await;
        let req = "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        tls.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tls.read_to_end(&mut out).await.unwrap();
        let kind = tls.get_ref().1.handshake_kind().unwrap();
        (kind, String::from_utf8_lossy(&out).into_owned())
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), exchange)
        .await
        .expect("the exchange finished within 5 s")
}

#[tokio::test]
async fn session_tickets_reach_clients_that_send_their_request_at_once_or_later() {
    // After a TLS 1.3 handshake the server holds the session ticket for its first reply; after
    // a TLS 1.2 one, whose last flight may be the server's, nothing waits. Either way every
    // request is answered, at once or late, and the next connection resumes.
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), ""));
    let late = std::time::Duration::from_millis(300);
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        for first_after in [std::time::Duration::ZERO, late] {
            let config = admin_config(version);
            let (first, reply) = status_once(&kes, &config, first_after).await;
            assert_eq!(first, rustls::HandshakeKind::Full, "{version:?}");
            assert!(reply.starts_with("HTTP/1.1 200"), "{version:?}: {reply}");
            for after in [std::time::Duration::ZERO, late, std::time::Duration::ZERO] {
                let (kind, reply) = status_once(&kes, &config, after).await;
                assert_eq!(kind, rustls::HandshakeKind::Resumed, "{version:?}");
                assert!(reply.starts_with("HTTP/1.1 200"), "{version:?}: {reply}");
            }
        }
    }
}

#[tokio::test]
async fn clients_without_a_certificate_cannot_connect() {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), ""));
    let res = client(Who::Anonymous)
        .get(kes.url("/v1/status"))
        .send()
        .await;
    assert!(res.is_err(), "{res:?}");
    let res = client(Who::Anonymous).get(kes.url("/version")).send().await;
    assert!(res.is_err(), "{res:?}");
}

#[tokio::test]
async fn skip_auth_lets_certificate_less_clients_reach_only_that_route() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "api:\n  /v1/ready:\n    skip_auth: true\n    timeout: 20s\n";
    let kes = Kes::start(dir.path(), &config(&dir.path().join("keys"), extra));
    let anon = client(Who::Anonymous);
    let r = send(&anon, "GET", &kes.url("/v1/ready"), None).await;
    assert_eq!(r.status, 200);
    let r = send(&anon, "GET", &kes.url("/v1/status"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (400, "tls: client certificate is required".into())
    );
    let r = send(&anon, "POST", &kes.url("/v1/key/create/x"), None).await;
    assert_eq!(
        (r.status, r.message()),
        (400, "tls: client certificate is required".into())
    );
    // An identity in no policy may use the skipped route too.
    let r = send(&client(Who::Other), "GET", &kes.url("/v1/ready"), None).await;
    assert_eq!(r.status, 200);
    // The timeout override shows in /v1/api.
    let r = send(&client(Who::Admin), "GET", &kes.url("/v1/api"), None).await;
    let ready = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/v1/ready")
        .cloned()
        .unwrap();
    assert_eq!(ready["timeout"], 20);
}

#[tokio::test]
async fn auth_on_verifies_client_chains() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir.path().join("keys"), "").replace(
        "tls:\n",
        &format!(
            "tls:\n  auth: on\n  ca: {}\n",
            pki().join("ca.crt").display()
        ),
    );
    let kes = Kes::start(dir.path(), &cfg);
    let r = send(&client(Who::Admin), "GET", &kes.url("/v1/status"), None).await;
    assert_eq!(r.status, 200);
    // other.crt is self-signed, not issued by the CA.
    assert!(
        client(Who::Other)
            .get(kes.url("/version"))
            .send()
            .await
            .is_err()
    );
    drop(kes);
    // `--auth off` on the command line overrides the file.
    let kes = Kes::try_start(dir.path(), &cfg, &["--auth", "off"]).unwrap();
    let r = send(&client(Who::Other), "GET", &kes.url("/version"), None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn server_certificate_needs_a_san() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir.path().join("keys"), "")
        .replace("server.key", "nosan.key")
        .replace("server.crt", "nosan.crt");
    let err = Kes::try_start(dir.path(), &cfg, &[]).err().unwrap();
    assert!(
        err.contains("certificate does not contain any DNS or IP address as SAN"),
        "{err}"
    );
}

#[tokio::test]
async fn encrypted_private_key_with_password() {
    let data = shared_testdata();
    let certs = data.join("kes-interop/certs");
    let dir = tempfile::tempdir().unwrap();
    let cfg = |password: &str| {
        config(&dir.path().join("keys"), "")
            .replace(
                &format!("key: {}", pki().join("server.key").display()),
                &format!(
                    "key: {}\n  password: \"{password}\"",
                    certs.join("encrypted-server.key").display()
                ),
            )
            .replace(
                &pki().join("server.crt").display().to_string(),
                &certs.join("encrypted-server.crt").display().to_string(),
            )
    };
    let err = Kes::try_start(dir.path(), &cfg("wrong password"), &[])
        .err()
        .unwrap();
    assert!(err.contains("decryption password incorrect"), "{err}");
    let kes = Kes::start(dir.path(), &cfg("correct horse battery"));
    // The server presents the decrypted key's certificate.
    let r = client_trusting(&certs.join("encrypted-server.crt"))
        .get(kes.url("/version"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn client_trusting(cert: &std::path::Path) -> reqwest::Client {
    let pki = pki();
    let mut pem = std::fs::read(pki.join("admin.crt")).unwrap();
    pem.extend(std::fs::read(pki.join("admin.key")).unwrap());
    reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(cert).unwrap()).unwrap()])
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}
