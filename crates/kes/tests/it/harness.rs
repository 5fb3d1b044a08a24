//! Starts the real `kes` binary on 127.0.0.1 and talks to it over mutual TLS.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The committed test PKI.
pub fn pki() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/pki")
}

/// The repository's test data (`testdata`: the vectors recorded from the original, the CLI
/// transcript, the test PKI).
pub fn shared_testdata() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    assert!(dir.is_dir(), "test data missing at {}", dir.display());
    dir
}

/// The identity of a PEM certificate file.
pub fn identity_of(cert: &Path) -> String {
    let pem = std::fs::read(cert).unwrap();
    let der = rustls_pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
    kes_crypto::identity_of_certificate(der.as_ref()).unwrap()
}

use rustls_pki_types::pem::PemObject as _;

/// Identity of the committed admin certificate.
pub fn admin_identity() -> String {
    identity_of(&pki().join("admin.crt"))
}

/// Identity of the committed app certificate.
pub fn app_identity() -> String {
    identity_of(&pki().join("app.crt"))
}

/// A config file for the committed PKI: admin = admin.crt, the `app` policy lets app.crt use
/// keys whose names start with `app-`, plus whatever `extra` adds (top-level YAML).
pub fn config(keystore: &Path, extra: &str) -> String {
    let pki = pki();
    format!(
        "admin:\n  identity: {admin}\ntls:\n  key: {key}\n  cert: {cert}\npolicy:\n  app:\n    allow:\n    - /v1/key/create/app-*\n    - /v1/key/generate/app-*\n    - /v1/key/decrypt/app-*\n    - /v1/key/describe/app-*\n    - /v1/status\n    deny:\n    - /v1/key/generate/app-denied*\n    identities:\n    - {app}\nkeystore:\n  fs:\n    path: {ks}\n{extra}",
        admin = admin_identity(),
        app = app_identity(),
        key = pki.join("server.key").display(),
        cert = pki.join("server.crt").display(),
        ks = keystore.display(),
    )
}

/// The default [`config`] of a server in `dir`: keystore `<dir>/keys`, nothing extra.
pub fn default_config(dir: &Path) -> String {
    config(&dir.join("keys"), "")
}

/// A fresh temporary directory and a server started in it with the [`default_config`]. Keep
/// the directory as long as the server.
pub fn start_default() -> (tempfile::TempDir, Kes) {
    let dir = tempfile::tempdir().unwrap();
    let kes = Kes::start(dir.path(), &default_config(dir.path()));
    (dir, kes)
}

/// A running `kes server`.
pub struct Kes {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

/// The path of the `kes` binary under test.
pub fn kes_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kes")
}

impl Kes {
    /// Writes `config` to `<dir>/config.yml` and starts `kes server` on a free loopback port.
    pub fn start(dir: &Path, config: &str) -> Kes {
        Self::try_start(dir, config, &[]).unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// Like [`Kes::start`] with extra arguments; returns the server's stderr on failure.
    pub fn try_start(dir: &Path, config: &str, args: &[&str]) -> Result<Kes, String> {
        let path = dir.join("config.yml");
        std::fs::write(&path, config).unwrap();
        let mut cmd = Command::new(kes_bin());
        cmd.arg("server")
            .arg("--config")
            .arg(&path)
            .arg("--addr")
            .arg("127.0.0.1:0");
        cmd.args(args);
        Self::spawn(cmd, dir)
    }

    /// Like [`Kes::try_start`], with every `AWS_*` variable of the test's environment removed
    /// (for the AWS credential chain) and `env` added (the cloud SDKs' own variables,
    /// `SSL_CERT_FILE`).
    pub fn try_start_env<V: AsRef<std::ffi::OsStr>>(
        dir: &Path,
        config: &str,
        env: &[(&str, V)],
    ) -> Result<Kes, String> {
        let path = dir.join("config.yml");
        std::fs::write(&path, config).unwrap();
        let mut cmd = Command::new(kes_bin());
        cmd.arg("server")
            .arg("--config")
            .arg(&path)
            .arg("--addr")
            .arg("127.0.0.1:0");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_ref())));
        Self::spawn(cmd, dir)
    }

    /// Like [`Kes::start`], with the process's open-file limit (soft and hard) set to `fds`
    /// (by the shell's `ulimit -n`, before `exec`).
    pub fn start_with_fd_limit(dir: &Path, config: &str, fds: u32) -> Kes {
        let path = dir.join("config.yml");
        std::fs::write(&path, config).unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -n {fds} && exec \"$0\" \"$@\""))
            .arg(kes_bin())
            .arg("server")
            .arg("--config")
            .arg(&path)
            .args(["--addr", "127.0.0.1:0"]);
        Self::spawn(cmd, dir).unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// Starts `kes server --dev --addr 127.0.0.1:0`.
    pub fn start_dev(dir: &Path) -> Kes {
        let mut cmd = Command::new(kes_bin());
        cmd.args(["server", "--dev", "--addr", "127.0.0.1:0"]);
        Self::spawn(cmd, dir).unwrap()
    }

    fn spawn(mut cmd: Command, dir: &Path) -> Result<Kes, String> {
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let pipe = child.stderr.take().unwrap();
            let buf = stderr.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(pipe);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if let Some(addr) = line.trim().strip_prefix("Listening on ") {
                        let _ = tx.send(addr.to_owned());
                    }
                    buf.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        {
            let mut pipe = child.stdout.take().unwrap();
            let buf = stdout.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(50)) {
                let addr = addr.parse().unwrap();
                return Ok(Kes {
                    child,
                    addr,
                    stderr,
                    stdout,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!("exited with {status}: {}", stderr.lock().unwrap()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!(
                    "no 'Listening on' line: {}",
                    stderr.lock().unwrap()
                ));
            }
        }
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{}", self.addr, path)
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// What the server wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`HUP`, `TERM`, …).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL and wait.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for the process to exit; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Kes {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Who a client authenticates as.
#[derive(Debug, Clone, Copy)]
pub enum Who {
    /// admin.crt
    Admin,
    /// app.crt
    App,
    /// other.crt (a self-signed certificate in no policy)
    Other,
    /// No client certificate.
    Anonymous,
}

/// A reqwest client trusting the test CA, authenticating as `who`.
pub fn client(who: Who) -> reqwest::Client {
    client_builder(who).build().unwrap()
}

/// The builder behind [`client`], for tests that tune the connection. With `KES_IT_HTTP=1.1`
/// in the environment (the second pass of `scripts/test`), every client speaks HTTP/1.1
/// instead of negotiating HTTP/2, so the suite covers both of the server's HTTP stacks.
pub fn client_builder(who: Who) -> reqwest::ClientBuilder {
    let builder = alpn_client_builder(who);
    if std::env::var("KES_IT_HTTP").as_deref() == Ok("1.1") {
        builder.http1_only()
    } else {
        builder
    }
}

/// A client builder that negotiates the protocol (HTTP/2 with this server) whatever
/// `KES_IT_HTTP` says, for tests about the protocols themselves.
pub fn alpn_client_builder(who: Who) -> reqwest::ClientBuilder {
    let pki = pki();
    let mut builder = reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_certs_only([reqwest::Certificate::from_pem(
            &std::fs::read(pki.join("ca.crt")).unwrap(),
        )
        .unwrap()])
        .timeout(Duration::from_secs(30));
    let name = match who {
        Who::Admin => Some("admin"),
        Who::App => Some("app"),
        Who::Other => Some("other"),
        Who::Anonymous => None,
    };
    if let Some(name) = name {
        let mut pem = std::fs::read(pki.join(format!("{name}.crt"))).unwrap();
        pem.extend(std::fs::read(pki.join(format!("{name}.key"))).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder
}

/// A reply: status, content type and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `message` of an error body.
    pub fn message(&self) -> String {
        self.json()["message"].as_str().unwrap().to_owned()
    }
}

/// Sends a request.
pub async fn send(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client.request(method, url);
    if let Some(body) = body {
        req = req.body(body);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("{url}: {e:?}"));
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = res.bytes().await.unwrap().to_vec();
    Reply {
        status,
        content_type,
        headers,
        body,
    }
}

/// Sends a request without a body; the status of the reply.
pub async fn status(client: &reqwest::Client, method: &str, url: &str) -> u16 {
    send(client, method, url, None).await.status
}

/// Sends a JSON body.
pub async fn send_json(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    body: &serde_json::Value,
) -> Reply {
    send(client, method, url, Some(serde_json::to_vec(body).unwrap())).await
}

/// A rustls client configuration presenting `cert`/`key` (PEM files; none for `None`) and
/// trusting `root` (a PEM certificate).
pub fn tls_client_config(
    identity: Option<(&Path, &Path)>,
    root: &Path,
) -> Arc<rustls::ClientConfig> {
    tls_client_config_versions(identity, root, rustls::DEFAULT_VERSIONS)
}

/// Like [`tls_client_config`] with only the given TLS versions.
pub fn tls_client_config_versions(
    identity: Option<(&Path, &Path)>,
    root: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(root).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(cert).unwrap()],
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// Sends one HTTP/1.1 request with the path exactly as given (no client-side normalisation)
/// over a fresh TLS connection, and reads the whole reply.
pub async fn raw(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
) -> Result<Reply, String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let connector = tokio_rustls::TlsConnector::from(config);
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(body) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    tls.write_all(&bytes).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tls.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    parse_reply(&out)
}

fn parse_reply(out: &[u8]) -> Result<Reply, String> {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {:?}", String::from_utf8_lossy(out)))?;
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut body = out[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.append(
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_str(v.trim()).unwrap(),
            );
        }
    }
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        let mut decoded = Vec::new();
        let mut rest = &body[..];
        loop {
            let pos = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("bad chunk")?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..pos]).unwrap().trim(), 16)
                .map_err(|e| e.to_string())?;
            rest = &rest[pos + 2..];
            if size == 0 {
                break;
            }
            decoded.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = decoded;
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok(Reply {
        status,
        content_type,
        headers,
        body,
    })
}
