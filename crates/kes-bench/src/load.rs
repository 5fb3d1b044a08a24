//! The load generator: mTLS connections to the server, HTTP/1.1 requests back to back, and the
//! bookkeeping of one measured phase.
//!
//! Every loop here is bounded: a phase ends when its time is up (or its key sweep is done), every
//! request has a timeout, a worker gives up after a run of errors, and every wait for workers has
//! a deadline.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::HandshakeKind;
use rustls::client::Resumption;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::proc::{self, CpuTime};
use crate::server::key_name;

/// How long one request (or one connection set-up) may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A worker stops after this many errors in a row.
const MAX_CONSECUTIVE_ERRORS: u64 = 50;
/// How long the end of a phase waits for its workers.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
/// No worker sends more requests than this in one phase, whatever the time budget.
const MAX_REQUESTS_PER_WORKER: u64 = 50_000_000;
/// How many connections are opened at once when a phase needs many.
const OPEN_CONCURRENCY: usize = 32;
/// Associated data of every request, as an object store would send (bucket and object name).
const CONTEXT: &[u8] = b"{\"bench-bucket\":\"objects/2024/05/photo-0001.jpg\"}";

/// Which client certificate the load generator presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Who {
    /// `admin.crt`: the admin identity, which bypasses policies.
    Admin,
    /// `app.crt`: an identity whose policy allows the key routes on `bench-*` keys.
    App,
}

/// The TLS 1.3 cipher suites the load generator offers, in order of preference. The server
/// follows the client's preference, and the suite decides the handshake's hash (SHA-256 or
/// SHA-384), so this changes the server's cost per handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Suites {
    /// Go's order on CPUs with AES instructions (what MinIO and other Go clients send):
    /// AES-128-GCM-SHA256, ChaCha20-Poly1305-SHA256, AES-256-GCM-SHA384.
    Go,
    /// rustls' default order: AES-256-GCM-SHA384, AES-128-GCM-SHA256, ChaCha20-Poly1305-SHA256.
    Rustls,
}

/// A rustls client configuration for the test PKI: trusts `ca.crt`, presents `<who>.crt`,
/// offers `suites`. Without `resumption` every connection makes a full handshake.
pub fn client_config(
    pki: &Path,
    who: Who,
    resumption: bool,
    suites: Suites,
) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::crypto::aws_lc_rs::cipher_suite as cs;
    let name = match who {
        Who::Admin => "admin",
        Who::App => "app",
    };
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if suites == Suites::Go {
        let first = [
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
        ];
        let rest = provider
            .cipher_suites
            .iter()
            .filter(|s| !first.contains(s))
            .copied();
        provider.cipher_suites = first.into_iter().chain(rest).collect();
    }
    // The key exchange order is fixed here, X25519 first (its key share is the one sent), so
    // that the figures do not depend on whether a build unified rustls' `prefer-post-quantum`
    // feature in (building together with `kes` does, and X25519MLKEM768 then costs more).
    {
        use rustls::crypto::aws_lc_rs::kx_group;
        provider.kx_groups = vec![
            kx_group::X25519,
            kx_group::SECP256R1,
            kx_group::SECP384R1,
            kx_group::X25519MLKEM768,
        ];
    }
    let provider = Arc::new(provider);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(pki.join("ca.crt")).context("reading ca.crt")?)?;
    let cert = CertificateDer::from_pem_file(pki.join(format!("{name}.crt")))
        .with_context(|| format!("reading {name}.crt"))?;
    let key = PrivateKeyDer::from_pem_file(pki.join(format!("{name}.key")))
        .with_context(|| format!("reading {name}.key"))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![cert], key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resumption {
        config.resumption = Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// One client connection: TLS, then HTTP/1.1 on it.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    task: JoinHandle<()>,
    /// Whether the TLS handshake was full or resumed.
    pub kind: Option<HandshakeKind>,
    /// The key exchange group of the handshake.
    pub kx: Option<String>,
    /// The negotiated cipher suite.
    pub suite: Option<String>,
}

impl Conn {
    /// Connects to `addr` and completes the TLS and HTTP handshakes.
    pub async fn open(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Result<Conn> {
        let setup = async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .context("TCP connect")?;
            tcp.set_nodelay(true)?;
            let name = ServerName::IpAddress(addr.ip().into());
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .context("TLS handshake")?;
            let (_, state) = tls.get_ref();
            let kind = state.handshake_kind();
            let kx = state
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name()));
            let suite = state
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()));
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .context("HTTP handshake")?;
            let task = tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok::<_, anyhow::Error>(Conn {
                sender,
                task,
                kind,
                kx,
                suite,
            })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, setup)
            .await
            .map_err(|_| anyhow!("connect timed out"))?
    }

    /// Sends one request and reads the whole reply; fails unless the status is 200.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Bytes> {
        let exchange = async {
            self.sender.ready().await.context("connection closed")?;
            let res = self
                .sender
                .send_request(req)
                .await
                .context("sending request")?;
            let status = res.status();
            let body = res
                .into_body()
                .collect()
                .await
                .context("reading reply")?
                .to_bytes();
            if status != StatusCode::OK {
                bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
            }
            Ok(body)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("request timed out"))?
    }

    /// Whether the server (or an error) closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed() || self.task.is_finished()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens `n` connections, up to [`OPEN_CONCURRENCY`] at a time, and sends `first` on each
/// (so that the server holds a fully set-up HTTP connection, not just a TLS session).
pub async fn open_many(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    n: usize,
    first: Option<&Workload>,
) -> Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(n);
    while conns.len() < n {
        let batch = OPEN_CONCURRENCY.min(n - conns.len());
        let mut tasks = Vec::with_capacity(batch);
        for _ in 0..batch {
            let config = Arc::clone(config);
            let req = first.map(|w| w.request(w.fixed_key(), false));
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::open(addr, config).await?;
                if let Some(req) = req {
                    conn.send(req).await?;
                }
                Ok::<_, anyhow::Error>(conn)
            }));
        }
        for task in tasks {
            conns.push(task.await.context("connection task")??);
        }
    }
    Ok(conns)
}

/// A KES key operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// `/v1/key/generate`: a new data key, sealed.
    Generate,
    /// `/v1/key/encrypt`: seal a 32-byte plaintext.
    Encrypt,
    /// `/v1/key/decrypt`: open a sealed data key.
    Decrypt,
    /// `/v1/key/hmac`: HMAC of a 32-byte message.
    Hmac,
}

impl Op {
    /// The route's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Generate => "generate",
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
            Op::Hmac => "hmac",
        }
    }
}

/// Which keys the requests of a phase use.
#[derive(Debug, Clone)]
pub enum Keys {
    /// Always key number `n`.
    One(usize),
    /// A key drawn uniformly from keys `0..n` for every request.
    Uniform(usize),
    /// Each key from the counter's start value up to `n` (exclusive) once; the shared counter
    /// hands them out. A sweep reads every key into the server's cache.
    Sweep(usize, Arc<AtomicUsize>),
}

/// What the requests of a phase are.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The operation.
    pub op: Op,
    /// The keys.
    pub keys: Keys,
    body: Bytes,
}

impl Workload {
    /// A workload; `ciphertext` is needed for [`Op::Decrypt`] (the result of a generate with
    /// the same key and [`CONTEXT`]).
    pub fn new(op: Op, keys: Keys, ciphertext: Option<&[u8]>) -> Result<Workload> {
        let context = B64.encode(CONTEXT);
        let body = match op {
            Op::Generate => format!("{{\"context\":\"{context}\"}}"),
            Op::Encrypt => {
                let plaintext = B64.encode([0x5a; 32]);
                format!("{{\"plaintext\":\"{plaintext}\",\"context\":\"{context}\"}}")
            }
            Op::Decrypt => {
                let Some(ciphertext) = ciphertext else {
                    bail!("a decrypt workload needs a ciphertext");
                };
                if !matches!(keys, Keys::One(_)) {
                    bail!("a decrypt workload uses a single key");
                }
                let ciphertext = B64.encode(ciphertext);
                format!("{{\"ciphertext\":\"{ciphertext}\",\"context\":\"{context}\"}}")
            }
            Op::Hmac => {
                let message = B64.encode([0xa5; 32]);
                format!("{{\"message\":\"{message}\"}}")
            }
        };
        Ok(Workload {
            op,
            keys,
            body: Bytes::from(body),
        })
    }

    /// The number of distinct keys the workload uses.
    pub fn key_count(&self) -> usize {
        match &self.keys {
            Keys::One(_) => 1,
            Keys::Uniform(n) | Keys::Sweep(n, _) => *n,
        }
    }

    fn fixed_key(&self) -> usize {
        match &self.keys {
            Keys::One(n) => *n,
            Keys::Uniform(_) | Keys::Sweep(..) => 0,
        }
    }

    /// The key of the next request, or `None` when a sweep is done.
    fn next_key(&self, rng: &mut XorShift) -> Option<usize> {
        match &self.keys {
            Keys::One(n) => Some(*n),
            Keys::Uniform(n) => Some(rng.below(*n)),
            Keys::Sweep(n, next) => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                (i < *n).then_some(i)
            }
        }
    }

    /// The request for key number `key`; `close` asks the server to close the connection after
    /// the reply.
    pub fn request(&self, key: usize, close: bool) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = Method::PUT;
        let path = format!("/v1/key/{}/{}", self.op.as_str(), key_name(key));
        if let Ok(uri) = path.parse() {
            *req.uri_mut() = uri;
        }
        let headers = req.headers_mut();
        headers.insert(header::HOST, header::HeaderValue::from_static("127.0.0.1"));
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        if close {
            headers.insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        req
    }
}

/// A small, fast, deterministic generator for picking keys (not for anything secret).
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n.max(1)).unwrap_or(u64::MAX);
        usize::try_from(self.next() % n).unwrap_or(0)
    }
}

/// How the requests of a phase reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every worker keeps one connection open and sends requests back to back.
    KeepAlive,
    /// Every request comes on a new connection with a full TLS handshake.
    NewConnFull,
    /// Every request comes on a new connection that resumes an earlier TLS session.
    NewConnResumed,
}

/// One phase to measure.
#[derive(Debug, Clone)]
pub struct PhaseSpec {
    /// Short name shown in the report.
    pub name: String,
    /// The requests.
    pub workload: Workload,
    /// How the requests are sent.
    pub mode: Mode,
    /// Busy connections (workers).
    pub conns: usize,
    /// Connections opened before the phase and left idle during it.
    pub idle: usize,
    /// The client certificate.
    pub who: Who,
    /// Unmeasured time before the measurement (ignored for sweeps).
    pub warmup: Duration,
    /// Measured time (for sweeps: the upper bound of the sweep).
    pub measure: Duration,
    /// Open loop: this many requests per second in all, spread evenly over the connections,
    /// whatever the server's speed; `None`: each connection sends its next request as soon as
    /// the last is answered (keep-alive mode only).
    pub rate: Option<u32>,
}

/// What a phase needs from its surroundings.
pub struct PhaseEnv<'a> {
    /// The server's address.
    pub addr: SocketAddr,
    /// The server's process id.
    pub pid: u32,
    /// The clock tick of `/proc` times.
    pub tick: Duration,
    /// The test PKI.
    pub pki: &'a Path,
    /// Whether the server has audit logging on.
    pub audit: bool,
    /// The cipher suites the client offers.
    pub suites: Suites,
    /// How long to wait for a quiet machine before a phase (zero: don't).
    pub quiet_wait: Duration,
    /// The server's name in the report (`--server-bin NAME=PATH`).
    pub server: &'a str,
    /// Whether to count the server's system calls with perf.
    pub syscalls: bool,
}

/// The figures of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    /// Short name.
    pub name: String,
    /// The server measured (its name from `--server-bin`).
    pub server: String,
    /// The offered load of an open-loop phase, requests per second (`None`: closed loop).
    pub rate: Option<u32>,
    /// The operation.
    pub op: Op,
    /// How requests were sent.
    pub mode: Mode,
    /// Busy connections.
    pub conns: usize,
    /// Idle connections held open during the phase.
    pub idle: usize,
    /// Idle connections the server had not closed by the end of the phase.
    pub idle_open_at_end: usize,
    /// Distinct keys used.
    pub keys: usize,
    /// Client identity.
    pub who: Who,
    /// Whether audit logging was on.
    pub audit: bool,
    /// Length of the measured window in seconds.
    pub seconds: f64,
    /// Successful requests completed in the window.
    pub requests: u64,
    /// Failed requests (whole phase).
    pub errors: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// Requests per second.
    pub rps: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Maximum latency, µs.
    pub max_us: f64,
    /// Server CPU time (user + system) per request, µs.
    pub server_cpu_us: f64,
    /// Server CPU time per request from the scheduler's exact run times of its threads, µs.
    pub server_run_us: f64,
    /// The server's context switches (voluntary + involuntary) per request.
    pub switches_per_req: f64,
    /// Wakeups of the server's threads per request (their voluntary switches: each sleep ends
    /// with a wakeup).
    pub wakeups_per_req: f64,
    /// The server's system calls per request (perf), if they could be counted.
    pub syscalls_per_req: Option<f64>,
    /// Server user time per request, µs.
    pub server_user_us: f64,
    /// Server system time per request, µs.
    pub server_sys_us: f64,
    /// Average number of cores the server kept busy.
    pub server_cores: f64,
    /// The load generator's own CPU time per request, µs.
    pub client_cpu_us: f64,
    /// Average number of cores that other processes of the machine kept busy during the window
    /// (anything clearly above zero means the figures were disturbed).
    pub other_cores: f64,
    /// Peak resident memory of the server during the window, MB (10^6 bytes).
    pub peak_rss_mb: f64,
    /// Resident memory at the end of the window, MB.
    pub rss_mb: f64,
    /// Server threads at the end of the window.
    pub server_threads: u64,
    /// Full TLS handshakes made by the workers in the window.
    pub handshakes_full: u64,
    /// Resumed TLS handshakes made by the workers in the window.
    pub handshakes_resumed: u64,
    /// Key exchange group of the workers' handshakes.
    pub kx_group: Option<String>,
    /// TLS cipher suite of the workers' connections.
    pub tls_suite: Option<String>,
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// What one worker saw.
struct WorkerStats {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    full: u64,
    resumed: u64,
    kx: Option<String>,
    suite: Option<String>,
}

impl WorkerStats {
    fn new() -> Result<WorkerStats> {
        // Nanoseconds from 1 µs to 60 s with 3 significant digits.
        let hist = Histogram::new_with_bounds(1_000, 60_000_000_000, 3)?;
        Ok(WorkerStats {
            hist,
            ok: 0,
            errors: 0,
            first_error: None,
            full: 0,
            resumed: 0,
            kx: None,
            suite: None,
        })
    }

    fn error(&mut self, err: &anyhow::Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{err:#}"));
        }
    }

    fn merge(&mut self, other: WorkerStats) -> Result<()> {
        self.hist.add(&other.hist)?;
        self.ok += other.ok;
        self.errors += other.errors;
        self.full += other.full;
        self.resumed += other.resumed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        if self.kx.is_none() {
            self.kx = other.kx;
        }
        if self.suite.is_none() {
            self.suite = other.suite;
        }
        Ok(())
    }
}

/// Runs one phase and returns its figures.
pub async fn run_phase(spec: &PhaseSpec, env: &PhaseEnv<'_>) -> Result<PhaseResult> {
    let resumption = spec.mode != Mode::NewConnFull;
    let config = client_config(env.pki, spec.who, resumption, env.suites)?;
    let idle_config = client_config(env.pki, spec.who, false, env.suites)?;
    let idle = open_many(env.addr, &idle_config, spec.idle, Some(&spec.workload))
        .await
        .context("opening the idle connections")?;
    let busy = if spec.mode == Mode::KeepAlive {
        open_many(env.addr, &config, spec.conns, None)
            .await
            .context("opening the connections")?
    } else {
        // Workers of the new-connection modes connect per request.
        Vec::new()
    };

    let sweep = matches!(spec.workload.keys, Keys::Sweep(..));
    if spec.rate.is_some() && (sweep || spec.mode != Mode::KeepAlive) {
        bail!("an open-loop phase uses keep-alive connections and no key sweep");
    }
    let control = Arc::new(AtomicU8::new(if sweep { MEASURE } else { WARMUP }));
    let mut workers = Vec::with_capacity(spec.conns);
    let mut busy = busy.into_iter();
    let mut schedules = Vec::new();
    for i in 0..spec.conns {
        let workload = spec.workload.clone();
        let control = Arc::clone(&control);
        let rng = XorShift::new(u64::try_from(i).unwrap_or(0) + 1);
        let handle = match spec.mode {
            Mode::KeepAlive if spec.rate.is_some() => {
                let conn = busy.next().context("a busy connection is missing")?;
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                schedules.push(tx);
                let config = Arc::clone(&config);
                tokio::spawn(open_loop_worker(
                    conn, env.addr, config, workload, control, rng, rx,
                ))
            }
            Mode::KeepAlive => {
                let conn = busy.next().context("a busy connection is missing")?;
                let config = Arc::clone(&config);
                tokio::spawn(keep_alive_worker(
                    conn, env.addr, config, workload, control, rng,
                ))
            }
            Mode::NewConnFull => {
                let config = Arc::clone(&config);
                tokio::spawn(new_conn_worker(env.addr, config, workload, control, rng))
            }
            Mode::NewConnResumed => {
                // Each worker is a client with its own session cache, as separate client
                // processes are: a shared cache runs short of tickets (rustls keeps at most
                // eight per server) when many connections start at once.
                let mut own = (*config).clone();
                own.resumption = Resumption::in_memory_sessions(64);
                let own = Arc::new(own);
                let mut conn = Conn::open(env.addr, Arc::clone(&own)).await?;
                conn.send(workload.request(workload.fixed_key(), true))
                    .await?;
                tokio::spawn(new_conn_worker(env.addr, own, workload, control, rng))
            }
        };
        workers.push(handle);
    }
    let pacer = spec.rate.map(|rate| {
        let control = Arc::clone(&control);
        let limit = spec.warmup + spec.measure + JOIN_TIMEOUT;
        std::thread::spawn(move || pace(rate, &schedules, &control, limit))
    });
    let mut syscalls = if env.syscalls {
        crate::perf::Syscalls::attach(env.pid)
    } else {
        None
    };

    if !sweep {
        tokio::time::sleep(spec.warmup).await;
    }
    proc::reset_peak(env.pid)?;
    let counting = syscalls.as_mut().is_some_and(crate::perf::Syscalls::enable);
    let sched0 = proc::sched(env.pid)?;
    let server0 = proc::cpu_time(Some(env.pid), env.tick)?;
    let client0 = proc::cpu_time(None, env.tick)?;
    let machine0 = proc::machine_busy(env.tick)?;
    let t0 = Instant::now();
    control.store(MEASURE, Ordering::SeqCst);
    if sweep {
        // The sweep ends when every worker is out of keys; the time budget bounds it.
        let deadline = t0 + spec.measure;
        while !workers.iter().all(JoinHandle::is_finished) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    } else {
        tokio::time::sleep(spec.measure).await;
    }
    control.store(STOP, Ordering::SeqCst);
    let elapsed = t0.elapsed();
    let sched1 = proc::sched(env.pid)?;
    let server1 = proc::cpu_time(Some(env.pid), env.tick)?;
    let syscalls = match syscalls {
        Some(mut perf) if counting => perf.disable().then(|| perf.finish()).flatten(),
        _ => None,
    };
    let client1 = proc::cpu_time(None, env.tick)?;
    let machine1 = proc::machine_busy(env.tick)?;
    let memory = proc::memory(env.pid)?;
    let threads = proc::threads(env.pid)?;
    let idle_open = idle.iter().filter(|c| !c.is_closed()).count();

    let mut total = WorkerStats::new()?;
    let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    for worker in workers {
        match tokio::time::timeout_at(deadline, worker).await {
            Ok(Ok(stats)) => total.merge(stats?)?,
            Ok(Err(err)) => bail!("a worker failed: {err}"),
            Err(_) => bail!("a worker did not stop within {JOIN_TIMEOUT:?}"),
        }
    }
    drop(idle);
    if let Some(pacer) = pacer {
        // It stops at STOP (or its time limit) and ends once the workers' channels are gone.
        let _ = pacer.join();
    }

    Ok(summarize(
        spec,
        env,
        &total,
        Window {
            elapsed,
            server: server1.since(server0),
            sched: sched1.since(sched0),
            syscalls,
            client: client1.since(client0),
            machine: machine1.saturating_sub(machine0),
            memory,
            threads,
            idle_open,
        },
    ))
}

struct Window {
    elapsed: Duration,
    server: CpuTime,
    sched: proc::Sched,
    syscalls: Option<u64>,
    client: CpuTime,
    machine: Duration,
    memory: proc::Memory,
    threads: u64,
    idle_open: usize,
}

fn summarize(spec: &PhaseSpec, env: &PhaseEnv<'_>, total: &WorkerStats, w: Window) -> PhaseResult {
    let n = total.ok.max(1) as f64;
    let per_req = |d: Duration| d.as_secs_f64() * 1e6 / n;
    let us = |ns: u64| ns as f64 / 1e3;
    let seconds = w.elapsed.as_secs_f64();
    const MB: f64 = 1e6;
    PhaseResult {
        name: spec.name.clone(),
        server: env.server.to_owned(),
        rate: spec.rate,
        op: spec.workload.op,
        mode: spec.mode,
        conns: spec.conns,
        idle: spec.idle,
        idle_open_at_end: w.idle_open,
        keys: spec.workload.key_count(),
        who: spec.who,
        audit: env.audit,
        seconds,
        requests: total.ok,
        errors: total.errors,
        first_error: total.first_error.clone(),
        rps: total.ok as f64 / seconds.max(1e-9),
        p50_us: us(total.hist.value_at_quantile(0.50)),
        p99_us: us(total.hist.value_at_quantile(0.99)),
        max_us: us(total.hist.max()),
        server_cpu_us: per_req(w.server.total()),
        server_run_us: w.sched.run_ns as f64 / 1e3 / n,
        switches_per_req: w.sched.switches() as f64 / n,
        wakeups_per_req: w.sched.voluntary as f64 / n,
        syscalls_per_req: w.syscalls.map(|c| c as f64 / n),
        server_user_us: per_req(w.server.user),
        server_sys_us: per_req(w.server.system),
        server_cores: w.server.total().as_secs_f64() / seconds.max(1e-9),
        client_cpu_us: per_req(w.client.total()),
        other_cores: w
            .machine
            .saturating_sub(w.server.total() + w.client.total())
            .as_secs_f64()
            / seconds.max(1e-9),
        peak_rss_mb: w.memory.peak as f64 / MB,
        rss_mb: w.memory.rss as f64 / MB,
        server_threads: w.threads,
        handshakes_full: total.full,
        handshakes_resumed: total.resumed,
        kx_group: total.kx.clone(),
        tls_suite: total.suite.clone(),
    }
}

/// Records one finished request (only inside the measured window).
fn record(stats: &mut WorkerStats, control: &AtomicU8, started: Instant) {
    if control.load(Ordering::Relaxed) == MEASURE {
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        stats.hist.saturating_record(ns);
        stats.ok += 1;
    }
}

async fn keep_alive_worker(
    mut conn: Conn,
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    workload: Workload,
    control: Arc<AtomicU8>,
    mut rng: XorShift,
) -> Result<WorkerStats> {
    let mut stats = WorkerStats::new()?;
    let mut consecutive_errors = 0;
    for _ in 0..MAX_REQUESTS_PER_WORKER {
        if control.load(Ordering::Relaxed) == STOP {
            break;
        }
        let Some(key) = workload.next_key(&mut rng) else {
            break;
        };
        let started = Instant::now();
        match conn.send(workload.request(key, false)).await {
            Ok(_) => {
                record(&mut stats, &control, started);
                consecutive_errors = 0;
            }
            Err(err) => {
                stats.error(&err);
                consecutive_errors += 1;
                if consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
                    break;
                }
                if conn.is_closed() {
                    match Conn::open(addr, Arc::clone(&config)).await {
                        Ok(new) => conn = new,
                        Err(err) => stats.error(&err),
                    }
                }
            }
        }
    }
    Ok(stats)
}

/// Sends the requests of an open-loop phase: each at the time the pacer set for it (it receives
/// the intended send times), and latency counts from that time, so a server that falls behind
/// shows its queueing in the latency instead of slowing the load down (no coordinated omission).
async fn open_loop_worker(
    mut conn: Conn,
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    workload: Workload,
    control: Arc<AtomicU8>,
    mut rng: XorShift,
    mut schedule: tokio::sync::mpsc::UnboundedReceiver<Instant>,
) -> Result<WorkerStats> {
    let mut stats = WorkerStats::new()?;
    let mut consecutive_errors = 0;
    for _ in 0..MAX_REQUESTS_PER_WORKER {
        let Some(intended) = schedule.recv().await else {
            break;
        };
        if control.load(Ordering::Relaxed) == STOP {
            break;
        }
        let Some(key) = workload.next_key(&mut rng) else {
            break;
        };
        match conn.send(workload.request(key, false)).await {
            Ok(_) => {
                record(&mut stats, &control, intended);
                consecutive_errors = 0;
            }
            Err(err) => {
                stats.error(&err);
                consecutive_errors += 1;
                if consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
                    break;
                }
                if conn.is_closed() {
                    match Conn::open(addr, Arc::clone(&config)).await {
                        Ok(new) => conn = new,
                        Err(err) => stats.error(&err),
                    }
                }
            }
        }
    }
    Ok(stats)
}

/// The pacer of an open-loop phase: request `k` is due at `start + k / rate`, on connection
/// `k mod n`, so every connection sends at `rate / n` and the connections take turns. It sleeps
/// until each due time (with a timer slack of 1 ns, so sleeps end on time) and hands the time to
/// the connection's worker; it stops at the end of the phase or after `limit`.
fn pace(
    rate: u32,
    schedules: &[tokio::sync::mpsc::UnboundedSender<Instant>],
    control: &AtomicU8,
    limit: Duration,
) {
    set_timer_slack_ns(1);
    let start = Instant::now();
    let interval = Duration::from_secs(1).as_secs_f64() / f64::from(rate.max(1));
    let most = (limit.as_secs_f64() / interval).ceil() as u64;
    for k in 0..most {
        if control.load(Ordering::Relaxed) == STOP || schedules.is_empty() {
            return;
        }
        let due = start + Duration::from_secs_f64(k as f64 * interval);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let worker = usize::try_from(k).unwrap_or(0) % schedules.len();
        if schedules.get(worker).is_none_or(|tx| tx.send(due).is_err()) {
            return;
        }
    }
}

/// Sets the calling thread's timer slack (how late the kernel may end its sleeps to batch
/// wakeups; 50 µs by default).
pub(crate) fn set_timer_slack_ns(ns: u64) {
    #[allow(unsafe_code)]
    // SAFETY: PR_SET_TIMERSLACK takes an integer and changes only this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0);
    }
}

async fn new_conn_worker(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    workload: Workload,
    control: Arc<AtomicU8>,
    mut rng: XorShift,
) -> Result<WorkerStats> {
    let mut stats = WorkerStats::new()?;
    let mut consecutive_errors = 0;
    for _ in 0..MAX_REQUESTS_PER_WORKER {
        if control.load(Ordering::Relaxed) == STOP {
            break;
        }
        let Some(key) = workload.next_key(&mut rng) else {
            break;
        };
        let started = Instant::now();
        let result = async {
            let mut conn = Conn::open(addr, Arc::clone(&config)).await?;
            conn.send(workload.request(key, true)).await?;
            Ok::<_, anyhow::Error>((conn.kind, conn.kx.take(), conn.suite.take()))
        }
        .await;
        match result {
            Ok((kind, kx, suite)) => {
                if control.load(Ordering::Relaxed) == MEASURE {
                    match kind {
                        Some(HandshakeKind::Resumed) => stats.resumed += 1,
                        _ => stats.full += 1,
                    }
                }
                if stats.kx.is_none() {
                    stats.kx = kx;
                    stats.suite = suite;
                }
                record(&mut stats, &control, started);
                consecutive_errors = 0;
            }
            Err(err) => {
                stats.error(&err);
                consecutive_errors += 1;
                if consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
                    break;
                }
            }
        }
    }
    Ok(stats)
}

/// Sends one generate for key `key` and returns the sealed data key, checking that a decrypt
/// of it gives back the plaintext (so the decrypt phase measures successful decryptions).
pub async fn sealed_data_key(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    key: usize,
) -> Result<Vec<u8>> {
    let mut conn = Conn::open(addr, config).await?;
    let generate = Workload::new(Op::Generate, Keys::One(key), None)?;
    let reply = conn.send(generate.request(key, false)).await?;
    let json: serde_json::Value = serde_json::from_slice(&reply).context("generate reply")?;
    let field = |name: &str| -> Result<Vec<u8>> {
        let text = json
            .get(name)
            .and_then(serde_json::Value::as_str)
            .with_context(|| format!("generate reply has no {name}"))?;
        B64.decode(text)
            .with_context(|| format!("generate reply: bad base64 in {name}"))
    };
    let plaintext = field("plaintext")?;
    let ciphertext = field("ciphertext")?;
    let decrypt = Workload::new(Op::Decrypt, Keys::One(key), Some(&ciphertext))?;
    let reply = conn.send(decrypt.request(key, false)).await?;
    let json: serde_json::Value = serde_json::from_slice(&reply).context("decrypt reply")?;
    let opened = json
        .get("plaintext")
        .and_then(serde_json::Value::as_str)
        .and_then(|t| B64.decode(t).ok())
        .context("decrypt reply has no plaintext")?;
    if opened != plaintext || plaintext.len() != 32 {
        bail!("decrypt did not return the generated data key");
    }
    Ok(ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_route_key_and_body() {
        let w = Workload::new(Op::Generate, Keys::One(3), None).unwrap();
        let req = w.request(3, false);
        assert_eq!(req.method(), Method::PUT);
        assert_eq!(req.uri().path(), "/v1/key/generate/bench-000003");
        assert!(req.headers().get(header::CONNECTION).is_none());
        let close = w.request(3, true);
        assert_eq!(close.headers()[header::CONNECTION], "close");
        let body: serde_json::Value = serde_json::from_slice(&w.body).unwrap();
        assert_eq!(
            B64.decode(body["context"].as_str().unwrap()).unwrap(),
            CONTEXT
        );

        let d = Workload::new(Op::Decrypt, Keys::One(0), Some(b"sealed")).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
        assert_eq!(
            B64.decode(body["ciphertext"].as_str().unwrap()).unwrap(),
            b"sealed"
        );
        assert!(Workload::new(Op::Decrypt, Keys::One(0), None).is_err());
        assert!(Workload::new(Op::Decrypt, Keys::Uniform(5), Some(b"x")).is_err());

        let h = Workload::new(Op::Hmac, Keys::One(0), None).unwrap();
        assert_eq!(
            h.request(0, false).uri().path(),
            "/v1/key/hmac/bench-000000"
        );
    }

    #[test]
    fn key_choice_stays_in_range_and_sweeps_visit_each_key_once() {
        let mut rng = XorShift::new(1);
        let w = Workload::new(Op::Generate, Keys::Uniform(10), None).unwrap();
        let mut seen = [false; 10];
        for _ in 0..1000 {
            seen[w.next_key(&mut rng).unwrap()] = true;
        }
        assert!(seen.iter().all(|s| *s));

        let sweep = Workload::new(Op::Generate, Keys::Sweep(5, Arc::default()), None).unwrap();
        let other = sweep.clone();
        let mut keys: Vec<usize> = Vec::new();
        while let Some(k) = sweep.next_key(&mut rng) {
            keys.push(k);
            if let Some(k) = other.next_key(&mut rng) {
                keys.push(k);
            }
        }
        keys.sort_unstable();
        assert_eq!(keys, vec![0, 1, 2, 3, 4]);
        assert_eq!(sweep.key_count(), 5);
    }

    #[test]
    fn client_configs_load_the_test_pki() {
        let pki = crate::server::repo_root().join("testdata/pki");
        let resuming = client_config(&pki, Who::Admin, true, Suites::Go).unwrap();
        assert!(resuming.client_auth_cert_resolver.has_certs());
        let first = |c: &rustls::ClientConfig| c.crypto_provider().cipher_suites[0].suite();
        assert_eq!(
            first(&resuming),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
        let fresh = client_config(&pki, Who::App, false, Suites::Rustls).unwrap();
        assert_eq!(fresh.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert_eq!(first(&fresh), rustls::CipherSuite::TLS13_AES_256_GCM_SHA384);
        // Reordering keeps every suite of the provider.
        let n = |c: &rustls::ClientConfig| c.crypto_provider().cipher_suites.len();
        assert_eq!(n(&resuming), n(&fresh));
    }
}
