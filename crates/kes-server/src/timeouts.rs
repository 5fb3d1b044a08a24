//! Go's `ReadHeaderTimeout` and `IdleTimeout` for HTTP/1.1 connections.
//!
//! hyper's own header timeout starts as soon as it waits for the next request, so it also closes
//! idle keep-alive connections after a few seconds, and pooling clients (MinIO) would pay a new
//! handshake every time. The original server keeps an idle connection for 90 s and gives a
//! request 5 s for its header from its first byte. This wrapper does the same at the byte level:
//! between requests the idle timer runs; the first byte of a request starts the header timer,
//! which stops at the blank line ending the header; writing a response makes the connection
//! idle again. A connection serving a log stream is exempt while it streams.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a keep-alive connection may wait for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a request may take to send its header, from its first byte.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the connection is in the request/response cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request: the idle timer runs.
    Idle,
    /// Reading a request header; `blank` when the current line is so far empty after a
    /// newline (a `\n` then ends the header: `\r\n\r\n` or `\n\n`).
    Head { blank: bool },
    /// Header complete: body and handler are governed by the route timeout.
    Request,
}

/// Per-connection flags shared with the request handlers.
#[derive(Debug, Default)]
pub struct ConnFlags {
    /// A log stream is being served: no idle or header deadline applies.
    pub streaming: AtomicBool,
}

/// An I/O object with the HTTP/1.1 header and idle timeouts; a pass-through when disabled
/// (HTTP/2 connections, which have their own keep-alive pings and stream limits).
pub struct TimedIo<T> {
    io: T,
    enabled: bool,
    phase: Phase,
    armed: bool,
    sleep: Pin<Box<Sleep>>,
    flags: Arc<ConnFlags>,
    idle: Duration,
    header: Duration,
}

impl<T> TimedIo<T> {
    /// Wraps `io`; `enabled` selects the HTTP/1.1 behaviour.
    pub fn new(io: T, enabled: bool, flags: Arc<ConnFlags>) -> Self {
        Self::with_timeouts(io, enabled, flags, IDLE_TIMEOUT, HEADER_TIMEOUT)
    }

    /// Like [`TimedIo::new`] with other timeouts (for tests).
    pub fn with_timeouts(
        io: T,
        enabled: bool,
        flags: Arc<ConnFlags>,
        idle: Duration,
        header: Duration,
    ) -> Self {
        TimedIo {
            io,
            enabled,
            phase: Phase::Idle,
            armed: enabled,
            sleep: Box::pin(tokio::time::sleep(idle)),
            flags,
            idle,
            header,
        }
    }

    /// The wrapped I/O object.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    fn arm(&mut self, after: Duration) {
        self.armed = true;
        self.sleep.as_mut().reset(Instant::now() + after);
    }

    /// Follows the request header through the bytes just read.
    fn on_read(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.phase {
                Phase::Idle => {
                    self.phase = Phase::Head { blank: false };
                    let header = self.header;
                    self.arm(header);
                }
                Phase::Head { mut blank } => {
                    let mut end = None;
                    for (i, b) in rest.iter().enumerate() {
                        match b {
                            b'\n' if blank => {
                                end = Some(i + 1);
                                break;
                            }
                            b'\n' => blank = true,
                            b'\r' => {}
                            _ => blank = false,
                        }
                    }
                    match end {
                        Some(end) => {
                            self.phase = Phase::Request;
                            self.armed = false;
                            rest = rest.get(end..).unwrap_or_default();
                        }
                        None => {
                            self.phase = Phase::Head { blank };
                            rest = &[];
                        }
                    }
                }
                // Body bytes (or a pipelined request, which is read before the reply and so
                // needs no deadline of its own).
                Phase::Request => break,
            }
        }
    }

    fn on_write(&mut self) {
        if self.phase == Phase::Request {
            self.phase = Phase::Idle;
            let idle = self.idle;
            self.arm(idle);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.enabled {
                    let read = buf.filled().get(before..).unwrap_or_default();
                    this.on_read(read);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.enabled
                    && this.armed
                    && !this.flags.streaming.load(Ordering::Relaxed)
                    && this.sleep.as_mut().poll(cx).is_ready()
                {
                    let what = if this.phase == Phase::Idle {
                        "idle"
                    } else {
                        "header read"
                    };
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{what} timeout"),
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.io).poll_write(cx, buf);
        if this.enabled && matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.on_write();
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if this.enabled && matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.on_write();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn pair(idle: u64, header: u64) -> (TimedIo<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (a, b) = tokio::io::duplex(1024);
        let io = TimedIo::with_timeouts(
            a,
            true,
            Arc::new(ConnFlags::default()),
            Duration::from_secs(idle),
            Duration::from_secs(header),
        );
        (io, b)
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_live_until_the_idle_timeout() {
        let (mut server, _client) = pair(90, 5);
        let mut buf = [0u8; 64];
        let started = Instant::now();
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(90));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_header_hits_the_header_timeout() {
        let (mut server, mut client) = pair(90, 5);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = server.read(&mut buf).await.unwrap();
        assert!(n > 0);
        let started = Instant::now();
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_complete_header_stops_the_timer_and_a_reply_restarts_idle() {
        let (mut server, mut client) = pair(90, 5);
        // The end of the header split across reads.
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(server.read(&mut buf).await.unwrap(), 26);
        client.write_all(b"\n").await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 1);
        // Handler time: no deadline while the request is being served.
        let read = tokio::time::timeout(Duration::from_secs(600), server.read(&mut buf)).await;
        assert!(
            read.is_err(),
            "a deadline fired while the request was served"
        );
        server.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        let started = Instant::now();
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(90));
    }

    #[tokio::test(start_paused = true)]
    async fn streaming_connections_are_exempt() {
        let (a, _b) = tokio::io::duplex(1024);
        let flags = Arc::new(ConnFlags::default());
        flags.streaming.store(true, Ordering::Relaxed);
        let mut server = TimedIo::with_timeouts(
            a,
            true,
            flags,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(Duration::from_secs(600), server.read(&mut buf)).await;
        assert!(read.is_err());
    }
}
