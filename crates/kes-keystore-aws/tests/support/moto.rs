//! Real `moto_server` processes for tests (moto, the AWS emulator; `pip install 'moto[server]'`,
//! which `scripts/test-deps` does), started on free loopback ports, plus a proxy in front of
//! one that injects AWS errors (throttling, 5xx) on request.
//!
//! Shared by the keystore's tests and the `kes` integration tests (which include this file
//! with `#[path]`), so it uses only std, tokio, serde_json and kes-fakes. Every server is
//! killed when its guard drops; every wait is bounded.
//!
//! When `moto_server` cannot be found, [`binary`] prints why and returns `None`, so tests skip —
//! unless the `CI` environment variable is set, in which case it panics.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The calls [`Moto::warm_up`] makes.
const WARM_UP_CALLS: u32 = 2;
/// The region the tests use.
pub const REGION: &str = "us-east-1";
/// Credentials moto accepts (it checks none unless told to).
pub const ACCESS_KEY: &str = "AKIAKESTESTKEY000001";
pub const SECRET_KEY: &str = "kes-test-secret-key-0000000000000000000000";

/// The `moto_server` binary, or `None` (with a printed reason) when it is not installed outside
/// CI. Looked up as `$KES_TEST_MOTO`, then `moto_server` on `PATH`, then in Python's scripts
/// directory.
pub fn binary() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = FOUND.get_or_init(find_binary).clone();
    if found.is_none() {
        let reason = "moto (`moto_server`) not found: run scripts/test-deps \
                      (pip install 'moto[server]') or set KES_TEST_MOTO";
        if std::env::var_os("CI").is_some() {
            panic!("{reason}");
        }
        eprintln!("skipped: {reason}");
    }
    found
}

fn find_binary() -> Option<PathBuf> {
    let works = |path: &Path| {
        Command::new(path)
            .arg("--help")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if let Some(path) = std::env::var_os("KES_TEST_MOTO") {
        let path = PathBuf::from(path);
        return works(&path).then_some(path);
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("moto_server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    for candidate in on_path {
        if candidate.is_file() && works(&candidate) {
            return Some(candidate);
        }
    }
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let dir = String::from_utf8(scripts.stdout).ok()?;
    let candidate = Path::new(dir.trim()).join("moto_server");
    (candidate.is_file() && works(&candidate)).then_some(candidate)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP answer: status, lower-case header names with their values, body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One plain HTTP/1.1 exchange (`Connection: close`).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<Reply> {
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding"
        ) {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    tcp.write_all(head.as_bytes())?;
    tcp.write_all(body)?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = unchunk(&body);
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..end])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

/// A call of an AWS JSON 1.1 API (`secretsmanager.CreateSecret`, `TrentService.CreateKey`)
/// at `addr`, as another client would make it: the status and the JSON answer.
pub fn aws_call(addr: SocketAddr, service: &str, target: &str, body: &Value) -> (u16, Value) {
    let headers = vec![
        ("x-amz-target".to_owned(), target.to_owned()),
        (
            "content-type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        ),
        // moto routes by the credential scope of the Authorization header; it checks no
        // signature unless told to.
        (
            "authorization".to_owned(),
            format!(
                "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=00"
            ),
        ),
    ];
    let Reply { status, body, .. } = http(
        addr,
        "POST",
        "/",
        &headers,
        &serde_json::to_vec(body).unwrap(),
    )
    .unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// The last lines of a log file.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// One moto server, in memory: its data is lost when it stops.
pub struct Moto {
    bin: PathBuf,
    child: Option<Child>,
    /// `127.0.0.1:<port>`.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    log: PathBuf,
    env: Vec<(String, String)>,
}

impl Moto {
    /// A server on a free port, or `None` when moto is missing.
    pub fn start() -> Option<Moto> {
        Self::start_with(&[])
    }

    /// [`Moto::start`] with extra environment for moto (`INITIAL_NO_AUTH_ACTION_COUNT`, …).
    pub fn start_with(env: &[(&str, &str)]) -> Option<Moto> {
        let bin = binary()?;
        let mut dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("moto.log");
        for _ in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let mut moto = Moto {
                bin: bin.clone(),
                child: None,
                addr,
                log: log.clone(),
                env: env
                    .iter()
                    .map(|(k, v)| {
                        let v = if *k == "INITIAL_NO_AUTH_ACTION_COUNT" {
                            // The warm-up's calls count as actions too.
                            (v.parse::<u32>().expect("a count") + WARM_UP_CALLS).to_string()
                        } else {
                            (*v).to_owned()
                        };
                        ((*k).to_owned(), v)
                    })
                    .collect(),
                dir,
            };
            if moto.launch() {
                return Some(moto);
            }
            dir = moto.take_dir();
        }
        panic!("moto_server did not start:\n{}", tail(&log));
    }

    fn take_dir(self) -> tempfile::TempDir {
        let mut this = self;
        this.kill();
        std::mem::replace(&mut this.dir, tempfile::tempdir().unwrap())
    }

    /// Starts the process on `self.addr` and waits until it answers; `false` when it exited
    /// (the port was taken).
    fn launch(&mut self) -> bool {
        let out = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(&self.bin);
        cmd.args(["-H", "127.0.0.1", "-p", &self.addr.port().to_string()])
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if http(self.addr, "GET", "/moto-api/data.json", &[], b"")
                .is_ok_and(|r| r.status == 200)
            {
                self.child = Some(child);
                self.warm_up();
                return true;
            }
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "moto at {} did not answer in time:\n{}",
                self.addr,
                tail(&self.log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Makes moto load the services the tests call before a test's first timed call: moto
    /// imports a service's code on its first request, and `GET /` (the keystore's reachability
    /// check) loads S3, which took over 1 s on an idle machine and over the check's 5 s timeout,
    /// twice, on a loaded CI machine. Both calls are [`WARM_UP_CALLS`] actions for moto's
    /// `INITIAL_NO_AUTH_ACTION_COUNT`, which [`Moto::start_with`] adds.
    fn warm_up(&self) {
        let s3 = http(self.addr, "GET", "/", &[], b"").expect("moto answers GET /");
        assert!(s3.status < 500, "moto's GET /: {}", s3.status);
        let (status, _) = self.secrets("ListSecrets", &json!({}));
        assert!(status < 500, "moto's ListSecrets: {status}");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A Secrets Manager call as another client makes it (`CreateSecret`, …).
    pub fn secrets(&self, action: &str, body: &Value) -> (u16, Value) {
        aws_call(
            self.addr,
            "secretsmanager",
            &format!("secretsmanager.{action}"),
            body,
        )
    }

    /// A KMS call (`CreateKey`, `DescribeKey`, …).
    pub fn kms(&self, action: &str, body: &Value) -> (u16, Value) {
        aws_call(self.addr, "kms", &format!("TrentService.{action}"), body)
    }

    /// A new symmetric KMS key; its id.
    pub fn create_kms_key(&self) -> String {
        let (status, key) = self.kms("CreateKey", &json!({"Description": "kes test"}));
        assert_eq!(status, 200, "{key}");
        key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned()
    }

    /// A secret as stored, by `GetSecretValue` from outside.
    pub fn secret(&self, name: &str) -> (u16, Value) {
        self.secrets("GetSecretValue", &json!({"SecretId": name}))
    }

    /// Every secret's name, as `ListSecrets` shows them.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..1000 {
            let mut body = json!({"MaxResults": 100});
            if let Some(token) = &next {
                body["NextToken"] = json!(token);
            }
            let (status, page) = self.secrets("ListSecrets", &body);
            assert_eq!(status, 200, "{page}");
            for s in page["SecretList"].as_array().unwrap() {
                names.push(s["Name"].as_str().unwrap().to_owned());
            }
            match page["NextToken"].as_str() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => break,
            }
        }
        names.sort();
        names
    }

    /// Stops the server (its data is gone).
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts it again on the same port (empty).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.launch() {
            assert!(Instant::now() < deadline, "moto did not start again");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An error the proxy answers with instead of forwarding.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Only requests of this `X-Amz-Target` suffix (`CreateSecret`), or any when empty.
    pub action: String,
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl Fault {
    /// `ThrottlingException` (400), as Secrets Manager throttles.
    pub fn throttling() -> Fault {
        Fault {
            action: String::new(),
            status: 400,
            code: "ThrottlingException".into(),
            message: "Rate exceeded".into(),
        }
    }

    /// A 503 `ServiceUnavailable`.
    pub fn unavailable() -> Fault {
        Fault {
            action: String::new(),
            status: 503,
            code: "ServiceUnavailable".into(),
            message: "Service is unavailable".into(),
        }
    }
}

/// What the proxy saw and is told to do.
#[derive(Default)]
pub struct ProxyState {
    /// Faults answered, one per request, before requests are forwarded again.
    pub faults: VecDeque<Fault>,
    /// Every request's `X-Amz-Target` action, in order (faulted ones too).
    pub actions: Vec<String>,
    /// Answered with a fault.
    pub faulted: usize,
    /// The access key id of every signed request, in order.
    pub access_keys: Vec<String>,
}

/// A plain-HTTP proxy in front of moto that answers queued AWS errors before forwarding.
pub struct Proxy {
    pub server: kes_fakes::FakeServer,
    pub state: Arc<Mutex<ProxyState>>,
}

impl Proxy {
    /// A proxy for `moto`.
    pub async fn start(moto: &Moto) -> Proxy {
        let upstream = moto.addr;
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let shared = state.clone();
        let handler: kes_fakes::Handler = Arc::new(move |req: &kes_fakes::Request| {
            let action = req
                .header("x-amz-target")
                .and_then(|t| t.rsplit('.').next())
                .unwrap_or("")
                .to_owned();
            let fault = {
                let mut state = shared.lock().unwrap();
                state.actions.push(action.clone());
                if let Some(key) = req
                    .header("authorization")
                    .and_then(|a| a.split("Credential=").nth(1))
                    .and_then(|c| c.split('/').next())
                {
                    state.access_keys.push(key.to_owned());
                }
                let hit = state
                    .faults
                    .front()
                    .is_some_and(|f| f.action.is_empty() || f.action == action);
                let fault = if hit { state.faults.pop_front() } else { None };
                if fault.is_some() {
                    state.faulted += 1;
                }
                fault
            };
            if let Some(f) = fault {
                return kes_fakes::Response::json(
                    f.status,
                    &json!({"__type": f.code, "message": f.message}),
                )
                .with_header("x-amzn-errortype", &f.code)
                .with_header("content-type", "application/x-amz-json-1.1");
            }
            let headers: Vec<(String, String)> = req
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut path = req.path.clone();
            if !req.query.is_empty() {
                let q: Vec<String> = req.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                path = format!("{path}?{}", q.join("&"));
            }
            // The handler is synchronous: one blocking exchange with moto (tests use
            // multi-threaded runtimes).
            match http(upstream, &req.method, &path, &headers, &req.body) {
                Ok(Reply {
                    status,
                    headers,
                    body,
                }) => {
                    let mut r = kes_fakes::Response::empty(status);
                    r.headers = headers
                        .into_iter()
                        .filter(|(k, _)| {
                            !matches!(
                                k.as_str(),
                                "content-length"
                                    | "transfer-encoding"
                                    | "connection"
                                    | "date"
                                    | "server"
                            )
                        })
                        .collect();
                    r.body = body;
                    r
                }
                Err(e) => kes_fakes::Response::text(502, &format!("proxy: {e}")),
            }
        });
        Proxy {
            server: kes_fakes::FakeServer::http(handler).await,
            state,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Queues `n` copies of `fault`.
    pub fn inject(&self, fault: Fault, n: usize) {
        let mut state = self.state.lock().unwrap();
        for _ in 0..n {
            state.faults.push_back(fault.clone());
        }
    }

    /// How many requests were answered with a fault.
    pub fn faulted(&self) -> usize {
        self.state.lock().unwrap().faulted
    }

    /// The access key ids that signed the requests so far.
    pub fn access_keys(&self) -> Vec<String> {
        self.state.lock().unwrap().access_keys.clone()
    }

    /// The actions seen so far.
    pub fn actions(&self) -> Vec<String> {
        self.state.lock().unwrap().actions.clone()
    }
}
