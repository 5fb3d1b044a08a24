//! HTTP/1.1 server connections, written for what an idle connection costs.
//!
//! A KES server holds many keep-alive connections from MinIO nodes that are idle most of the
//! time. A general-purpose HTTP/1.1 implementation keeps a read buffer and a write buffer
//! (8 KiB each in hyper) for the whole life of a connection; this one holds no buffer at all
//! between requests: the read buffer exists from the first byte of a request to the end of its
//! body, the reply is assembled in one buffer and written in one piece. Both buffers are wiped
//! before they are freed, since requests and replies carry plaintexts and data keys.
//!
//! The protocol rules are Go's `net/http` server's, which KES clients were written against:
//! - a connection idle for [`Limits::idle`] is closed; a request head must arrive within
//!   [`Limits::header`] of its first byte;
//! - request bodies are framed by `Content-Length` or `Transfer-Encoding: chunked` (a request
//!   with both, with an unknown transfer coding, or with conflicting lengths is refused, as
//!   request smuggling relies on such requests);
//! - `Expect: 100-continue` is answered when the handler starts reading the body;
//! - a body the handler did not read is drained when it is small, else the connection is closed;
//! - keep-alive is the HTTP/1.1 default, `Connection: close` ends the connection after the reply,
//!   HTTP/1.0 keeps it only with `Connection: keep-alive`;
//! - pipelined requests are answered in order;
//! - a reply of unknown length (a log stream) is sent chunked and ends the connection.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::future::Future;
use std::io;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroize;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use kes_secret::SecretBuf;

/// A reply body: the whole reply, or a stream of chunks (log streams).
pub type Body = BoxBody<Bytes, std::convert::Infallible>;

/// A request body as a handler reads it: whole, into a buffer that is wiped when dropped.
///
/// The future is boxed: an `impl Future` here trips the compiler's higher-ranked `Send` check
/// (rust-lang/rust#100013) for bodies that borrow their connection.
pub trait RequestBody: Send {
    /// Reads the body to its end; `Err` when it is longer than `limit` bytes or broken off.
    fn read_to_end<'a>(self, limit: u64) -> BodyFuture<'a>
    where
        Self: 'a;
}

/// What [`RequestBody::read_to_end`] returns.
pub type BodyFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<SecretBuf, ()>> + Send + 'a>>;

/// The most header fields a request may have (Go has no count limit, only a size limit).
const MAX_HEADERS: usize = 128;
/// The longest chunk-size line (with extensions) of a chunked body.
const MAX_CHUNK_LINE: usize = 4096;
/// Chunk-size line bytes a chunked body may carry beyond its data bytes.
const MAX_CHUNK_OVERHEAD: usize = 16 * 1024;
/// The most trailer bytes after a chunked body.
const MAX_TRAILERS: usize = 16 * 1024;
/// A body the handler did not read is drained up to this size (Go: 256 KiB) before the next
/// request; a larger one closes the connection.
const MAX_DRAIN: u64 = 256 * 1024;
/// How long draining an unread body may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection closed with an unread request body keeps reading (and discarding)
/// what the client still sends, and how much of it at most.
const LINGER: Duration = Duration::from_secs(2);
const MAX_LINGER_BYTES: usize = 64 << 20;
/// Bytes read from the connection at a time.
const READ_CHUNK: usize = 4096;
/// Bytes read while waiting for the first byte of a request; the buffer lives in the
/// connection's task only while it waits.
const FIRST_READ: usize = 512;

/// The timeouts and sizes of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a connection may wait for its next request (Go's `IdleTimeout`).
    pub idle: Duration,
    /// How long a request head may take from its first byte (Go's `ReadHeaderTimeout`).
    pub header: Duration,
    /// The largest request head in bytes; a larger one gets 431.
    pub max_head: usize,
    /// How long one write may stall (a client that stops reading replies).
    pub write: Duration,
}

/// What serves the requests of a connection.
pub trait Service: Send + Sync {
    /// Answers one request; the body is read through [`RequestBody`].
    ///
    /// The future is boxed, for the reason given at [`RequestBody`].
    fn call<'a, B: RequestBody + 'a>(&'a self, req: Request<B>) -> ReplyFuture<'a>;
}

/// What [`Service::call`] returns.
pub type ReplyFuture<'a> = std::pin::Pin<Box<dyn Future<Output = Response<Body>> + Send + 'a>>;

/// Serves HTTP/1.1 on `io` until the client closes, a limit is hit or `shutdown` is cancelled
/// (then an idle connection closes at once and a busy one after its reply).
pub async fn serve<IO, S>(io: IO, limits: Limits, shutdown: &CancellationToken, service: &S)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
    S: Service,
{
    let mut conn = Conn {
        io,
        buf: InBuf::default(),
        body: BodyState::Done,
        chunk_lines: 0,
        expect_continue: false,
        write_timeout: limits.write,
    };
    loop {
        if !conn.wait_for_request(&limits, shutdown).await {
            break;
        }
        let head = match conn.read_head(&limits).await {
            Ok(head) => head,
            Err(HeadError::Closed) => break,
            Err(HeadError::Reply(status)) => {
                if Box::pin(conn.write_error(status)).await.is_ok() {
                    // The client may have sent more behind the refused head.
                    conn.buf.release();
                    Box::pin(conn.linger(limits.write)).await;
                    return;
                }
                break;
            }
        };
        let Head {
            parts,
            framing,
            keep_alive,
            expect_continue,
        } = head;
        let is_head = parts.method == Method::HEAD;
        let version = parts.version;
        conn.body = framing;
        conn.chunk_lines = 0;
        conn.expect_continue = expect_continue;
        let response = {
            let body = H1Body { conn: &mut conn };
            service.call(Request::from_parts(parts, body)).await
        };
        let body_done = conn.finish_body().await;
        // A reply with `Connection: close` ends the connection too.
        let close = !keep_alive
            || !body_done
            || shutdown.is_cancelled()
            || has_token(response.headers(), header::CONNECTION, "close");
        let written = conn.write_response(response, version, is_head, close).await;
        if !body_done && written.is_ok() {
            // The client may still be sending the body the reply refused.
            conn.buf.release();
            // Rare paths are boxed: an idle connection's task is as large as the largest
            // state of this loop, and there are many idle connections.
            Box::pin(conn.linger(limits.write)).await;
            return;
        }
        match written {
            Ok(true) if !close => {}
            _ => break,
        }
    }
    conn.buf.release();
    let _ = tokio::time::timeout(limits.write, conn.io.shutdown()).await;
}

/// A parsed request head.
struct Head {
    parts: http::request::Parts,
    framing: BodyState,
    keep_alive: bool,
    expect_continue: bool,
}

enum HeadError {
    /// The connection ended or timed out: close without a reply.
    Closed,
    /// Reply with this status, then close.
    Reply(StatusCode),
}

/// How much of the request body is still unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    /// `n` bytes of a `Content-Length` body.
    Length(u64),
    /// A chunked body, before a chunk-size line.
    ChunkSize,
    /// Inside a chunk: `n` data bytes, then its CRLF.
    ChunkData(u64),
    /// Read to its end.
    Done,
    /// Reading failed half-way: the connection cannot be reused.
    Broken,
}

/// A connection: the I/O object and the request being read.
struct Conn<IO> {
    io: IO,
    buf: InBuf,
    body: BodyState,
    /// Bytes of chunk-size lines (with extensions) read for the current body.
    chunk_lines: usize,
    expect_continue: bool,
    write_timeout: Duration,
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> Conn<IO> {
    /// Waits for the first byte of the next request, without holding a buffer. False when the
    /// connection should close (EOF, idle timeout, shutdown, error).
    async fn wait_for_request(&mut self, limits: &Limits, shutdown: &CancellationToken) -> bool {
        if !self.buf.is_empty() {
            // A pipelined request is already here.
            return true;
        }
        self.buf.release();
        if shutdown.is_cancelled() {
            return false;
        }
        let mut first = [0u8; FIRST_READ];
        let read = tokio::select! {
            () = shutdown.cancelled() => return false,
            read = tokio::time::timeout(limits.idle, self.io.read(&mut first)) => read,
        };
        let ok = match read {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend(first.get(..n).unwrap_or_default());
                true
            }
            _ => false,
        };
        first.zeroize();
        ok
    }

    /// Reads and parses a request head.
    async fn read_head(&mut self, limits: &Limits) -> Result<Head, HeadError> {
        let deadline = Instant::now() + limits.header;
        loop {
            match parse_head(self.buf.unread()) {
                Ok(Some((head, len))) => {
                    self.buf.consume(len);
                    return Ok(head);
                }
                Ok(None) => {}
                Err(status) => return Err(HeadError::Reply(status)),
            }
            if self.buf.len() >= limits.max_head {
                return Err(HeadError::Reply(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                ));
            }
            match tokio::time::timeout_at(deadline, self.read_more()).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return Err(HeadError::Closed),
            }
        }
    }

    /// Reads more bytes into the buffer; 0 at EOF.
    async fn read_more(&mut self) -> io::Result<usize> {
        self.buf.reserve(READ_CHUNK);
        // Reads into the spare capacity (no reallocation: it was reserved above) and keeps
        // the bytes only once the read completes, so a read cut off by a timeout adds nothing.
        self.io.read_buf(&mut self.buf.data).await
    }

    /// Sends `100 Continue` if the client waits for it.
    async fn send_continue(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.expect_continue) {
            self.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        Ok(())
    }

    /// Reads the rest of the body into `out`, at most `limit` bytes in all.
    async fn read_body(&mut self, out: &mut SecretBuf, limit: u64) -> Result<(), ()> {
        if self.body == BodyState::Done {
            return Ok(());
        }
        self.send_continue().await.map_err(|_| ())?;
        let result = self.read_body_inner(out, limit).await;
        if result.is_err() {
            self.body = BodyState::Broken;
        }
        result
    }

    async fn read_body_inner(&mut self, out: &mut SecretBuf, limit: u64) -> Result<(), ()> {
        let room = |out: &SecretBuf| limit.saturating_sub(out.len() as u64);
        loop {
            match self.body {
                BodyState::Done => return Ok(()),
                BodyState::Broken => return Err(()),
                BodyState::Length(0) => self.body = BodyState::Done,
                BodyState::Length(n) => {
                    if n > room(out) {
                        return Err(());
                    }
                    let n = self.read_data(out, n).await?;
                    self.body = BodyState::Length(n);
                }
                BodyState::ChunkSize => {
                    let size = self.read_chunk_size(out.len()).await?;
                    if size == 0 {
                        self.read_trailers().await?;
                        self.body = BodyState::Done;
                    } else if size > room(out) {
                        return Err(());
                    } else {
                        self.body = BodyState::ChunkData(size);
                    }
                }
                BodyState::ChunkData(0) => {
                    self.expect_crlf().await?;
                    self.body = BodyState::ChunkSize;
                }
                BodyState::ChunkData(n) => {
                    let n = self.read_data(out, n).await?;
                    self.body = BodyState::ChunkData(n);
                }
            }
        }
    }

    /// Moves up to `n` body bytes from the buffer, or else from one read of the connection,
    /// into `out`; returns how many of the `n` are still to come.
    async fn read_data(&mut self, out: &mut SecretBuf, n: u64) -> Result<u64, ()> {
        if self.buf.is_empty() && self.read_more().await.map_err(|_| ())? == 0 {
            return Err(());
        }
        let take = usize::try_from(n).unwrap_or(usize::MAX).min(self.buf.len());
        let bytes = self.buf.unread().get(..take).ok_or(())?;
        out.extend_from_slice(bytes);
        self.buf.consume(take);
        Ok(n - take as u64)
    }

    /// Reads one line (without its line ending), at most `max` bytes, and consumes it.
    async fn read_line(&mut self, max: usize) -> Result<Vec<u8>, ()> {
        loop {
            // A line of `max` bytes ends within `max + 2` (CR LF).
            let window = self
                .buf
                .unread()
                .get(..max + 2)
                .unwrap_or(self.buf.unread());
            if let Some(end) = window.iter().position(|b| *b == b'\n') {
                let line = window.get(..end).ok_or(())?;
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.len() > max {
                    return Err(());
                }
                let line = line.to_vec();
                self.buf.consume(end + 1);
                return Ok(line);
            }
            if window.len() > max + 1 || self.read_more().await.map_err(|_| ())? == 0 {
                return Err(());
            }
        }
    }

    /// Reads a chunk-size line. Its extensions are skipped, but their bytes count: a body may
    /// carry at most [`MAX_CHUNK_OVERHEAD`] bytes of them beyond the bytes of its data (as Go
    /// limits them since CVE-2023-39326), so a client cannot make the server read without end.
    async fn read_chunk_size(&mut self, data_so_far: usize) -> Result<u64, ()> {
        let line = self.read_line(MAX_CHUNK_LINE).await?;
        self.chunk_lines = self.chunk_lines.saturating_add(line.len());
        if self.chunk_lines > MAX_CHUNK_OVERHEAD.saturating_add(data_so_far) {
            return Err(());
        }
        parse_chunk_size(&line).ok_or(())
    }

    /// The CR LF after a chunk's data: exactly these two bytes (as Go), so that a bare LF
    /// cannot end a chunk here and its CR be taken as data.
    async fn expect_crlf(&mut self) -> Result<(), ()> {
        while self.buf.len() < 2 {
            if self.read_more().await.map_err(|_| ())? == 0 {
                return Err(());
            }
        }
        if self.buf.unread().starts_with(b"\r\n") {
            self.buf.consume(2);
            Ok(())
        } else {
            Err(())
        }
    }

    async fn read_trailers(&mut self) -> Result<(), ()> {
        let mut total = 0usize;
        loop {
            let line = self.read_line(MAX_TRAILERS).await?;
            if line.is_empty() {
                return Ok(());
            }
            total += line.len();
            if total > MAX_TRAILERS {
                return Err(());
            }
        }
    }

    /// After the handler: drains what it left of a small body. False when the connection
    /// cannot serve another request.
    async fn finish_body(&mut self) -> bool {
        match self.body {
            BodyState::Done => return true,
            BodyState::Broken => return false,
            // The client waits for `100 Continue` before it sends the body, or does not:
            // the next bytes cannot be told apart.
            _ if self.expect_continue => return false,
            BodyState::Length(n) if n > MAX_DRAIN => return false,
            _ => {}
        }
        let mut sink = SecretBuf::new();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, self.read_body(&mut sink, MAX_DRAIN));
        matches!(Box::pin(drained).await, Ok(Ok(())))
    }

    /// Closes after a reply to a request whose body was not read: ends the sending side, then
    /// reads and discards what the client still sends for a while (as Go's server does), so
    /// that closing with unread bytes does not reset the connection before the client has read
    /// the reply.
    async fn linger(&mut self, write_timeout: Duration) {
        if tokio::time::timeout(write_timeout, self.io.shutdown())
            .await
            .is_err()
        {
            return;
        }
        let deadline = Instant::now() + LINGER;
        let mut sink = [0u8; 1024];
        let mut total = 0usize;
        while total < MAX_LINGER_BYTES {
            match tokio::time::timeout_at(deadline, self.io.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => total += n,
                _ => break,
            }
        }
        sink.zeroize();
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let write = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        match tokio::time::timeout(self.write_timeout, write).await {
            Ok(result) => result,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    /// A bare error reply for a request that could not be parsed (Go's texts).
    async fn write_error(&mut self, status: StatusCode) -> io::Result<()> {
        let reason = status.canonical_reason().unwrap_or("");
        let body = format!("{} {reason}", status.as_u16());
        let reply = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            status.as_u16(),
            body.len()
        );
        self.write_all(reply.as_bytes()).await
    }

    /// Writes a reply. Ok(false) when the connection must close after it (a streamed reply).
    async fn write_response(
        &mut self,
        response: Response<Body>,
        version: Version,
        is_head: bool,
        close: bool,
    ) -> io::Result<bool> {
        let (parts, mut body) = response.into_parts();
        let status = parts.status;
        let body_allowed = !(status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED);
        let no_body = is_head || !body_allowed;
        let known_len = body.size_hint().exact();
        let streamed = !no_body && known_len.is_none();
        let http10 = version == Version::HTTP_10;

        let mut out =
            SecretBuf::with_capacity(256 + usize::try_from(known_len.unwrap_or(0)).unwrap_or(0));
        write_status_line(&mut out, version, status);
        write_headers(&mut out, &parts.headers);
        if !parts.headers.contains_key(header::DATE) {
            out.extend_from_slice(b"Date: ");
            write_http_date(&mut out);
            out.extend_from_slice(b"\r\n");
        }
        // A HEAD reply carries the length of the body a GET would get, when there is one
        // (Go: when the handler wrote a body).
        if body_allowed
            && !streamed
            && !parts.headers.contains_key(header::CONTENT_LENGTH)
            && let Some(len) = known_len
            && (!is_head || len > 0)
        {
            out.extend_from_slice(format!("Content-Length: {len}\r\n").as_bytes());
        }
        if streamed && !http10 {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        if close || streamed {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if http10 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");

        if no_body {
            drop(body);
            self.write_all(&out).await?;
            return Ok(true);
        }
        if !streamed {
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame;
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                }
            }
            self.write_all(&out).await?;
            return Ok(true);
        }
        self.write_all(&out).await?;
        drop(out);
        Box::pin(self.stream_body(body, !http10)).await?;
        Ok(false)
    }

    /// Sends a body of unknown length as it is produced, until it ends or the client goes away
    /// (a log stream ends only so).
    async fn stream_body(&mut self, mut body: Body, chunked: bool) -> io::Result<()> {
        let mut probe = [0u8; 64];
        loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                // Bytes or EOF from the client while it streams: it sent another request or
                // went away. Either way the stream ends.
                _ = self.io.read(&mut probe) => return Ok(()),
            };
            let Some(frame) = frame else { break };
            let Ok(frame) = frame;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            if chunked {
                let mut chunk = Vec::with_capacity(data.len() + 12);
                chunk.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                chunk.extend_from_slice(&data);
                chunk.extend_from_slice(b"\r\n");
                self.write_all(&chunk).await?;
            } else {
                self.write_all(&data).await?;
            }
        }
        if chunked {
            self.write_all(b"0\r\n\r\n").await?;
        }
        Ok(())
    }
}

/// The body of a request being served, read from its connection.
struct H1Body<'a, IO> {
    conn: &'a mut Conn<IO>,
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> RequestBody for H1Body<'_, IO> {
    fn read_to_end<'a>(self, limit: u64) -> BodyFuture<'a>
    where
        Self: 'a,
    {
        Box::pin(self.read(limit))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin + Send> H1Body<'_, IO> {
    async fn read(self, limit: u64) -> Result<SecretBuf, ()> {
        let mut out = SecretBuf::new();
        if let BodyState::Length(n) = self.conn.body {
            if n > limit {
                return Err(());
            }
            // One allocation for a body of known length: no copies left behind by growth.
            out.reserve(usize::try_from(n).map_err(|_| ())?);
        }
        self.conn.read_body(&mut out, limit).await?;
        Ok(out)
    }
}

/// The read buffer of a connection: `data[start..]` is unread. Holds no allocation when empty
/// and released; wiped before it is freed or grown.
#[derive(Default)]
struct InBuf {
    data: Vec<u8>,
    start: usize,
}

impl InBuf {
    fn unread(&self) -> &[u8] {
        self.data.get(self.start..).unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.data.len() - self.start
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.data.len());
        if self.start == self.data.len() {
            self.data.zeroize();
            self.start = 0;
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.data.extend_from_slice(bytes);
    }

    /// Makes room for at least `n` more bytes after the unread ones. Growing moves the unread
    /// bytes to a new allocation and wipes the old one (`Vec`'s own growth would free it as is).
    fn reserve(&mut self, n: usize) {
        if self.data.capacity() - self.data.len() >= n {
            return;
        }
        let unread = self.len();
        let mut grown = Vec::with_capacity((unread + n).max(self.data.capacity()));
        grown.extend_from_slice(self.unread());
        let mut old = std::mem::replace(&mut self.data, grown);
        old.zeroize();
        self.start = 0;
    }

    /// Wipes and frees the buffer.
    fn release(&mut self) {
        self.data.zeroize();
        self.data = Vec::new();
        self.start = 0;
    }
}

impl Drop for InBuf {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

/// Parses a complete request head at the start of `bytes`: the head and its length, None when
/// more bytes are needed, or the status to refuse it with.
fn parse_head(bytes: &[u8]) -> Result<Option<(Head, usize)>, StatusCode> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        }
        Err(httparse::Error::Version) => return Err(version_error(bytes)),
        Err(_) => return Err(StatusCode::BAD_REQUEST),
    };
    let bad = StatusCode::BAD_REQUEST;
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes()).map_err(|_| bad)?;
    let uri: http::Uri = req.path.unwrap_or_default().parse().map_err(|_| bad)?;
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut map = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| bad)?;
        map.append(name, value);
    }

    let framing = body_framing(&map, version)?;
    let keep_alive = match version {
        Version::HTTP_10 => has_token(&map, header::CONNECTION, "keep-alive"),
        _ => !has_token(&map, header::CONNECTION, "close"),
    };
    let expect_continue = version == Version::HTTP_11
        && map
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));

    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = map;
    Ok(Some((
        Head {
            parts,
            framing,
            keep_alive,
            expect_continue,
        },
        len,
    )))
}

/// The status for a request line whose version httparse refused: 505 when it names an HTTP
/// version (`HTTP/2.0`), 400 when it is malformed (`GET /a b HTTP/1.1`, `http/1.1`), as Go.
fn version_error(bytes: &[u8]) -> StatusCode {
    let line = bytes
        .iter()
        .position(|b| *b == b'\n')
        .and_then(|end| bytes.get(..end))
        .unwrap_or(bytes);
    let line = line.strip_suffix(b"\r").unwrap_or(line).trim_ascii_start();
    let mut parts = line.split(|b| *b == b' ');
    let version = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(version), None) => version,
        _ => return StatusCode::BAD_REQUEST,
    };
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The body framing of a request (RFC 9112 §6.3), refusing what could be read two ways.
fn body_framing(map: &HeaderMap, version: Version) -> Result<BodyState, StatusCode> {
    let bad = StatusCode::BAD_REQUEST;
    if map.contains_key(header::TRANSFER_ENCODING) {
        if map.contains_key(header::CONTENT_LENGTH) || version == Version::HTTP_10 {
            return Err(bad);
        }
        // Only `chunked`, once: Go implements no other transfer coding either. An empty
        // field or list element is no coding this server knows (Go: 501 as well), never a
        // field to ignore.
        let codings: Vec<&[u8]> = map
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .collect();
        return match codings.as_slice() {
            [c] if c.eq_ignore_ascii_case(b"chunked") => Ok(BodyState::ChunkSize),
            _ => Err(StatusCode::NOT_IMPLEMENTED),
        };
    }
    let mut length: Option<u64> = None;
    for value in map.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) || part.len() > 19 {
                return Err(bad);
            }
            let n: u64 = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(bad)?;
            if length.is_some_and(|l| l != n) {
                return Err(bad);
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) | None => BodyState::Done,
        Some(n) => BodyState::Length(n),
    })
}

/// Whether a comma-separated header (e.g. `Connection`) lists `token`.
fn has_token(map: &HeaderMap, name: HeaderName, token: &str) -> bool {
    map.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// A chunk-size line: hex digits, optionally followed by `;extensions`.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let end = line.iter().position(|b| *b == b';').unwrap_or(line.len());
    // Trailing whitespace is allowed, leading is not (as Go).
    let digits = line.get(..end)?.trim_ascii_end();
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

fn write_status_line(out: &mut SecretBuf, version: Version, status: StatusCode) {
    out.extend_from_slice(if version == Version::HTTP_10 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    match status.canonical_reason() {
        Some(reason) => out.extend_from_slice(reason.as_bytes()),
        // Go's text for a code without a standard reason.
        None => out.extend_from_slice(format!("status code {}", status.as_u16()).as_bytes()),
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the handler's headers with Go's canonical capitalisation (`Content-Type`), leaving
/// out the connection-level ones this module sets itself.
fn write_headers(out: &mut SecretBuf, headers: &HeaderMap) {
    for (name, value) in headers {
        if name == header::CONNECTION || name == header::TRANSFER_ENCODING {
            continue;
        }
        let mut upper = true;
        for b in name.as_str().bytes() {
            out.extend_from_slice(&[if upper { b.to_ascii_uppercase() } else { b }]);
            upper = b == b'-';
        }
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends the current time as an HTTP date, formatted at most once a second per thread.
fn write_http_date(out: &mut SecretBuf) {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};
    thread_local! {
        static CACHE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.0 != second {
            *cache = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(cache.1.as_bytes());
    });
}

/// Entry points for the fuzz targets (`fuzz/fuzz_targets/h1_*.rs`): not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a request head at the start of `bytes` as a connection does: `Ok(Some(n))` for a
    /// complete head of `n` bytes, `Ok(None)` when more bytes are needed, `Err(status)` for a
    /// head the connection refuses.
    pub fn parse_head(bytes: &[u8]) -> Result<Option<usize>, u16> {
        match super::parse_head(bytes) {
            Ok(Some((_, len))) => Ok(Some(len)),
            Ok(None) => Ok(None),
            Err(status) => Err(status.as_u16()),
        }
    }
}

#[cfg(test)]
mod tests;

/// What an idle connection costs is mostly the size of its task, which is the size of the
/// [`serve`] future plus the TLS stream: this guards it against growing unnoticed (rare paths
/// are boxed for it).
#[cfg(test)]
mod size {
    use super::*;

    struct Empty;

    impl Service for Empty {
        fn call<'a, B: RequestBody + 'a>(&'a self, _req: Request<B>) -> ReplyFuture<'a> {
            Box::pin(async { Response::new(http_body_util::Full::new(Bytes::new()).boxed()) })
        }
    }

    #[test]
    fn a_connection_task_stays_small() {
        let (io, _peer) = tokio::io::duplex(64);
        let token = CancellationToken::new();
        let limits = Limits {
            idle: Duration::from_secs(1),
            header: Duration::from_secs(1),
            max_head: 1024,
            write: Duration::from_secs(1),
        };
        let io_size = std::mem::size_of_val(&io);
        let future = serve(io, limits, &token, &Empty);
        let size = std::mem::size_of_val(&future) - io_size;
        eprintln!("serve future without its I/O object: {size} bytes");
        assert!(size <= 2048, "the serve future grew to {size} bytes");
    }
}
