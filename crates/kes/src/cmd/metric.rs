//! `kes metric [--rate 5s]`: fetches `/v1/metrics` (Prometheus text) at the given rate and
//! shows a live view on a terminal, or prints one JSON object per interval into a pipe.
//!
//! The JSON object's keys are the metric names (spec §9.3): the request counters summed over
//! their `code` label, the latency histogram as cumulative counts per upper bound in seconds
//! (`"0.01"`, …, `"+Inf"`), and the system gauges.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::status::bytes;
use super::{client, follow};
use crate::cli::MetricArgs;
use crate::duration;
use crate::fail::Failure;
use crate::term;

/// The shortest refresh interval.
const MIN_RATE: Duration = Duration::from_millis(100);

/// Runs `kes metric`.
pub fn run(args: MetricArgs) -> Result<(), Failure> {
    let rate = duration::parse(&args.rate).map_err(Failure::msg)?;
    if rate < MIN_RATE {
        return Err(Failure::msg(format!(
            "'--rate' must be at least {}ms",
            MIN_RATE.as_millis()
        )));
    }
    let client = client(&args.conn)?;
    let endpoint = client
        .endpoints()
        .first()
        .map(|e| (*e).to_owned())
        .unwrap_or_default();
    let live = term::stdout_is_terminal();
    follow(async {
        let mut ticker = tokio::time::interval(rate);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut previous: Option<Metrics> = None;
        loop {
            ticker.tick().await;
            let fetched = client.metrics().await;
            let text = match fetched {
                Ok(text) => text,
                Err(e) if live && previous.is_some() => {
                    let message = Failure::request("failed to fetch metrics", e);
                    if let Failure::Error { message, .. } = message {
                        clear_screen();
                        term::print(&format!("{} {message}\n", term::paint(term::RED, "●")))?;
                    }
                    continue;
                }
                Err(e) => return Err(Failure::request("failed to fetch metrics", e)),
            };
            let metrics = Metrics::parse(&text);
            if live {
                clear_screen();
                term::print(&dashboard(&endpoint, rate, &metrics, previous.as_ref()))?;
            } else {
                let json = serde_json::to_string(&metrics)
                    .map_err(|e| Failure::msg(format!("cannot encode JSON: {e}")))?;
                term::print(&format!("{json}\n"))?;
            }
            previous = Some(metrics);
        }
    })
}

/// Clears a terminal screen. Cursor control is not colour: it is written past anstream, which
/// would strip it with `NO_COLOR`.
fn clear_screen() {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b"\x1b[2J\x1b[H");
    let _ = out.flush();
}

/// What `/v1/metrics` reports.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
struct Metrics {
    kes_http_request_success: u64,
    kes_http_request_error: u64,
    kes_http_request_failure: u64,
    kes_http_request_active: u64,
    kes_log_audit_events: u64,
    kes_log_error_events: u64,
    /// Upper bound (seconds, as the `le` label) → cumulative count, in increasing order.
    #[serde(serialize_with = "histogram")]
    kes_http_response_time: Vec<(String, u64)>,
    kes_system_up_time: f64,
    kes_system_num_cpu: u64,
    kes_system_num_cpu_used: u64,
    kes_system_num_threads: u64,
    kes_system_mem_heap_used: u64,
    kes_system_mem_heap_objects: u64,
    kes_system_mem_stack_used: u64,
}

fn histogram<S: serde::Serializer>(buckets: &[(String, u64)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut map = s.serialize_map(Some(buckets.len()))?;
    for (le, count) in buckets {
        map.serialize_entry(le, count)?;
    }
    map.end()
}

impl Metrics {
    /// Parses the Prometheus text format; unknown metrics and malformed lines are skipped.
    fn parse(text: &str) -> Metrics {
        let mut m = Metrics::default();
        let mut buckets: BTreeMap<u64, (String, u64)> = BTreeMap::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            // A sample may carry a timestamp after the value.
            let (series, value) = match series.rsplit_once(' ') {
                Some((s, v)) if !s.contains('}') || s.ends_with('}') => (s, v),
                _ => (series, value),
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let count = if value.is_finite() && value > 0.0 {
                value.round() as u64
            } else {
                0
            };
            match name {
                "kes_http_request_success" => m.kes_http_request_success += count,
                "kes_http_request_error" => m.kes_http_request_error += count,
                "kes_http_request_failure" => m.kes_http_request_failure += count,
                "kes_http_request_active" => m.kes_http_request_active = count,
                "kes_log_audit_events" => m.kes_log_audit_events = count,
                "kes_log_error_events" => m.kes_log_error_events = count,
                "kes_http_response_time_bucket" => {
                    if let Some(le) = label(labels, "le") {
                        let order = if le == "+Inf" {
                            u64::MAX
                        } else {
                            le.parse::<f64>().map_or(u64::MAX - 1, |b| (b * 1e9) as u64)
                        };
                        buckets.insert(order, (le.to_owned(), count));
                    }
                }
                "kes_system_up_time" => m.kes_system_up_time = value,
                "kes_system_num_cpu" => m.kes_system_num_cpu = count,
                "kes_system_num_cpu_used" => m.kes_system_num_cpu_used = count,
                "kes_system_num_threads" => m.kes_system_num_threads = count,
                "kes_system_mem_heap_used" => m.kes_system_mem_heap_used = count,
                "kes_system_mem_heap_objects" => m.kes_system_mem_heap_objects = count,
                "kes_system_mem_stack_used" => m.kes_system_mem_stack_used = count,
                _ => {}
            }
        }
        m.kes_http_response_time = buckets.into_values().collect();
        m
    }

    fn requests(&self) -> u64 {
        self.kes_http_request_success + self.kes_http_request_error + self.kes_http_request_failure
    }
}

/// The value of label `name` in `a="x",b="y"`.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

/// The live view.
fn dashboard(endpoint: &str, rate: Duration, m: &Metrics, previous: Option<&Metrics>) -> String {
    let label = |l: &str| term::paint(term::BOLD, &format!("{l:<10}"));
    let per_second = previous.map_or(0.0, |p| {
        m.requests().saturating_sub(p.requests()) as f64 / rate.as_secs_f64()
    });
    let mut text = format!(
        "{} {}   every {}   (Ctrl-C to quit)\n\n",
        term::paint(term::BOLD, "KES metrics"),
        term::paint(term::CYAN, endpoint),
        duration::human(rate),
    );
    text.push_str(&format!(
        "{} {} ok   {} client errors   {} server errors   {} active   {per_second:.1}/s\n",
        label("Requests"),
        term::paint(term::GREEN, &m.kes_http_request_success.to_string()),
        term::paint(term::YELLOW, &m.kes_http_request_error.to_string()),
        term::paint(term::RED, &m.kes_http_request_failure.to_string()),
        m.kes_http_request_active,
    ));
    text.push_str(&format!(
        "{} {} audit   {} error\n",
        label("Events"),
        m.kes_log_audit_events,
        m.kes_log_error_events
    ));
    text.push_str(&format!(
        "{} up {}   {}/{} CPUs   {} threads   heap {} ({} objects)   stack {}\n\n",
        label("System"),
        duration::human(Duration::from_secs_f64(m.kes_system_up_time.max(0.0))),
        m.kes_system_num_cpu_used,
        m.kes_system_num_cpu,
        m.kes_system_num_threads,
        bytes(m.kes_system_mem_heap_used),
        m.kes_system_mem_heap_objects,
        bytes(m.kes_system_mem_stack_used),
    ));
    text.push_str(&format!("{}\n", term::paint(term::BOLD, "Latency")));
    let total = m
        .kes_http_response_time
        .last()
        .map_or(0, |(_, c)| *c)
        .max(1);
    let mut below = 0u64;
    for (le, cumulative) in &m.kes_http_response_time {
        let count = cumulative.saturating_sub(below);
        below = *cumulative;
        let bound = match le.parse::<f64>() {
            Ok(secs) if le != "+Inf" => format!(
                "≤ {}",
                duration::human(Duration::from_secs_f64(secs.max(0.0)))
            ),
            _ => "> slowest".to_owned(),
        };
        let width = (count * 40 / total) as usize;
        text.push_str(&format!(
            "  {bound:<12}{count:>8}  {}\n",
            term::paint(term::CYAN, &"█".repeat(width))
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"# HELP kes_http_request_success Number of requests that have been served successfully.
# TYPE kes_http_request_success counter
kes_http_request_success{code="200"} 12
kes_http_request_error{code="403"} 2
kes_http_request_error{code="404"} 3
kes_http_request_active 1
kes_http_response_time_bucket{le="0.01"} 10
kes_http_response_time_bucket{le="0.05"} 14
kes_http_response_time_bucket{le="+Inf"} 17
kes_http_response_time_sum 0.3
kes_http_response_time_count 17
kes_log_audit_events 4
kes_system_up_time 12.5
kes_system_num_cpu 2
kes_system_mem_heap_used 1.048576e+06
"#;

    #[test]
    fn parses_prometheus_text() {
        let m = Metrics::parse(SAMPLE);
        assert_eq!(m.kes_http_request_success, 12);
        assert_eq!(m.kes_http_request_error, 5);
        assert_eq!(m.kes_http_request_active, 1);
        assert_eq!(m.kes_log_audit_events, 4);
        assert_eq!(m.kes_system_mem_heap_used, 1_048_576);
        assert_eq!(
            m.kes_http_response_time,
            [
                ("0.01".to_owned(), 10),
                ("0.05".to_owned(), 14),
                ("+Inf".to_owned(), 17)
            ]
        );
        let json = serde_json::to_string(&m).unwrap();
        assert!(
            json.starts_with(r#"{"kes_http_request_success":12,"kes_http_request_error":5,"#),
            "{json}"
        );
        assert!(
            json.contains(r#""kes_http_response_time":{"0.01":10,"0.05":14,"+Inf":17}"#),
            "{json}"
        );
    }

    #[test]
    fn the_dashboard_shows_each_bucket() {
        let m = Metrics::parse(SAMPLE);
        let text = dashboard(
            "https://h:1",
            Duration::from_secs(5),
            &m,
            Some(&Metrics::default()),
        );
        assert!(text.contains("3.4/s"), "{text}");
        assert!(text.contains("≤ 10ms"), "{text}");
        assert!(text.contains("> slowest"), "{text}");
    }
}
