//! `kes log [--audit | --error] [--json]`: follows the server's audit or error log until
//! interrupted.
//!
//! The server sends one JSON object per line. When this follower falls too far behind, the
//! server skips events and says so in a line of its own, `{"time":…,"dropped":N}`, reported
//! here as a warning with the number of events lost. `--json` copies every line verbatim.

use kes_client::api::{AuditEvent, ErrorEvent};
use serde::de::DeserializeOwned;

use super::{client, follow};
use crate::cli::LogArgs;
use crate::fail::Failure;
use crate::term;

/// Runs `kes log`.
pub fn run(args: LogArgs) -> Result<(), Failure> {
    if args.audit && args.error {
        return Err(Failure::msg(
            "cannot display audit and error logs at the same time",
        ));
    }
    let client = client(&args.conn)?;
    if args.error {
        follow(async {
            let mut stream = client
                .error_log_lines()
                .await
                .map_err(|e| Failure::request("failed to connect to error log", e))?;
            while let Some(line) = stream.next().await {
                let line = line.map_err(|e| Failure::request("error log stream failed", e))?;
                if let Some(event) = line_event::<ErrorEvent>(&line, args.json)? {
                    term::print(&format!("{}\n", event.message))?;
                }
            }
            Err(Failure::msg("the server closed the error log stream"))
        })
    } else {
        follow(async {
            let mut stream = client
                .audit_log_lines()
                .await
                .map_err(|e| Failure::request("failed to connect to audit log", e))?;
            if !args.json {
                let header = format!(
                    "{:<10}{:<8}{:<14}{:<17}{:<42}{}",
                    "Time", "Status", "Identity", "IP", "API", "Latency"
                );
                term::print(&format!("{}\n", term::paint(term::HEADER, &header)))?;
            }
            while let Some(line) = stream.next().await {
                let line = line.map_err(|e| Failure::request("audit log stream failed", e))?;
                if let Some(event) = line_event::<AuditEvent>(&line, args.json)? {
                    print_audit_event(&event)?;
                }
            }
            Err(Failure::msg("the server closed the audit log stream"))
        })
    }
}

/// Handles one line: with `--json` prints it as it came; a `dropped` line becomes a warning;
/// otherwise the decoded event is returned for the human view.
fn line_event<T: DeserializeOwned>(line: &str, json: bool) -> Result<Option<T>, Failure> {
    let value: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| Failure::msg(format!("invalid log event from the server: {e}")))?;
    if let Some(dropped) = value.get("dropped").and_then(serde_json::Value::as_u64) {
        term::eprint(&format!(
            "{}the server dropped {dropped} events because this follower fell behind\n",
            term::paint(term::YELLOW, "Warning: ")
        ));
        if !json {
            return Ok(None);
        }
    }
    if json {
        term::print(&format!("{line}\n"))?;
        return Ok(None);
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| Failure::msg(format!("invalid log event from the server: {e}")))
}

fn print_audit_event(event: &AuditEvent) -> Result<(), Failure> {
    let time = event.time.to_offset(term::local_offset());
    let code = event.response.code;
    let style = match code {
        200..=299 => term::GREEN,
        400..=499 => term::YELLOW,
        _ => term::RED,
    };
    let identity = event.request.identity.as_deref().unwrap_or("<none>");
    let short_identity: String = identity.chars().take(12).collect();
    let line = format!(
        "{:02}:{:02}:{:02}  {}     {:<14}{:<17}{:<42}{}ms\n",
        time.hour(),
        time.minute(),
        time.second(),
        term::paint(style, &format!("{code:03}")),
        short_identity,
        event.request.ip.as_deref().unwrap_or("-"),
        event.request.path,
        event.response.time,
    );
    Ok(term::print(&line)?)
}
