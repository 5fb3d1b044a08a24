//! What the kernel reports about a process: CPU time and memory, read from `/proc`.
//!
//! The server's CPU time is read from `/proc/<pid>/stat` (user + system time of all its threads,
//! including threads that already exited), so the load generator's own cost never counts.
//! Peak memory is `VmHWM` from `/proc/<pid>/status`; writing `5` to `/proc/<pid>/clear_refs`
//! resets it, which lets every phase report its own peak.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// CPU time of a process, as the kernel accounts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTime {
    /// Time spent in user mode.
    pub user: Duration,
    /// Time spent in the kernel on the process's behalf.
    pub system: Duration,
}

impl CpuTime {
    /// User plus system time.
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// The CPU time spent between `earlier` and `self` (zero if the counters went backwards).
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// Memory figures of a process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss: u64,
    /// Peak resident set size since start or the last [`reset_peak`] (`VmHWM`).
    pub peak: u64,
}

/// The length of a clock tick, the unit of `/proc/<pid>/stat` times (`getconf CLK_TCK`,
/// which is 100 per second on every Linux architecture this runs on).
pub fn clock_tick() -> Duration {
    let ticks = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100);
    Duration::from_nanos(1_000_000_000 / ticks)
}

fn proc_path(pid: Option<u32>, file: &str) -> PathBuf {
    match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/{file}")),
        None => PathBuf::from(format!("/proc/self/{file}")),
    }
}

/// The CPU time of process `pid` (`None`: this process).
pub fn cpu_time(pid: Option<u32>, tick: Duration) -> Result<CpuTime> {
    let path = proc_path(pid, "stat");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_stat(&text, tick)
}

/// Parses the `utime` and `stime` fields (14 and 15) of a `/proc/<pid>/stat` line.
pub fn parse_stat(text: &str, tick: Duration) -> Result<CpuTime> {
    // The command name (field 2) is in parentheses and may contain spaces and parentheses, so
    // the fields are counted from the last ')'.
    let Some((_, rest)) = text.rsplit_once(')') else {
        bail!("malformed /proc stat line: no ')'");
    };
    // `rest` starts at field 3 (state), so utime (field 14) is its 12th word, stime the 13th.
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |index: usize, name: &str| -> Result<u64> {
        fields
            .get(index)
            .with_context(|| format!("malformed /proc stat line: no {name}"))?
            .parse::<u64>()
            .with_context(|| format!("malformed /proc stat line: bad {name}"))
    };
    let utime = field(11, "utime")?;
    let stime = field(12, "stime")?;
    let ticks = |n: u64| tick.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
    Ok(CpuTime {
        user: ticks(utime),
        system: ticks(stime),
    })
}

/// The CPU time all processes of the machine spent busy (user, nice, system, irq, softirq and
/// steal of the `cpu` line of `/proc/stat`), so that load from other processes can be told
/// apart from the server's and the load generator's.
pub fn machine_busy(tick: Duration) -> Result<Duration> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_machine_busy(&text, tick)
}

/// Parses the `cpu` line of a `/proc/stat` text; see [`machine_busy`].
pub fn parse_machine_busy(text: &str, tick: Duration) -> Result<Duration> {
    let line = text
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("/proc/stat has no cpu line")?;
    let fields: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(|f| f.parse::<u64>().context("malformed /proc/stat cpu line"))
        .collect::<Result<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is already counted in user).
    let busy: u64 = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    if fields.len() < 8 {
        bail!("malformed /proc/stat cpu line: {} fields", fields.len());
    }
    Ok(tick.saturating_mul(u32::try_from(busy).unwrap_or(u32::MAX)))
}

/// The memory figures of process `pid`.
pub fn memory(pid: u32) -> Result<Memory> {
    let path = proc_path(Some(pid), "status");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_status(&text)
}

/// Reads `VmRSS` and `VmHWM` (in kB) from a `/proc/<pid>/status` text.
pub fn parse_status(text: &str) -> Result<Memory> {
    let mut rss = None;
    let mut peak = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "VmRSS" => &mut rss,
            "VmHWM" => &mut peak,
            _ => continue,
        };
        let kb = value
            .trim()
            .strip_suffix("kB")
            .map(str::trim)
            .and_then(|n| n.parse::<u64>().ok())
            .with_context(|| format!("malformed {key} line in /proc status: {line:?}"))?;
        *slot = Some(kb * 1024);
    }
    match (rss, peak) {
        (Some(rss), Some(peak)) => Ok(Memory { rss, peak }),
        _ => bail!("/proc status has no VmRSS/VmHWM lines"),
    }
}

/// Resets the peak RSS (`VmHWM`) of process `pid` to its current RSS.
pub fn reset_peak(pid: u32) -> Result<()> {
    let path = proc_path(Some(pid), "clear_refs");
    std::fs::write(&path, b"5").with_context(|| format!("writing {}", path.display()))
}

/// The number of threads of process `pid`.
pub fn threads(pid: u32) -> Result<u64> {
    let path = proc_path(Some(pid), "status");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .context("/proc status has no Threads line")
}

/// What the kernel reports of a process's CPU use: CPU time of all its threads, ns (the
/// process CPU clock, exact and always kept, unlike the tick-sampled times of `/proc/<pid>/stat`
/// and unlike `schedstat`, which reads zero on kernels without scheduler statistics), and the
/// context switches of its threads. Threads that exit between two readings drop out of the
/// switch sums, so compare readings of a server whose threads live on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sched {
    /// Time the process's threads ran on a CPU, ns.
    pub run_ns: u64,
    /// Times a thread went to sleep (`voluntary_ctxt_switches`); each such sleep ends with a
    /// wakeup, so this is also the number of wakeups of the process's threads.
    pub voluntary: u64,
    /// Times a thread was preempted (`nonvoluntary_ctxt_switches`).
    pub involuntary: u64,
}

impl Sched {
    /// The figures between `earlier` and `self` (zero where a sum went down).
    pub fn since(self, earlier: Sched) -> Sched {
        Sched {
            run_ns: self.run_ns.saturating_sub(earlier.run_ns),
            voluntary: self.voluntary.saturating_sub(earlier.voluntary),
            involuntary: self.involuntary.saturating_sub(earlier.involuntary),
        }
    }

    /// Voluntary plus involuntary context switches.
    pub fn switches(self) -> u64 {
        self.voluntary + self.involuntary
    }
}

/// The CPU time and context switches of process `pid`, summed over its threads.
pub fn sched(pid: u32) -> Result<Sched> {
    let mut total = Sched {
        run_ns: process_cpu_ns(pid)?,
        ..Sched::default()
    };
    let dir = proc_path(Some(pid), "task");
    let tasks = std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
    for task in tasks {
        let task = task
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        // A thread that exited since the listing has no files any more: it is left out.
        let Ok(status) = std::fs::read_to_string(task.join("status")) else {
            continue;
        };
        let (voluntary, involuntary) = parse_switches(&status)?;
        total.voluntary += voluntary;
        total.involuntary += involuntary;
    }
    Ok(total)
}

/// The CPU time of all threads of process `pid` so far, ns, from its process CPU clock.
#[allow(unsafe_code)]
pub fn process_cpu_ns(pid: u32) -> Result<u64> {
    let pid = libc::pid_t::try_from(pid).context("process id out of range")?;
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `clock` is a valid place for the clock id; the call only writes it.
    let rc = unsafe { libc::clock_getcpuclockid(pid, &mut clock) };
    if rc != 0 {
        bail!(
            "no CPU clock for process {pid}: {}",
            std::io::Error::from_raw_os_error(rc)
        );
    }
    clock_ns(clock).with_context(|| format!("reading the CPU clock of process {pid}"))
}

/// The CPU time of the calling thread so far, ns (its thread CPU clock, which always exists).
pub fn thread_cpu_ns() -> u64 {
    let ns = clock_ns(libc::CLOCK_THREAD_CPUTIME_ID);
    debug_assert!(ns.is_ok(), "{ns:?}");
    ns.unwrap_or_default()
}

/// Reads `clock`, ns.
#[allow(unsafe_code)]
fn clock_ns(clock: libc::clockid_t) -> std::io::Result<u64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec the call fills in.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64)
}

/// Parses the voluntary and involuntary context-switch counts of a thread's `status`.
pub fn parse_switches(status: &str) -> Result<(u64, u64)> {
    let count = |key: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|n| n.trim().parse().ok())
            .with_context(|| format!("/proc status has no {key} line"))
    };
    Ok((
        count("voluntary_ctxt_switches:")?,
        count("nonvoluntary_ctxt_switches:")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(10);

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A command name with spaces and parentheses must not shift the fields.
        let line = "4242 (kes (x) y) S 1 4242 4242 0 -1 4194560 1204 0 0 0 1234 567 0 0 20 0 \
                    5 0 99 123456 789 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let cpu = parse_stat(line, TICK).unwrap();
        assert_eq!(cpu.user, Duration::from_millis(12_340));
        assert_eq!(cpu.system, Duration::from_millis(5_670));
        assert_eq!(cpu.total(), Duration::from_millis(18_010));
    }

    #[test]
    fn malformed_stat_lines_are_errors() {
        assert!(parse_stat("4242 kes S 1", TICK).is_err());
        assert!(parse_stat("4242 (kes) S 1 2 3", TICK).is_err());
        assert!(parse_stat("4242 (kes) S 1 2 3 4 5 6 7 8 9 10 x 12", TICK).is_err());
    }

    #[test]
    fn own_process_has_cpu_time_and_memory() {
        let tick = clock_tick();
        assert!(tick > Duration::ZERO);
        let before = cpu_time(None, tick).unwrap();
        // Burn a little CPU so that at least one tick is accounted.
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = cpu_time(None, tick).unwrap();
        assert!(after.since(before).total() > Duration::ZERO);
        let mem = memory(std::process::id()).unwrap();
        assert!(mem.rss > 0 && mem.peak >= mem.rss);
        assert!(threads(std::process::id()).unwrap() >= 1);
    }

    #[test]
    fn status_memory_lines() {
        let text = "Name:\tkes\nVmPeak:\t  100 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(
            parse_status(text).unwrap(),
            Memory {
                rss: 1024 * 1024,
                peak: 2048 * 1024
            }
        );
        assert!(parse_status("Name:\tkes\n").is_err());
        assert!(parse_status("VmRSS:\tlots\nVmHWM:\t1 kB\n").is_err());
    }

    #[test]
    fn machine_busy_counts_everything_but_idle_and_iowait() {
        let text = "cpu  100 5 20 9000 50 1 2 3 0 0\ncpu0 50 2 10 4500 25 0 1 1 0 0\n";
        let busy = parse_machine_busy(text, TICK).unwrap();
        assert_eq!(busy, Duration::from_millis(10 * (100 + 5 + 20 + 1 + 2 + 3)));
        assert!(parse_machine_busy("cpu0 1 2 3\n", TICK).is_err());
        assert!(parse_machine_busy("cpu  1 2 3\n", TICK).is_err());
        assert!(machine_busy(clock_tick()).unwrap() > Duration::ZERO);
    }

    #[test]
    fn sched_figures_of_threads() {
        let status = "Name:\tkes\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(parse_switches(status).unwrap(), (120, 7));
        assert!(parse_switches("Name:\tkes\n").is_err());
        assert!(parse_switches("Name:\tkes\nvoluntary_ctxt_switches:\t1\n").is_err());
        let one = Sched {
            run_ns: 5000,
            voluntary: 120,
            involuntary: 7,
        };
        assert_eq!(one.switches(), 127);
        let later = Sched {
            run_ns: 9000,
            voluntary: 100,
            involuntary: 9,
        };
        assert_eq!(later.since(one).run_ns, 4000);
        assert_eq!(later.since(one).voluntary, 0);
        // This process: a thread that sleeps switches voluntarily, and the CPU time this thread
        // spends (by its own thread clock, whatever the machine's load) shows in the process's.
        let before = sched(std::process::id()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let spin_start = thread_cpu_ns();
        let wall = std::time::Instant::now();
        let mut x = 0u64;
        while thread_cpu_ns() - spin_start < 5_000_000 && wall.elapsed() < Duration::from_secs(20) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let spun = thread_cpu_ns() - spin_start;
        let after = sched(std::process::id()).unwrap().since(before);
        assert!(spun >= 5_000_000, "spun only {spun} ns in 20 s");
        assert!(after.voluntary >= 1, "{after:?}");
        assert!(after.run_ns >= spun, "{after:?} < {spun} ns");
    }

    #[test]
    fn since_never_goes_negative() {
        let a = CpuTime {
            user: Duration::from_secs(2),
            system: Duration::from_secs(1),
        };
        let b = CpuTime {
            user: Duration::from_secs(1),
            system: Duration::from_secs(3),
        };
        assert_eq!(b.since(a).user, Duration::ZERO);
        assert_eq!(b.since(a).system, Duration::from_secs(2));
    }
}
