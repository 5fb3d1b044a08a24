//! The audit log and the error log: written to stdout / stderr and streamed to every subscriber
//! of `/v1/log/audit` and `/v1/log/error` as NDJSON.
//!
//! Neither a slow terminal nor a stalled subscriber may slow requests down: lines go through
//! bounded queues, and a line that does not fit is dropped and counted, never waited for.
//! Events carry the request's path, identity, address, status and latency — never a body, so
//! no key material, plaintext or ciphertext can reach them.

use std::io::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http::header::{self, HeaderValue};
use http_body_util::{BodyExt, StreamBody};
use tokio::sync::broadcast;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::http::Body;
use crate::state::LogLevels;

/// Events buffered per stream subscriber before it starts losing them.
const SUBSCRIBER_BUFFER: usize = 4096;

/// The levels of error-log records, as slog numbers them.
pub mod level {
    /// Requests refused before their handler ran, and other detail.
    pub const DEBUG: i32 = -4;
    /// Normal events.
    pub const INFO: i32 = 0;
    /// Something is wrong but the server carries on (refused connections).
    pub const WARN: i32 = 4;
    /// A request failed on the server's side.
    pub const ERROR: i32 = 8;
}

/// One error-log line in slog's text format, without the newline:
/// `time=… level=… msg="…" req.path=… req.ip=… req.identity=…`.
///
/// Every value is written as slog writes it: bare when it is a plain word, quoted and escaped
/// otherwise, so that no value (a request path with `%0A`, a message with a quote) can end the
/// line or forge a field.
pub fn error_line(time: &str, level: i32, req: Option<ReqInfo<'_>>, message: &str) -> String {
    let level_name = match level {
        l if l < level::INFO => "DEBUG",
        l if l < level::WARN => "INFO",
        l if l < level::ERROR => "WARN",
        _ => "ERROR",
    };
    let mut text = String::with_capacity(96 + message.len());
    push_field(&mut text, "time", time);
    push_field(&mut text, "level", level_name);
    // The message is always quoted, as before.
    text.push_str(" msg=");
    push_quoted(&mut text, message);
    if let Some((path, identity, ip)) = req {
        push_field(&mut text, "req.path", path);
        if let Some(ip) = ip {
            push_field(&mut text, "req.ip", &ip.to_string());
        }
        push_field(&mut text, "req.identity", identity.unwrap_or("<unknown>"));
    }
    text
}

fn push_field(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(key);
    out.push('=');
    if needs_quoting(value) {
        push_quoted(out, value);
    } else {
        out.push_str(value);
    }
}

/// slog's rule: quote the empty string and anything with a space, `=`, `"` or a character that
/// does not print.
fn needs_quoting(value: &str) -> bool {
    value.is_empty()
        || value
            .chars()
            .any(|c| c == '=' || c == '"' || c == '\\' || c.is_whitespace() || c.is_control())
}

/// A quoted string with quotes, backslashes and control characters escaped (`\n`, `\r`,
/// `\u{1b}`, …).
fn push_quoted(out: &mut String, value: &str) {
    use std::fmt::Write as _;
    let _ = write!(out, "{value:?}");
}

/// Request attributes of an error-log record: path, identity, client address.
pub type ReqInfo<'a> = (&'a str, Option<&'a str>, Option<IpAddr>);

enum Line {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// Bytes buffered per output before lines are dropped.
const OUTPUT_LIMIT: usize = 4 << 20;
/// How long the writer collects lines before writing them: one wake-up and one write per
/// batch instead of per request.
const BATCH_INTERVAL: Duration = Duration::from_millis(2);

/// Lines waiting for the writer thread.
#[derive(Default)]
struct Output {
    pending: parking_lot::Mutex<Pending>,
    wake: parking_lot::Condvar,
}

#[derive(Default)]
struct Pending {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    writer_waiting: bool,
}

impl Output {
    /// Buffers a line; `false` when the buffer is full and the line was dropped.
    fn push(&self, line: Line) -> bool {
        let mut pending = self.pending.lock();
        let (buf, bytes) = match &line {
            Line::Stdout(b) => (&mut pending.stdout, b),
            Line::Stderr(b) => (&mut pending.stderr, b),
        };
        if buf.len() + bytes.len() > OUTPUT_LIMIT {
            return false;
        }
        buf.extend_from_slice(bytes);
        if pending.writer_waiting {
            pending.writer_waiting = false;
            self.wake.notify_one();
        }
        true
    }

    /// Takes what is buffered and writes it; `false` when nothing was buffered.
    fn write_pending(&self) -> bool {
        let (out, err) = {
            let mut pending = self.pending.lock();
            (
                std::mem::take(&mut pending.stdout),
                std::mem::take(&mut pending.stderr),
            )
        };
        if !out.is_empty() {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&out);
            let _ = stdout.flush();
        }
        if !err.is_empty() {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(&err);
            let _ = stderr.flush();
        }
        !(out.is_empty() && err.is_empty())
    }

    /// The writer thread. While lines keep coming it wakes once per [`BATCH_INTERVAL`] by
    /// itself and writes what gathered, so that no request has to wake it; after an interval
    /// that brought nothing it waits until the next line wakes it (an idle server sleeps).
    fn run(&self) {
        loop {
            {
                let mut pending = self.pending.lock();
                while pending.stdout.is_empty() && pending.stderr.is_empty() {
                    pending.writer_waiting = true;
                    self.wake.wait(&mut pending);
                }
            }
            loop {
                std::thread::sleep(BATCH_INTERVAL);
                if !self.write_pending() {
                    break;
                }
            }
        }
    }
}

/// The two logs.
pub struct Logs {
    audit_tx: broadcast::Sender<Bytes>,
    error_tx: broadcast::Sender<Bytes>,
    output: Arc<Output>,
    audit_level: AtomicI32,
    error_level: AtomicI32,
    counters: Arc<StreamCounters>,
}

/// How many events were delivered to log stream subscribers and how many were lost.
#[derive(Debug, Default)]
pub(crate) struct StreamCounters {
    /// Audit events written to subscribers.
    pub audit_events: AtomicU64,
    /// Error events written to subscribers.
    pub error_events: AtomicU64,
    /// Events a slow subscriber lost.
    pub dropped: AtomicU64,
    /// Lines dropped because stdout or stderr could not keep up.
    pub dropped_output: AtomicU64,
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs").finish_non_exhaustive()
    }
}

impl Logs {
    /// Starts the output writer thread.
    pub(crate) fn new(levels: LogLevels) -> Logs {
        let output = Arc::new(Output::default());
        let writer = output.clone();
        let spawned = std::thread::Builder::new()
            .name("kes-log-writer".into())
            .spawn(move || writer.run());
        if spawned.is_err() {
            // Without a writer thread the buffers fill up and lines are dropped and counted.
        }
        Logs {
            audit_tx: broadcast::channel(SUBSCRIBER_BUFFER).0,
            error_tx: broadcast::channel(SUBSCRIBER_BUFFER).0,
            output,
            audit_level: AtomicI32::new(levels.audit),
            error_level: AtomicI32::new(levels.error),
            counters: Arc::new(StreamCounters::default()),
        }
    }

    /// Applies new levels (on reload).
    pub(crate) fn set_levels(&self, levels: LogLevels) {
        self.audit_level.store(levels.audit, Ordering::Relaxed);
        self.error_level.store(levels.error, Ordering::Relaxed);
    }

    /// Delivery counters.
    pub(crate) fn counters(&self) -> &StreamCounters {
        &self.counters
    }

    /// Writes what is buffered now (at shutdown).
    pub fn flush(&self) {
        self.output.write_pending();
    }

    fn emit(&self, line: Line) {
        if !self.output.push(line) {
            self.counters.dropped_output.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records one audit event (spec §9.1 schema) for a finished request.
    pub(crate) fn audit(
        &self,
        path: &str,
        identity: Option<&str>,
        ip: IpAddr,
        code: u16,
        elapsed: Duration,
    ) {
        if self.audit_level.load(Ordering::Relaxed) > 0 {
            return;
        }
        let event = kes_api::AuditEvent {
            time: time::OffsetDateTime::now_utc(),
            request: kes_api::AuditRequest {
                ip: Some(ip.to_string()),
                path: path.to_owned(),
                identity: identity.map(str::to_owned),
            },
            response: kes_api::AuditResponse {
                code,
                time: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            },
        };
        let line = Bytes::from(kes_api::encode_json(&event));
        if self.audit_tx.receiver_count() > 0 {
            let _ = self.audit_tx.send(line.clone());
        }
        self.emit(Line::Stdout(line));
    }

    /// Whether error-log records of `level` are written (to skip formatting them otherwise).
    pub(crate) fn error_enabled(&self, level: i32) -> bool {
        level >= self.error_level.load(Ordering::Relaxed)
    }

    /// Records one error-log line at `level` (see [`level`]).
    pub(crate) fn error(&self, level: i32, req: Option<ReqInfo<'_>>, message: &str) {
        if level < self.error_level.load(Ordering::Relaxed) {
            return;
        }
        let now = kes_api::format_time(time::OffsetDateTime::now_utc());
        let mut text = error_line(&now, level, req, message);
        if self.error_tx.receiver_count() > 0 {
            let event = kes_api::ErrorEvent {
                message: text.clone(),
            };
            let _ = self
                .error_tx
                .send(Bytes::from(kes_api::encode_json(&event)));
        }
        text.push('\n');
        self.emit(Line::Stderr(Bytes::from(text)));
    }

    /// The streaming reply of `/v1/log/audit`.
    pub(crate) fn audit_stream(&self) -> Response<Body> {
        stream_response(self.audit_tx.subscribe(), self.counters.clone(), true)
    }

    /// The streaming reply of `/v1/log/error`.
    pub(crate) fn error_stream(&self) -> Response<Body> {
        stream_response(self.error_tx.subscribe(), self.counters.clone(), false)
    }
}

fn stream_response(
    rx: broadcast::Receiver<Bytes>,
    counters: Arc<StreamCounters>,
    audit: bool,
) -> Response<Body> {
    let stream = BroadcastStream::new(rx).map(move |item| {
        let data = match item {
            Ok(line) => {
                let counter = if audit {
                    &counters.audit_events
                } else {
                    &counters.error_events
                };
                counter.fetch_add(1, Ordering::Relaxed);
                line
            }
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                // The subscriber fell behind: tell it how many events it lost, in a line of
                // its own that existing decoders read as an event with an unknown field.
                counters.dropped.fetch_add(n, Ordering::Relaxed);
                let now = kes_api::format_time(time::OffsetDateTime::now_utc());
                Bytes::from(format!("{{\"time\":\"{now}\",\"dropped\":{n}}}\n"))
            }
        };
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(data))
    });
    let mut res = Response::new(StreamBody::new(stream).boxed());
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_escape_every_field() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let path = "/v1/key/create/a\r\ntime=x level=ERROR msg=\"forged\"\u{1b}[2J b";
        let line = error_line(
            "2026-12-03T00:00:00Z",
            level::ERROR,
            Some((path, Some("id\nx"), Some(ip))),
            "bad \"thing\"\n",
        );
        assert!(!line.contains(['\n', '\r', '\u{1b}']), "{line}");
        assert_eq!(
            line,
            "time=2026-12-03T00:00:00Z level=ERROR msg=\"bad \\\"thing\\\"\\n\" \
             req.path=\"/v1/key/create/a\\r\\ntime=x level=ERROR msg=\\\"forged\\\"\\u{1b}[2J b\" \
             req.ip=10.1.2.3 req.identity=\"id\\nx\""
        );
    }

    #[test]
    fn plain_values_stay_bare() {
        let line = error_line(
            "t",
            level::DEBUG,
            Some(("/v1/key/create/my-key", None, None)),
            "http: 403 not authorized",
        );
        assert_eq!(
            line,
            "time=t level=DEBUG msg=\"http: 403 not authorized\" req.path=/v1/key/create/my-key req.identity=<unknown>"
        );
        assert!(
            error_line("t", level::WARN, Some(("", None, None)), "")
                .ends_with("req.path=\"\" req.identity=<unknown>")
        );
        assert!(error_line("t", level::INFO, None, "m").starts_with("time=t level=INFO "));
    }
}
