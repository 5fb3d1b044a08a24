//! `kes status`: each server's version, uptime, round-trip latency, keystore state, OS, CPUs
//! and memory; `--api` lists its routes.

use std::time::{Duration, Instant};

use kes_client::Client;
use kes_client::api::StatusResponse;
use serde::Serialize;

use super::block_on;
use super::policy::print_json;
use crate::cli::StatusArgs;
use crate::connect::{self, Settings};
use crate::duration;
use crate::fail::Failure;
use crate::term;

/// Runs `kes status`.
pub fn run(args: StatusArgs) -> Result<(), Failure> {
    term::set_color(args.conn.color);
    let endpoints = connect::servers(None);
    let clients = endpoints
        .iter()
        .map(|endpoint| {
            let settings = Settings {
                insecure: args.conn.insecure,
                server: Some(endpoint),
                api_key: None,
            };
            connect::client(&settings).map(|client| (display_name(endpoint), client))
        })
        .collect::<Result<Vec<_>, _>>()?;
    block_on(async {
        let several = clients.len() > 1;
        let mut failed = 0usize;
        for (name, client) in &clients {
            match one(&args, name, client).await {
                Ok(()) => {}
                Err(failure) if !several => return Err(failure),
                Err(Failure::Error { message, .. }) => {
                    failed += 1;
                    term::print(&format!(
                        "{} {name}\n  {message}\n",
                        term::paint(term::RED, "●")
                    ))?;
                }
                Err(other) => return Err(other),
            }
        }
        if failed > 0 {
            return Err(Failure::msg(format!(
                "{failed} of {} servers failed",
                clients.len()
            )));
        }
        Ok(())
    })
}

/// The endpoint as the user wrote it, without a scheme.
fn display_name(endpoint: &str) -> String {
    let trimmed = endpoint.trim();
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .unwrap_or(trimmed);
    rest.trim_end_matches('/').to_owned()
}

async fn one(args: &StatusArgs, name: &str, client: &Client) -> Result<(), Failure> {
    if args.api {
        let routes = client
            .api()
            .await
            .map_err(|e| Failure::request("failed to fetch the server's APIs", e))?;
        if args.json {
            return print_json(&routes, term::stdout_is_terminal() && !args.short);
        }
        let mut text = format!(
            "{}\n",
            term::paint(
                term::HEADER,
                &format!("{:<8}{:<34}{}", "Method", "API", "Timeout")
            )
        );
        for route in &routes {
            let timeout = if route.timeout <= 0 {
                "Inf".to_owned()
            } else {
                format!("{}s", route.timeout)
            };
            text.push_str(&format!("{:<8}{:<34}{timeout}\n", route.method, route.path));
        }
        return Ok(term::print(&text)?);
    }

    let started = Instant::now();
    let status = client
        .status()
        .await
        .map_err(|e| Failure::request("failed to fetch status", e))?;
    let latency = started.elapsed();
    if args.json {
        return print_json(
            &StateJson::from(&status),
            term::stdout_is_terminal() && !args.short,
        );
    }
    let healthy = !(status.keystore_unreachable || status.keystore_unavailable);
    let dot = term::paint(if healthy { term::GREEN } else { term::YELLOW }, "●");
    let mut text = format!("{dot} {}\n", term::paint(term::BOLD, name));
    if args.short {
        return Ok(term::print(&text)?);
    }
    let label = |l: &str| term::paint(term::BOLD, &format!("  {l:<10}"));
    let keystore = if healthy {
        match status.keystore_latency {
            Some(ms) => format!("available, {ms}ms"),
            None => "available".to_owned(),
        }
    } else {
        term::paint(term::RED, "unreachable")
    };
    text.push_str(&format!(
        "{} {}\n{} {}\n{} {}\n{} {keystore}\n{} {}\n{} {} of {} in use, {}\n{} heap {}, stack {}\n",
        label("Version"),
        status.version,
        label("Uptime"),
        duration::human(Duration::from_secs(status.uptime)),
        label("Latency"),
        duration::human(latency),
        label("Keystore"),
        label("OS"),
        status.os,
        label("CPUs"),
        status.num_cpu_used,
        status.num_cpu,
        status.arch,
        label("Memory"),
        bytes(status.mem_heap_used),
        bytes(status.mem_stack_used),
    ));
    Ok(term::print(&text)?)
}

/// `kes status --json`: the Go SDK's `State` (uptime omitted when zero; `keystore_latency`
/// re-emitted as received; `keystore_unavailable` whenever the keystore is unreachable).
#[derive(Serialize)]
struct StateJson<'a> {
    version: &'a str,
    os: &'a str,
    arch: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    uptime: u64,
    num_cpu: u32,
    num_cpu_used: u32,
    mem_heap_used: u64,
    mem_stack_used: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    keystore_latency: Option<u64>,
    #[serde(skip_serializing_if = "is_false")]
    keystore_unavailable: bool,
    #[serde(skip_serializing_if = "is_false")]
    keystore_unreachable: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl<'a> From<&'a StatusResponse> for StateJson<'a> {
    fn from(s: &'a StatusResponse) -> Self {
        StateJson {
            version: &s.version,
            os: &s.os,
            arch: &s.arch,
            uptime: s.uptime,
            num_cpu: s.num_cpu,
            num_cpu_used: s.num_cpu_used,
            mem_heap_used: s.mem_heap_used,
            mem_stack_used: s.mem_stack_used,
            keystore_latency: s.keystore_latency.filter(|l| *l > 0),
            keystore_unavailable: s.keystore_unavailable || s.keystore_unreachable,
            keystore_unreachable: s.keystore_unreachable,
        }
    }
}

/// `1536` → `1.5 KiB`.
pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_names() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(display_name(" https://127.0.0.1:7373/ "), "127.0.0.1:7373");
        assert_eq!(display_name("kes:7373"), "kes:7373");
    }

    #[test]
    fn state_json_matches_the_sdk() {
        let s = StatusResponse {
            version: "v".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            num_cpu: 2,
            num_cpu_used: 2,
            mem_heap_used: 10,
            mem_stack_used: 20,
            keystore_latency: Some(1),
            ..StatusResponse::default()
        };
        assert_eq!(
            serde_json::to_string(&StateJson::from(&s)).unwrap(),
            r#"{"version":"v","os":"linux","arch":"amd64","num_cpu":2,"num_cpu_used":2,"mem_heap_used":10,"mem_stack_used":20,"keystore_latency":1}"#
        );
        let down = StatusResponse {
            keystore_unreachable: true,
            uptime: 3,
            ..StatusResponse::default()
        };
        let json = serde_json::to_string(&StateJson::from(&down)).unwrap();
        assert!(
            json.contains(r#""uptime":3"#)
                && json.contains(r#""keystore_unavailable":true,"keystore_unreachable":true"#),
            "{json}"
        );
    }
}
