//! Tests of the HTTP/1.1 connection layer: each rule of the module documentation on the exact
//! bytes of the wire, the helpers on their edge cases, and randomized whole connections.
//!
//! Every async test runs on paused time: timers fire as soon as nothing else can run, so the
//! timeout tests take no real time, and a reply that never comes turns into a failed
//! assertion (the server's own timeouts close the connection) rather than a hung test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt as _;
use http_body_util::StreamBody;
use kes_testutil::{ByteMutator, ByteOp, Rng};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;

use super::*;
fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into()).boxed()
}

// ---------------------------------------------------------------------------------------------
// The test service
// ---------------------------------------------------------------------------------------------

/// The body limit of the test service unless the request names one in `x-limit`.
const DEFAULT_LIMIT: u64 = 1 << 20;

/// What the test service saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    uri: String,
    version: Version,
    /// Every header field, as (lower-case name, value), sorted.
    headers: Vec<(String, Vec<u8>)>,
    /// None when the service did not read the body, Err when reading it failed.
    body: Option<Result<Vec<u8>, ()>>,
}

/// A service steered by request headers:
/// - `x-read: no`: does not read the body; `x-limit: n`: reads it with limit `n`;
/// - `x-wait`: waits for [`Svc::gate`] before replying (when the test has a gate);
/// - `x-status: n`: replies with status `n` (else 200, or 413 when reading the body failed);
/// - `x-stream`: replies with a body of unknown length, the frames the test sends;
/// - `x-reply: text` / `x-reply-size: n`: replies with `text` / `n` bytes (else the body read).
///
/// Every reply has `Content-Type: text/plain` and `X-Seen: <method> <target>`.
struct Svc {
    seen: Mutex<Vec<Seen>>,
    events: mpsc::UnboundedSender<Seen>,
    stream: Mutex<Option<mpsc::Receiver<Bytes>>>,
    gate: Option<Notify>,
}

impl Service for Svc {
    fn call<'a, B: RequestBody + 'a>(&'a self, req: Request<B>) -> ReplyFuture<'a> {
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let get = |name: &str| -> Option<String> {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let read = if get("x-read").as_deref() == Some("no") {
                drop(body);
                None
            } else {
                let limit = get("x-limit")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(DEFAULT_LIMIT);
                Some(body.read_to_end(limit).await.map(|b| b.to_vec()))
            };
            let mut headers: Vec<(String, Vec<u8>)> = parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                .collect();
            headers.sort();
            let seen = Seen {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                version: parts.version,
                headers,
                body: read.clone(),
            };
            self.seen.lock().unwrap().push(seen.clone());
            let _ = self.events.send(seen);
            if get("x-wait").is_some()
                && let Some(gate) = &self.gate
            {
                gate.notified().await;
            }

            let failed = matches!(read, Some(Err(())));
            let status = get("x-status")
                .and_then(|s| s.parse::<u16>().ok())
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(if failed {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::OK
                });
            let stream = if get("x-stream").is_some() {
                self.stream.lock().unwrap().take()
            } else {
                None
            };
            let body = if let Some(rx) = stream {
                StreamBody::new(
                    ReceiverStream::new(rx).map(|b| Ok::<_, Infallible>(Frame::data(b))),
                )
                .boxed()
            } else if let Some(text) = get("x-reply") {
                full(text)
            } else if let Some(n) = get("x-reply-size").and_then(|n| n.parse::<usize>().ok()) {
                full(vec![b'r'; n.min(1 << 20)])
            } else {
                full(read.and_then(Result::ok).unwrap_or_default())
            };
            let mut res = Response::new(body);
            *res.status_mut() = status;
            let headers = res.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            let seen = format!("{} {}", parts.method, parts.uri);
            if let Ok(v) = HeaderValue::from_str(&seen) {
                headers.insert("x-seen", v);
            }
            res
        })
    }
}

/// A new service; the receiver gets what it saw of each request as soon as it has read (or
/// not read) the body, the sender feeds the reply of the (one) `x-stream` request.
fn service(gate: bool) -> (Svc, mpsc::UnboundedReceiver<Seen>, mpsc::Sender<Bytes>) {
    let (events, events_rx) = mpsc::unbounded_channel();
    let (stream_tx, stream_rx) = mpsc::channel(16);
    let svc = Svc {
        seen: Mutex::new(Vec::new()),
        events,
        stream: Mutex::new(Some(stream_rx)),
        gate: gate.then(Notify::new),
    };
    (svc, events_rx, stream_tx)
}

// ---------------------------------------------------------------------------------------------
// The client side
// ---------------------------------------------------------------------------------------------

const LIMITS: Limits = Limits {
    idle: Duration::from_secs(30),
    header: Duration::from_secs(5),
    max_head: 16 * 1024,
    write: Duration::from_secs(10),
};

/// Longer than any timeout of the server: a reply that does not come within it never comes.
const PATIENCE: Duration = Duration::from_secs(24 * 3600);

/// The most bytes a test reads from one connection (so that no read loop is unbounded).
const MAX_OUTPUT: usize = 64 << 20;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One reply as read from the wire.
#[derive(Debug)]
struct Reply {
    /// Its exact bytes.
    raw: Vec<u8>,
    version: String,
    status: u16,
    /// The header fields as written (names not normalised).
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// The value of the header named exactly `name` (capitalisation included).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// How many header fields are named `name`, in any capitalisation.
    fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// The raw reply as text with the value of its `Date` header, checked to be an HTTP date,
    /// replaced by `<date>`.
    fn text(&self) -> String {
        let text = lossy(&self.raw);
        let Some(at) = text.find("\r\nDate: ") else {
            return text;
        };
        let start = at + "\r\nDate: ".len();
        let end = start + text[start..].find("\r\n").unwrap();
        let date = &text[start..end];
        assert!(
            httpdate::parse_http_date(date).is_ok() && date.ends_with(" GMT") && date.len() == 29,
            "not an IMF-fixdate: {date:?}"
        );
        format!("{}<date>{}", &text[..start], &text[end..])
    }
}

/// The read side of a client connection, with its buffer of bytes not yet taken.
struct Wire<R> {
    io: R,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Wire<R> {
    fn new(io: R) -> Self {
        Wire {
            io,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes; false at EOF.
    async fn fill(&mut self) -> bool {
        assert!(self.buf.len() < MAX_OUTPUT, "endless output");
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(PATIENCE, self.io.read(&mut chunk))
            .await
            .expect("the server neither writes nor closes")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Waits until the buffer holds `n` bytes.
    async fn want(&mut self, n: usize) {
        while self.buf.len() < n {
            assert!(
                self.fill().await,
                "EOF where {n} bytes were due; got {:?}",
                lossy(&self.buf)
            );
        }
    }

    /// Waits for `needle` at or after `from`; its position.
    async fn find(&mut self, from: usize, needle: &[u8]) -> usize {
        loop {
            if let Some(i) = self.buf.get(from..).and_then(|b| find(b, needle)) {
                return from + i;
            }
            assert!(
                self.fill().await,
                "EOF before {:?}; got {:?}",
                lossy(needle),
                lossy(&self.buf)
            );
        }
    }

    /// Reads one reply to a request that is not HEAD.
    async fn reply(&mut self) -> Reply {
        self.reply_to(false).await
    }

    /// Reads one reply; `head` when it answers a HEAD request (so it has no body).
    async fn reply_to(&mut self, head: bool) -> Reply {
        let head_end = self.find(0, b"\r\n\r\n").await + 4;
        let text = std::str::from_utf8(&self.buf[..head_end])
            .expect("a reply head is text")
            .to_owned();
        let mut lines = text.split("\r\n");
        let mut status_line = lines.next().unwrap().splitn(3, ' ');
        let version = status_line.next().unwrap().to_owned();
        let status: u16 = status_line.next().unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(": ").expect("name: value");
                (n.to_owned(), v.to_owned())
            })
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let mut pos = head_end;
        let body = if head || status < 200 || status == 204 || status == 304 {
            Vec::new()
        } else if let Some(te) = get("transfer-encoding") {
            assert_eq!(te, "chunked");
            let mut body = Vec::new();
            loop {
                let line_end = self.find(pos, b"\r\n").await;
                let size = std::str::from_utf8(&self.buf[pos..line_end]).unwrap();
                let size = usize::from_str_radix(size, 16).expect("a hex chunk size");
                pos = line_end + 2;
                self.want(pos + size + 2).await;
                body.extend_from_slice(&self.buf[pos..pos + size]);
                assert_eq!(&self.buf[pos + size..pos + size + 2], b"\r\n");
                pos += size + 2;
                if size == 0 {
                    break;
                }
            }
            body
        } else if let Some(len) = get("content-length") {
            let len: usize = len.parse().unwrap();
            self.want(pos + len).await;
            pos += len;
            self.buf[pos - len..pos].to_vec()
        } else {
            while self.fill().await {}
            pos = self.buf.len();
            self.buf[head_end..].to_vec()
        };
        let raw = self.buf.drain(..pos).collect();
        Reply {
            raw,
            version,
            status,
            headers,
            body,
        }
    }

    /// Everything up to EOF.
    async fn rest(&mut self) -> Vec<u8> {
        while self.fill().await {}
        std::mem::take(&mut self.buf)
    }

    /// Asserts that the server closes without writing anything more.
    async fn eof(&mut self) {
        let rest = self.rest().await;
        assert!(
            rest.is_empty(),
            "bytes after the last reply: {:?}",
            lossy(&rest)
        );
    }

    /// Asserts that nothing arrives (neither bytes nor EOF) for `d`.
    async fn quiet_for(&mut self, d: Duration) {
        assert!(self.buf.is_empty(), "unread bytes: {:?}", lossy(&self.buf));
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(d, self.io.read(&mut byte)).await;
        assert!(read.is_err(), "the server wrote or closed: {read:?}");
    }
}

/// A connection to a server running `serve` with the test service.
struct Client {
    wire: Wire<DuplexStream>,
    svc: Arc<Svc>,
    events: mpsc::UnboundedReceiver<Seen>,
    stream: Option<mpsc::Sender<Bytes>>,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
}

fn connect(limits: Limits) -> Client {
    connect_with(limits, 4 << 20)
}

/// A connection whose pipe holds at most `pipe` bytes in each direction.
fn connect_with(limits: Limits, pipe: usize) -> Client {
    let (client, server) = tokio::io::duplex(pipe);
    let (svc, events, stream) = service(true);
    let svc = Arc::new(svc);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn({
        let svc = svc.clone();
        let shutdown = shutdown.clone();
        async move { serve(server, limits, &shutdown, &*svc).await }
    });
    Client {
        wire: Wire::new(client),
        svc,
        events,
        stream: Some(stream),
        shutdown,
        server,
    }
}

impl Client {
    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.wire
            .io
            .write_all(bytes.as_ref())
            .await
            .expect("the server is there");
    }

    async fn reply(&mut self) -> Reply {
        self.wire.reply().await
    }

    fn seen(&self) -> Vec<Seen> {
        self.svc.seen.lock().unwrap().clone()
    }

    /// What the service saw of the next request (waits for it).
    async fn event(&mut self) -> Seen {
        tokio::time::timeout(PATIENCE, self.events.recv())
            .await
            .expect("the request reaches the service")
            .expect("the service is there")
    }

    /// Asserts that the server task ends, without a panic.
    async fn ended(self) {
        tokio::time::timeout(PATIENCE, self.server)
            .await
            .expect("the server task ends")
            .expect("the server task does not panic");
    }
}

/// The reply `serve` sends for a request it cannot parse.
fn refusal(status: u16, reason: &str) -> String {
    let body = format!("{status} {reason}");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A request to pipeline after one that must end the connection: it must never be served.
const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: kes\r\n\r\n";

/// Sends `request` followed by [`NEXT`] on a new connection; everything the server writes
/// until it closes. Asserts that the service saw nothing and the server ended.
async fn refused(request: &[u8]) -> String {
    let mut c = connect(LIMITS);
    c.send([request, NEXT].concat()).await;
    let out = c.wire.rest().await;
    assert!(c.seen().is_empty(), "served: {:?}", lossy(request));
    c.ended().await;
    lossy(&out)
}

/// Sends `request` followed by [`NEXT`]: the service must see the request with a body read
/// that failed, reply 413, and the connection must close without serving [`NEXT`].
async fn read_fails(request: &[u8]) {
    let mut c = connect(LIMITS);
    c.send([request, NEXT].concat()).await;
    let reply = c.reply().await;
    assert_eq!(reply.status, 413, "{:?}", lossy(request));
    assert_eq!(reply.header("Connection"), Some("close"));
    c.wire.eof().await;
    let seen = c.seen();
    assert_eq!(seen.len(), 1, "{:?}", lossy(request));
    assert_eq!(seen[0].body, Some(Err(())), "{:?}", lossy(request));
    c.ended().await;
}

/// Sends `request` followed by [`NEXT`]: the body read must give `body`, and [`NEXT`] must be
/// served on the same connection.
async fn read_gives(request: &[u8], body: &[u8]) {
    let mut c = connect(LIMITS);
    c.send([request, NEXT].concat()).await;
    let reply = c.reply().await;
    assert_eq!(reply.status, 200, "{:?}", lossy(request));
    assert_eq!(reply.body, body, "{:?}", lossy(request));
    assert_eq!(c.reply().await.header("X-Seen"), Some("GET /next"));
    assert_eq!(c.seen()[0].body, Some(Ok(body.to_vec())));
    c.wire.quiet_for(ms(1)).await;
}

// ---------------------------------------------------------------------------------------------
// Requests and replies
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_get_is_answered_with_a_status_line_go_s_header_names_a_date_and_a_length() {
    let mut c = connect(LIMITS);
    c.send("GET /v1/status?x=1 HTTP/1.1\r\nHost: kes\r\nx-reply: hello\r\n\r\n")
        .await;
    let reply = c.reply().await;
    assert_eq!(
        reply.text(),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Seen: GET /v1/status?x=1\r\nDate: <date>\r\nContent-Length: 5\r\n\r\nhello"
    );
    let seen = c.event().await;
    assert_eq!(
        seen,
        Seen {
            method: "GET".into(),
            uri: "/v1/status?x=1".into(),
            version: Version::HTTP_11,
            headers: vec![
                ("host".into(), b"kes".to_vec()),
                ("x-reply".into(), b"hello".to_vec())
            ],
            body: Some(Ok(Vec::new())),
        }
    );
    // Keep-alive: the connection stays open, waiting for the next request.
    c.wire.quiet_for(ms(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_post_body_of_content_length_reaches_the_handler_byte_for_byte() {
    let mut c = connect(LIMITS);
    c.send("POST /v1/key/create/k HTTP/1.1\r\nHost: kes\r\nContent-Length: 11\r\n\r\nhello world")
        .await;
    assert_eq!(
        c.reply().await.text(),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Seen: POST /v1/key/create/k\r\nDate: <date>\r\nContent-Length: 11\r\n\r\nhello world"
    );
    // Every byte value, CRLFs and what looks like a request included.
    let mut body: Vec<u8> = (0..=255u8).collect();
    body.extend_from_slice(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n0\r\n\r\n");
    c.send(format!(
        "PUT /b HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ))
    .await;
    c.send(&body).await;
    let reply = c.reply().await;
    assert_eq!(reply.body, body);
    assert_eq!(
        reply.header("Content-Length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(c.seen()[1].body, Some(Ok(body)));
}

#[tokio::test(start_paused = true)]
async fn a_keep_alive_connection_serves_request_after_request() {
    let mut c = connect(LIMITS);
    for i in 0..5 {
        c.send(format!(
            "POST /r/{i} HTTP/1.1\r\nHost: kes\r\nContent-Length: 1\r\n\r\n{i}"
        ))
        .await;
        let reply = c.reply().await;
        assert_eq!(reply.version, "HTTP/1.1");
        assert_eq!(
            reply.header("X-Seen"),
            Some(format!("POST /r/{i}").as_str())
        );
        assert_eq!(reply.body, i.to_string().as_bytes());
        assert_eq!(reply.count("connection"), 0);
    }
    assert_eq!(c.seen().len(), 5);
    c.wire.quiet_for(ms(1)).await;
    assert!(!c.server.is_finished());
}

#[tokio::test(start_paused = true)]
async fn connection_close_is_answered_in_kind_and_ends_the_connection() {
    for connection in [
        "Connection: close\r\n",
        "Connection: CLOSE\r\n",
        "Connection: keep-alive, close\r\n",
        "Connection: foo\r\nConnection: Close \r\n",
    ] {
        let mut c = connect(LIMITS);
        c.send(format!(
            "GET /c HTTP/1.1\r\n{connection}x-reply: bye\r\n\r\n"
        ))
        .await;
        c.send(NEXT).await;
        let reply = c.reply().await;
        assert_eq!(reply.body, b"bye");
        assert_eq!(reply.header("Connection"), Some("close"), "{connection:?}");
        assert_eq!(reply.count("connection"), 1);
        c.wire.eof().await;
        assert_eq!(c.seen().len(), 1);
        c.ended().await;
    }
}

#[tokio::test(start_paused = true)]
async fn an_http_1_0_request_is_answered_in_http_1_0_and_the_connection_closes() {
    let mut c = connect(LIMITS);
    c.send("GET /old HTTP/1.0\r\nx-reply: old\r\n\r\n").await;
    c.send(NEXT).await;
    let reply = c.reply().await;
    assert!(
        reply.raw.starts_with(b"HTTP/1.0 200 OK\r\n"),
        "{}",
        reply.text()
    );
    assert_eq!(reply.header("Content-Length"), Some("3"));
    assert_ne!(reply.header("Connection"), Some("keep-alive"));
    assert_eq!(reply.body, b"old");
    c.wire.eof().await;
    assert_eq!(c.seen().len(), 1);
    assert_eq!(c.seen()[0].version, Version::HTTP_10);
    c.ended().await;
}

#[tokio::test(start_paused = true)]
async fn an_http_1_0_request_with_keep_alive_keeps_the_connection_and_says_so() {
    let mut c = connect(LIMITS);
    for i in 0..3 {
        c.send(format!(
            "POST /old/{i} HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi"
        ))
        .await;
        let reply = c.reply().await;
        assert_eq!(
            reply.text(),
            format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nX-Seen: POST /old/{i}\r\nDate: <date>\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"
            )
        );
    }
    // Without keep-alive, the next one ends it.
    c.send("GET /last HTTP/1.0\r\n\r\n").await;
    assert_eq!(c.reply().await.version, "HTTP/1.0");
    c.wire.eof().await;
    assert_eq!(c.seen().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn pipelined_requests_are_answered_in_order() {
    let requests: [&[u8]; 5] = [
        &b"GET /a HTTP/1.1\r\nx-reply: first\r\n\r\n"[..],
        b"POST /b HTTP/1.1\r\nContent-Length: 6\r\n\r\nsecond",
        b"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nthi\r\n2\r\nrd\r\n0\r\n\r\n",
        b"HEAD /d HTTP/1.1\r\nx-reply: fourth\r\n\r\n",
        b"DELETE /e HTTP/1.1\r\nx-reply: fifth\r\n\r\n",
    ];
    let all = requests.concat();
    // At once, in pieces of 7 bytes, byte by byte.
    for piece in [all.len(), 7, 1] {
        let mut c = connect(LIMITS);
        for part in all.chunks(piece) {
            c.send(part).await;
            tokio::task::yield_now().await;
        }
        let mut got = Vec::new();
        for (i, path) in ["GET /a", "POST /b", "PUT /c", "HEAD /d", "DELETE /e"]
            .into_iter()
            .enumerate()
        {
            let reply = c.wire.reply_to(i == 3).await;
            assert_eq!(reply.header("X-Seen"), Some(path), "piece {piece}");
            got.push(reply.body);
        }
        let want: [&[u8]; 5] = [b"first", b"second", b"third", b"", b"fifth"];
        assert_eq!(got, want, "piece {piece}");
        c.wire.quiet_for(ms(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_head_reply_has_the_headers_and_no_body() {
    let mut c = connect(LIMITS);
    c.send("HEAD /h HTTP/1.1\r\nx-reply: hello\r\n\r\nGET /g HTTP/1.1\r\nx-reply: world\r\n\r\n")
        .await;
    let head = c.wire.reply_to(true).await;
    assert_eq!(
        head.text(),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Seen: HEAD /h\r\nDate: <date>\r\nContent-Length: 5\r\n\r\n"
    );
    // The GET reply follows at once: no body bytes were written for the HEAD.
    let get = c.reply().await;
    assert!(get.raw.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(get.body, b"world");
    // A HEAD whose reply body is empty has no Content-Length (Go's rule), a streamed one no
    // chunking.
    c.send("HEAD /empty HTTP/1.1\r\nx-reply: \r\n\r\n").await;
    let head = c.wire.reply_to(true).await;
    assert_eq!(head.count("content-length"), 0, "{}", head.text());
    c.send("HEAD /s HTTP/1.1\r\nx-stream: 1\r\n\r\n").await;
    let head = c.wire.reply_to(true).await;
    assert_eq!(head.count("transfer-encoding"), 0, "{}", head.text());
    assert_eq!(head.count("connection"), 0, "{}", head.text());
    c.wire.quiet_for(ms(1)).await;
}

#[tokio::test(start_paused = true)]
async fn replies_without_a_body_write_none() {
    let mut c = connect(LIMITS);
    for status in [204, 304] {
        c.send(format!(
            "GET /s HTTP/1.1\r\nx-status: {status}\r\nx-reply: dropped\r\n\r\n"
        ))
        .await;
        let reply = c.reply().await;
        assert_eq!(reply.status, status);
        assert!(reply.raw.ends_with(b"\r\n\r\n"), "{}", reply.text());
        assert_eq!(reply.count("content-length"), 0, "{}", reply.text());
    }
    c.send("GET /after HTTP/1.1\r\nx-reply: ok\r\n\r\n").await;
    assert_eq!(c.reply().await.body, b"ok");
}

/// A service that sets connection-level headers itself, and its own `Content-Length` and
/// `Date`.
struct Meddler;

impl Service for Meddler {
    fn call<'a, B: RequestBody + 'a>(&'a self, _req: Request<B>) -> ReplyFuture<'a> {
        Box::pin(async {
            let mut res = Response::new(full("abc"));
            let h = res.headers_mut();
            h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
            h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
            h.insert(
                header::DATE,
                HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
            );
            h.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            h.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("a"));
            h.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("b"));
            res
        })
    }
}

#[tokio::test(start_paused = true)]
async fn the_handler_s_connection_headers_are_replaced_and_its_length_and_date_kept() {
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(async move { serve(server, LIMITS, &shutdown, &Meddler).await });
    client
        .write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut wire = Wire::new(client);
    assert_eq!(
        lossy(&wire.rest().await),
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nX-Content-Type-Options: nosniff\r\nWww-Authenticate: a\r\nWww-Authenticate: b\r\nConnection: close\r\n\r\nabc"
    );
    task.await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Chunked request bodies and body limits
// ---------------------------------------------------------------------------------------------

const CHUNKED: &str = "POST /chunked HTTP/1.1\r\nHost: kes\r\nTransfer-Encoding: chunked\r\n\r\n";

#[tokio::test(start_paused = true)]
async fn a_chunked_body_is_decoded_exactly() {
    // Extensions (quoted ones too), upper- and lower-case hex, leading zeros, trailers.
    let body = "5;name=value\r\nhello\r\n1;a;b=\"c; d\"\r\n \r\n00A\r\n0123456789\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0;last\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n";
    read_gives(
        format!("{CHUNKED}{body}").as_bytes(),
        b"hello 0123456789abcdefghijklmnopqrstuvwxyz",
    )
    .await;
    // No trailers, no extensions.
    read_gives(format!("{CHUNKED}3\r\nabc\r\n0\r\n\r\n").as_bytes(), b"abc").await;
    // An empty body.
    read_gives(format!("{CHUNKED}0\r\n\r\n").as_bytes(), b"").await;
    // Data that looks like framing is data.
    read_gives(
        format!("{CHUNKED}e\r\n\r\n0\r\n\r\nGET / H\r\n0\r\n\r\n").as_bytes(),
        b"\r\n0\r\n\r\nGET / H",
    )
    .await;
    // Upper-case coding name.
    read_gives(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        b"x",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_chunked_body_arriving_byte_by_byte_is_decoded_exactly() {
    let mut c = connect(LIMITS);
    let request = format!("{CHUNKED}5;x=y\r\nhello\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n");
    let all = [request.as_bytes(), NEXT].concat();
    for byte in all.chunks(1) {
        c.send(byte).await;
        tokio::task::yield_now().await;
    }
    assert_eq!(c.reply().await.body, b"helloabc");
    assert_eq!(c.reply().await.header("X-Seen"), Some("GET /next"));
}

#[tokio::test(start_paused = true)]
async fn malformed_chunked_bodies_fail_the_read_and_end_the_connection() {
    for body in [
        "zz\r\nhello\r\n0\r\n\r\n",   // not hex
        "-5\r\nhello\r\n0\r\n\r\n",   // a sign
        "+5\r\nhello\r\n0\r\n\r\n",   // a sign
        "0x5\r\nhello\r\n0\r\n\r\n",  // a prefix
        "\r\nhello\r\n0\r\n\r\n",     // no size
        ";ext\r\nhello\r\n0\r\n\r\n", // only an extension
        "5 5\r\nhello\r\n0\r\n\r\n",  // two numbers
        "10000000000000000\r\n",      // 17 digits: more than any body
        "1000000000000000\r\n",       // 16 digits
        "5\r\nhelloXX\r\n0\r\n\r\n",  // data longer than its size
        "5\r\nhello0\r\n\r\n",        // no CRLF after the data
        "5\r\nhell\r\n0\r\n\r\n",     // data shorter than its size: \r is data, then \n0
        "5\r\nhello\n0\r\n\r\n",      // a bare LF after the data
        "5\r\nhello\r0\r\n\r\n",      // a bare CR after the data
        "5\r\nhello",                 // the connection ends (see below) in the body
        "5\r\nhel",                   // in the data
        "5",                          // in a size line
        "0\r\nX-Trailer: x\r\n",      // in the trailers
    ] {
        let request = format!("{CHUNKED}{body}");
        if body.ends_with("\r\n\r\n") {
            read_fails(request.as_bytes()).await;
        } else {
            // A body cut off by the client's EOF.
            let mut c = connect(LIMITS);
            c.send(&request).await;
            c.wire.io.shutdown().await.unwrap();
            let reply = c.reply().await;
            assert_eq!(reply.status, 413, "{body:?}");
            assert_eq!(reply.header("Connection"), Some("close"));
            c.wire.eof().await;
            assert_eq!(c.seen()[0].body, Some(Err(())), "{body:?}");
            c.ended().await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_oversized_chunk_size_line_fails_the_read() {
    // The longest line taken is MAX_CHUNK_LINE bytes without its CRLF.
    let line = |len: usize| format!("5;{}", "e".repeat(len - 2));
    read_gives(
        format!("{CHUNKED}{}\r\nhello\r\n0\r\n\r\n", line(MAX_CHUNK_LINE)).as_bytes(),
        b"hello",
    )
    .await;
    // One more byte, whether the line arrives whole or not.
    read_fails(
        format!(
            "{CHUNKED}{}\r\nhello\r\n0\r\n\r\n",
            line(MAX_CHUNK_LINE + 1)
        )
        .as_bytes(),
    )
    .await;
    read_fails(
        format!(
            "{CHUNKED}{}\r\nhello\r\n0\r\n\r\n",
            line(3 * MAX_CHUNK_LINE)
        )
        .as_bytes(),
    )
    .await;
    // A line that never ends fails as soon as it is too long, without waiting for more.
    let mut c = connect(LIMITS);
    c.send(format!("{CHUNKED}{}", line(MAX_CHUNK_LINE + 2)))
        .await;
    let seen = c.event().await;
    assert_eq!(seen.body, Some(Err(())));
    assert_eq!(c.reply().await.status, 413);
    c.wire.eof().await;
}

#[tokio::test(start_paused = true)]
async fn chunk_extensions_may_not_outweigh_the_data() {
    // 1-byte chunks with 1,000-byte extensions: within the line limit each, but the extension
    // bytes of a body may exceed its data bytes by MAX_CHUNK_OVERHEAD only (Go's CVE-2023-39326
    // limit).
    let chunk = format!("1;{}\r\nx\r\n", "e".repeat(998));
    let fits = MAX_CHUNK_OVERHEAD / 1000 - 1;
    read_gives(
        format!("{CHUNKED}{}0\r\n\r\n", chunk.repeat(fits)).as_bytes(),
        "x".repeat(fits).as_bytes(),
    )
    .await;
    read_fails(format!("{CHUNKED}{}0\r\n\r\n", chunk.repeat(40)).as_bytes()).await;
    // Large data chunks earn room for their extensions.
    let big = format!("400;{}\r\n{}\r\n", "e".repeat(1000), "y".repeat(1024));
    read_gives(
        format!("{CHUNKED}{}0\r\n\r\n", big.repeat(40)).as_bytes(),
        "y".repeat(40 * 1024).as_bytes(),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn oversized_trailers_fail_the_read() {
    let line = format!("X-T: {}\r\n", "t".repeat(995)); // 1000 bytes without its CRLF
    let fits = line.repeat(MAX_TRAILERS / 1000);
    read_gives(
        format!("{CHUNKED}1\r\nx\r\n0\r\n{fits}\r\n").as_bytes(),
        b"x",
    )
    .await;
    let over = line.repeat(MAX_TRAILERS / 1000 + 1);
    read_fails(format!("{CHUNKED}1\r\nx\r\n0\r\n{over}\r\n").as_bytes()).await;
    let long = format!("X-T: {}\r\n", "t".repeat(MAX_TRAILERS));
    read_fails(format!("{CHUNKED}1\r\nx\r\n0\r\n{long}\r\n").as_bytes()).await;
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_handler_s_limit_fails_the_read() {
    // Chunked: the read fails at the chunk that goes over.
    read_gives(
        format!("{CHUNKED}5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n")
            .replace("Host: kes", "x-limit: 10")
            .as_bytes(),
        b"0123456789",
    )
    .await;
    read_fails(
        format!("{CHUNKED}5\r\n01234\r\n5\r\n56789\r\n1\r\nX\r\n0\r\n\r\n")
            .replace("Host: kes", "x-limit: 10")
            .as_bytes(),
    )
    .await;
    read_fails(
        format!("{CHUNKED}b\r\n0123456789X\r\n0\r\n\r\n")
            .replace("Host: kes", "x-limit: 10")
            .as_bytes(),
    )
    .await;
    // Content-Length at the limit is read.
    read_gives(
        b"POST / HTTP/1.1\r\nx-limit: 10\r\nContent-Length: 10\r\n\r\n0123456789",
        b"0123456789",
    )
    .await;

    // Content-Length over the limit is refused before a byte of the body is there; the body
    // is small, so it is then drained and the connection goes on.
    let mut c = connect(LIMITS);
    let start = Instant::now();
    c.send("POST /big HTTP/1.1\r\nx-limit: 10\r\nContent-Length: 11\r\n\r\n")
        .await;
    assert_eq!(c.event().await.body, Some(Err(())));
    assert_eq!(start.elapsed(), Duration::ZERO);
    c.send(b"0123456789X").await;
    c.send(NEXT).await;
    let reply = c.reply().await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.count("connection"), 0);
    assert_eq!(c.reply().await.header("X-Seen"), Some("GET /next"));
}

#[tokio::test(start_paused = true)]
async fn a_content_length_body_cut_off_by_eof_fails_the_read() {
    let mut c = connect(LIMITS);
    c.send("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        .await;
    c.wire.io.shutdown().await.unwrap();
    let reply = c.reply().await;
    assert_eq!(reply.status, 413);
    c.wire.eof().await;
    assert_eq!(c.seen()[0].body, Some(Err(())));
    c.ended().await;
}

// ---------------------------------------------------------------------------------------------
// Refused requests
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn requests_that_could_be_read_two_ways_are_refused() {
    let bad = refusal(400, "Bad Request");
    let not_implemented = refusal(501, "Not Implemented");
    let cases: &[(&[u8], &String)] = &[
        // Both framings.
        (
            &b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
            &bad,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n",
            &bad,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
            &bad,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding:\r\nContent-Length: 3\r\n\r\nabc",
            &bad,
        ),
        // Lengths that disagree or are not plain decimal numbers.
        (
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            &bad,
        ),
        (b"POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\nhello!", &bad),
        (b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", &bad),
        (b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\nhello", &bad),
        (b"POST / HTTP/1.1\r\nContent-Length: 5a\r\n\r\nhello", &bad),
        (b"POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\nhello", &bad),
        (b"POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\nhello", &bad),
        (b"POST / HTTP/1.1\r\nContent-Length: 5.0\r\n\r\nhello", &bad),
        (b"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", &bad),
        (b"POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\nhello", &bad),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            &bad,
        ),
        // Chunked in HTTP/1.0, which has no chunked coding.
        (
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            &bad,
        ),
        // Transfer codings other than a single `chunked`.
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc",
            &not_implemented,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            &not_implemented,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
            &not_implemented,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            &not_implemented,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            &not_implemented,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            &not_implemented,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n",
            &not_implemented,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n",
            &not_implemented,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n",
            &not_implemented,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            &not_implemented,
        ),
    ];
    for (request, want) in cases {
        assert_eq!(&refused(request).await, *want, "{:?}", lossy(request));
    }
}

#[tokio::test(start_paused = true)]
async fn bad_request_lines_and_header_bytes_get_400() {
    let bad = refusal(400, "Bad Request");
    let requests: &[&[u8]] = &[
        &b"GET\r\n\r\n"[..],
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET /a b HTTP/1.1\r\n\r\n",
        b"GET / http/1.1\r\n\r\n",
        b"GET / HTTP/1\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
        b"GET /\x7f HTTP/1.1\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\n\r\n",
        b" GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n",
        b"GET / HTTP/1.1\r\nX Y: z\r\n\r\n",
        b"GET / HTTP/1.1\r\nX : z\r\n\r\n",
        b"GET / HTTP/1.1\r\n: z\r\n\r\n",
        b"GET / HTTP/1.1\r\nX(: z\r\n\r\n",
        b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\r\n continued\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ];
    for request in requests {
        assert_eq!(refused(request).await, bad, "{:?}", lossy(request));
    }
    // A well-formed version this server does not speak.
    let requests: &[&[u8]] = &[b"GET / HTTP/2.0\r\n\r\n", b"GET / HTTP/0.9\r\n\r\n"];
    for request in requests {
        assert_eq!(
            refused(request).await,
            refusal(505, "HTTP Version Not Supported"),
            "{:?}",
            lossy(request)
        );
    }
}

fn with_headers(count: usize) -> Vec<u8> {
    let mut request = b"GET /many HTTP/1.1\r\n".to_vec();
    for i in 0..count {
        request.extend_from_slice(format!("X-H{i}: {i}\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request
}

#[tokio::test(start_paused = true)]
async fn more_than_128_header_fields_get_431() {
    let mut c = connect(LIMITS);
    c.send(with_headers(MAX_HEADERS)).await;
    assert_eq!(c.reply().await.status, 200);
    assert_eq!(c.seen()[0].headers.len(), MAX_HEADERS);
    assert_eq!(
        refused(&with_headers(MAX_HEADERS + 1)).await,
        refusal(431, "Request Header Fields Too Large")
    );
}

#[tokio::test(start_paused = true)]
async fn a_head_larger_than_max_head_gets_431() {
    let request = |value: usize| {
        format!(
            "GET /big HTTP/1.1\r\nX-Big: {}\r\nx-reply: ok\r\n\r\n",
            "v".repeat(value)
        )
    };
    let mut c = connect(LIMITS);
    c.send(request(LIMITS.max_head - 100)).await;
    assert_eq!(c.reply().await.body, b"ok");
    let too_large = refusal(431, "Request Header Fields Too Large");
    assert_eq!(
        refused(request(LIMITS.max_head + 5000).as_bytes()).await,
        too_large
    );
    // A head that goes on and on is refused once it is too long, not at the header timeout.
    let mut c = connect(LIMITS);
    let start = Instant::now();
    c.send(format!(
        "GET / HTTP/1.1\r\nX: {}",
        "v".repeat(LIMITS.max_head)
    ))
    .await;
    assert_eq!(lossy(&c.wire.rest().await), too_large);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(c.seen().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Expect: 100-continue and bodies the handler does not read
// ---------------------------------------------------------------------------------------------

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[tokio::test(start_paused = true)]
async fn continue_is_sent_when_the_handler_reads_the_body() {
    let mut c = connect(LIMITS);
    for expect in ["100-continue", "100-Continue"] {
        c.send(format!(
            "POST /e HTTP/1.1\r\nExpect: {expect}\r\nContent-Length: 5\r\n\r\n"
        ))
        .await;
        let interim = c.reply().await;
        assert_eq!(interim.raw, CONTINUE);
        // Nothing more until the body is there.
        c.wire.quiet_for(Duration::from_secs(1)).await;
        c.send("hello").await;
        let reply = c.reply().await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"hello");
        assert_eq!(reply.count("connection"), 0);
    }
    // Chunked.
    c.send("POST /e HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await;
    assert_eq!(c.reply().await.raw, CONTINUE);
    c.send("2\r\nok\r\n0\r\n\r\n").await;
    assert_eq!(c.reply().await.body, b"ok");
    // No body to wait for: no 100.
    c.send("POST /e HTTP/1.1\r\nExpect: 100-continue\r\nx-reply: direct\r\n\r\n")
        .await;
    let reply = c.reply().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"direct");
    // HTTP/1.0 has no 100: the body follows the head anyway.
    c.send("POST /e HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
        .await;
    let reply = c.reply().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"hi");
    assert_eq!(c.seen().len(), 5);
    c.wire.quiet_for(ms(1)).await;
}

#[tokio::test(start_paused = true)]
async fn continue_is_not_sent_when_the_handler_does_not_read_the_body_and_the_connection_closes() {
    for head in [
        "POST /e HTTP/1.1\r\nx-read: no\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        "POST /e HTTP/1.1\r\nx-read: no\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
        // Refused before reading: over the limit.
        "POST /e HTTP/1.1\r\nx-limit: 4\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    ] {
        let mut c = connect(LIMITS);
        c.send(head).await;
        let reply = c.reply().await;
        assert!(reply.raw.starts_with(b"HTTP/1.1 "), "{}", reply.text());
        assert_ne!(reply.status, 100, "{head:?}");
        assert_eq!(reply.header("Connection"), Some("close"), "{head:?}");
        c.wire.eof().await;
        c.ended().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_small_unread_body_is_drained_and_the_next_request_served() {
    for request in [
        "POST /u HTTP/1.1\r\nx-read: no\r\nContent-Length: 10\r\n\r\n0123456789".to_owned(),
        format!("{CHUNKED}5\r\n01234\r\n5\r\n56789\r\n0\r\nT: x\r\n\r\n")
            .replace("Host: kes", "x-read: no"),
        format!(
            "POST /u HTTP/1.1\r\nx-read: no\r\nContent-Length: {MAX_DRAIN}\r\n\r\n{}",
            "d".repeat(usize::try_from(MAX_DRAIN).unwrap())
        ),
    ] {
        let mut c = connect(LIMITS);
        c.send(&request).await;
        c.send(NEXT).await;
        let reply = c.reply().await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.count("connection"), 0);
        assert_eq!(c.reply().await.header("X-Seen"), Some("GET /next"));
        assert_eq!(c.seen()[0].body, None);
        c.wire.quiet_for(ms(1)).await;
    }
    // A body that comes later than the reply would: the reply waits for it.
    let mut c = connect(LIMITS);
    c.send("POST /u HTTP/1.1\r\nx-read: no\r\nContent-Length: 3\r\n\r\n")
        .await;
    c.event().await;
    c.wire.quiet_for(ms(1500)).await;
    c.send(b"abc").await;
    assert_eq!(c.reply().await.count("connection"), 0);
    c.send(NEXT).await;
    assert_eq!(c.reply().await.header("X-Seen"), Some("GET /next"));
}

#[tokio::test(start_paused = true)]
async fn a_large_unread_body_ends_the_connection() {
    // Content-Length over MAX_DRAIN: not a byte of it is waited for.
    let mut c = connect(LIMITS);
    c.send(format!(
        "POST /u HTTP/1.1\r\nx-read: no\r\nContent-Length: {}\r\n\r\n",
        MAX_DRAIN + 1
    ))
    .await;
    let start = Instant::now();
    let reply = c.reply().await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(reply.header("Connection"), Some("close"));
    c.wire.eof().await;
    c.ended().await;

    // Chunked, going over MAX_DRAIN part way.
    let mut c = connect(LIMITS);
    let chunk = format!("10000\r\n{}\r\n", "c".repeat(0x10000));
    c.send(format!("{CHUNKED}{}0\r\n\r\n", chunk.repeat(5)).replace("Host: kes", "x-read: no"))
        .await;
    c.send(NEXT).await;
    assert_eq!(c.reply().await.header("Connection"), Some("close"));
    c.wire.eof().await;
    assert_eq!(c.seen().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_unread_body_that_does_not_come_ends_the_connection_after_the_drain_timeout() {
    let mut c = connect(LIMITS);
    c.send("POST /u HTTP/1.1\r\nx-read: no\r\nContent-Length: 3\r\n\r\nab")
        .await;
    c.event().await;
    let start = Instant::now();
    let reply = c.reply().await;
    assert_eq!(start.elapsed(), DRAIN_TIMEOUT);
    assert_eq!(reply.header("Connection"), Some("close"));
    c.wire.eof().await;
}

// ---------------------------------------------------------------------------------------------
// Timeouts, shutdown, slow clients
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn an_idle_connection_closes_after_the_idle_timeout_and_not_before() {
    let mut c = connect(LIMITS);
    let start = Instant::now();
    c.wire.quiet_for(LIMITS.idle - ms(1)).await;
    c.wire.eof().await;
    assert_eq!(start.elapsed(), LIMITS.idle);
    c.ended().await;

    // After a reply the idle time counts anew.
    let mut c = connect(LIMITS);
    c.wire.quiet_for(LIMITS.idle / 2).await;
    c.send("GET / HTTP/1.1\r\n\r\n").await;
    c.reply().await;
    let start = Instant::now();
    c.wire.quiet_for(LIMITS.idle - ms(1)).await;
    c.wire.eof().await;
    assert_eq!(start.elapsed(), LIMITS.idle);
    assert_eq!(c.seen().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_head_must_arrive_within_the_header_timeout_of_its_first_byte() {
    let limits = Limits {
        idle: Duration::from_secs(60),
        header: Duration::from_secs(10),
        ..LIMITS
    };
    // 40 s of idling count for nothing: the head has 10 s from its first byte.
    let mut c = connect(limits);
    tokio::time::sleep(Duration::from_secs(40)).await;
    c.send("GET / HTTP/1.1\r\nHost: k").await;
    let start = Instant::now();
    c.wire.quiet_for(limits.header - ms(1)).await;
    c.wire.eof().await;
    assert_eq!(start.elapsed(), limits.header);
    assert!(c.seen().is_empty());
    c.ended().await;

    // A head trickling in a byte a second does not restart the timer.
    let mut c = connect(limits);
    let start = Instant::now();
    for byte in b"GET /slow HTTP/1.1\r\nHost: kes\r\n".chunks(1) {
        if c.wire.io.write_all(byte).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    c.wire.eof().await;
    assert!(start.elapsed() >= limits.header && start.elapsed() < limits.header + ms(1001));
    assert!(c.seen().is_empty());

    // The second request of a connection gets the same: 10 s from its first byte.
    let mut c = connect(limits);
    c.send("GET / HTTP/1.1\r\n\r\n").await;
    c.reply().await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    c.send("GET / HTTP/1.1\r\n").await;
    let start = Instant::now();
    c.wire.quiet_for(limits.header - ms(1)).await;
    c.wire.eof().await;
    assert_eq!(start.elapsed(), limits.header);
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_an_idle_connection_at_once() {
    // Before its first request…
    let mut c = connect(LIMITS);
    tokio::time::sleep(ms(10)).await;
    let start = Instant::now();
    c.shutdown.cancel();
    c.wire.eof().await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    c.ended().await;
    // …and between requests.
    let mut c = connect(LIMITS);
    c.send("GET / HTTP/1.1\r\n\r\n").await;
    c.reply().await;
    let start = Instant::now();
    c.shutdown.cancel();
    c.wire.eof().await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    c.ended().await;
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_at_shutdown_gets_its_reply_with_connection_close() {
    let mut c = connect(LIMITS);
    c.send("POST /w HTTP/1.1\r\nx-wait: 1\r\nContent-Length: 4\r\n\r\nbody")
        .await;
    c.send(NEXT).await;
    c.event().await;
    c.shutdown.cancel();
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.svc.gate.as_ref().unwrap().notify_one();
    let reply = c.reply().await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"body");
    assert_eq!(reply.header("Connection"), Some("close"));
    c.wire.eof().await;
    assert_eq!(c.seen().len(), 1);
    c.ended().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    let mut c = connect_with(LIMITS, 1024);
    c.send("GET / HTTP/1.1\r\nx-reply-size: 100000\r\n\r\n")
        .await;
    c.event().await;
    let start = Instant::now();
    tokio::time::timeout(PATIENCE, &mut c.server)
        .await
        .expect("the server gives up")
        .unwrap();
    // One write timeout for the reply, at most one more for the close.
    assert!(start.elapsed() >= LIMITS.write && start.elapsed() <= 2 * LIMITS.write);
}

// ---------------------------------------------------------------------------------------------
// Streamed replies
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_streamed_reply_is_sent_chunked_frame_by_frame_and_ends_the_connection() {
    let mut c = connect(LIMITS);
    c.send("GET /log HTTP/1.1\r\nx-stream: 1\r\n\r\n").await;
    c.send(NEXT).await;
    let tx = c.stream.take().unwrap();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Seen: GET /log\r\nDate: <date>\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    // Each frame goes out as it is produced.
    tx.send(Bytes::from_static(b"hello")).await.unwrap();
    let end = c.wire.find(0, b"5\r\nhello\r\n").await;
    tx.send(Bytes::new()).await.unwrap(); // an empty frame is no chunk (it would end the body)
    tx.send(Bytes::from(vec![b'x'; 300])).await.unwrap();
    c.wire.find(end, b"\r\n12c\r\n").await;
    tx.send(Bytes::from_static(b"{\"a\":1}\n")).await.unwrap();
    drop(tx);
    let reply = c.reply().await;
    let want = format!(
        "{head}5\r\nhello\r\n12c\r\n{}\r\n8\r\n{{\"a\":1}}\n\r\n0\r\n\r\n",
        "x".repeat(300)
    );
    assert_eq!(reply.text(), want);
    c.wire.eof().await;
    // The request after it was not served.
    assert_eq!(c.seen().len(), 1);
    c.ended().await;
}

#[tokio::test(start_paused = true)]
async fn a_streamed_reply_to_http_1_0_is_the_raw_bytes_until_the_close() {
    let mut c = connect(LIMITS);
    c.send("GET /log HTTP/1.0\r\nConnection: keep-alive\r\nx-stream: 1\r\n\r\n")
        .await;
    let tx = c.stream.take().unwrap();
    tx.send(Bytes::from_static(b"one\n")).await.unwrap();
    tx.send(Bytes::from_static(b"two\n")).await.unwrap();
    drop(tx);
    let reply = c.reply().await;
    assert_eq!(
        reply.text(),
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nX-Seen: GET /log\r\nDate: <date>\r\nConnection: close\r\n\r\none\ntwo\n"
    );
    c.ended().await;
}

#[tokio::test(start_paused = true)]
async fn a_streamed_reply_stops_when_the_client_goes_away() {
    // The client closes its side (EOF) or sends anything: the stream ends, the body is
    // dropped (so its producer learns of it) and the connection closes.
    for goodbye in [None, Some(&b"GET / HTTP/1.1\r\n\r\n"[..])] {
        let mut c = connect(LIMITS);
        c.send("GET /log HTTP/1.1\r\nx-stream: 1\r\n\r\n").await;
        let tx = c.stream.take().unwrap();
        tx.send(Bytes::from_static(b"event")).await.unwrap();
        c.wire.find(0, b"5\r\nevent\r\n").await;
        match goodbye {
            None => c.wire.io.shutdown().await.unwrap(),
            Some(bytes) => c.send(bytes).await,
        }
        tokio::time::timeout(PATIENCE, tx.closed())
            .await
            .expect("the stream is dropped");
        let rest = c.wire.rest().await;
        assert!(rest.ends_with(b"5\r\nevent\r\n"), "{:?}", lossy(&rest));
        assert_eq!(c.seen().len(), 1);
        c.ended().await;
    }
}

// ---------------------------------------------------------------------------------------------
// The helpers
// ---------------------------------------------------------------------------------------------

#[test]
fn inbuf_consume_and_extend_keep_the_unread_bytes() {
    let mut b = InBuf::default();
    assert_eq!(b.data.capacity(), 0);
    assert!(b.is_empty());
    b.extend(b"hello world");
    assert_eq!(b.unread(), b"hello world");
    assert_eq!(b.len(), 11);
    b.consume(0);
    assert_eq!(b.unread(), b"hello world");
    b.consume(6);
    assert_eq!(b.unread(), b"world");
    assert_eq!(b.len(), 5);
    b.extend(b"!");
    assert_eq!(b.unread(), b"world!");
    b.extend(b"");
    assert_eq!(b.unread(), b"world!");
    // Consuming more than there is consumes what there is.
    b.consume(100);
    assert!(b.is_empty());
    assert_eq!(b.unread(), b"");
    assert_eq!((b.start, b.data.len()), (0, 0));
    // Consumed to the end: the allocation stays for the rest of the request…
    assert!(b.data.capacity() > 0);
    b.extend(b"again");
    assert_eq!(b.unread(), b"again");
    // …and release frees it.
    b.release();
    assert_eq!(b.data.capacity(), 0);
    assert_eq!((b.start, b.len()), (0, 0));
    b.release();
    assert_eq!(b.data.capacity(), 0);
}

#[test]
fn inbuf_reserve_moves_the_unread_bytes_into_enough_room() {
    let mut b = InBuf::default();
    let bytes: Vec<u8> = (0..100).collect();
    b.extend(&bytes);
    assert_eq!(b.data.capacity(), 100);
    b.consume(40);
    // No room: the 60 unread bytes move to the front of a new allocation.
    b.reserve(10);
    assert_eq!(b.unread(), &bytes[40..]);
    assert_eq!(b.start, 0);
    assert!(b.data.capacity() - b.data.len() >= 10);
    // Room enough: nothing moves.
    let (ptr, cap) = (b.data.as_ptr(), b.data.capacity());
    b.reserve(10);
    assert_eq!((b.data.as_ptr(), b.data.capacity()), (ptr, cap));
    // The room is used without Vec growing on its own.
    b.extend(&[7; 10]);
    assert_eq!((b.data.as_ptr(), b.data.capacity()), (ptr, cap));
    assert_eq!(b.unread(), [&bytes[40..], &[7; 10][..]].concat());
}

#[test]
fn inbuf_matches_a_plain_queue_under_random_operations() {
    let mut rng = Rng::new(0x1b0f);
    let mut b = InBuf::default();
    let mut model: Vec<u8> = Vec::new();
    for step in 0..5000 {
        match rng.below(5) {
            0 | 1 => {
                let len = rng.below(300);
                let bytes = rng.bytes(len);
                // Growing is done by `reserve` alone: after it, the extension fits as is.
                b.reserve(bytes.len());
                let (ptr, cap) = (b.data.as_ptr(), b.data.capacity());
                assert!(cap - b.data.len() >= bytes.len(), "step {step}");
                b.extend(&bytes);
                assert_eq!(
                    (b.data.as_ptr(), b.data.capacity()),
                    (ptr, cap),
                    "step {step}"
                );
                model.extend_from_slice(&bytes);
            }
            2 | 3 => {
                let n = rng.below(model.len() + 10);
                b.consume(n);
                model.drain(..n.min(model.len()));
            }
            _ => {
                let n = rng.below(5000);
                let unread = b.len();
                let old_cap = b.data.capacity();
                let room = old_cap - b.data.len();
                b.reserve(n);
                if room >= n {
                    assert_eq!(b.data.capacity(), old_cap, "step {step}");
                } else {
                    // Exactly what was asked for, no doubling: the buffer holds a request.
                    assert_eq!(b.data.capacity(), (unread + n).max(old_cap), "step {step}");
                    assert_eq!(b.start, 0);
                }
            }
        }
        assert_eq!(b.unread(), model, "step {step}");
        assert_eq!(b.len(), model.len());
        assert!(b.start <= b.data.len());
        if model.is_empty() {
            assert_eq!(b.start, 0, "step {step}");
        }
        if rng.below(200) == 0 {
            b.release();
            model.clear();
            assert_eq!(b.data.capacity(), 0);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn read_more_reads_into_the_reserved_room_only() {
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let mut conn = Conn {
        io: server,
        buf: InBuf::default(),
        body: BodyState::Done,
        chunk_lines: 0,
        expect_continue: false,
        write_timeout: LIMITS.write,
    };
    let data = Rng::new(7).bytes(50_000);
    let writer = tokio::spawn(async move {
        client.write_all(&data).await.unwrap();
        (client, data)
    });
    let mut rng = Rng::new(8);
    let mut got = Vec::new();
    for _ in 0..1000 {
        if got.len() + conn.buf.len() == 50_000 {
            break;
        }
        let unread = conn.buf.len();
        let (cap, len) = (conn.buf.data.capacity(), conn.buf.data.len());
        let n = conn.read_more().await.unwrap();
        assert!(n > 0);
        if cap - len >= READ_CHUNK {
            assert_eq!(conn.buf.data.capacity(), cap);
        } else {
            assert_eq!(conn.buf.data.capacity(), (unread + READ_CHUNK).max(cap));
        }
        assert!(n <= conn.buf.data.capacity() - unread);
        let take = rng.below(conn.buf.len() + 1);
        got.extend_from_slice(&conn.buf.unread()[..take]);
        conn.buf.consume(take);
    }
    got.extend_from_slice(conn.buf.unread());
    let (_client, data) = writer.await.unwrap();
    assert_eq!(got, data);
}

#[tokio::test(start_paused = true)]
async fn a_connection_waiting_for_a_request_holds_no_buffer() {
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let mut conn = Conn {
        io: server,
        buf: InBuf::default(),
        body: BodyState::Done,
        chunk_lines: 0,
        expect_continue: false,
        write_timeout: LIMITS.write,
    };
    let shutdown = CancellationToken::new();
    // A served request leaves an empty buffer with its allocation.
    conn.buf.extend(&[b'x'; 3000]);
    conn.buf.consume(3000);
    assert!(conn.buf.data.capacity() >= 3000);
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(conn.wait_for_request(&LIMITS, &shutdown).await);
    // The next request is read into a new buffer the size of what came.
    assert_eq!(conn.buf.unread(), b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(conn.buf.data.capacity(), 18);
    conn.buf.consume(18);
    // Idle until the timeout: false, and nothing held.
    let start = Instant::now();
    assert!(!conn.wait_for_request(&LIMITS, &shutdown).await);
    assert_eq!(start.elapsed(), LIMITS.idle);
    assert_eq!(conn.buf.data.capacity(), 0);
    // A pipelined request already there is served at once.
    conn.buf.extend(b"GET");
    assert!(conn.wait_for_request(&LIMITS, &shutdown).await);
    assert_eq!(conn.buf.unread(), b"GET");
}

#[test]
fn chunk_sizes_are_hex_digits_before_any_extension() {
    let cases: &[(&[u8], Option<u64>)] = &[
        (b"0", Some(0)),
        (b"00", Some(0)),
        (b"5", Some(5)),
        (b"a", Some(10)),
        (b"A", Some(10)),
        (b"fF", Some(255)),
        (b"1a;name=value", Some(26)),
        (b"1a;", Some(26)),
        (b"10;a=\"b;c\";d", Some(16)),
        (b"5 ;ext", Some(5)),
        (b"fffffffffffffff", Some(0x0fff_ffff_ffff_ffff)),
        (b"000000000000001", Some(1)),
        (b"", None),
        (b" ", None),
        (b";ext", None),
        (b"g", None),
        (b"5g", None),
        (b"-1", None),
        (b"+1", None),
        (b"0x5", None),
        (b"5 5", None),
        (b"1000000000000000", None), // 16 digits
        (b"ffffffffffffffffffff", None),
        (b"\xff", None),
        (b"5\x00", None),
    ];
    for (line, want) in cases {
        assert_eq!(parse_chunk_size(line), *want, "{:?}", lossy(line));
    }
}

fn headers(fields: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in fields {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn body_framing_takes_one_framing_and_refuses_ambiguity() {
    let v11 = Version::HTTP_11;
    let bad = Err(StatusCode::BAD_REQUEST);
    let ni = Err(StatusCode::NOT_IMPLEMENTED);
    let chunked = Ok(BodyState::ChunkSize);
    type Case<'a> = (
        &'a [(&'a str, &'a str)],
        Version,
        Result<BodyState, StatusCode>,
    );
    let cases: &[Case<'_>] = &[
        (&[], v11, Ok(BodyState::Done)),
        (&[("content-length", "0")], v11, Ok(BodyState::Done)),
        (&[("content-length", "5")], v11, Ok(BodyState::Length(5))),
        (&[("content-length", " 5 ")], v11, Ok(BodyState::Length(5))),
        (&[("content-length", "005")], v11, Ok(BodyState::Length(5))),
        (&[("content-length", "5, 5")], v11, Ok(BodyState::Length(5))),
        (
            &[("content-length", "5"), ("content-length", "5")],
            v11,
            Ok(BodyState::Length(5)),
        ),
        (
            &[("content-length", "1234567890123456789")],
            v11,
            Ok(BodyState::Length(1_234_567_890_123_456_789)),
        ),
        (&[("content-length", "12345678901234567890")], v11, bad),
        (&[("content-length", "5, 6")], v11, bad),
        (
            &[("content-length", "5"), ("content-length", "6")],
            v11,
            bad,
        ),
        (&[("content-length", "")], v11, bad),
        (&[("content-length", ",")], v11, bad),
        (&[("content-length", "+5")], v11, bad),
        (&[("content-length", "-0")], v11, bad),
        (&[("content-length", "5e0")], v11, bad),
        (
            &[("content-length", "5")],
            Version::HTTP_10,
            Ok(BodyState::Length(5)),
        ),
        (&[("transfer-encoding", "chunked")], v11, chunked),
        (&[("transfer-encoding", "CHUNKED")], v11, chunked),
        (&[("transfer-encoding", " chunked ")], v11, chunked),
        (&[("transfer-encoding", "chunked")], Version::HTTP_10, bad),
        (&[("transfer-encoding", "gzip")], Version::HTTP_10, bad),
        (
            &[("transfer-encoding", "chunked"), ("content-length", "5")],
            v11,
            bad,
        ),
        (
            &[("content-length", "0"), ("transfer-encoding", "chunked")],
            v11,
            bad,
        ),
        (
            &[("transfer-encoding", ""), ("content-length", "5")],
            v11,
            bad,
        ),
        (&[("transfer-encoding", "gzip")], v11, ni),
        (&[("transfer-encoding", "identity")], v11, ni),
        (&[("transfer-encoding", "gzip, chunked")], v11, ni),
        (&[("transfer-encoding", "chunked, chunked")], v11, ni),
        (
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
            v11,
            ni,
        ),
        (&[("transfer-encoding", "chunked,")], v11, ni),
        (&[("transfer-encoding", ", chunked")], v11, ni),
        (&[("transfer-encoding", "")], v11, ni),
        (
            &[("transfer-encoding", ""), ("transfer-encoding", "chunked")],
            v11,
            ni,
        ),
    ];
    for (fields, version, want) in cases {
        assert_eq!(
            body_framing(&headers(fields), *version),
            *want,
            "{fields:?} {version:?}"
        );
    }
}

#[test]
fn has_token_finds_whole_tokens_in_any_case_across_fields() {
    let close = |fields: &[(&str, &str)]| has_token(&headers(fields), header::CONNECTION, "close");
    assert!(close(&[("connection", "close")]));
    assert!(close(&[("connection", "Close")]));
    assert!(close(&[("connection", "keep-alive, close")]));
    assert!(close(&[("connection", "close ,keep-alive")]));
    assert!(close(&[("connection", "te"), ("connection", "CLOSE")]));
    assert!(!close(&[]));
    assert!(!close(&[("connection", "")]));
    assert!(!close(&[("connection", "closed")]));
    assert!(!close(&[("connection", "keep-alive; close")]));
    assert!(!close(&[("connection", "\"close\"")]));
    assert!(!close(&[("x-connection", "close")]));
}

#[test]
fn a_parsed_head_carries_keep_alive_and_expect_continue() {
    let head = |bytes: &[u8]| parse_head(bytes).unwrap().unwrap().0;
    let h = head(b"GET / HTTP/1.1\r\n\r\n");
    assert!(h.keep_alive && !h.expect_continue);
    assert!(!head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
    assert!(!head(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
    assert!(head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    assert!(head(b"POST / HTTP/1.1\r\nExpect: 100-CONTINUE\r\n\r\n").expect_continue);
    assert!(!head(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
    assert!(!head(b"POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n").expect_continue);
    // The length is that of the head alone, leading empty lines included.
    let (_, len) = parse_head(b"\r\nGET / HTTP/1.1\r\nA: b\r\n\r\nbody")
        .unwrap()
        .unwrap();
    assert_eq!(len, 26);
    assert!(parse_head(b"GET / HTTP/1.1\r\nA: b\r\n").unwrap().is_none());
    assert!(parse_head(b"").unwrap().is_none());
}

#[test]
fn header_names_are_written_with_go_s_capitalisation() {
    let map = headers(&[
        ("content-type", "a"),
        ("x-content-type-options", "b"),
        ("www-authenticate", "c"),
        ("etag", "d"),
        ("x-", "e"),
        ("a--b", "f"),
        ("connection", "dropped"),
        ("transfer-encoding", "dropped"),
    ]);
    let mut out = kes_secret::SecretBuf::new();
    write_headers(&mut out, &map);
    assert_eq!(
        lossy(&out),
        "Content-Type: a\r\nX-Content-Type-Options: b\r\nWww-Authenticate: c\r\nEtag: d\r\nX-: e\r\nA--B: f\r\n"
    );
}

#[test]
fn status_lines_carry_the_request_version() {
    let line = |version, status| {
        let mut out = kes_secret::SecretBuf::new();
        write_status_line(&mut out, version, status);
        lossy(&out)
    };
    assert_eq!(
        line(Version::HTTP_11, StatusCode::OK),
        "HTTP/1.1 200 OK\r\n"
    );
    assert_eq!(
        line(Version::HTTP_10, StatusCode::NOT_FOUND),
        "HTTP/1.0 404 Not Found\r\n"
    );
    // A code without a standard reason gets Go's text.
    assert_eq!(
        line(Version::HTTP_11, StatusCode::from_u16(599).unwrap()),
        "HTTP/1.1 599 status code 599\r\n"
    );
}

#[test]
fn chunk_sizes_may_have_trailing_but_not_leading_whitespace() {
    assert_eq!(parse_chunk_size(b"5 "), Some(5));
    assert_eq!(parse_chunk_size(b"5\t;ext"), Some(5));
    assert_eq!(parse_chunk_size(b" 5"), None);
    assert_eq!(parse_chunk_size(b"\t5"), None);
}

// ---------------------------------------------------------------------------------------------
// Randomized connections
// ---------------------------------------------------------------------------------------------

/// A random request and what the service must see of it.
struct Sent {
    bytes: Vec<u8>,
    seen: Seen,
    head: bool,
    http10: bool,
    close: bool,
}

const TOKEN: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
const PATH: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";

fn random_string(rng: &mut Rng, chars: &[u8], len: usize) -> String {
    (0..len).map(|_| char::from(*rng.pick(chars))).collect()
}

/// A header value: visible ASCII and inner spaces.
fn random_value(rng: &mut Rng) -> String {
    let v: Vec<u8> = (0..rng.below(40))
        .map(|_| {
            if rng.below(8) == 0 {
                b' '
            } else {
                0x21 + rng.below(0x7e - 0x21 + 1) as u8
            }
        })
        .collect();
    String::from_utf8(v).unwrap().trim().to_owned()
}

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}

fn random_request(rng: &mut Rng, close: bool) -> Sent {
    let method = *rng.pick(&[
        "GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND",
    ]);
    let head = method == "HEAD";
    let http10 = rng.below(10) == 0;
    let mut target = String::new();
    for _ in 0..1 + rng.below(4) {
        target.push('/');
        let len = rng.below(12);
        target.push_str(&random_string(rng, PATH, len));
    }
    if rng.below(4) == 0 {
        let len = rng.below(10);
        target.push_str(&format!("?q={}&r=1", random_string(rng, PATH, len)));
    }
    let body = if head || rng.below(4) == 0 {
        Vec::new()
    } else {
        let len = *rng.pick(&[1, 10, 100, 1000, 5000]);
        let len = rng.below(len + 1);
        rng.bytes(len)
    };
    let chunked = !http10 && rng.below(2) == 0;
    let read = rng.below(5) != 0;

    let mut fields: Vec<(String, String)> = Vec::new();
    if rng.below(2) == 0 {
        fields.push(("Host".into(), "kes.example:7373".into()));
    }
    for i in 0..rng.below(20) {
        let len = 1 + rng.below(10);
        let name = format!("X-R{i}-{}", random_string(rng, TOKEN, len));
        fields.push((name, random_value(rng)));
    }
    if chunked {
        fields.push(("Transfer-Encoding".into(), "chunked".into()));
    } else if !body.is_empty() || rng.below(3) == 0 {
        fields.push(("Content-Length".into(), body.len().to_string()));
    }
    if !read {
        fields.push(("x-read".into(), "no".into()));
    }
    if http10 && !close {
        fields.push(("Connection".into(), "keep-alive".into()));
    }
    if close && !http10 {
        fields.push(("Connection".into(), "close".into()));
    }
    shuffle(rng, &mut fields);

    let mut bytes = format!(
        "{method} {target} HTTP/1.{}\r\n",
        if http10 { 0 } else { 1 }
    )
    .into_bytes();
    for (name, value) in &fields {
        // Random capitalisation of the names; optional whitespace around the values.
        let name: String = name
            .chars()
            .map(|c| {
                if rng.below(2) == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        let ows = if rng.below(4) == 0 { " \t" } else { "" };
        bytes.extend_from_slice(format!("{name}:{} {value}{ows}\r\n", ows).as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    if chunked {
        let mut rest = &body[..];
        while !rest.is_empty() {
            let max = *rng.pick(&[1, 16, 700, 5000]);
            let n = 1 + rng.below(rest.len().min(max));
            let size = if rng.below(2) == 0 {
                format!("{n:x}")
            } else {
                format!("0{n:X}")
            };
            let ext = if rng.below(4) == 0 { ";e=\"v\"" } else { "" };
            bytes.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
            bytes.extend_from_slice(&rest[..n]);
            bytes.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        bytes.extend_from_slice(b"0\r\n");
        if rng.below(3) == 0 {
            bytes.extend_from_slice(b"X-Trailer: t\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
    } else {
        bytes.extend_from_slice(&body);
    }

    let mut headers: Vec<(String, Vec<u8>)> = fields
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone().into_bytes()))
        .collect();
    headers.sort();
    Sent {
        bytes,
        seen: Seen {
            method: method.into(),
            uri: target,
            version: if http10 {
                Version::HTTP_10
            } else {
                Version::HTTP_11
            },
            headers,
            body: read.then_some(Ok(body)),
        },
        head,
        http10,
        close,
    }
}

/// `bytes` cut at random points: pieces from one byte to a few kilobytes.
fn random_pieces<'a>(rng: &mut Rng, bytes: &'a [u8]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let max = *rng.pick(&[1, 3, 20, 200, 2000, 8000]);
        let n = 1 + rng.below(max.min(rest.len()));
        pieces.push(&rest[..n]);
        rest = &rest[n..];
    }
    pieces
}

#[tokio::test(start_paused = true)]
async fn random_requests_on_one_connection_are_each_answered_as_sent() {
    const COUNT: usize = 400;
    let mut rng = Rng::new(0x4854_5450_3131);
    let sent: Vec<Sent> = (0..COUNT)
        .map(|i| random_request(&mut rng, i == COUNT - 1))
        .collect();
    let all: Vec<u8> = sent.iter().flat_map(|s| s.bytes.iter().copied()).collect();

    let (client, server) = tokio::io::duplex(1 << 16);
    let (svc, _events, _stream) = service(false);
    let svc = Arc::new(svc);
    let task = tokio::spawn({
        let svc = svc.clone();
        async move {
            let shutdown = CancellationToken::new();
            serve(server, LIMITS, &shutdown, &*svc).await;
        }
    });
    let (read, mut write) = tokio::io::split(client);
    let mut split_rng = Rng::new(0x0053_504c_4954);
    let writer = async {
        for piece in random_pieces(&mut split_rng, &all) {
            write.write_all(piece).await.unwrap();
            if split_rng.below(3) == 0 {
                tokio::task::yield_now().await;
            }
        }
    };
    let reader = async {
        let mut wire = Wire::new(read);
        let mut replies = Vec::new();
        for s in &sent {
            replies.push(wire.reply_to(s.head).await);
        }
        wire.eof().await;
        replies
    };
    let ((), replies) = tokio::join!(writer, reader);
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();

    let seen = svc.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), COUNT);
    for (i, ((s, reply), seen)) in sent.iter().zip(&replies).zip(&seen).enumerate() {
        let request = lossy(&s.bytes);
        assert_eq!(seen, &s.seen, "request {i}: {request:?}");
        assert_eq!(reply.status, 200, "request {i}");
        assert_eq!(
            reply.version,
            if s.http10 { "HTTP/1.0" } else { "HTTP/1.1" },
            "request {i}"
        );
        assert_eq!(
            reply.header("X-Seen"),
            Some(format!("{} {}", s.seen.method, s.seen.uri).as_str()),
            "request {i}"
        );
        let want_body = match &s.seen.body {
            Some(Ok(body)) if !s.head => body.clone(),
            _ => Vec::new(),
        };
        assert_eq!(reply.body, want_body, "request {i}");
        let connection = if s.close {
            Some("close")
        } else if s.http10 {
            Some("keep-alive")
        } else {
            None
        };
        assert_eq!(reply.header("Connection"), connection, "request {i}");
    }
}

/// Runs one whole connection whose client writes `input` in random pieces and then closes its
/// side; what the server wrote. Asserts that the server ends without panicking.
async fn run_connection(rng: &mut Rng, input: &[u8], limits: Limits) -> Vec<u8> {
    let (client, server) = tokio::io::duplex(1 << 16);
    let (svc, _events, stream) = service(false);
    drop(stream); // an `x-stream` reply ends at once
    let task = tokio::spawn(async move {
        let shutdown = CancellationToken::new();
        serve(server, limits, &shutdown, &svc).await;
    });
    let (read, mut write) = tokio::io::split(client);
    let pieces = random_pieces(rng, input);
    let writer = async move {
        for piece in pieces {
            if write.write_all(piece).await.is_err() {
                return;
            }
        }
        let _ = write.shutdown().await;
    };
    let reader = async {
        let mut wire = Wire::new(read);
        wire.rest().await
    };
    let ((), out) = tokio::join!(writer, reader);
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the connection ends")
        .expect("the server does not panic");
    out
}

#[tokio::test(start_paused = true)]
async fn arbitrary_and_mutated_connections_never_panic_and_always_end() {
    let mut rng = Rng::new(0x6d75_7461_7465);
    let mut corpus: Vec<Vec<u8>> = vec![
        format!("{CHUNKED}5;a=b\r\nhello\r\n0\r\nT: v\r\n\r\n").into_bytes(),
        b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
        b"POST / HTTP/1.1\r\nx-read: no\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n"
            .to_vec(),
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nHEAD / HTTP/1.1\r\n\r\n".to_vec(),
        b"GET /log HTTP/1.1\r\nx-stream: 1\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nx-limit: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"
            .to_vec(),
    ];
    for _ in 0..20 {
        let n = 1 + rng.below(3);
        let bytes: Vec<u8> = (0..n)
            .flat_map(|_| random_request(&mut rng, false).bytes)
            .collect();
        corpus.push(bytes);
    }
    let tokens: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r",
        b"\r\n\r\n",
        b" ",
        b":",
        b";",
        b",",
        b"\0",
        b"\x7f",
        b"\xff",
        b"0\r\n\r\n",
        b"ffff\r\n",
        b"fffffffffffffff\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Content-Length: 5\r\n",
        b"Content-Length: 300000\r\n",
        b"Content-Length: 18446744073709551615\r\n",
        b"Expect: 100-continue\r\n",
        b"Connection: close\r\n",
        b"Connection: keep-alive\r\n",
        b"HTTP/1.0",
        b"HTTP/1.1",
        b"x-read: no\r\n",
        b"x-limit: 3\r\n",
        b"x-stream: 1\r\n",
        b"x-status: 204\r\n",
        b"HEAD",
        b"GET / HTTP/1.1\r\n\r\n",
    ];
    let mutator = ByteMutator {
        ops: &[
            ByteOp::FlipBit,
            ByteOp::InsertToken,
            ByteOp::InsertToken,
            ByteOp::DeleteRun(8),
            ByteOp::Truncate,
            ByteOp::Splice,
            ByteOp::RepeatRun(16),
            ByteOp::InsertByte,
        ],
        tokens,
    };
    let limits = Limits {
        max_head: 2048,
        ..LIMITS
    };
    // How many connections got a 200, a refusal, and nothing at all: the cases must reach
    // the handler as well as the parser's error paths.
    let (mut served, mut refused, mut silent) = (0, 0, 0);
    for case in 0..600 {
        let input = if case % 10 == 0 {
            let len = rng.below(3000);
            rng.bytes(len)
        } else {
            let mut input = rng.pick(&corpus).clone();
            let other = rng.pick(&corpus).clone();
            for _ in 0..1 + rng.below(6) {
                input = mutator.mutate(&mut rng, input, &other);
            }
            input
        };
        let out = run_connection(&mut rng, &input, limits).await;
        assert!(
            out.is_empty() || out.starts_with(b"HTTP/1."),
            "case {case}: {:?} -> {:?}",
            lossy(&input),
            lossy(&out)
        );
        if find(&out, b" 200 OK\r\n").is_some() {
            served += 1;
        }
        if find(&out, b"\r\nConnection: close\r\nContent-Length: ").is_some() {
            refused += 1;
        }
        if out.is_empty() {
            silent += 1;
        }
    }
    assert!(
        served > 100 && refused > 100 && silent > 10,
        "served {served}, refused {refused}, silent {silent}"
    );
}
