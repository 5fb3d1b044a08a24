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
    _event: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("endpoint", &self.endpoint)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> EventStream<T> {
    pub(crate) fn new(response: reqwest::Response, endpoint: String) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buf: Vec::new(),
            endpoint,
            done: false,
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
        serde_json::from_slice(line).map_err(|e| Error::Decode {
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

impl<T: DeserializeOwned> Stream for EventStream<T> {
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
