//! Streams of log events (`GET /v1/log/audit`, `GET /v1/log/error`): NDJSON, one event per
//! line, for as long as the connection stays open.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::error::error_from_reqwest;

/// Longest event line accepted (KES events are well below 1 KiB).
const MAX_LINE: usize = 1 << 20;

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A stream of decoded log events. Use [`EventStream::next`], or the
/// [`futures_util::Stream`] implementation.
///
/// The stream ends (`None`) when the server closes the connection. A line that does not
/// decode yields an [`Error::Decode`] and the stream goes on; a broken connection yields
/// one error and ends the stream. Dropping the stream closes the connection.
pub struct EventStream<T> {
    body: ByteStream,
    buf: Vec<u8>,
    endpoint: String,
    done: bool,
    parse: fn(&[u8]) -> Result<T, String>,
    _event: PhantomData<fn() -> T>,
}

/// Decodes one NDJSON line as JSON.
pub(crate) fn json_line<T: DeserializeOwned>(line: &[u8]) -> Result<T, String> {
    serde_json::from_slice(line).map_err(|e| e.to_string())
}

/// Keeps one line as it was sent (for `kes log --json`, which copies the stream verbatim).
pub(crate) fn raw_line(line: &[u8]) -> Result<String, String> {
    String::from_utf8(line.to_vec()).map_err(|_| "log line is not UTF-8".to_owned())
}

impl<T> fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("endpoint", &self.endpoint)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<T> EventStream<T> {
    pub(crate) fn new(
        response: reqwest::Response,
        endpoint: String,
        parse: fn(&[u8]) -> Result<T, String>,
    ) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buf: Vec::new(),
            endpoint,
            done: false,
            parse,
            _event: PhantomData,
        }
    }

    /// The next event; `None` once the server has closed the stream.
    pub async fn next(&mut self) -> Option<Result<T, Error>> {
        futures_util::StreamExt::next(self).await
    }

    /// The endpoint (`https://host:port`) the stream comes from.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn decode(&self, line: &[u8]) -> Result<T, Error> {
        (self.parse)(line).map_err(|e| Error::Decode {
            endpoint: self.endpoint.clone(),
            reason: format!("invalid log event: {e}"),
        })
    }

    /// Removes and returns the next complete line (without its `\n`), if any.
    fn take_line(&mut self) -> Option<Vec<u8>> {
        let end = self.buf.iter().position(|b| *b == b'\n')?;
        let mut line: Vec<u8> = self.buf.drain(..=end).collect();
        line.pop();
        Some(line)
    }
}

impl<T> Stream for EventStream<T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(line) = this.take_line() {
                if line.trim_ascii().is_empty() {
                    continue;
                }
                return Poll::Ready(Some(this.decode(&line)));
            }
            if this.done {
                if this.buf.trim_ascii().is_empty() {
                    this.buf.clear();
                    return Poll::Ready(None);
                }
                let rest = std::mem::take(&mut this.buf);
                return Poll::Ready(Some(this.decode(&rest)));
            }
            if this.buf.len() > MAX_LINE {
                this.done = true;
                this.buf.clear();
                return Poll::Ready(Some(Err(Error::Decode {
                    endpoint: this.endpoint.clone(),
                    reason: format!("log event longer than {MAX_LINE} bytes"),
                })));
            }
            match this.body.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.buf.extend_from_slice(&chunk),
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    this.buf.clear();
                    return Poll::Ready(Some(Err(error_from_reqwest(&e, &this.endpoint))));
                }
                Poll::Ready(None) => this.done = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(chunks: Vec<Result<Vec<u8>, std::io::Error>>) -> EventStream<kes_api::ErrorEvent> {
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
        let response = reqwest::Response::from(http::Response::new(body));
        EventStream::new(response, "https://127.0.0.1:7373".into(), json_line)
    }

    #[tokio::test]
    async fn lines_are_reassembled_across_chunks() {
        let mut s = stream_of(vec![
            Ok(b"{\"mess".to_vec()),
            Ok(b"age\":\"a\"}\n\n  \n{\"message\":".to_vec()),
            Ok(b"\"b\"}\r\n".to_vec()),
        ]);
        assert_eq!(s.next().await.unwrap().unwrap().message, "a");
        assert_eq!(s.next().await.unwrap().unwrap().message, "b");
        assert!(s.next().await.is_none());
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn an_endless_line_is_an_error_not_unbounded_memory() {
        let chunk = vec![b'x'; 64 * 1024];
        let chunks = (0..40).map(|_| Ok(chunk.clone())).collect();
        let mut s = stream_of(chunks);
        let err = s.next().await.unwrap().unwrap_err();
        assert!(matches!(err, Error::Decode { .. }), "{err:?}");
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn a_broken_connection_ends_the_stream_with_an_error() {
        let mut s = stream_of(vec![
            Ok(b"{\"message\":\"a\"}\n{\"mess".to_vec()),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            )),
        ]);
        assert_eq!(s.next().await.unwrap().unwrap().message, "a");
        let err = s.next().await.unwrap().unwrap_err();
        assert!(err.is_network(), "{err:?}");
        assert!(s.next().await.is_none());
        assert_eq!(s.endpoint(), "https://127.0.0.1:7373");
    }
}
