//! The listener: accepts TCP connections, runs the TLS handshake off the accept loop, computes
//! the peer's identity once per connection and serves HTTP/1.1 and HTTP/2 on it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::logs::Logs;
use crate::metrics::Metrics;
use crate::policies::{Policies, Runtime};
use crate::state::State;
use crate::timeouts::{HEADER_TIMEOUT, IDLE_TIMEOUT, WRITE_TIMEOUT};
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

/// A running KES server's shared parts.
pub struct Server {
    pub(crate) state: ArcSwap<State>,
    pub(crate) policies: ArcSwap<Policies>,
    pub(crate) runtime: Mutex<Runtime>,
    pub(crate) tls: ArcSwap<rustls::ServerConfig>,
    pub(crate) started: Instant,
    pub(crate) started_at: OffsetDateTime,
    pub(crate) metrics: Metrics,
    pub(crate) logs: Logs,
    pub(crate) shutdown: CancellationToken,
    max_connections: AtomicUsize,
    open_connections: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// A server with an initial state and TLS configuration.
    pub fn new(
        state: State,
        policies: Policies,
        tls: rustls::ServerConfig,
        logs: Logs,
    ) -> Arc<Server> {
        let runtime = Runtime::new(policies, state.admin.to_string());
        Arc::new(Server {
            policies: ArcSwap::from_pointee(runtime.effective()),
            runtime: Mutex::new(runtime),
            state: ArcSwap::from_pointee(state),
            tls: ArcSwap::from_pointee(tls),
            started: Instant::now(),
            started_at: OffsetDateTime::now_utc(),
            metrics: Metrics::new(),
            logs,
            shutdown: CancellationToken::new(),
            max_connections: AtomicUsize::new(usize::MAX),
            open_connections: Arc::new(AtomicUsize::new(0)),
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
        server.set_max_connections(prepared.max_connections);
        server
    }

    /// Switches to a new configuration (SIGHUP): log levels, TLS for new connections, the
    /// connection limit, the route settings, the keystore and the config file's policies.
    /// Requests in flight finish with the old ones; open connections stay open.
    pub fn reload(&self, prepared: crate::setup::Prepared) {
        self.logs.set_levels(prepared.log);
        self.update_tls(prepared.tls);
        self.set_max_connections(prepared.max_connections);
        self.update_state(prepared.state, prepared.policies);
    }

    /// Replaces the configuration snapshot and the config file's policies (reload); requests in
    /// flight finish with the old ones. Runtime policy changes are kept unless the new file names
    /// the same policies or identities (see [`crate::policies`]).
    pub fn update_state(&self, state: State, policies: Policies) {
        let mut runtime = self.runtime.lock();
        runtime.rebase(policies, state.admin.to_string());
        self.policies.store(Arc::new(runtime.effective()));
        self.state.store(Arc::new(state));
    }

    /// Applies a runtime policy change and publishes the new effective policies.
    pub(crate) fn change_policies<T>(&self, change: impl FnOnce(&mut Runtime) -> T) -> T {
        let mut runtime = self.runtime.lock();
        let result = change(&mut runtime);
        self.policies.store(Arc::new(runtime.effective()));
        result
    }

    /// The current policies.
    pub fn policies(&self) -> arc_swap::Guard<Arc<Policies>> {
        self.policies.load()
    }

    /// Sets how many connections are served at once; connections above it are answered with
    /// 503 and closed.
    pub fn set_max_connections(&self, max: usize) {
        self.max_connections.store(max.max(1), Ordering::Relaxed);
    }

    /// Replaces the TLS configuration for new connections.
    pub fn update_tls(&self, tls: rustls::ServerConfig) {
        self.tls.store(Arc::new(tls));
    }

    /// The current snapshot.
    pub fn state(&self) -> arc_swap::Guard<Arc<State>> {
        self.state.load()
    }

    /// When the server started.
    pub fn started_at(&self) -> OffsetDateTime {
        self.started_at
    }

    /// The logs (audit and error streams).
    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// Asks the accept loop to stop; open connections get a short grace period.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Serves connections from `listener` until [`Server::shutdown`] is called.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        // HTTP/1.1 is served by `h1`, which holds no buffer on an idle connection; hyper serves
        // the connections that negotiated HTTP/2.
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
        loop {
            let (tcp, remote) = tokio::select! {
                () = self.shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(err) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        self.logs.error(0, None, &format!("http: accept error: {err}"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let server = self.clone();
            let http = http.clone();
            let watcher = graceful.watcher();
            let open = ConnectionGuard::new(self.open_connections.clone());
            if open.count > self.max_connections.load(Ordering::Relaxed) {
                tokio::spawn(server.refuse(tcp, remote, open));
                continue;
            }
            tokio::spawn(async move {
                let _open = open;
                let acceptor = tokio_rustls::TlsAcceptor::from(server.tls.load_full());
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(err)) => {
                        server.logs.error(
                            0,
                            None,
                            &format!("http: TLS handshake error from {remote}: {err}"),
                        );
                        return;
                    }
                    Err(_) => return,
                };
                let peer = Peer::from_certificates(tls.get_ref().1.peer_certificates());
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    // Boxed, so that hyper's large connection state is not part of every
                    // connection's task (most are HTTP/1.1).
                    Box::pin(serve_h2(server, &http, watcher, tls, peer, remote)).await;
                    return;
                }
                drop(watcher);
                let shutdown = server.shutdown.clone();
                let service = Http1 {
                    server,
                    peer,
                    remote,
                };
                kes_h1::serve(tls, HTTP1_LIMITS, &shutdown, &service).await;
            });
        }
        drop(listener);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    }
}

/// Serves a connection that negotiated HTTP/2, with hyper.
async fn serve_h2(
    server: Arc<Server>,
    http: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    peer: Peer,
    remote: SocketAddr,
) {
    let peer = Arc::new(peer);
    let service = hyper::service::service_fn(move |req| {
        let server = server.clone();
        let peer = peer.clone();
        async move {
            let req = req.map(crate::http::H2Body);
            Ok::<_, std::convert::Infallible>(server.handle(req, &peer, remote).await)
        }
    });
    let conn = http.serve_connection(TokioIo::new(tls), service);
    let _ = watcher.watch(conn.into_owned()).await;
}

/// The HTTP/1.1 limits: Go's timeouts, and a request head of at most [`MAX_HEADER_BYTES`].
const HTTP1_LIMITS: kes_h1::Limits = kes_h1::Limits {
    idle: IDLE_TIMEOUT,
    header: HEADER_TIMEOUT,
    max_head: MAX_HEADER_BYTES,
    write: WRITE_TIMEOUT,
};

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
        Box::pin(self.server.handle(req, &self.peer, self.remote))
    }
}

/// Counts an open connection for as long as it lives.
struct ConnectionGuard {
    counter: Arc<AtomicUsize>,
    /// Open connections including this one.
    count: usize,
}

impl ConnectionGuard {
    fn new(counter: Arc<AtomicUsize>) -> Self {
        let count = counter.fetch_add(1, Ordering::Relaxed) + 1;
        Self { counter, count }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Server {
    /// Answers a connection above `limits.max_connections`: after the TLS handshake, every
    /// request on it gets 503 "too many open connections" and the connection is closed.
    async fn refuse(
        self: Arc<Self>,
        tcp: tokio::net::TcpStream,
        remote: SocketAddr,
        _open: ConnectionGuard,
    ) {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.load_full());
        let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
        else {
            return;
        };
        self.logs.error(
            4,
            None,
            &format!("http: too many open connections: refusing {remote}"),
        );
        let service = hyper::service::service_fn(|_req| async {
            let mut res = crate::http::error_response(&crate::ApiError::new(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "too many open connections",
            ));
            res.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            Ok::<_, std::convert::Infallible>(res)
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().keep_alive(false);
        let conn = builder.serve_connection(TokioIo::new(tls), service);
        // HTTP/2 clients may keep the connection open: give them a moment, then close.
        let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
    }
}

/// Binds a listener, logging a helpful error when the address is taken.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
