//! Bounded randomized smoke test of the error log's text format (`kes_server::logs::error_line`),
//! the stable counterpart of the `error_log_line` fuzz target: request paths, identities and
//! messages full of line breaks, escapes, quotes and `key=` look-alikes must give exactly one
//! line whose fields are exactly time, level, msg, req.path, req.ip, req.identity, each reading
//! back to what was logged. A failure prints the seed and the inputs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_in_result
)]

use std::net::IpAddr;

use kes_server::logs::{error_line, level};
use kes_testutil::{Rng, mutate_text, reference};

const SEED: u64 = 0x6b65_735f_6c6f_6773;
const CASES: usize = 5_000;

const PIECES: &[&str] = &[
    "\n",
    "\r",
    "\r\n",
    "\u{1b}[2J",
    "\0",
    "\t",
    "\"",
    "\\",
    "=",
    " ",
    " req.path=",
    " level=ERROR",
    "msg=\"x\"",
    "\u{2028}",
    "\u{85}",
    "\u{301}",
    "\u{7f}",
    "é",
    "%0A",
    "/v1/key/create/",
    "",
];

/// Checks one error line; `Err` says what is wrong.
fn check(path: &str, identity: Option<&str>, message: &str) -> Result<(), String> {
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let line = error_line(
        "2026-12-03T00:00:00Z",
        level::DEBUG,
        Some((path, identity, Some(ip))),
        message,
    );
    if line.contains(['\n', '\r']) {
        return Err(format!("a line break in {line:?}"));
    }
    let fields =
        reference::text_log_fields(&line).ok_or_else(|| format!("not key=value: {line:?}"))?;
    let want = [
        ("time", "2026-12-03T00:00:00Z"),
        ("level", "DEBUG"),
        ("msg", message),
        ("req.path", path),
        ("req.ip", "192.0.2.7"),
        ("req.identity", identity.unwrap_or("<unknown>")),
    ];
    let got: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if got != want {
        return Err(format!("fields {got:?} of {line:?}"));
    }
    Ok(())
}

#[test]
fn error_lines_read_back_as_exactly_their_fields() {
    let mut rng = Rng::new(SEED);
    let (mut path, mut identity, mut message) = (
        "/v1/key/create/a".to_owned(),
        "3dbd4603886d4e7cb246734f36ad17283ca22d0ccf4bf1e06222fd17a07405ef".to_owned(),
        "http: 403 not authorized".to_owned(),
    );
    for case in 0..CASES {
        match rng.below(3) {
            0 => path = mutate_text(&mut rng, &path, &message, PIECES),
            1 => identity = mutate_text(&mut rng, &identity, &path, PIECES),
            _ => message = mutate_text(&mut rng, &message, &identity, PIECES),
        }
        // Keep the inputs short so that the stream keeps changing them.
        for s in [&mut path, &mut identity, &mut message] {
            if s.chars().count() > 80 {
                *s = s.chars().skip(40).collect();
            }
        }
        let id = (case % 5 != 0).then_some(identity.as_str());
        if let Err(e) = check(&path, id, &message) {
            panic!("seed {SEED:#x} case {case}: {e}");
        }
    }
}
