//! Go's `ReadHeaderTimeout` and `IdleTimeout` for HTTP/1.1 connections, and a write timeout.
//!
//! The original server keeps an idle keep-alive connection for 90 s (pooling clients such as
//! MinIO would otherwise pay a new handshake for every burst) and gives a request 5 s for its
//! header from its first byte. `kes_h1` applies them to HTTP/1.1, the server applies the idle
//! timeout (`limits.idle_timeout`) to HTTP/2 as well; a connection serving a log stream is
//! exempt while it streams. HTTP/2 keep-alive pings do not count as activity.

use std::time::Duration;

/// How long a keep-alive connection may wait for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a request may take to send its header, from its first byte.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one write of a reply may stall before the connection is closed (a client that
/// stopped reading).
pub const WRITE_TIMEOUT: Duration = IDLE_TIMEOUT;
