//! Prometheus metrics with the original's names and types (spec §9.3), written in the text
//! exposition format 0.0.4. Counters carry no `_total` suffix, as in KES.
//!
//! Every route is counted (the original only counted key, policy and identity routes).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::logs::StreamCounters;

/// Histogram bucket bounds in seconds.
const BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 3.0, 5.0, 10.0];
/// Status codes 100..=599 get a counter each.
const CODES: usize = 500;

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    by_code: Box<[AtomicU64]>,
    active: AtomicI64,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics.
    pub fn new() -> Self {
        Self {
            by_code: (0..CODES).map(|_| AtomicU64::new(0)).collect(),
            active: AtomicI64::new(0),
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// A request entered the handler chain.
    pub fn request_started(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// A request finished with `code` after `elapsed`.
    pub fn request_finished(&self, code: u16, elapsed: Duration) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        if let Some(c) = usize::from(code)
            .checked_sub(100)
            .and_then(|i| self.by_code.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b)
            && let Some(bucket) = self.buckets.get(i)
        {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Renders the metrics in the Prometheus text format.
    /// `logs` counts the events delivered to log stream subscribers.
    pub fn render(&self, system: &SystemStats, logs: &StreamCounters) -> String {
        let mut out = String::with_capacity(4096);
        let mut counter = |name: &str, help: &str, lo: u16, hi: u16| {
            let samples: Vec<(u16, u64)> = (lo..=hi)
                .filter_map(|code| {
                    let n = self
                        .by_code
                        .get(usize::from(code - 100))?
                        .load(Ordering::Relaxed);
                    (n > 0).then_some((code, n))
                })
                .collect();
            if samples.is_empty() {
                return;
            }
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (code, n) in samples {
                let _ = writeln!(out, "{name}{{code=\"{code}\"}} {n}");
            }
        };
        counter(
            "kes_http_request_success",
            "Number of requests that have been served successfully.",
            100,
            399,
        );
        counter(
            "kes_http_request_error",
            "Number of request that failed due to some error. (HTTP 4xx status code)",
            400,
            499,
        );
        counter(
            "kes_http_request_failure",
            "Number of request that failed due to some internal failure. (HTTP 5xx status code)",
            500,
            599,
        );
        gauge(
            &mut out,
            "kes_http_request_active",
            "Number of active requests that are not finished, yet.",
            self.active.load(Ordering::Relaxed) as f64,
        );
        let _ = writeln!(
            out,
            "# HELP kes_http_response_time Histogram of request response times spawning from start to complete sending of the response."
        );
        let _ = writeln!(out, "# TYPE kes_http_response_time histogram");
        let mut cumulative = 0u64;
        for (bound, bucket) in BUCKETS.iter().zip(self.buckets.iter()) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "kes_http_response_time_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "kes_http_response_time_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "kes_http_response_time_sum {sum}");
        let _ = writeln!(out, "kes_http_response_time_count {count}");
        let _ = writeln!(
            out,
            "# HELP kes_log_audit_events Number of audit log events written to the audit log targets."
        );
        let _ = writeln!(out, "# TYPE kes_log_audit_events counter");
        let _ = writeln!(
            out,
            "kes_log_audit_events {}",
            logs.audit_events.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP kes_log_error_events Number of error log events written to the error log targets."
        );
        let _ = writeln!(out, "# TYPE kes_log_error_events counter");
        let _ = writeln!(
            out,
            "kes_log_error_events {}",
            logs.error_events.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP kes_log_dropped_events Number of log events lost: by log stream subscribers that fell behind, or because stdout and stderr could not keep up."
        );
        let _ = writeln!(out, "# TYPE kes_log_dropped_events counter");
        let _ = writeln!(
            out,
            "kes_log_dropped_events{{target=\"subscriber\"}} {}",
            logs.dropped.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "kes_log_dropped_events{{target=\"output\"}} {}",
            logs.dropped_output.load(Ordering::Relaxed)
        );
        gauge(
            &mut out,
            "kes_system_mem_heap_objects",
            "Number of heap objects.",
            system.heap_objects as f64,
        );
        gauge(
            &mut out,
            "kes_system_mem_heap_used",
            "Amount of heap memory currently used.",
            system.heap_used as f64,
        );
        gauge(
            &mut out,
            "kes_system_mem_stack_used",
            "Amount of stack memory currently used.",
            system.stack_used as f64,
        );
        gauge(
            &mut out,
            "kes_system_num_cpu",
            "Number of available CPU cores.",
            system.num_cpu as f64,
        );
        gauge(
            &mut out,
            "kes_system_num_cpu_used",
            "Number of CPU cores used by the process.",
            system.num_cpu_used as f64,
        );
        gauge(
            &mut out,
            "kes_system_num_threads",
            "Number of threads that currently exist.",
            system.threads as f64,
        );
        gauge(
            &mut out,
            "kes_system_up_time",
            "The time the server has been up and running in seconds.",
            system.uptime_secs,
        );
        out
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

/// Process figures for `/v1/status` and `/v1/metrics`.
#[derive(Debug, Clone, Default)]
pub struct SystemStats {
    /// Seconds since start (10 ms resolution).
    pub uptime_secs: f64,
    /// CPUs available to the process.
    pub num_cpu: u64,
    /// Worker threads serving requests.
    pub num_cpu_used: u64,
    /// Threads of the process.
    pub threads: u64,
    /// Resident memory used by data (bytes).
    pub heap_used: u64,
    /// Heap objects (not tracked by the Rust allocator; 0 unless known).
    pub heap_objects: u64,
    /// Stack memory (bytes) of the main thread as the kernel reports it.
    pub stack_used: u64,
}

impl SystemStats {
    /// Reads the figures of this process.
    pub fn read(uptime: Duration) -> SystemStats {
        let num_cpu = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        let mut stats = SystemStats {
            uptime_secs: (uptime.as_millis() / 10) as f64 / 100.0,
            num_cpu,
            num_cpu_used: num_cpu,
            ..SystemStats::default()
        };
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            for line in status.lines() {
                let mut it = line.split_whitespace();
                let (Some(key), Some(value)) = (it.next(), it.next()) else {
                    continue;
                };
                let value: u64 = value.parse().unwrap_or(0);
                match key {
                    "VmData:" => stats.heap_used = value * 1024,
                    "VmStk:" => stats.stack_used = value * 1024,
                    "Threads:" => stats.threads = value,
                    _ => {}
                }
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_kes_names() {
        let m = Metrics::new();
        m.request_started();
        m.request_finished(200, Duration::from_millis(3));
        m.request_started();
        m.request_finished(404, Duration::from_millis(70));
        let logs = StreamCounters::default();
        logs.dropped.store(3, Ordering::Relaxed);
        logs.dropped_output.store(5, Ordering::Relaxed);
        let text = m.render(&SystemStats::read(Duration::from_secs(1)), &logs);
        assert!(text.contains("kes_log_dropped_events{target=\"subscriber\"} 3\n"));
        assert!(text.contains("kes_log_dropped_events{target=\"output\"} 5\n"));
        assert!(text.contains("kes_http_request_success{code=\"200\"} 1\n"));
        assert!(text.contains("kes_http_request_error{code=\"404\"} 1\n"));
        assert!(!text.contains("kes_http_request_failure"));
        assert!(text.contains("kes_http_response_time_bucket{le=\"0.01\"} 1\n"));
        assert!(text.contains("kes_http_response_time_bucket{le=\"0.1\"} 2\n"));
        assert!(text.contains("kes_http_response_time_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("kes_http_response_time_count 2\n"));
        assert!(text.contains("kes_http_request_active 0\n"));
        assert!(text.contains("# TYPE kes_system_up_time gauge\n"));
    }
}
