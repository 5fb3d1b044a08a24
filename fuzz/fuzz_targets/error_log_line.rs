//! Fuzzes the error log's text format (`kes_server::logs::error_line`): the input, read as text
//! (lossily), is split at NUL characters into request path, identity (absent when empty) and
//! message. The line must hold no line break and read back (`kes_testutil::reference::
//! text_log_fields`) as exactly the fields time, level, msg, req.path, req.ip, req.identity, each
//! equal to what was logged: no value can end the line or forge a field.

#![no_main]

use kes_server::logs::{error_line, level};
use kes_testutil::reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let path = parts.next().unwrap_or("");
    let identity = parts.next().filter(|s| !s.is_empty());
    let message = parts.next().unwrap_or("");
    let ip = "192.0.2.7".parse().unwrap();
    let line = error_line("t", level::ERROR, Some((path, identity, Some(ip))), message);
    assert!(!line.contains(['\n', '\r']), "{line:?}");
    let fields = reference::text_log_fields(&line).unwrap_or_else(|| panic!("{line:?}"));
    let got: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let want = [
        ("time", "t"),
        ("level", "ERROR"),
        ("msg", message),
        ("req.path", path),
        ("req.ip", "192.0.2.7"),
        ("req.identity", identity.unwrap_or("<unknown>")),
    ];
    assert_eq!(got, want, "{line:?}");
});
