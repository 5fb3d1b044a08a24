//! What rustls itself costs per handshake on this machine: full and resumed mTLS handshakes run
//! in memory (no sockets, no kernel, no runtime) between the load generator's client
//! configuration and the server's own TLS configuration (`kes_server::tls::server_config`, with
//! the PKI's server certificate and the server's session cache), the server side timed by its
//! thread's CPU clock. Set against the `handshake` group's server CPU per new connection, the
//! difference is what the rest of a new connection costs: TCP set-up and teardown in the
//! kernel, the runtime, the request itself.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use rustls::{ClientConfig, ClientConnection, HandshakeKind, ServerConfig, ServerConnection};
use rustls_pki_types::ServerName;
use serde::Serialize;

use crate::load::{self, Suites, Who};
use crate::proc::thread_cpu_ns;

/// Round trips after which a handshake that has not finished is an error.
const MAX_FLIGHTS: usize = 16;

/// The measured cost of one kind of handshake.
#[derive(Debug, Clone, Serialize)]
pub struct HandshakeCost {
    /// `full` or `resumed`.
    pub name: String,
    /// Handshakes measured.
    pub handshakes: u64,
    /// The server side's CPU per handshake, µs: `ServerConnection::new`, reading, processing
    /// and writing every flight, the session ticket included.
    pub server_us: f64,
    /// Of it, outside rustls: the client's identity from its certificate (parse, SHA-256 of
    /// the public key), as the server computes it once per connection.
    pub identity_us: f64,
    /// The client side's CPU per handshake, µs.
    pub client_us: f64,
    /// The negotiated cipher suite.
    pub suite: String,
    /// The key exchange group.
    pub kx: String,
}

/// Measures `measure` seconds of full handshakes, then as long of resumed ones.
pub fn run(pki: &Path, suites: Suites, measure: Duration) -> Result<Vec<HandshakeCost>> {
    let key =
        kes_server::tls::load_certified_key(&pki.join("server.crt"), &pki.join("server.key"), None)
            .context("loading the server certificate")?;
    let server = Arc::new(
        kes_server::tls::server_config(
            key,
            &kes_server::tls::ClientAuth::default(),
            kes_server::setup::session_cache(),
        )
        .context("building the server's TLS configuration")?,
    );
    let mut out = Vec::new();
    for (name, resumption, kind) in [
        ("full", false, HandshakeKind::Full),
        ("resumed", true, HandshakeKind::Resumed),
    ] {
        let client = load::client_config(pki, Who::Admin, resumption, suites)?;
        // Unmeasured: warms caches, and for resumption leaves a ticket in the client's cache.
        for _ in 0..20 {
            handshake(&server, &client)?;
        }
        let mut sum = Sample::default();
        let started = Instant::now();
        let mut n = 0u64;
        let mut last = None;
        while started.elapsed() < measure {
            let s = handshake(&server, &client)?;
            if s.kind != Some(kind) {
                bail!("a {name} handshake was {:?}", s.kind);
            }
            sum.server_ns += s.server_ns;
            sum.identity_ns += s.identity_ns;
            sum.client_ns += s.client_ns;
            n += 1;
            last = Some(s);
        }
        let last = last.context("no handshake in the measured time")?;
        let per = |ns: u64| ns as f64 / 1e3 / n as f64;
        out.push(HandshakeCost {
            name: name.into(),
            handshakes: n,
            server_us: per(sum.server_ns),
            identity_us: per(sum.identity_ns),
            client_us: per(sum.client_ns),
            suite: last.suite,
            kx: last.kx,
        });
    }
    for t in &out {
        eprintln!(
            "rustls {:<8} handshake in memory: server {:.1} µs (identity {:.1} µs), client {:.1} µs, {} handshakes, {}, {}",
            t.name, t.server_us, t.identity_us, t.client_us, t.handshakes, t.suite, t.kx
        );
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct Sample {
    server_ns: u64,
    identity_ns: u64,
    client_ns: u64,
    kind: Option<HandshakeKind>,
    suite: String,
    kx: String,
}

/// One handshake in memory, flight by flight, until both sides are done and nothing is in
/// flight (the server's session ticket reaches the client's cache).
fn handshake(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>) -> Result<Sample> {
    let mut sample = Sample::default();
    let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
    let t = thread_cpu_ns();
    let mut c = ClientConnection::new(Arc::clone(client), name).context("client connection")?;
    let t1 = thread_cpu_ns();
    sample.client_ns += t1 - t;
    let mut s = ServerConnection::new(Arc::clone(server)).context("server connection")?;
    sample.server_ns += thread_cpu_ns() - t1;
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let mut identity_done = false;
    for _ in 0..MAX_FLIGHTS {
        let t = thread_cpu_ns();
        while c.wants_write() {
            c.write_tls(&mut to_server).context("client write")?;
        }
        let t1 = thread_cpu_ns();
        sample.client_ns += t1 - t;
        feed(&mut s, &mut to_server).context("server")?;
        while s.wants_write() {
            s.write_tls(&mut to_client).context("server write")?;
        }
        if !identity_done && !s.is_handshaking() {
            let t = thread_cpu_ns();
            let cert = s
                .peer_certificates()
                .and_then(|c| c.first())
                .context("the client sent no certificate")?;
            let identity = kes_crypto::identity_of_certificate(cert.as_ref())
                .context("the client's identity")?;
            std::hint::black_box(identity);
            sample.identity_ns += thread_cpu_ns() - t;
            identity_done = true;
        }
        let t2 = thread_cpu_ns();
        sample.server_ns += t2 - t1;
        feed(&mut c, &mut to_client).context("client")?;
        sample.client_ns += thread_cpu_ns() - t2;
        if !c.is_handshaking()
            && !s.is_handshaking()
            && !c.wants_write()
            && !s.wants_write()
            && to_server.is_empty()
            && to_client.is_empty()
        {
            sample.kind = s.handshake_kind();
            sample.suite = s
                .negotiated_cipher_suite()
                .map(|cs| format!("{:?}", cs.suite()))
                .unwrap_or_default();
            sample.kx = s
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name()))
                .unwrap_or_default();
            return Ok(sample);
        }
    }
    bail!("the handshake did not finish in {MAX_FLIGHTS} flights")
}

/// Hands one side the bytes the other wrote and lets it process them; application data (none
/// in a handshake) is read and dropped.
fn feed<D: rustls::SideData>(
    conn: &mut rustls::ConnectionCommon<D>,
    bytes: &mut Vec<u8>,
) -> Result<()> {
    let mut input = bytes.as_slice();
    while !input.is_empty() {
        conn.read_tls(&mut input).context("reading TLS records")?;
        conn.process_new_packets().context("handshake")?;
    }
    bytes.clear();
    let mut sink = [0u8; 256];
    while matches!(conn.reader().read(&mut sink), Ok(n) if n > 0) {}
    Ok(())
}
