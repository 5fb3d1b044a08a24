//! A server on 127.0.0.1 that answers HTTPS (or plain HTTP) requests with a test's handler: the
//! scaffold of the in-repo fakes of the keystore vendors' APIs (GCP, Azure, Fortanix, Thales,
//! Entrust), which have no emulator that runs here.
//!
//! The server presents the committed test PKI (`testdata/pki/server.{crt,key}`, for
//! `127.0.0.1` and `localhost`, signed by `testdata/pki/ca.crt`), as the real appliances present
//! their own CA's certificate. It can be stopped and started again on the same port, to test
//! a backend that was down and comes back.
//!
//! The handler sees each [`Request`] whole and returns a [`Response`]; a fake keeps its state
//! behind a mutex inside the handler. It runs on the server's tasks, so it must not block for
//! long; a response may ask to be delayed.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub mod azure;
pub mod entrust;
pub mod fortanix;
pub mod gcp;
pub mod gemalto;

/// A request as the handler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, still percent-encoded as sent.
    pub path: String,
    /// The query string's pairs, percent-decoded, in order.
    pub query: Vec<(String, String)>,
    /// Header names (lower case) and values.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path, percent-decoded.
    pub fn decoded_path(&self) -> String {
        percent_encoding::percent_decode_str(&self.path)
            .decode_utf8_lossy()
            .into_owned()
    }

    /// The body as JSON, or `None` when it is not JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A response of the handler.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers to send.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Response {
    /// A response with a status and no body.
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// A JSON response.
    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(body).expect("JSON values serialize"),
            delay: Duration::ZERO,
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Delays the answer.
    pub fn delayed(mut self, delay: Duration) -> Response {
        self.delay = delay;
        self
    }
}

/// What answers requests.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// `testdata/pki` of the repository.
pub fn pki_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/pki")
}

/// The CA certificate (PEM file) that signed the fake's certificate.
pub fn ca_file() -> PathBuf {
    pki_dir().join("ca.crt")
}

/// A running fake server.
pub struct FakeServer {
    addr: SocketAddr,
    tls: bool,
    handler: Handler,
    stop: Option<watch::Sender<bool>>,
    requests: Arc<AtomicUsize>,
}

impl FakeServer {
    /// Starts an HTTPS server on 127.0.0.1 (a free port) with the test PKI.
    pub async fn https(handler: Handler) -> FakeServer {
        Self::start(handler, true).await
    }

    /// Starts a plain HTTP server on 127.0.0.1 (a free port), for endpoints that are HTTP in
    /// real deployments too (instance metadata services).
    pub async fn http(handler: Handler) -> FakeServer {
        Self::start(handler, false).await
    }

    async fn start(handler: Handler, tls: bool) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let mut server = FakeServer {
            addr,
            tls,
            handler,
            stop: None,
            requests: Arc::new(AtomicUsize::new(0)),
        };
        server.serve(listener);
        server
    }

    /// `https://127.0.0.1:<port>` (or `http://…`).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests were answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Stops accepting and closes open connections: clients then see connections refused.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        // Let the accept loop and the connection tasks see it.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// Starts answering again, on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => panic!("cannot bind {} again: {err}", self.addr),
            }
        };
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop, stopped) = watch::channel(false);
        self.stop = Some(stop);
        let acceptor = self
            .tls
            .then(|| tokio_rustls::TlsAcceptor::from(tls_config()));
        let handler = self.handler.clone();
        let requests = self.requests.clone();
        tokio::spawn(async move {
            let mut stopped_accept = stopped.clone();
            loop {
                let tcp = tokio::select! {
                    _ = stopped_accept.changed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => tcp,
                        Err(_) => continue,
                    },
                };
                let handler = handler.clone();
                let requests = requests.clone();
                let acceptor = acceptor.clone();
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let handler = handler.clone();
                        let requests = requests.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                answer(req, &handler, &requests).await,
                            )
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(acceptor) => {
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let conn =
                                http.serve_connection(hyper_util::rt::TokioIo::new(tls), service);
                            tokio::select! { _ = conn => {}, _ = stopped.changed() => {} }
                        }
                        None => {
                            let conn =
                                http.serve_connection(hyper_util::rt::TokioIo::new(tcp), service);
                            tokio::select! { _ = conn => {}, _ = stopped.changed() => {} }
                        }
                    }
                });
            }
        });
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    handler: &Handler,
    requests: &AtomicUsize,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let query = parts
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let decode = |s: &str| {
                        percent_encoding::percent_decode_str(&s.replace('+', " "))
                            .decode_utf8_lossy()
                            .into_owned()
                    };
                    (decode(k), decode(v))
                })
                .collect()
        })
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let request = Request {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query,
        headers,
        body,
    };
    let response = handler(&request);
    requests.fetch_add(1, Ordering::SeqCst);
    if !response.delay.is_zero() {
        tokio::time::sleep(response.delay).await;
    }
    let mut builder = hyper::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .expect("a valid response")
}

fn tls_config() -> Arc<rustls::ServerConfig> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let dir = pki_dir();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.crt"))
        .expect("testdata/pki/server.crt")
        .map(|c| c.expect("a certificate"))
        .collect();
    let key =
        PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("testdata/pki/server.key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the test certificate");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_stops_and_comes_back() {
        let handler: Handler = Arc::new(|req: &Request| {
            Response::json(
                201,
                &serde_json::json!({"path": req.path, "q": req.query("a"), "body": req.json()}),
            )
        });
        let mut server = FakeServer::http(handler).await;
        let url = format!("{}/x/y?a=1%202", server.url());
        let reply = get(&url).await.unwrap();
        assert!(reply.contains("\"q\":\"1 2\""), "{reply}");
        server.stop().await;
        assert!(get(&url).await.is_err());
        server.restart().await;
        assert!(get(&url).await.is_ok());
        assert_eq!(server.requests(), 2);
    }

    /// A minimal HTTP/1.1 GET, to test the scaffold without a client library.
    async fn get(url: &str) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut tcp = tokio::net::TcpStream::connect(host).await?;
        tcp.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut out = String::new();
        tcp.read_to_string(&mut out).await?;
        Ok(out)
    }
}
