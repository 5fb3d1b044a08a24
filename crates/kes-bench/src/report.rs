//! The report: the machine, every phase's figures, and the targets met or missed, as a
//! terminal table, Markdown (pasted into BENCHMARKS.md) and JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::load::{Mode, Op, PhaseResult};

/// The machine the figures were taken on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available.
    pub cores: usize,
    /// CPU model from `/proc/cpuinfo`.
    pub cpu: String,
    /// Memory in GB.
    pub memory_gb: f64,
    /// Kernel release.
    pub kernel: String,
    /// `rustc -V` of the toolchain on PATH.
    pub rustc: String,
}

impl Machine {
    /// Reads the machine's description from `/proc` and the toolchain.
    pub fn detect() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let memory_gb = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb * 1024.0 / 1e9);
        let rustc = std::process::Command::new("rustc")
            .arg("-V")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        Machine {
            // The machine's, not this process's (which `--client-cpus` may have pinned).
            cores: cpuinfo
                .lines()
                .filter(|l| l.starts_with("processor"))
                .count()
                .max(1),
            cpu,
            memory_gb,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            rustc,
        }
    }
}

/// One target of the issue and what was measured against it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is measured.
    pub what: String,
    /// The limit.
    pub limit: f64,
    /// The unit of limit and value.
    pub unit: String,
    /// The measured value, if the phase ran.
    pub value: Option<f64>,
    /// Whether the value is within the limit.
    pub met: Option<bool>,
}

impl Target {
    fn new(what: &str, limit: f64, unit: &str, value: Option<f64>) -> Target {
        Target {
            what: what.to_owned(),
            limit,
            unit: unit.to_owned(),
            value,
            met: value.map(|v| v <= limit),
        }
    }

    /// `+12 %` over the limit, or `-30 %` under it.
    pub fn margin(&self) -> Option<String> {
        let v = self.value?;
        Some(format!("{:+.0} %", (v / self.limit - 1.0) * 100.0))
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The command line that produced it.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// The revision of the repository (`git describe`), if known.
    pub revision: Option<String>,
    /// Client (load generator) runtime threads.
    pub client_threads: usize,
    /// Whether the load generator never slept (`--client-awake`).
    pub client_awake: bool,
    /// The cipher suite order the client offered.
    pub client_suites: crate::load::Suites,
    /// How long the run took, without building the server, in seconds.
    pub seconds: f64,
    /// The server's `mlock` setting, if the run set one.
    pub mlock: Option<String>,
    /// Every phase, in order.
    pub phases: Vec<PhaseResult>,
    /// The `floor` group's bare TCP echo, if it ran.
    pub floor: Vec<crate::floor::FloorResult>,
    /// The `tls` group's in-memory handshakes, if it ran.
    pub tls: Vec<crate::tlscost::HandshakeCost>,
    /// The targets.
    pub targets: Vec<Target>,
}

/// The phase named `name`.
pub fn phase<'a>(phases: &'a [PhaseResult], name: &str) -> Option<&'a PhaseResult> {
    phases.iter().find(|p| p.name == name)
}

/// Evaluates the targets against the phases.
pub fn targets(phases: &[PhaseResult], idle_phase: &str) -> Vec<Target> {
    let keepalive = |op: Op| {
        phases.iter().find(|p| {
            p.mode == Mode::KeepAlive
                && p.rate.is_none()
                && p.op == op
                && p.conns == 16
                && p.idle == 0
                && p.keys == 1
                && !p.audit
        })
    };
    let gen16 = keepalive(Op::Generate);
    let dec16 = keepalive(Op::Decrypt);
    let by_mode = |m: Mode| phases.iter().find(|p| p.mode == m);
    // The open-loop targets are the first server's (`--server-bin`), at 4,000 req/s.
    let first = phases.first().map(|p| p.server.clone()).unwrap_or_default();
    let load = merged_load_phases(phases);
    let at = |op: Op, rate: Option<u32>| {
        load.iter()
            .find(|p| p.server == first && p.op == op && p.rate == rate && p.conns == 16)
    };
    let gen4k = at(Op::Generate, Some(4000));
    let gen_saturated = at(Op::Generate, None);
    let mut targets = vec![
        Target::new(
            "server CPU per keep-alive generate",
            14.0,
            "µs",
            gen16.map(|p| p.server_cpu_us),
        ),
        Target::new(
            "server CPU per keep-alive decrypt",
            14.0,
            "µs",
            dec16.map(|p| p.server_cpu_us),
        ),
        Target::new(
            "server CPU per full mTLS handshake + 1 request",
            350.0,
            "µs",
            by_mode(Mode::NewConnFull).map(|p| p.server_cpu_us),
        ),
        Target::new(
            "server CPU per resumed handshake + 1 request",
            150.0,
            "µs",
            by_mode(Mode::NewConnResumed).map(|p| p.server_cpu_us),
        ),
        Target::new(
            "peak RSS, 1,024 idle connections + 100,000 cached keys",
            64.0,
            "MB",
            phase(phases, idle_phase)
                .filter(|p| p.keys >= 100_000 || p.idle >= 1024)
                .map(|p| p.peak_rss_mb),
        ),
        Target::new(
            "p99 latency, 16 connections, generate",
            2.0,
            "ms",
            gen16.map(|p| p.p99_us / 1e3),
        ),
        Target::new(
            "p99 latency, 16 connections, decrypt",
            2.0,
            "ms",
            dec16.map(|p| p.p99_us / 1e3),
        ),
    ];
    if let Some(p4k) = gen4k {
        // The targets are for clients that sleep, as real ones do; a run with the client awake
        // says so on both lines.
        let awake = if p4k.name.ends_with(CLIENT_AWAKE) {
            CLIENT_AWAKE
        } else {
            ""
        };
        targets.push(Target::new(
            &format!("server CPU per generate at 4,000 req/s (scheduler time){awake}"),
            25.0,
            "µs",
            gen4k.map(|p| p.server_run_us),
        ));
        targets.push(Target::new(
            &format!("… of it against the saturated generate's{awake}"),
            2.0,
            "×",
            gen4k
                .zip(gen_saturated)
                .map(|(p, s)| p.server_run_us / s.server_run_us.max(1e-9)),
        ));
    }
    targets
}

/// The end of a phase's name when the load generator never slept (`--client-awake`).
pub const CLIENT_AWAKE: &str = ", client awake";

/// Whether a phase belongs to the `rate` group (open loop, or its saturated comparisons).
pub fn is_load_phase(p: &PhaseResult) -> bool {
    p.rate.is_some() || p.name.contains(" saturated")
}

/// The load phases (the `rate` group) grouped by phase name and server, in the order they first
/// ran: with `--rounds`, a group holds every round of one phase on one server.
fn load_groups(phases: &[PhaseResult]) -> Vec<Vec<&PhaseResult>> {
    let mut groups: Vec<Vec<&PhaseResult>> = Vec::new();
    for p in phases.iter().filter(|p| is_load_phase(p)) {
        match groups.iter_mut().find(|g| {
            g.first()
                .is_some_and(|f| f.name == p.name && f.server == p.server)
        }) {
            Some(g) => g.push(p),
            None => groups.push(vec![p]),
        }
    }
    groups
}

/// The median of `values` (the mean of the middle two of an even count); 0 when empty.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values.get(n / 2).copied().unwrap_or_default(),
        _ => {
            let a = values.get(n / 2 - 1).copied().unwrap_or_default();
            let b = values.get(n / 2).copied().unwrap_or_default();
            (a + b) / 2.0
        }
    }
}

/// One phase's figures over its rounds: the first round's, with the median of every rate,
/// latency and per-request figure, and the requests and errors of all rounds.
fn merged(group: &[&PhaseResult]) -> Option<PhaseResult> {
    let first = *group.first()?;
    let med = |f: fn(&PhaseResult) -> f64| median(group.iter().map(|p| f(p)).collect());
    let syscalls: Vec<f64> = group.iter().filter_map(|p| p.syscalls_per_req).collect();
    Some(PhaseResult {
        requests: group.iter().map(|p| p.requests).sum(),
        errors: group.iter().map(|p| p.errors).sum(),
        rps: med(|p| p.rps),
        p50_us: med(|p| p.p50_us),
        p99_us: med(|p| p.p99_us),
        server_cpu_us: med(|p| p.server_cpu_us),
        server_run_us: med(|p| p.server_run_us),
        switches_per_req: med(|p| p.switches_per_req),
        wakeups_per_req: med(|p| p.wakeups_per_req),
        syscalls_per_req: (syscalls.len() == group.len()).then(|| median(syscalls)),
        ..first.clone()
    })
}

/// The load phases, each merged over its rounds.
pub fn merged_load_phases(phases: &[PhaseResult]) -> Vec<PhaseResult> {
    load_groups(phases)
        .iter()
        .filter_map(|g| merged(g))
        .collect()
}

/// The `rate` group's table: CPU per request (the process CPU clock), switches, wakeups and
/// system calls per request, latency, for every server and load, merged over the rounds.
fn load_table(out: &mut String, phases: &[PhaseResult]) {
    let groups = load_groups(phases);
    let Some(first) = groups.first().and_then(|g| g.first()) else {
        return;
    };
    if first.audit {
        out.push_str(
            "\nThe servers of these phases ran with the audit log on: one event per request, \
             written to their stdout (`/dev/null`).\n",
        );
    }
    let rounds = groups.iter().map(Vec::len).max().unwrap_or(1);
    if rounds > 1 {
        let _ = writeln!(
            out,
            "\nEach phase ran {rounds} times (round after round of the whole sequence, on every \
             server in turn): the figures are the medians of the rounds, the range is the lowest \
             and highest server CPU per request of a round."
        );
    }
    out.push_str(
        "\n| phase | server | offered req/s | req/s | server CPU µs/req | range | × saturated | \
         switches/req | wakeups/req | syscalls/req | p50 µs | p99 µs | errors |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    let rows: Vec<(PhaseResult, &Vec<&PhaseResult>)> = groups
        .iter()
        .filter_map(|g| Some((merged(g)?, g)))
        .collect();
    for (p, group) in &rows {
        let saturated = rows.iter().map(|(s, _)| s).find(|s| {
            s.server == p.server && s.op == p.op && s.conns == p.conns && s.rate.is_none()
        });
        let ratio = saturated
            .filter(|_| p.rate.is_some())
            .map_or_else(String::new, |s| {
                format!("{:.2}", p.server_run_us / s.server_run_us.max(1e-9))
            });
        let cpu: Vec<f64> = group.iter().map(|g| g.server_run_us).collect();
        let range = if cpu.len() > 1 {
            let lo = cpu.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = cpu.iter().copied().fold(0.0, f64::max);
            format!("{lo:.1}–{hi:.1}")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.1} | {} | {} | {:.2} | {:.2} | {} | {:.0} | {:.0} | {} |",
            p.name,
            p.server,
            p.rate.map_or_else(|| "max".to_owned(), |r| r.to_string()),
            p.rps,
            p.server_run_us,
            range,
            ratio,
            p.switches_per_req,
            p.wakeups_per_req,
            p.syscalls_per_req
                .map_or_else(|| "-".to_owned(), |c| format!("{c:.1}")),
            p.p50_us,
            p.p99_us,
            p.errors,
        );
    }
}

fn mode_text(mode: Mode) -> &'static str {
    match mode {
        Mode::KeepAlive => "keep-alive",
        Mode::NewConnFull => "new conn, full TLS",
        Mode::NewConnResumed => "new conn, resumed TLS",
    }
}

/// The phases and targets as Markdown tables.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.machine;
    let _ = writeln!(
        out,
        "Machine: {} cores ({}), {:.1} GB RAM, Linux {}, {}; load generator: {} runtime \
         thread{}{} on the same machine, offering TLS 1.3 suites in {} order.\n",
        m.cores,
        m.cpu,
        m.memory_gb,
        m.kernel,
        m.rustc,
        report.client_threads,
        if report.client_threads == 1 { "" } else { "s" },
        if report.client_awake {
            " that never sleeps (`--client-awake`)"
        } else {
            ""
        },
        match report.client_suites {
            crate::load::Suites::Go => "Go's",
            crate::load::Suites::Rustls => "rustls'",
        }
    );
    let _ = writeln!(
        out,
        "Command: `{}` ({:.0} s, without building the server)",
        report.command, report.seconds
    );
    if let Some(mlock) = &report.mlock {
        let _ = writeln!(out, "Server setting: `mlock: {mlock}`");
    }
    if let Some(rev) = &report.revision {
        let _ = writeln!(out, "Revision: `{rev}`");
    }
    load_table(&mut out, &report.phases);
    floor_table(&mut out, &report.floor);
    tls_table(&mut out, &report.tls, &report.phases);
    out.push('\n');
    out.push_str(
        "| phase | op | mode | conns | idle | keys | req/s | p50 µs | p99 µs | max µs | \
         server CPU µs/req (user+sys) | server cores | client CPU µs/req | other load (cores) | \
         peak RSS MB | errors |\n",
    );
    out.push_str("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for p in report.phases.iter().filter(|p| !is_load_phase(p)) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} ({:.1}+{:.1}) | \
             {:.2} | {:.1} | {:.2} | {:.1} | {} |",
            p.name,
            p.op.as_str(),
            mode_text(p.mode),
            p.conns,
            p.idle,
            p.keys,
            p.rps,
            p.p50_us,
            p.p99_us,
            p.max_us,
            p.server_cpu_us,
            p.server_user_us,
            p.server_sys_us,
            p.server_cores,
            p.client_cpu_us,
            p.other_cores,
            p.peak_rss_mb,
            p.errors,
        );
    }
    let handshakes: Vec<&PhaseResult> = report
        .phases
        .iter()
        .filter(|p| p.mode != Mode::KeepAlive)
        .collect();
    if !handshakes.is_empty() {
        out.push('\n');
        for p in handshakes {
            let _ = writeln!(
                out,
                "- {}: {} full and {} resumed handshakes in the window, key exchange {}, {}.",
                p.name,
                p.handshakes_full,
                p.handshakes_resumed,
                p.kx_group.as_deref().unwrap_or("unknown"),
                p.tls_suite.as_deref().unwrap_or("unknown suite")
            );
        }
    }
    let idle: Vec<&PhaseResult> = report.phases.iter().filter(|p| p.idle > 0).collect();
    for p in idle {
        let _ = writeln!(
            out,
            "- {}: {} of {} idle connections still open at the end of the window.",
            p.name, p.idle_open_at_end, p.idle
        );
    }
    out.push_str("\n| target | limit | measured | margin | met |\n|---|--:|--:|--:|---|\n");
    for t in &report.targets {
        let value = t
            .value
            .map_or_else(|| "not run".to_owned(), |v| format!("{v:.1} {}", t.unit));
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(
            out,
            "| {} | ≤ {} {} | {} | {} | {} |",
            t.what,
            t.limit,
            t.unit,
            value,
            t.margin().unwrap_or_default(),
            met
        );
    }
    out
}

/// The `floor` group's table, if it ran.
fn floor_table(out: &mut String, floor: &[crate::floor::FloorResult]) {
    if floor.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nThe machine's floor: a bare TCP echo ({} bytes each way, no TLS, no HTTP), one \
         connection, blocking reads and writes, pinned like the servers. \"client awake\": the \
         client spins instead of sleeping, so the echo's write wakes no thread on another CPU.\n",
        crate::floor::MESSAGE
    );
    out.push_str(
        "| phase | offered req/s | req/s | echo server CPU µs/req | switches/req | \
         wakeups/req | p50 µs | p99 µs |\n|---|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for f in floor {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.1} | {:.2} | {:.2} | {:.0} | {:.0} |",
            f.name,
            f.rate.map_or_else(|| "-".to_owned(), |r| r.to_string()),
            f.rps,
            f.server_run_us,
            f.switches_per_req,
            f.wakeups_per_req,
            f.p50_us,
            f.p99_us,
        );
    }
}

/// The `tls` group's table, next to the `handshake` group's server CPU per new connection when
/// that ran too.
fn tls_table(out: &mut String, tls: &[crate::tlscost::HandshakeCost], phases: &[PhaseResult]) {
    if tls.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nrustls' own cost per handshake, in memory (no sockets) with the server's TLS \
         configuration; against it the server's CPU per new connection (handshake + 1 request) \
         of the `handshake` phases.\n"
    );
    out.push_str(
        "| handshake | in memory | server side µs | of it identity µs | client side µs | \
         server per new connection µs | the rest µs |\n|---|--:|--:|--:|--:|--:|--:|\n",
    );
    for t in tls {
        let mode = if t.name == "full" {
            Mode::NewConnFull
        } else {
            Mode::NewConnResumed
        };
        let server = phases.iter().find(|p| p.mode == mode && p.rate.is_none());
        let (per_conn, rest) = server.map_or_else(
            || ("-".to_owned(), "-".to_owned()),
            |p| {
                (
                    format!("{:.1}", p.server_cpu_us),
                    format!("{:.1}", p.server_cpu_us - t.server_us),
                )
            },
        );
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {} | {} |",
            t.name, t.handshakes, t.server_us, t.identity_us, t.client_us, per_conn, rest
        );
    }
    if let Some(t) = tls.first() {
        let _ = writeln!(out, "\nNegotiated in memory: {}, {}.", t.suite, t.kx);
    }
}

/// A compact line for the terminal as a phase finishes.
pub fn line(p: &PhaseResult) -> String {
    let mut s = format!(
        "{:<34} {:>9.0} req/s  p50 {:>7.0} µs  p99 {:>7.0} µs  max {:>7.0} µs  server {:>6.1} µs/req \
         ({:.2} cores)  client {:>5.1} µs/req  peak RSS {:>6.1} MB",
        if is_load_phase(p) {
            format!("{} [{}]", p.name, p.server)
        } else {
            p.name.clone()
        },
        p.rps,
        p.p50_us,
        p.p99_us,
        p.max_us,
        p.server_cpu_us,
        p.server_cores,
        p.client_cpu_us,
        p.peak_rss_mb
    );
    if is_load_phase(p) {
        let _ = write!(
            s,
            "  [sched {:.1} µs/req, {:.2} switches, {:.2} wakeups, {} syscalls /req]",
            p.server_run_us,
            p.switches_per_req,
            p.wakeups_per_req,
            p.syscalls_per_req
                .map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"))
        );
    }
    if p.mode != Mode::KeepAlive {
        let _ = write!(
            s,
            "  [{} full, {} resumed]",
            p.handshakes_full, p.handshakes_resumed
        );
    }
    if p.idle > 0 {
        let _ = write!(s, "  [{}/{} idle open]", p.idle_open_at_end, p.idle);
    }
    if p.other_cores > 0.1 {
        let _ = write!(
            s,
            "  [DISTURBED: other processes used {:.2} cores]",
            p.other_cores
        );
    }
    if p.errors > 0 {
        let _ = write!(
            s,
            "  {} ERRORS (first: {})",
            p.errors,
            p.first_error.as_deref().unwrap_or("?")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Who;

    fn result(name: &str, op: Op, mode: Mode, conns: usize, cpu: f64, p99: f64) -> PhaseResult {
        PhaseResult {
            name: name.into(),
            server: "kes".into(),
            rate: None,
            op,
            mode,
            conns,
            idle: 0,
            idle_open_at_end: 0,
            keys: 1,
            who: Who::Admin,
            audit: false,
            seconds: 3.0,
            requests: 3000,
            errors: 0,
            first_error: None,
            rps: 1000.0,
            p50_us: 500.0,
            p99_us: p99,
            max_us: 2000.0,
            server_cpu_us: cpu,
            server_run_us: cpu,
            switches_per_req: 1.0,
            wakeups_per_req: 1.0,
            syscalls_per_req: None,
            server_user_us: cpu * 0.7,
            server_sys_us: cpu * 0.3,
            server_cores: 1.0,
            client_cpu_us: 10.0,
            other_cores: 0.0,
            peak_rss_mb: 20.0,
            rss_mb: 19.0,
            server_threads: 4,
            handshakes_full: 0,
            handshakes_resumed: 0,
            kx_group: None,
            tls_suite: None,
        }
    }

    #[test]
    fn targets_are_judged_against_the_right_phases() {
        let phases = vec![
            result("conns=1", Op::Generate, Mode::KeepAlive, 1, 99.0, 100.0),
            result("generate", Op::Generate, Mode::KeepAlive, 16, 12.0, 1500.0),
            result("decrypt", Op::Decrypt, Mode::KeepAlive, 16, 15.0, 2500.0),
            result("full", Op::Generate, Mode::NewConnFull, 16, 400.0, 1.0),
        ];
        let t = targets(&phases, "idle");
        assert_eq!(t[0].value, Some(12.0));
        assert_eq!(t[0].met, Some(true));
        assert_eq!(t[1].met, Some(false));
        assert_eq!(t[1].margin().unwrap(), "+7 %");
        assert_eq!(t[2].met, Some(false));
        assert_eq!(t[3].met, None, "the resumed phase did not run");
        assert_eq!(t[4].met, None, "the idle phase did not run");
        assert_eq!(t[5].value, Some(1.5));
        assert_eq!(t[6].met, Some(false));
    }

    #[test]
    fn rounds_merge_into_medians_per_phase_and_server() {
        let round = |server: &str, rate: Option<u32>, cpu: f64, switches: f64| {
            let mut p = result(
                if rate.is_some() {
                    "generate ×16 @ 4000/s"
                } else {
                    "generate ×16 saturated"
                },
                Op::Generate,
                Mode::KeepAlive,
                16,
                cpu,
                900.0,
            );
            p.server = server.into();
            p.rate = rate;
            p.switches_per_req = switches;
            p.syscalls_per_req = Some(4.0);
            p
        };
        let phases = vec![
            round("a", Some(4000), 30.0, 1.0),
            round("b", Some(4000), 50.0, 1.2),
            round("a", None, 10.0, 0.0),
            round("b", None, 10.0, 0.0),
            round("a", Some(4000), 20.0, 0.9),
            round("b", Some(4000), 40.0, 1.4),
            round("a", Some(4000), 25.0, 0.8),
            round("b", Some(4000), 60.0, 1.0),
            round("a", None, 12.0, 0.0),
            round("b", None, 8.0, 0.0),
        ];
        let merged = merged_load_phases(&phases);
        assert_eq!(merged.len(), 4, "one row per phase and server");
        let a = &merged[0];
        assert_eq!((a.server.as_str(), a.rate), ("a", Some(4000)));
        assert_eq!(a.server_run_us, 25.0);
        assert_eq!(a.switches_per_req, 0.9);
        assert_eq!(a.requests, 9000);
        let b_saturated = &merged[3];
        assert_eq!(b_saturated.server_run_us, 9.0, "the mean of the middle two");
        let mut out = String::new();
        load_table(&mut out, &phases);
        assert!(out.contains("Each phase ran 3 times"), "{out}");
        assert!(
            out.contains("| generate ×16 @ 4000/s | a | 4000 | 1000 | 25.0 | 20.0–30.0 | 2.27 |"),
            "{out}"
        );
        assert!(
            out.contains("| generate ×16 @ 4000/s | b | 4000 | 1000 | 50.0 | 40.0–60.0 | 5.56 |"),
            "{out}"
        );
        // The 4,000 req/s targets use the first server's medians.
        let t = targets(&phases, "idle");
        let cpu = t
            .iter()
            .find(|t| t.what.starts_with("server CPU per generate at 4,000"))
            .unwrap();
        assert_eq!(cpu.value, Some(25.0));
    }

    #[test]
    fn phases_run_with_the_client_awake_are_load_phases_with_their_ratio() {
        let mut low = result(
            "generate ×16 @ 4000/s, client awake",
            Op::Generate,
            Mode::KeepAlive,
            16,
            21.0,
            900.0,
        );
        low.rate = Some(4000);
        let saturated = result(
            "generate ×16 saturated, client awake",
            Op::Generate,
            Mode::KeepAlive,
            16,
            10.5,
            900.0,
        );
        let other = result("generate", Op::Generate, Mode::KeepAlive, 16, 10.0, 900.0);
        assert!(is_load_phase(&low) && is_load_phase(&saturated));
        assert!(!is_load_phase(&other));
        let mut out = String::new();
        let phases = [low, saturated];
        load_table(&mut out, &phases);
        assert!(
            out.contains(
                "| generate ×16 @ 4000/s, client awake | kes | 4000 | 1000 | 21.0 |  | 2.00 |"
            ),
            "{out}"
        );
        let t = targets(&phases, "idle");
        let ratio = t.iter().find(|t| t.what.starts_with("… of it")).unwrap();
        assert!(ratio.what.ends_with("client awake"), "{}", ratio.what);
        assert_eq!(ratio.value, Some(2.0));
    }

    #[test]
    fn markdown_lists_every_phase_and_target() {
        let phases = vec![result(
            "generate",
            Op::Generate,
            Mode::KeepAlive,
            16,
            12.0,
            1500.0,
        )];
        let report = Report {
            command: "kes-bench".into(),
            machine: Machine::detect(),
            revision: None,
            client_threads: 2,
            client_awake: false,
            client_suites: crate::load::Suites::Go,
            seconds: 60.0,
            mlock: None,
            floor: vec![crate::floor::FloorResult {
                name: "tcp echo ×1 @ 4000/s".into(),
                rate: Some(4000),
                requests: 12_000,
                seconds: 3.0,
                rps: 4000.0,
                server_run_us: 32.25,
                switches_per_req: 1.0,
                wakeups_per_req: 1.0,
                p50_us: 60.0,
                p99_us: 150.0,
            }],
            tls: vec![crate::tlscost::HandshakeCost {
                name: "full".into(),
                handshakes: 1000,
                server_us: 100.04,
                identity_us: 4.0,
                client_us: 120.0,
                suite: "TLS13_AES_128_GCM_SHA256".into(),
                kx: "X25519".into(),
            }],
            targets: targets(&phases, "idle"),
            phases,
        };
        let md = markdown(&report);
        assert!(md.contains("| generate | generate | keep-alive | 16 |"));
        assert!(
            md.contains("| server CPU per keep-alive generate | ≤ 14 µs | 12.0 µs | -14 % | yes |")
        );
        assert!(md.contains("not run"));
        assert!(
            md.contains("| tcp echo ×1 @ 4000/s | 4000 | 4000 | 32.2 | 1.00 | 1.00 | 60 | 150 |")
        );
        assert!(report.machine.cores >= 1);
    }
}
