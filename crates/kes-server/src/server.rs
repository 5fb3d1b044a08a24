//! The listener: accepts TCP connections, runs the TLS handshake off the accept loop, computes
//! the peer's identity once per connection and serves HTTP/1.1 and HTTP/2 on it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::held::Held;
use crate::http::{Body, CloseConnection};
use crate::logs::Logs;
use crate::logs::level;
use crate::policies::{Access, Policies};
use crate::setup::ConnectionLimits;
use crate::state::State;
use crate::telemetry::Telemetry;
use crate::timeouts::{HEADER_TIMEOUT, WRITE_TIMEOUT};
use crate::tls::Peer;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (HTTP/1.1 read buffer, HTTP/2 header list).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// HTTP/2 streams a client may open at once on one connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 256;
/// HTTP/2 receive window per stream: one maximal request body.
const STREAM_WINDOW: u32 = 1 << 20;
/// HTTP/2 receive window per connection.
const CONNECTION_WINDOW: u32 = 4 << 20;
/// How long shutdown waits for open requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// How long a refused connection may stay open for its client to read the refusal.
const REFUSAL_GRACE: Duration = Duration::from_secs(2);
/// How long a failed handshake may take to send its alert to the client.
const ALERT_GRACE: Duration = Duration::from_secs(1);
/// The first pause after a failed accept (out of file descriptors, say); it doubles up to
/// [`ACCEPT_BACKOFF_MAX`] while accepting keeps failing, as Go's server does.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// The longest pause after failed accepts.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Accept errors are logged at most once per this interval, with the number left out.
const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// A connection's TLS stream, over a TCP stream that holds the handshake's last writes.
type Tls = tokio_rustls::server::TlsStream<Held<tokio::net::TcpStream>>;

/// A running KES server's shared parts.
///
/// Its parts are apart so that each user sees only its own: a request's handler gets the
/// configuration snapshot, the policies ([`Access`]) and the [`Telemetry`], never the TLS
/// configuration, the connection counts or the shutdown switch of the listener.
pub struct Server {
    pub(crate) state: ArcSwap<State>,
    pub(crate) access: Access,
    pub(crate) telemetry: Telemetry,
    tls: ArcSwap<rustls::ServerConfig>,
    shutdown: CancellationToken,
    connections: Arc<Mutex<Connections>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// A server with an initial state and TLS configuration.
    fn new(state: State, policies: Policies, tls: rustls::ServerConfig, logs: Logs) -> Arc<Server> {
        Arc::new(Server {
            access: Access::new(policies, state.admin.to_string()),
            state: ArcSwap::from_pointee(state),
            tls: ArcSwap::from_pointee(tls),
            telemetry: Telemetry::new(logs),
            shutdown: CancellationToken::new(),
            connections: Arc::new(Mutex::new(Connections::new(ConnectionLimits::default()))),
        })
    }

    /// A server running with `prepared` (see [`crate::setup::prepare`]).
    pub fn start(prepared: crate::setup::Prepared) -> Arc<Server> {
        let server = Server::new(
            prepared.state,
            prepared.policies,
            prepared.tls,
            Logs::new(prepared.log),
        );
        server.set_connection_limits(prepared.connections);
        tokio::spawn(crate::schedule::run(server.clone()));
        server
    }

    /// The token that stops the server.
    pub(crate) fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Switches to a new configuration (SIGHUP): log levels, TLS for new connections, the
    /// connection limits, the route settings, the keystore and the config file's policies.
    /// Requests in flight finish with the old ones; open connections stay open.
    pub fn reload(&self, prepared: crate::setup::Prepared) {
        self.telemetry.logs.set_levels(prepared.log);
        self.update_tls(prepared.tls);
        self.set_connection_limits(prepared.connections);
        self.update_state(prepared.state, prepared.policies);
    }

    /// Replaces the configuration snapshot and the config file's policies (reload); requests in
    /// flight finish with the old ones. Runtime policy changes are kept unless the new file names
    /// the same policies or identities (see [`crate::policies`]).
    fn update_state(&self, state: State, policies: Policies) {
        self.access.rebase(policies, state.admin.to_string());
        self.state.store(Arc::new(state));
    }

    /// Sets how many connections are served at once, in all and per client address, and how
    /// long idle ones stay open; connections above a limit are answered with 503 and closed.
    /// Open connections keep the idle timeout they started with.
    fn set_connection_limits(&self, limits: ConnectionLimits) {
        self.connections.lock().limits = limits;
    }

    /// Replaces the TLS configuration for new connections.
    fn update_tls(&self, tls: rustls::ServerConfig) {
        self.tls.store(Arc::new(tls));
    }

    /// When the server started.
    pub fn started_at(&self) -> OffsetDateTime {
        self.telemetry.started_at()
    }

    /// The logs (audit and error streams).
    pub fn logs(&self) -> &Logs {
        &self.telemetry.logs
    }

    /// Asks the accept loop to stop; open connections get a short grace period.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Serves connections from `listener` until [`Server::shutdown`] is called.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        // HTTP/1.1 is served by `kes_h1`, which holds no buffer on an idle connection; hyper
        // serves the connections that negotiated HTTP/2.
        let mut http = auto::Builder::new(TokioExecutor::new()).http2_only();
        http.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_send_buf_size(CONNECTION_WINDOW as usize)
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(20))
            .max_header_list_size(MAX_HEADER_BYTES as u32);
        let http = Arc::new(http);
        let mut accept_errors = AcceptErrors::default();
        loop {
            let (tcp, remote) = tokio::select! {
                () = self.shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(err) => {
                        // Out of file descriptors and similar: back off instead of spinning,
                        // and do not flood the log.
                        let (pause, report) = accept_errors.failed(Instant::now());
                        if let Some(left_out) = report {
                            let more = if left_out > 0 {
                                format!(" ({left_out} more since the last report)")
                            } else {
                                String::new()
                            };
                            self.telemetry.logs.error(
                                level::WARN,
                                None,
                                &format!("http: accept error: {err}{more}; retrying in {pause:?}"),
                            );
                        }
                        tokio::select! {
                            () = self.shutdown.cancelled() => break,
                            () = tokio::time::sleep(pause) => {}
                        }
                        continue;
                    }
                },
            };
            accept_errors.succeeded();
            let _ = tcp.set_nodelay(true);
            let server = self.clone();
            let (open, admission) = Connections::admit(&self.connections, remote.ip());
            match admission {
                Admission::Serve { idle } => {
                    let http = http.clone();
                    tokio::spawn(async move {
                        let _open = open;
                        server.serve_connection(tcp, remote, &http, idle).await;
                    });
                }
                Admission::TooMany => {
                    tokio::spawn(server.refuse(tcp, remote, open, "too many open connections"));
                }
                Admission::TooManyFromAddress => {
                    tokio::spawn(server.refuse(
                        tcp,
                        remote,
                        open,
                        "too many open connections from this address",
                    ));
                }
            }
        }
        drop(listener);
        // Open connections close once their requests are answered (idle ones at once).
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while self.connections.lock().open > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs the TLS handshake on `tcp` within [`HANDSHAKE_TIMEOUT`]. What the end of a TLS 1.3
    /// handshake writes (the session ticket) is held for the first reply ([`Held`]); when the
    /// handshake fails, the alert rustls queued for the client is still sent. `Err(None)`: the
    /// handshake timed out.
    async fn accept(&self, tcp: tokio::net::TcpStream) -> Result<Tls, Option<std::io::Error>> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.load_full());
        let handshake = acceptor.accept(Held::new(tcp)).into_fallible();
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(mut tls)) => {
                let (io, session) = tls.get_mut();
                if session.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3) {
                    io.defer();
                } else {
                    io.release();
                }
                Ok(tls)
            }
            Ok(Err((err, mut io))) => {
                io.release();
                let _ = tokio::time::timeout(ALERT_GRACE, io.flush()).await;
                Err(Some(err))
            }
            Err(_) => Err(None),
        }
    }

    /// Runs the TLS handshake and serves the connection's requests.
    async fn serve_connection(
        self: Arc<Self>,
        tcp: tokio::net::TcpStream,
        remote: SocketAddr,
        http: &auto::Builder<TokioExecutor>,
        idle: Duration,
    ) {
        let tls = match self.accept(tcp).await {
            Ok(tls) => tls,
            Err(Some(err)) => {
                self.telemetry.logs.error(
                    level::INFO,
                    None,
                    &format!("http: TLS handshake error from {remote}: {err}"),
                );
                return;
            }
            Err(None) => return,
        };
        let peer = Peer::from_certificates(tls.get_ref().1.peer_certificates());
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            // Boxed, so that hyper's large connection state is not part of every
            // connection's task (most are HTTP/1.1).
            Box::pin(serve_h2(self, http, tls, peer, remote, idle)).await;
            return;
        }
        let shutdown = self.shutdown.clone();
        let service = Http1 {
            server: self,
            peer,
            remote,
        };
        kes_h1::serve(tls, http1_limits(idle), &shutdown, &service).await;
    }
}

/// Serves a connection that negotiated HTTP/2, with hyper. The connection is closed (GOAWAY,
/// then the streams in flight finish) when it had no stream open for `idle`, when a reply asks
/// for it ([`CloseConnection`]) and at shutdown. Keep-alive pings do not count as activity.
async fn serve_h2(
    server: Arc<Server>,
    http: &auto::Builder<TokioExecutor>,
    tls: Tls,
    peer: Peer,
    remote: SocketAddr,
    idle: Duration,
) {
    let peer = Arc::new(peer);
    let activity = Arc::new(Activity::new());
    let close = CancellationToken::new();
    let shutdown = server.shutdown.clone();
    let service = {
        let activity = activity.clone();
        let close = close.clone();
        hyper::service::service_fn(move |req| {
            let server = server.clone();
            let peer = peer.clone();
            let stream = Stream::open(activity.clone());
            let close = close.clone();
            async move {
                let req = req.map(crate::http::H2Body);
                let res = server.handle(req, &peer, remote).await;
                if res.extensions().get::<CloseConnection>().is_some() {
                    close.cancel();
                }
                // The stream counts as active until its reply body is done (log streams).
                let res = res.map(|body| {
                    Tracked {
                        body,
                        _stream: stream,
                    }
                    .boxed()
                });
                Ok::<_, std::convert::Infallible>(res)
            }
        })
    };
    let conn = http.serve_connection(TokioIo::new(tls), service);
    let mut conn = std::pin::pin!(conn);
    loop {
        let wait = activity.idle_for().map_or(idle, |d| idle.saturating_sub(d));
        tokio::select! {
            _ = conn.as_mut() => return,
            () = close.cancelled() => break,
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(wait) => {
                if activity.idle_for().is_some_and(|d| d >= idle) {
                    break;
                }
            }
        }
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(REFUSAL_GRACE, conn).await;
}

/// The streams of one HTTP/2 connection: how many are in flight, and when the last one ended.
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `start` to the end of the last stream.
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    /// How long no stream has been in flight; `None` while one is.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Acquire));
        Some(self.start.elapsed().saturating_sub(last))
    }
}

/// One stream in flight, from its request until its reply body is dropped.
struct Stream(Arc<Activity>);

impl Stream {
    fn open(activity: Arc<Activity>) -> Stream {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Stream(activity)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.fetch_max(ms, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A reply body that keeps its stream counted as active while it is sent.
struct Tracked {
    body: Body,
    _stream: Stream,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The HTTP/1.1 limits: Go's timeouts, the configured idle timeout, and a request head of at
/// most [`MAX_HEADER_BYTES`].
fn http1_limits(idle: Duration) -> kes_h1::Limits {
    kes_h1::Limits {
        idle,
        header: HEADER_TIMEOUT,
        max_head: MAX_HEADER_BYTES,
        write: WRITE_TIMEOUT,
    }
}

/// The requests of one HTTP/1.1 connection, served by the pipeline.
struct Http1 {
    server: Arc<Server>,
    peer: Peer,
    remote: SocketAddr,
}

impl kes_h1::Service for Http1 {
    fn call<'a, B: crate::http::RequestBody + 'a>(
        &'a self,
        req: http::Request<B>,
    ) -> kes_h1::ReplyFuture<'a> {
        Box::pin(async move {
            let mut res = self.server.handle(req, &self.peer, self.remote).await;
            if res.extensions().get::<CloseConnection>().is_some() {
                res.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            res
        })
    }
}

/// The open connections, in all and per client address, and their limits.
struct Connections {
    limits: ConnectionLimits,
    open: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// Whether a new connection is served.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    /// Served, closed after being idle this long.
    Serve { idle: Duration },
    /// Refused: `limits.max_connections` are open.
    TooMany,
    /// Refused: `limits.max_connections_per_address` are open from its address.
    TooManyFromAddress,
}

impl Connections {
    fn new(limits: ConnectionLimits) -> Self {
        Connections {
            limits,
            open: 0,
            per_address: HashMap::new(),
        }
    }

    /// Counts a new connection from `ip` (refused ones too, while they are refused) and says
    /// whether it is served.
    fn admit(this: &Arc<Mutex<Connections>>, ip: IpAddr) -> (ConnectionGuard, Admission) {
        let ip = ip.to_canonical();
        let mut c = this.lock();
        c.open += 1;
        let from_address = c.per_address.entry(ip).or_insert(0);
        *from_address += 1;
        let from_address = *from_address;
        let admission = if c.open > c.limits.max {
            Admission::TooMany
        } else if from_address > c.limits.per_address {
            Admission::TooManyFromAddress
        } else {
            Admission::Serve {
                idle: c.limits.idle,
            }
        };
        drop(c);
        let guard = ConnectionGuard {
            connections: this.clone(),
            ip,
        };
        (guard, admission)
    }
}

/// Counts an open connection for as long as it lives.
struct ConnectionGuard {
    connections: Arc<Mutex<Connections>>,
    ip: IpAddr,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut c = self.connections.lock();
        c.open = c.open.saturating_sub(1);
        if let Some(n) = c.per_address.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_address.remove(&self.ip);
            }
        }
    }
}

/// Failed accepts in a row: the pause before the next one, and when to log.
#[derive(Default)]
struct AcceptErrors {
    backoff: Option<Duration>,
    last_report: Option<Instant>,
    left_out: u64,
}

impl AcceptErrors {
    /// Records a failure at `now`: how long to pause, and `Some(errors left out)` when this one
    /// is to be logged.
    fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        let pause = self
            .backoff
            .map_or(ACCEPT_BACKOFF_MIN, |b| (b * 2).min(ACCEPT_BACKOFF_MAX));
        self.backoff = Some(pause);
        let due = self
            .last_report
            .is_none_or(|t| now.saturating_duration_since(t) >= ACCEPT_LOG_INTERVAL);
        if due {
            self.last_report = Some(now);
            let left_out = std::mem::take(&mut self.left_out);
            (pause, Some(left_out))
        } else {
            self.left_out += 1;
            (pause, None)
        }
    }

    /// An accept succeeded: the next failure starts with the shortest pause again.
    fn succeeded(&mut self) {
        self.backoff = None;
    }
}

impl Server {
    /// Answers a connection above a connection limit: after the TLS handshake, its requests get
    /// 503 with `message` and the connection is closed (HTTP/1.1 after the first reply, HTTP/2
    /// after [`REFUSAL_GRACE`]).
    async fn refuse(
        self: Arc<Self>,
        tcp: tokio::net::TcpStream,
        remote: SocketAddr,
        _open: ConnectionGuard,
        message: &'static str,
    ) {
        let Ok(tls) = self.accept(tcp).await else {
            return;
        };
        if self.telemetry.logs.error_enabled(level::WARN) {
            self.telemetry.logs.error(
                level::WARN,
                None,
                &format!("http: {message}: refusing {remote}"),
            );
        }
        let refusal = Refusal(message);
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            let service = hyper::service::service_fn(|_req| async move {
                Ok::<_, std::convert::Infallible>(refusal.reply())
            });
            let builder = auto::Builder::new(TokioExecutor::new()).http2_only();
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            let _ = tokio::time::timeout(REFUSAL_GRACE, conn).await;
        } else {
            let shutdown = self.shutdown.clone();
            let limits = kes_h1::Limits {
                idle: REFUSAL_GRACE,
                header: REFUSAL_GRACE,
                ..http1_limits(REFUSAL_GRACE)
            };
            let _ = tokio::time::timeout(
                REFUSAL_GRACE,
                kes_h1::serve(tls, limits, &shutdown, &refusal),
            )
            .await;
        }
    }
}

/// The reply to every request on a refused connection.
#[derive(Clone, Copy)]
struct Refusal(&'static str);

impl Refusal {
    fn reply(self) -> http::Response<Body> {
        let mut res = crate::http::error_response(&crate::ApiError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            self.0,
        ));
        res.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
        res
    }
}

impl kes_h1::Service for Refusal {
    fn call<'a, B: crate::http::RequestBody + 'a>(
        &'a self,
        _req: http::Request<B>,
    ) -> kes_h1::ReplyFuture<'a> {
        let reply = self.reply();
        Box::pin(async move { reply })
    }
}

/// Binds a listener, logging a helpful error when the address is taken.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_take_every_connection() {
        let limits = ConnectionLimits::new(Some(5), Some(2), None);
        let c = Arc::new(Mutex::new(Connections::new(limits)));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let idle = Admission::Serve { idle: limits.idle };
        let (g1, r1) = Connections::admit(&c, a);
        let (g2, r2) = Connections::admit(&c, a);
        let (g3, r3) = Connections::admit(&c, a);
        assert_eq!(
            (r1, r2, r3),
            (
                idle,
                Admission::Serve { idle: limits.idle },
                Admission::TooManyFromAddress
            )
        );
        // The other address still connects; an IPv4-mapped IPv6 address is the same address.
        let (_g4, r4) = Connections::admit(&c, b);
        assert_eq!(r4, Admission::Serve { idle: limits.idle });
        let mapped: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let (_g5, r5) = Connections::admit(&c, mapped);
        assert_eq!(r5, Admission::Serve { idle: limits.idle });
        // Refused connections count while they are refused; the total limit still holds.
        let (_g6, r6) = Connections::admit(&c, "10.0.0.3".parse().unwrap());
        assert_eq!(r6, Admission::TooMany);
        drop((g1, g2, g3));
        assert_eq!(c.lock().per_address.get(&a), None);
        let (_g7, r7) = Connections::admit(&c, a);
        assert_eq!(r7, Admission::Serve { idle: limits.idle });
    }

    #[test]
    fn default_limits() {
        let d = ConnectionLimits::default();
        assert_eq!(
            (d.max, d.per_address, d.idle),
            (10_000, 1_000, Duration::from_secs(90))
        );
        let small = ConnectionLimits::new(Some(3), None, Some(Duration::from_secs(1)));
        assert_eq!((small.max, small.per_address), (3, 3));
        assert_eq!(
            ConnectionLimits::new(Some(3), Some(10), None).per_address,
            3
        );
    }

    #[test]
    fn accept_errors_back_off_and_are_reported_sparingly() {
        let mut e = AcceptErrors::default();
        let t0 = Instant::now();
        assert_eq!(e.failed(t0), (ACCEPT_BACKOFF_MIN, Some(0)));
        let mut pauses = Vec::new();
        for i in 1..12u32 {
            let (pause, report) = e.failed(t0 + Duration::from_millis(u64::from(i)));
            assert_eq!(report, None);
            pauses.push(pause);
        }
        assert_eq!(pauses.first(), Some(&(ACCEPT_BACKOFF_MIN * 2)));
        assert_eq!(pauses.last(), Some(&ACCEPT_BACKOFF_MAX));
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        // The next report says how many were left out.
        let (_, report) = e.failed(t0 + ACCEPT_LOG_INTERVAL);
        assert_eq!(report, Some(11));
        e.succeeded();
        assert_eq!(e.failed(t0 + ACCEPT_LOG_INTERVAL * 2).0, ACCEPT_BACKOFF_MIN);
    }
}
