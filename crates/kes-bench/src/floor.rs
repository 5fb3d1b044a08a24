//! The machine's floor under a server's cost: a bare TCP echo (no TLS, no HTTP, no crypto: one
//! read and one write per request) measured like the `rate` group measures a KES server, so that
//! its CPU per request at an offered load shows what waking an idle CPU for each request costs on
//! this machine before any server code runs.
//!
//! The echo server is this program started again with [`ECHO_FLAG`], pinned like the KES servers;
//! it serves each connection on a thread of its own with blocking reads and writes, the cheapest
//! shape there is for one connection. The client sends [`MESSAGE`] bytes (about a `generate`
//! request) on one connection at the offered rate and reads them back.
//!
//! Each load runs twice: with a client that sleeps between requests and in `read` (as every real
//! client does), and with a client that never sleeps (it spins on its CPU until a request is due
//! and on a non-blocking socket for the echo). On loopback the echo's `write` runs the client's
//! TCP receive path and wakes the client's thread; a sleeping client on another CPU makes that an
//! inter-processor interrupt, charged to the echo server. The difference between the two is what
//! waking the client costs the server per request on this machine.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use crate::affinity::CpuSet;
use crate::proc;

/// The first argument that makes this program the echo server.
pub const ECHO_FLAG: &str = "--echo-server";

/// Bytes of one request (and of its echo).
pub const MESSAGE: usize = 300;

/// How long the client waits for one echo before it gives up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// One measured load of the echo server.
#[derive(Debug, Clone, Serialize)]
pub struct FloorResult {
    /// Short name.
    pub name: String,
    /// The offered load, requests per second (`None`: as fast as one connection goes).
    pub rate: Option<u32>,
    /// Echoes completed in the window.
    pub requests: u64,
    /// Length of the measured window in seconds.
    pub seconds: f64,
    /// Echoes per second.
    pub rps: f64,
    /// The echo server's CPU time per request, µs (its process CPU clock).
    pub server_run_us: f64,
    /// Its context switches per request.
    pub switches_per_req: f64,
    /// Wakeups of its threads per request (voluntary switches).
    pub wakeups_per_req: f64,
    /// Median latency from the intended send time, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
}

/// Runs the echo server until its standard input closes: prints its port on a line of its own,
/// then echoes every connection.
pub fn serve_echo() -> ExitCode {
    let listener = match TcpListener::bind(("127.0.0.1", 0)) {
        Ok(l) => l,
        Err(err) => {
            eprintln!("kes-bench echo server: binding 127.0.0.1: {err}");
            return ExitCode::FAILURE;
        }
    };
    // A second listener serves one connection at a time on the accepting thread: one echo,
    // then it waits for the client's close and closes too (the cost of a TCP connection).
    let serial = match TcpListener::bind(("127.0.0.1", 0)) {
        Ok(l) => l,
        Err(err) => {
            eprintln!("kes-bench echo server: binding 127.0.0.1: {err}");
            return ExitCode::FAILURE;
        }
    };
    let ports = (listener.local_addr(), serial.local_addr());
    let (Ok(port), Ok(serial_port)) = ports else {
        eprintln!("kes-bench echo server: no local address");
        return ExitCode::FAILURE;
    };
    println!("{} {}", port.port(), serial_port.port());
    if std::io::stdout().flush().is_err() {
        return ExitCode::FAILURE;
    }
    // The benchmark closes our standard input when it is done (or dies): then we go too.
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    std::thread::spawn(move || {
        for stream in serial.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_nodelay(true);
            echo(stream);
        }
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        std::thread::spawn(move || echo(stream));
    }
    ExitCode::SUCCESS
}

fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let Some(read) = buf.get(..n) else { return };
                if stream.write_all(read).is_err() {
                    return;
                }
            }
        }
    }
}

/// Starts the echo server pinned to `cpus` and measures it at each of `rates` and as fast as
/// one connection goes.
pub fn run(
    rates: &[u32],
    cpus: Option<CpuSet>,
    warmup: Duration,
    measure: Duration,
) -> Result<Vec<FloorResult>> {
    let exe = std::env::current_exe().context("finding this program to start the echo server")?;
    let mut command = Command::new(exe);
    command
        .arg(ECHO_FLAG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    crate::server::before_exec(&mut command, cpus);
    let mut child = command.spawn().context("starting the echo server")?;
    let result = (|| {
        let stdout = child.stdout.take().context("echo server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("reading the echo server's port")?;
        let mut ports = line.split_ascii_whitespace().map(str::parse::<u16>);
        let (Some(Ok(port)), Some(Ok(serial_port)), None) =
            (ports.next(), ports.next(), ports.next())
        else {
            bail!("the echo server printed {line:?}, not two ports");
        };
        let mut stream = connect(port)?;
        crate::load::set_timer_slack_ns(1);
        let mut out = Vec::new();
        let loads = rates.iter().copied().map(Some).chain([None]);
        let phases = [Client::Sleeps, Client::Awake]
            .into_iter()
            .flat_map(|client| loads.clone().map(move |rate| (client, rate)));
        for (round, (client, rate)) in phases.enumerate() {
            let warm = if round == 0 {
                warmup.max(Duration::from_secs(1))
            } else {
                warmup
            };
            out.push(shown(measure_load(
                &mut stream,
                child.id(),
                Load {
                    rate,
                    client,
                    warmup: warm,
                    measure,
                },
            )?));
        }
        out.push(shown(measure_connections(
            serial_port,
            child.id(),
            warmup,
            measure,
        )?));
        Ok(out)
    })();
    // Closing its standard input ends the echo server; kill it if it lingers.
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return result;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// `r`, after a line about it on the terminal.
fn shown(r: FloorResult) -> FloorResult {
    eprintln!(
        "{:<34} {:>9.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs  echo server {:>6.1} µs/req",
        r.name, r.rps, r.p50_us, r.p99_us, r.server_run_us
    );
    r
}

/// A connection to the echo server on `port`, as the client uses it.
fn connect(port: u16) -> Result<TcpStream> {
    let stream =
        TcpStream::connect(("127.0.0.1", port)).context("connecting to the echo server")?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .context("read timeout")?;
    Ok(stream)
}

/// Sends one message on `stream` and reads its echo back. A client that sleeps blocks in its
/// calls; an awake one has made `stream` non-blocking and spins until its message is sent and
/// the whole echo is back (or [`REPLY_TIMEOUT`] has passed).
fn exchange(stream: &mut TcpStream, client: Client) -> Result<()> {
    let message = [0x5au8; MESSAGE];
    let mut reply = [0u8; MESSAGE];
    match client {
        Client::Sleeps => {
            stream
                .write_all(&message)
                .context("sending to the echo server")?;
            stream
                .read_exact(&mut reply)
                .context("reading from the echo server")?;
        }
        Client::Awake => {
            let deadline = Instant::now() + REPLY_TIMEOUT;
            let spin = |what: &str, result: std::io::Result<usize>, done: &mut usize| {
                match result {
                    Ok(0) => bail!("the echo server closed the connection while {what}"),
                    Ok(n) => *done += n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            bail!("no echo within {REPLY_TIMEOUT:?}");
                        }
                        std::hint::spin_loop();
                    }
                    Err(e) => return Err(e).with_context(|| format!("{what} the echo server")),
                }
                Ok(())
            };
            let mut sent = 0;
            while let Some(rest) = message.get(sent..).filter(|r| !r.is_empty()) {
                spin("sending to", stream.write(rest), &mut sent)?;
            }
            let mut read = 0;
            while let Some(rest) = reply.get_mut(read..).filter(|r| !r.is_empty()) {
                spin("reading from", stream.read(rest), &mut read)?;
            }
        }
    }
    if reply != message {
        bail!("the echo server answered other bytes than it was sent");
    }
    Ok(())
}

/// A new TCP connection per echo, one at a time, as fast as they go: connect, send, read the
/// echo, close; the server closes after the client.
fn measure_connections(
    port: u16,
    pid: u32,
    warmup: Duration,
    measure: Duration,
) -> Result<FloorResult> {
    let once = || -> Result<Duration> {
        let start = Instant::now();
        exchange(&mut connect(port)?, Client::Sleeps)?;
        Ok(start.elapsed())
    };
    // Both loops end when their time is up: each connection either completes or times out.
    let warm = Instant::now();
    while warm.elapsed() < warmup {
        once()?;
    }
    let mut latencies = Vec::with_capacity(1 << 16);
    let before = proc::sched(pid)?;
    let started = Instant::now();
    while started.elapsed() < measure {
        latencies.push(once()?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let used = proc::sched(pid)?.since(before);
    Ok(summary(
        "tcp echo, new connection per request".into(),
        None,
        latencies,
        seconds,
        used,
    ))
}

fn summary(
    name: String,
    rate: Option<u32>,
    mut latencies: Vec<Duration>,
    seconds: f64,
    used: proc::Sched,
) -> FloorResult {
    latencies.sort_unstable();
    let at = |q: f64| -> f64 {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    let requests = latencies.len() as u64;
    let n = requests.max(1) as f64;
    FloorResult {
        name,
        rate,
        requests,
        seconds,
        rps: requests as f64 / seconds,
        server_run_us: used.run_ns as f64 / 1e3 / n,
        switches_per_req: used.switches() as f64 / n,
        wakeups_per_req: used.voluntary as f64 / n,
        p50_us: at(0.50),
        p99_us: at(0.99),
    }
}

/// How the client waits between requests and for an echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    /// It sleeps until a request is due and blocks in `read` for the echo.
    Sleeps,
    /// It spins instead: its CPU never idles, so the echo's write wakes nobody.
    Awake,
}

/// One measured load of the echo server.
struct Load {
    /// Echoes per second offered (`None`: one after the other, as fast as they go).
    rate: Option<u32>,
    client: Client,
    warmup: Duration,
    measure: Duration,
}

/// Echoes at `load.rate` (open loop: request k is due at start + k/rate, latency counts from
/// then) for the warm-up, then for the measured window, and reports the measured window.
fn measure_load(stream: &mut TcpStream, pid: u32, load: Load) -> Result<FloorResult> {
    let awake = load.client == Client::Awake;
    stream
        .set_nonblocking(awake)
        .context("switching the client's socket mode")?;
    let mut ping = |due: Instant| -> Result<Duration> {
        if awake {
            // Bounded: `due` is at most one interval ahead of now.
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        } else if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        exchange(stream, load.client)?;
        Ok(due.elapsed())
    };
    let interval = load
        .rate
        .map(|r| Duration::from_secs_f64(1.0 / f64::from(r)));
    // Both loops end when their time is up: each echo either completes or times out.
    let mut window = |length: Duration, latencies: &mut Vec<Duration>| -> Result<()> {
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < length {
            let due = match interval {
                Some(i) => start + i.mul_f64(sent as f64),
                None => Instant::now(),
            };
            latencies.push(ping(due)?);
            sent += 1;
        }
        Ok(())
    };
    window(load.warmup, &mut Vec::new())?;
    let mut latencies = Vec::with_capacity(1 << 16);
    let before = proc::sched(pid)?;
    let started = Instant::now();
    window(load.measure, &mut latencies)?;
    let seconds = started.elapsed().as_secs_f64();
    let used = proc::sched(pid)?.since(before);
    stream
        .set_nonblocking(false)
        .context("switching the client's socket mode")?;
    let client = if awake {
        crate::report::CLIENT_AWAKE
    } else {
        ""
    };
    let name = match load.rate {
        Some(r) => format!("tcp echo ×1 @ {r}/s{client}"),
        None => format!("tcp echo ×1 saturated{client}"),
    };
    Ok(summary(name, load.rate, latencies, seconds, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener on 127.0.0.1 whose one connection is served by `serve` on a thread.
    fn server(serve: fn(TcpStream)) -> TcpStream {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            serve(stream);
        });
        let stream = connect(port).unwrap();
        stream.set_nonblocking(true).unwrap();
        stream
    }

    #[test]
    fn an_awake_client_gets_its_echo_back_again_and_again() {
        let mut stream = server(echo);
        for _ in 0..100 {
            exchange(&mut stream, Client::Awake).unwrap();
        }
    }

    #[test]
    fn an_awake_client_notices_wrong_bytes_and_a_closed_connection() {
        let mut stream = server(|mut s| {
            let mut buf = [0u8; MESSAGE];
            s.read_exact(&mut buf).unwrap();
            buf[7] ^= 1;
            s.write_all(&buf).unwrap();
        });
        let err = exchange(&mut stream, Client::Awake).unwrap_err();
        assert!(err.to_string().contains("other bytes"), "{err:#}");

        let mut stream = server(|mut s| {
            let mut buf = [0u8; MESSAGE];
            s.read_exact(&mut buf).unwrap();
        });
        let err = exchange(&mut stream, Client::Awake).unwrap_err();
        assert!(err.to_string().contains("closed the connection"), "{err:#}");
    }
}
