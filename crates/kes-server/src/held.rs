//! The TCP stream under a connection's TLS layer, holding back what the end of the handshake
//! writes until it can travel with the first reply.
//!
//! When a TLS 1.3 handshake ends the server sends the client a session ticket. tokio-rustls
//! writes it as the handshake future completes, in a system call of its own, and on loopback
//! that write also wakes the client for a message it does not wait for. [`Held`] holds writes
//! during the handshake:
//!
//! - while the handshake runs, writes are buffered, flushes do nothing, and whatever is held is
//!   written before a read that would block: every handshake flight goes out exactly when the
//!   server starts to wait for the client's answer, as before;
//! - after a TLS 1.3 handshake ([`Held::defer`]) what is left (the ticket: TLS 1.3 sends
//!   nothing else after the client's `Finished`, and no client waits for a ticket) goes out with
//!   the next write in the same system call, or on flush or shutdown, as OpenSSL sends its
//!   tickets by default;
//! - after a TLS 1.2 handshake ([`Held::release`]), whose last flight may be the server's own
//!   `Finished` that the client waits for, what is held still goes out before any read that
//!   would block.
//!
//! Only TLS records pass through here, never plaintext.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Most bytes held at once. A handshake's flights are a few KiB; beyond this, writes go out.
const MAX_HELD: usize = 64 * 1024;

/// A stream that holds writes while a TLS handshake runs; see the module documentation.
#[derive(Debug)]
pub struct Held<IO> {
    io: IO,
    held: Vec<u8>,
    /// New writes are buffered (the handshake runs).
    holding: bool,
    /// What is held is written before a read that would block.
    write_before_wait: bool,
}

impl<IO> Held<IO> {
    /// Wraps `io`, holding writes from the start.
    pub fn new(io: IO) -> Self {
        Held {
            io,
            held: Vec::new(),
            holding: true,
            write_before_wait: true,
        }
    }

    /// Stops holding new writes (after a TLS 1.2 handshake, or a failed one). What is already
    /// held goes out with the next write, before the next read that would block, or on flush.
    pub fn release(&mut self) {
        self.holding = false;
    }

    /// Stops holding new writes after a TLS 1.3 handshake. What is already held (the session
    /// ticket) goes out with the next write, or on flush or shutdown, but not before a read:
    /// the client does not wait for it.
    pub fn defer(&mut self) {
        self.holding = false;
        self.write_before_wait = false;
    }

    /// Whether writes are being held.
    #[cfg(test)]
    fn holding(&self) -> bool {
        self.holding
    }

    /// Bytes held and not yet written.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.len()
    }

    /// Buffers `bufs` if writes are held and there is room; returns how many bytes it took.
    fn hold(&mut self, bufs: &[IoSlice<'_>]) -> Option<usize> {
        if !self.holding {
            return None;
        }
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if self.held.len().saturating_add(len) > MAX_HELD {
            return None;
        }
        for buf in bufs {
            self.held.extend_from_slice(buf);
        }
        Some(len)
    }
}

impl<IO: AsyncWrite + Unpin> Held<IO> {
    /// Writes out everything held.
    fn poll_write_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.held.is_empty() {
            return Poll::Ready(Ok(()));
        }
        while !self.held.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.held))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.held.drain(..n.min(self.held.len()));
        }
        // Free the buffer: most connections never hold anything again.
        self.held = Vec::new();
        Poll::Ready(Ok(()))
    }

    /// Writes `bufs` behind what is held, in one system call where the stream allows; returns
    /// how many bytes of `bufs` were written.
    fn poll_write_behind(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            if self.held.is_empty() {
                return Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
            }
            let mut all = Vec::with_capacity(bufs.len() + 1);
            all.push(IoSlice::new(&self.held));
            all.extend(bufs.iter().map(|b| IoSlice::new(b)));
            let n = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &all))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let held = self.held.len();
            if n > held {
                self.held = Vec::new();
                return Poll::Ready(Ok(n - held));
            }
            // Only held bytes went out (all of them, or some): go on with the rest.
            self.held.drain(..n);
            if self.held.is_empty() {
                self.held = Vec::new();
            }
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Held<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Poll::Ready(result) = Pin::new(&mut this.io).poll_read(cx, buf) {
            return Poll::Ready(result);
        }
        // About to wait for the peer, which may be waiting for what is held. The read is
        // registered for wakeup already; a write that cannot finish registers too.
        if this.write_before_wait
            && let Poll::Ready(Err(err)) = this.poll_write_held(cx)
        {
            return Poll::Ready(Err(err));
        }
        Poll::Pending
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Held<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let bufs = [IoSlice::new(buf)];
        if let Some(n) = this.hold(&bufs) {
            return Poll::Ready(Ok(n));
        }
        if this.held.is_empty() {
            return Pin::new(&mut this.io).poll_write(cx, buf);
        }
        this.poll_write_behind(cx, &bufs)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(n) = this.hold(bufs) {
            return Poll::Ready(Ok(n));
        }
        this.poll_write_behind(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.holding {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_write_held(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_held(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

    /// A [`Held`] stream (still holding) and the peer's end of a pipe of `capacity` bytes.
    fn pipe(capacity: usize) -> (Held<DuplexStream>, DuplexStream) {
        let (near, far) = tokio::io::duplex(capacity);
        (Held::new(near), far)
    }

    #[tokio::test]
    async fn held_writes_go_out_before_a_read_waits() {
        let (mut held, mut far) = pipe(1 << 16);
        held.write_all(b"flight").await.unwrap();
        held.flush().await.unwrap();
        assert_eq!(held.held(), 6, "a flush while holding writes nothing");
        // The peer answers only once it has the flight: the read must send it first.
        let peer = tokio::spawn(async move {
            let mut got = [0u8; 6];
            far.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"flight");
            far.write_all(b"answer").await.unwrap();
            far
        });
        let mut answer = [0u8; 6];
        held.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"answer");
        assert_eq!(held.held(), 0);
        peer.await.unwrap();
    }

    #[tokio::test]
    async fn what_is_held_at_release_goes_out_with_the_next_write() {
        let (mut held, mut far) = pipe(1 << 16);
        held.write_all(b"ticket;").await.unwrap();
        held.release();
        assert!(!held.holding());
        // A read that finds data ready does not need to send what is held.
        far.write_all(b"request").await.unwrap();
        let mut request = [0u8; 7];
        held.read_exact(&mut request).await.unwrap();
        assert_eq!(held.held(), 7);
        held.write_all(b"reply").await.unwrap();
        assert_eq!(held.held(), 0);
        held.flush().await.unwrap();
        let mut got = [0u8; 12];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ticket;reply", "held bytes first, in order");
        // Once released, writes are not held.
        held.write_all(b"more").await.unwrap();
        assert_eq!(held.held(), 0);
    }

    #[tokio::test]
    async fn after_defer_a_read_that_waits_sends_nothing_and_the_next_write_sends_all() {
        let (mut held, mut far) = pipe(1 << 16);
        held.write_all(b"ticket;").await.unwrap();
        held.defer();
        // The read waits for the request without sending the ticket.
        let mut request = [0u8; 7];
        let read = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            held.read_exact(&mut request),
        )
        .await;
        assert!(read.is_err(), "nothing to read yet");
        assert_eq!(held.held(), 7, "a waiting read sends nothing after defer");
        far.write_all(b"request").await.unwrap();
        held.read_exact(&mut request).await.unwrap();
        held.write_all(b"reply").await.unwrap();
        assert_eq!(held.held(), 0);
        let mut got = [0u8; 12];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ticket;reply");
    }

    #[tokio::test]
    async fn flush_and_shutdown_write_what_is_held() {
        let (mut held, mut far) = pipe(1 << 16);
        held.write_all(b"alert").await.unwrap();
        held.release();
        held.flush().await.unwrap();
        let mut got = [0u8; 5];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"alert");

        let (mut held, mut far) = pipe(1 << 16);
        held.write_all(b"bye").await.unwrap();
        held.defer();
        held.shutdown().await.unwrap();
        let mut all = Vec::new();
        far.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"bye");
    }

    #[tokio::test]
    async fn it_holds_no_more_than_its_limit() {
        let (mut held, mut far) = pipe(4 * MAX_HELD);
        let big = vec![7u8; MAX_HELD - 10];
        held.write_all(&big).await.unwrap();
        assert_eq!(held.held(), MAX_HELD - 10);
        // This one does not fit: it goes out behind what is held, and nothing stays held.
        held.write_all(&[8u8; 100]).await.unwrap();
        assert_eq!(held.held(), 0);
        let mut got = vec![0u8; MAX_HELD + 90];
        far.read_exact(&mut got).await.unwrap();
        assert!(got[..MAX_HELD - 10].iter().all(|&b| b == 7));
        assert!(got[MAX_HELD - 10..].iter().all(|&b| b == 8));
    }

    #[tokio::test]
    async fn a_slow_peer_gets_every_byte_in_order() {
        // A pipe much smaller than what is written: writes behind held bytes come back partial
        // and pending, and nothing may be lost, doubled or reordered.
        let (mut held, mut far) = pipe(7);
        held.write_all(b"0123456789").await.unwrap();
        held.release();
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            far.read_to_end(&mut all).await.unwrap();
            all
        });
        let mut expected = b"0123456789".to_vec();
        for i in 0..200u32 {
            let chunk = format!("[{i}]");
            held.write_all(chunk.as_bytes()).await.unwrap();
            expected.extend_from_slice(chunk.as_bytes());
        }
        held.shutdown().await.unwrap();
        drop(held);
        assert_eq!(reader.await.unwrap(), expected);
    }
}
