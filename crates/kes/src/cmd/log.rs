//! `kes log [--audit | --error] [--json]`: follows the server's audit or error log until
//! interrupted.
//!
//! The server sends one JSON object per line. When this follower falls too far behind, the
//! server skips events and says so in a line of its own, `{"time":…,"dropped":N}`, which the
//! typed streams of the client decode as an event without content (no path and status for
//! audit events, no message for error events); such events are reported as a gap.

use kes_client::api::{AuditEvent, ErrorEvent};

use super::{client, follow};
use crate::cli::LogArgs;
use crate::fail::Failure;
use crate::term;

/// Runs `kes log`.
pub fn run(args: LogArgs) -> Result<(), Failure> {
    if args.audit && args.error {
        return Err(Failure::msg("cannot display audit and error logs at the same time"));
    }
    let client = client(&args.conn)?;
    if args.error {
        follow(async {
            let mut stream = client
                .error_log()
                .await
                .map_err(|e| Failure::request("failed to connect to error log", e))?;
            while let Some(event) = stream.next().await {
                let event = event.map_err(|e| Failure::request("error log stream failed", e))?;
                print_error_event(&event, args.json)?;
            }
            Err(Failure::msg("the server closed the error log stream"))
        })
    } else {
        follow(async {
            let mut stream = client
                .audit_log()
                .await
                .map_err(|e| Failure::request("failed to connect to audit log", e))?;
            if !args.json {
                let header = format!(
                    "{:<10}{:<8}{:<14}{:<17}{:<42}{}",
                    "Time", "Status", "Identity", "IP", "API", "Latency"
                );
                term::print(&format!("{}\n", term::paint(term::HEADER, &header)))?;
            }
            while let Some(event) = stream.next().await {
                let event = event.map_err(|e| Failure::request("audit log stream failed", e))?;
                print_audit_event(&event, args.json)?;
            }
            Err(Failure::msg("the server closed the audit log stream"))
        })
    }
}

/// The wire form of an event, which ends with a newline as the server writes it.
fn json_line(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.last() != Some(&b'\n') {
        bytes.push(b'\n');
    }
    bytes
}

fn print_gap() -> Result<(), Failure> {
    term::eprint(&format!(
        "{}the server dropped events because this follower fell behind\n",
        term::paint(term::YELLOW, "Warning: ")
    ));
    Ok(())
}

fn print_audit_event(event: &AuditEvent, json: bool) -> Result<(), Failure> {
    if event.request.path.is_empty() && event.response.code == 0 {
        return print_gap();
    }
    if json {
        let line = json_line(kes_client::api::encode_json(event));
        return Ok(term::print(&String::from_utf8_lossy(&line))?);
    }
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

fn print_error_event(event: &ErrorEvent, json: bool) -> Result<(), Failure> {
    if event.message.is_empty() {
        return print_gap();
    }
    if json {
        let line = json_line(kes_client::api::encode_json(event));
        return Ok(term::print(&String::from_utf8_lossy(&line))?);
    }
    Ok(term::print(&format!("{}\n", event.message))?)
}
