//! `kes-bench`: the load benchmark of the KES server.
//!
//! It builds the release `kes` binary (or takes the one given with `--kes`), starts it on
//! 127.0.0.1 with a filesystem keystore in a temporary directory, and drives it over mutual TLS
//! with the committed test PKI: N keep-alive connections sending `generate`, `decrypt`,
//! `encrypt` and `hmac` back to back, a new connection per request (full handshake, and with
//! TLS session resumption), growing numbers of connections (including idle ones) and of keys.
//! For each phase it reports requests per second, latency p50/p99/max, the server process's
//! CPU time per request (from `/proc/<pid>/stat`, so the load generator's own cost is excluded)
//! and its peak RSS (`VmHWM`, reset per phase). It writes `results.md`, `results.json` and the
//! chart `connections.png` into `--out`. See BENCHMARKS.md at the repository root.
//!
//! What it must never do: send traffic anywhere but the loopback address of the server it
//! started, run without a time bound, or leave the server running (it is killed on exit).

// `unsafe` only for system calls: `prctl` and `sched_setaffinity` in the forked server process
// (`server::before_exec`), `fcntl`/`dup2` in the forked perf process (`perf::pass_fds`), pinning
// (`affinity`) and the pacer's timer slack (`load::set_timer_slack_ns`).
#![deny(unsafe_code)]

mod affinity;
mod chart;
mod floor;
mod load;
mod perf;
mod proc;
mod report;
mod server;
mod tlscost;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, ValueEnum};

use crate::load::{Keys, Mode, Op, PhaseEnv, PhaseResult, PhaseSpec, Suites, Who, Workload};
use crate::server::{ConfigSpec, Server};

/// Upper bound of a key sweep (reading every key into the cache once).
const SWEEP_LIMIT: Duration = Duration::from_secs(120);

/// The groups of phases a run can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Group {
    /// generate, decrypt, encrypt, hmac on N keep-alive connections, one key.
    Ops,
    /// generate as an identity whose policy is checked (app.crt) instead of the admin.
    Policy,
    /// A new connection per request: full TLS handshake, and resumed.
    Handshake,
    /// generate on 1 and 256 keep-alive connections (16 comes from `ops`).
    Conns,
    /// generate over 1,000 and 100,000 keys (after reading each into the cache once).
    Keys,
    /// generate on N busy connections while 1,024 more are held open idle.
    Idle,
    /// generate with audit logging on (a second server).
    Audit,
    /// generate and decrypt at the offered loads of `--rate` (open loop), at saturation on
    /// `--conns` connections and on one connection, alternating between the `--server-bin`s.
    Rate,
    /// rustls' own cost per full and resumed handshake, in memory with the server's TLS
    /// configuration (no sockets), to set against `handshake`.
    Tls,
    /// A bare TCP echo on one connection at the `--rate` loads and saturated, pinned like the
    /// servers: the machine's floor under a server's cost per request.
    Floor,
}

/// A server binary to measure: `PATH` or `NAME=PATH`.
#[derive(Debug, Clone)]
struct ServerBin {
    name: String,
    path: PathBuf,
}

impl std::str::FromStr for ServerBin {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (name, path) = match s.split_once('=') {
            Some((name, path)) if !name.is_empty() && !name.contains('/') => (name, path),
            _ => ("", s),
        };
        if path.is_empty() {
            return Err("a server binary is PATH or NAME=PATH".into());
        }
        let path = PathBuf::from(path);
        let name = if name.is_empty() {
            path.file_name()
                .map_or_else(|| "kes".to_owned(), |n| n.to_string_lossy().into_owned())
        } else {
            name.to_owned()
        };
        Ok(ServerBin { name, path })
    }
}

/// Load benchmark of the KES server over mTLS on loopback.
#[derive(Debug, Parser)]
#[command(name = "kes-bench", version, about)]
struct Args {
    /// The server binary to benchmark, any KES-compatible one (started as `PATH server --config
    /// FILE --addr 127.0.0.1:PORT` with the same config and certificates); by default `cargo build
    /// --release -p kes` builds this repository's. Given more than once, the `rate` group's
    /// phases alternate between them (the other groups use the first); `NAME=PATH` names one
    /// in the report.
    #[arg(long = "server-bin", alias = "kes", value_name = "[NAME=]PATH")]
    server_bin: Vec<ServerBin>,
    /// Offered loads of the `rate` group, requests per second in all (open loop).
    #[arg(long, value_delimiter = ',', default_values_t = [1000u32, 4000, 8000],
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rate: Vec<u32>,
    /// Pin the server(s) to these CPUs (`taskset -c` syntax, e.g. `0`).
    #[arg(long, value_name = "LIST", value_parser = affinity::CpuSet::parse)]
    server_cpus: Option<affinity::CpuSet>,
    /// Pin the load generator to these CPUs (e.g. `1`).
    #[arg(long, value_name = "LIST", value_parser = affinity::CpuSet::parse)]
    client_cpus: Option<affinity::CpuSet>,
    /// How often the `rate` group runs each of its phases (each time on every server in turn);
    /// the tables show the median of the rounds and the range of the CPU per request.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=20))]
    rounds: u16,
    /// Run the `rate` group's servers with the audit log on (an event per request, written to
    /// the server's stdout, here `/dev/null`), as a server that audits every request runs.
    #[arg(long)]
    rate_audit: bool,
    /// A load generator that never sleeps: its runtime gets one thread, which never parks (a
    /// task yields in a loop). On loopback the server's write runs the client's TCP receive path
    /// and wakes the client's thread, which on a halted CPU is an inter-processor interrupt
    /// charged to the server; with the client awake the server pays for no other process's
    /// wakeup, as when its clients are on other machines. Real clients sleep: the default runs
    /// measure that.
    #[arg(long)]
    client_awake: bool,
    /// Do not count the server's system calls with perf.
    #[arg(long)]
    no_syscalls: bool,
    /// The test PKI directory (ca.crt, server.*, admin.*, app.*).
    #[arg(long, value_name = "DIR")]
    pki: Option<PathBuf>,
    /// Where results.md, results.json and connections.png are written.
    #[arg(long, value_name = "DIR", default_value = "target/kes-bench")]
    out: PathBuf,
    /// Busy (keep-alive) connections of the main phases.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=4096))]
    conns: u16,
    /// Idle connections held open in the `idle` phase.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u16).range(0..=16384))]
    idle: u16,
    /// The largest number of keys (the `keys` group also runs 1,000).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1000..=1_000_000))]
    keys: u32,
    /// Unmeasured seconds at the start of each phase.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Measured seconds of each phase.
    #[arg(long, default_value_t = 3.0)]
    measure: f64,
    /// The TLS 1.3 cipher suites the load generator offers (the server follows the client's
    /// order): `go` as MinIO and other Go clients, or rustls' default order.
    #[arg(long, value_enum, default_value_t = Suites::Go)]
    suites: Suites,
    /// The server's `mlock` setting. Locked memory (the server's default where the system
    /// permits, e.g. as root) keeps every mapped page resident, which raises the RSS.
    #[arg(long, value_name = "auto|required|off", value_parser = ["auto", "required", "off"])]
    mlock: Option<String>,
    /// Threads of the load generator's runtime.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    client_threads: u16,
    /// Run only these groups (comma-separated); default: all but `rate`.
    #[arg(long, value_delimiter = ',', value_name = "GROUP")]
    only: Vec<Group>,
    /// A short smoke run: 0.2 s warm-up, 0.5 s phases, 10,000 keys, 256 idle connections.
    #[arg(long)]
    quick: bool,
    /// Before each phase, wait up to this many seconds until other processes use less than
    /// 0.1 core (on a shared machine); 0 = don't wait, only report the disturbance.
    #[arg(long, default_value_t = 0, value_name = "SECS", value_parser = clap::value_parser!(u16).range(0..=3600))]
    quiet_wait: u16,
}

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == floor::ECHO_FLAG)
    {
        return floor::serve_echo();
    }
    let mut args = Args::parse();
    if args.quick {
        args.warmup = 0.2;
        args.measure = 0.5;
        args.keys = args.keys.min(10_000);
        args.idle = args.idle.min(256);
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kes-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut args: Args) -> Result<()> {
    if args.client_awake {
        // One thread: a second one could sleep in the I/O driver and be woken by replies.
        args.client_threads = 1;
    }
    if !(0.0..=60.0).contains(&args.warmup) || !(0.1..=60.0).contains(&args.measure) {
        bail!("--warmup must be within 0..60 s and --measure within 0.1..60 s");
    }
    let root = server::repo_root();
    let pki = args
        .pki
        .clone()
        .unwrap_or_else(|| root.join("testdata/pki"));
    if let Some(cpus) = &args.client_cpus {
        // Before the runtime exists, so that its threads (and perf) inherit the pinning.
        cpus.pin_current_thread()?;
    }
    let servers = if args.server_bin.is_empty() {
        vec![ServerBin {
            name: "kes".into(),
            path: server::build_release(&root)?,
        }]
    } else {
        args.server_bin.clone()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.client_threads))
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    runtime.block_on(async {
        // Yielding makes the runtime poll its I/O driver without waiting, then run the task
        // again: its thread never parks. It ends with the runtime.
        if args.client_awake {
            tokio::spawn(async {
                loop {
                    tokio::task::yield_now().await;
                }
            });
        }
        // On SIGINT or SIGTERM the benchmark future is dropped, which kills the server and
        // removes the temporary keystore.
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = bench(&args, &servers, &pki) => result,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
            _ = terminate.recv() => bail!("terminated"),
        }
    })
}

fn selected(args: &Args, group: Group) -> bool {
    if args.only.is_empty() {
        return !matches!(group, Group::Rate | Group::Floor);
    }
    args.only.contains(&group)
}

async fn bench(args: &Args, servers: &[ServerBin], pki: &Path) -> Result<()> {
    let Some(first) = servers.first() else {
        bail!("no server binary to benchmark");
    };
    let kes = &first.path;
    let run_started = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("kes-bench-")
        .tempdir()
        .context("temp dir")?;
    let keystore = tmp.path().join("keystore");
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&keystore)
            .context("keystore dir")?;
    }
    let admin = server::identity_of(&pki.join("admin.crt"))?;
    let max_keys = usize::try_from(args.keys).unwrap_or(100_000);
    let key_count = if selected(args, Group::Keys) {
        max_keys
    } else {
        1
    };
    let started = Instant::now();
    server::write_keys(&keystore, 0..key_count, &admin)?;
    eprintln!(
        "wrote {key_count} key(s) into {} in {:.1} s",
        keystore.display(),
        started.elapsed().as_secs_f64()
    );

    let warmup = Duration::from_secs_f64(args.warmup);
    let measure = Duration::from_secs_f64(args.measure);
    let conns = usize::from(args.conns);
    let spec = |name: &str, workload: &Workload, mode: Mode, conns: usize| PhaseSpec {
        name: name.to_owned(),
        workload: workload.clone(),
        mode,
        conns,
        idle: 0,
        who: Who::Admin,
        warmup,
        measure,
        rate: None,
    };
    let tick = proc::clock_tick();
    let quiet_wait = Duration::from_secs(u64::from(args.quiet_wait));
    let mut phases: Vec<PhaseResult> = Vec::new();

    let config = |audit| {
        server::config_yaml(&ConfigSpec {
            pki: pki.to_owned(),
            keystore: keystore.clone(),
            audit,
            mlock: args.mlock.clone(),
            // Room for the idle connections, the busy ones and a margin.
            per_address: selected(args, Group::Idle)
                .then(|| usize::from(args.idle) + 2 * conns + 64),
        })
    };
    let without_main_server = !args.only.is_empty()
        && args
            .only
            .iter()
            .all(|g| matches!(g, Group::Rate | Group::Floor | Group::Tls));
    if selected(args, Group::Rate) {
        let config = config(args.rate_audit)?;
        rate_group(args, servers, pki, &config, tmp.path(), &mut phases).await?;
    }
    let mut tls = Vec::new();
    if selected(args, Group::Tls) {
        let (pki, suites, cpus) = (pki.to_owned(), args.suites, args.server_cpus);
        tls = std::thread::spawn(move || {
            if let Some(cpus) = cpus {
                cpus.pin_current_thread()?;
            }
            tlscost::run(&pki, suites, measure)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the TLS measurement panicked"))??;
    }
    let mut floor = Vec::new();
    if selected(args, Group::Floor) {
        let (rates, cpus) = (args.rate.clone(), args.server_cpus);
        floor = tokio::task::spawn_blocking(move || floor::run(&rates, cpus, warmup, measure))
            .await
            .context("the floor measurement panicked")??;
    }
    if without_main_server {
        return finish(args, phases, floor, tls, &[], "", run_started.elapsed());
    }
    let mut srv = Server::start(kes, tmp.path(), &config(false)?, args.server_cpus)?;
    eprintln!(
        "kes server (pid {}) listening on {}, audit off",
        srv.pid(),
        srv.addr
    );
    let env = PhaseEnv {
        addr: srv.addr,
        pid: srv.pid(),
        tick,
        pki,
        audit: false,
        suites: args.suites,
        quiet_wait,
        server: &first.name,
        syscalls: !args.no_syscalls,
    };
    let admin_tls = load::client_config(pki, Who::Admin, false, args.suites)?;
    let ciphertext = load::sealed_data_key(srv.addr, Arc::clone(&admin_tls), 0).await?;
    let generate = Workload::new(Op::Generate, Keys::One(0), None)?;

    let gen_name = format!("generate ×{conns}");
    if selected(args, Group::Ops) || selected(args, Group::Conns) {
        // The first phase also warms up the server (allocator, caches, branch predictors).
        let mut first = spec(&gen_name, &generate, Mode::KeepAlive, conns);
        first.warmup = warmup.max(Duration::from_secs(1));
        measure_phase(&first, &env, &mut srv, &mut phases).await?;
    }
    if selected(args, Group::Ops) {
        let ops = [
            (Op::Decrypt, Some(ciphertext.as_slice())),
            (Op::Encrypt, None),
            (Op::Hmac, None),
        ];
        for (op, sealed) in ops {
            let workload = Workload::new(op, Keys::One(0), sealed)?;
            let name = format!("{} ×{conns}", op.as_str());
            measure_phase(
                &spec(&name, &workload, Mode::KeepAlive, conns),
                &env,
                &mut srv,
                &mut phases,
            )
            .await?;
        }
    }
    if selected(args, Group::Policy) {
        let mut s = spec(
            &format!("generate ×{conns}, policy identity"),
            &generate,
            Mode::KeepAlive,
            conns,
        );
        s.who = Who::App;
        measure_phase(&s, &env, &mut srv, &mut phases).await?;
    }
    if selected(args, Group::Handshake) {
        let full = spec(
            &format!("new conn/req, full TLS ×{conns}"),
            &generate,
            Mode::NewConnFull,
            conns,
        );
        measure_phase(&full, &env, &mut srv, &mut phases).await?;
        let resumed = spec(
            &format!("new conn/req, resumed TLS ×{conns}"),
            &generate,
            Mode::NewConnResumed,
            conns,
        );
        measure_phase(&resumed, &env, &mut srv, &mut phases).await?;
    }
    let mut chart_points: Vec<(String, String)> = Vec::new();
    if selected(args, Group::Conns) {
        for n in [1usize, 256] {
            let name = format!("generate ×{n}");
            measure_phase(
                &spec(&name, &generate, Mode::KeepAlive, n),
                &env,
                &mut srv,
                &mut phases,
            )
            .await?;
        }
        chart_points = [1usize, conns, 256]
            .iter()
            .map(|n| (n.to_string(), format!("generate ×{n}")))
            .collect();
        chart_points.sort_by_key(|(label, _)| label.parse::<usize>().unwrap_or(usize::MAX));
        chart_points.dedup();
    }
    if selected(args, Group::Keys) {
        let mut done = 1;
        for n in [1000usize.min(max_keys), max_keys] {
            if n <= done {
                continue;
            }
            let sweep = Workload::new(
                Op::Generate,
                Keys::Sweep(n, Arc::new(AtomicUsize::new(done))),
                None,
            )?;
            let mut cold = spec(
                &format!("cold read of keys {done}..{n} ×{conns}"),
                &sweep,
                Mode::KeepAlive,
                conns,
            );
            cold.measure = SWEEP_LIMIT;
            measure_phase(&cold, &env, &mut srv, &mut phases).await?;
            let uniform = Workload::new(Op::Generate, Keys::Uniform(n), None)?;
            let name = format!("generate ×{conns}, {n} keys");
            measure_phase(
                &spec(&name, &uniform, Mode::KeepAlive, conns),
                &env,
                &mut srv,
                &mut phases,
            )
            .await?;
            done = n;
        }
    }
    let idle_name = format!("generate ×{conns} + {} idle", args.idle);
    if selected(args, Group::Idle) && args.idle > 0 {
        let mut s = spec(&idle_name, &generate, Mode::KeepAlive, conns);
        s.idle = usize::from(args.idle);
        measure_phase(&s, &env, &mut srv, &mut phases).await?;
        if !chart_points.is_empty() {
            chart_points.push((format!("{} idle + {conns}", args.idle), idle_name.clone()));
        }
    }
    drop(srv);

    if selected(args, Group::Audit) {
        let mut srv = Server::start(kes, tmp.path(), &config(true)?, args.server_cpus)?;
        eprintln!(
            "kes server (pid {}) listening on {}, audit on",
            srv.pid(),
            srv.addr
        );
        let env = PhaseEnv {
            addr: srv.addr,
            pid: srv.pid(),
            tick,
            pki,
            audit: true,
            suites: args.suites,
            quiet_wait,
            server: &first.name,
            syscalls: !args.no_syscalls,
        };
        let mut s = spec(
            &format!("generate ×{conns}, audit on"),
            &generate,
            Mode::KeepAlive,
            conns,
        );
        s.warmup = warmup.max(Duration::from_secs(1));
        measure_phase(&s, &env, &mut srv, &mut phases).await?;
    }

    finish(
        args,
        phases,
        floor,
        tls,
        &chart_points,
        &idle_name,
        run_started.elapsed(),
    )
}

/// The `rate` group: every server runs at once (each idle while another is measured), and each
/// phase is measured on one server after the other, so that drift of a shared machine falls on
/// all alike. Phases: generate and decrypt at each `--rate` on `--conns` connections (open loop),
/// at saturation on `--conns` connections and on one connection (closed loop).
async fn rate_group(
    args: &Args,
    servers: &[ServerBin],
    pki: &Path,
    config: &str,
    tmp: &Path,
    phases: &mut Vec<PhaseResult>,
) -> Result<()> {
    let mut running = Vec::new();
    for (i, bin) in servers.iter().enumerate() {
        let dir = tmp.join(format!("server-{i}"));
        std::fs::create_dir_all(&dir).context("server dir")?;
        let srv = Server::start(&bin.path, &dir, config, args.server_cpus)?;
        eprintln!(
            "{} (pid {}) listening on {}, audit {}",
            bin.name,
            srv.pid(),
            srv.addr,
            if args.rate_audit { "on" } else { "off" }
        );
        running.push(srv);
    }
    let admin_tls = load::client_config(pki, Who::Admin, false, args.suites)?;
    let Some(addr) = running.first().map(|s| s.addr) else {
        bail!("no server binary to benchmark");
    };
    let ciphertext = load::sealed_data_key(addr, admin_tls, 0).await?;
    let conns = usize::from(args.conns);
    let warmup = Duration::from_secs_f64(args.warmup);
    let measure = Duration::from_secs_f64(args.measure);
    let quiet_wait = Duration::from_secs(u64::from(args.quiet_wait));
    let tick = proc::clock_tick();
    let awake = if args.client_awake {
        report::CLIENT_AWAKE
    } else {
        ""
    };
    for (op, sealed) in [
        (Op::Generate, None),
        (Op::Decrypt, Some(ciphertext.as_slice())),
    ] {
        let workload = Workload::new(op, Keys::One(0), sealed)?;
        let mut loads: Vec<(String, usize, Option<u32>)> = args
            .rate
            .iter()
            .map(|r| {
                let name = format!("{} ×{conns} @ {r}/s{awake}", op.as_str());
                (name, conns, Some(*r))
            })
            .collect();
        loads.push((
            format!("{} ×{conns} saturated{awake}", op.as_str()),
            conns,
            None,
        ));
        loads.push((format!("{} ×1 saturated{awake}", op.as_str()), 1, None));
        // Round after round of the whole sequence, so that a slow drift of the machine spreads
        // over every phase and server.
        let sequence =
            (0..args.rounds).flat_map(|round| loads.iter().enumerate().map(move |l| (round, l)));
        for (round, (load, (name, n, rate))) in sequence {
            let (n, rate) = (*n, *rate);
            for (bin, srv) in servers.iter().zip(running.iter_mut()) {
                let env = PhaseEnv {
                    addr: srv.addr,
                    pid: srv.pid(),
                    tick,
                    pki,
                    audit: args.rate_audit,
                    suites: args.suites,
                    quiet_wait,
                    server: &bin.name,
                    syscalls: !args.no_syscalls,
                };
                let spec = PhaseSpec {
                    name: name.clone(),
                    workload: workload.clone(),
                    mode: Mode::KeepAlive,
                    conns: n,
                    idle: 0,
                    who: Who::Admin,
                    // The first phase of each server also warms it up.
                    warmup: if round == 0 && load == 0 {
                        warmup.max(Duration::from_secs(1))
                    } else {
                        warmup
                    },
                    measure,
                    rate,
                };
                measure_phase(&spec, &env, srv, phases).await?;
            }
        }
    }
    Ok(())
}

/// Waits (at most `limit`) until the machine's load, apart from this process, is below 0.1 core.
async fn wait_quiet(limit: Duration, tick: Duration) -> Result<()> {
    const SAMPLE: Duration = Duration::from_millis(500);
    let start = Instant::now();
    let mut told = false;
    while start.elapsed() < limit {
        let machine0 = proc::machine_busy(tick)?;
        let own0 = proc::cpu_time(None, tick)?.total();
        tokio::time::sleep(SAMPLE).await;
        let machine = proc::machine_busy(tick)?.saturating_sub(machine0);
        let own = proc::cpu_time(None, tick)?.total().saturating_sub(own0);
        let cores = machine.saturating_sub(own).as_secs_f64() / SAMPLE.as_secs_f64();
        if cores < 0.1 {
            return Ok(());
        }
        if !told {
            eprintln!("waiting for the machine to become quiet ({cores:.2} cores busy elsewhere)");
            told = true;
        }
    }
    eprintln!("the machine did not become quiet within {limit:?}; measuring anyway");
    Ok(())
}

/// Runs a phase, prints its line and keeps its result; fails if the server died.
async fn measure_phase(
    spec: &PhaseSpec,
    env: &PhaseEnv<'_>,
    server: &mut Server,
    phases: &mut Vec<PhaseResult>,
) -> Result<()> {
    if !env.quiet_wait.is_zero() {
        wait_quiet(env.quiet_wait, env.tick).await?;
    }
    let result = load::run_phase(spec, env)
        .await
        .with_context(|| format!("phase '{}'", spec.name))?;
    println!("{}", report::line(&result));
    server.check_alive()?;
    if result.requests == 0 {
        bail!(
            "phase '{}' completed no request; server stderr:\n{}",
            spec.name,
            server.stderr()
        );
    }
    phases.push(result);
    Ok(())
}

fn finish(
    args: &Args,
    phases: Vec<PhaseResult>,
    floor: Vec<floor::FloorResult>,
    tls: Vec<tlscost::HandshakeCost>,
    chart_points: &[(String, String)],
    idle_name: &str,
    elapsed: Duration,
) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let command = shown_command(std::env::args());
    let revision = std::process::Command::new("git")
        .arg("-C")
        .arg(server::repo_root())
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned());
    let targets = report::targets(&phases, idle_name);
    let report = report::Report {
        command,
        machine: report::Machine::detect(),
        revision,
        client_threads: usize::from(args.client_threads),
        client_awake: args.client_awake,
        client_suites: args.suites,
        seconds: elapsed.as_secs_f64(),
        mlock: args.mlock.clone(),
        phases,
        floor,
        tls,
        targets,
    };
    let md = report::markdown(&report);
    std::fs::write(args.out.join("results.md"), &md).context("writing results.md")?;
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(args.out.join("results.json"), json).context("writing results.json")?;
    let points: Vec<chart::Point> = chart_points
        .iter()
        .filter_map(|(label, name)| {
            let p = report::phase(&report.phases, name)?;
            Some(chart::Point {
                label: label.clone(),
                rps: p.rps,
                p99_ms: p.p99_us / 1e3,
            })
        })
        .collect();
    if points.len() >= 2 {
        let title = format!(
            "KES generate over mTLS, {} cores, server and load generator on one machine",
            report.machine.cores
        );
        chart::write(&args.out.join("connections.png"), &points, &title)?;
    }
    println!("\n{md}");
    eprintln!("results written to {}", args.out.display());
    Ok(())
}

/// The command line as the reports show it: the program as `kes-bench`, and no path of this
/// machine (a path becomes `$CARGO_TARGET_DIR/...`, relative to the repository, or its file
/// name), since the reports are committed.
fn shown_command(args: impl Iterator<Item = String>) -> String {
    let target = std::env::var("CARGO_TARGET_DIR").ok().map(PathBuf::from);
    let root = server::repo_root().canonicalize().ok();
    let shown = |path: &Path| -> String {
        if let Some(rest) = target.as_deref().and_then(|t| path.strip_prefix(t).ok()) {
            return format!("$CARGO_TARGET_DIR/{}", rest.display());
        }
        if let Some(rest) = root.as_deref().and_then(|r| path.strip_prefix(r).ok()) {
            return rest.display().to_string();
        }
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        format!(".../{}", name.unwrap_or_default())
    };
    args.enumerate()
        .map(|(i, arg)| {
            if i == 0 {
                return "kes-bench".to_owned();
            }
            if Path::new(&arg).is_absolute() {
                return quoted(shown(Path::new(&arg)));
            }
            // `NAME=PATH` (`--server-bin`) and `--option=PATH`.
            if let Some((name, path)) = arg.split_once('=')
                && Path::new(path).is_absolute()
            {
                return quoted(format!("{name}={}", shown(Path::new(path))));
            }
            quoted(arg)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn quoted(arg: String) -> String {
    if arg.contains(' ') {
        format!("'{arg}'")
    } else {
        arg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_command_names_no_path_of_this_machine() {
        let root = server::repo_root().canonicalize().unwrap();
        let args = [
            "/somewhere/target/release/kes-bench".to_owned(),
            "--kes".to_owned(),
            "/elsewhere/bin/kes".to_owned(),
            "--pki".to_owned(),
            root.join("testdata/pki").display().to_string(),
            "--out".to_owned(),
            "docs/bench".to_owned(),
            "a b".to_owned(),
            "--server-bin".to_owned(),
            "before=/home/someone/kes-before".to_owned(),
            format!("--pki={}", root.join("testdata/pki").display()),
        ];
        assert_eq!(
            shown_command(args.into_iter()),
            "kes-bench --kes .../kes --pki testdata/pki --out docs/bench 'a b' \
             --server-bin before=.../kes-before --pki=testdata/pki"
        );
    }
}
