//! Fuzzes a whole HTTP/1.1 connection of the server (`kes-h1`): the input is what a client
//! sends (request heads, bodies framed by Content-Length or chunked encoding, pipelined
//! requests, garbage); the handler reads every body (up to 64 KiB) and answers with its length.
//! The connection must end (the client's end is closed after the input), never panic, and
//! write only well-formed replies: each starts with a status line.

#![no_main]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use kes_h1::{Body, Limits, ReplyFuture, RequestBody, Service};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

struct ReadsBodies;

impl Service for ReadsBodies {
    fn call<'a, B: RequestBody + 'a>(&'a self, req: http::Request<B>) -> ReplyFuture<'a> {
        Box::pin(async move {
            let text = match req.into_body().read_to_end(64 * 1024).await {
                Ok(body) => format!("{} bytes", body.len()),
                Err(()) => "bad body".to_owned(),
            };
            let body: Body = http_body_util::Full::new(Bytes::from(text)).boxed();
            http::Response::new(body)
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let limits = Limits {
            idle: Duration::from_secs(5),
            header: Duration::from_secs(5),
            max_head: 16 * 1024,
            write: Duration::from_secs(5),
        };
        let token = CancellationToken::new();
        let serve = kes_h1::serve(server, limits, &token, &ReadsBodies);
        let talk = async {
            let _ = client.write_all(data).await;
            let _ = client.shutdown().await;
            let mut out = Vec::new();
            let _ = client.read_to_end(&mut out).await;
            out
        };
        let ((), out) = tokio::join!(serve, talk);
        if !out.is_empty() {
            assert!(out.starts_with(b"HTTP/1."), "reply does not start with a status line");
        }
    });
});
