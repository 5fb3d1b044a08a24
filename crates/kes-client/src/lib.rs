//! A Rust client for KES (key encryption server) and servers compatible with it.
//!
//! It covers every API of the server (spec §2.5), the runtime policy and identity admin
//! APIs of older servers (§3.1) and the audit/error log streams, with the Go SDK's
//! behaviour (spec §11.1):
//!
//! * authentication by mutual TLS, with an API key (`kes:v1:…`, turned into a self-signed
//!   client certificate) or a PEM certificate and key;
//! * server certificates checked against the system's CAs plus any given CA, or not at all
//!   in the explicitly insecure mode ([`ClientBuilder::danger_accept_invalid_certs`]);
//! * typed errors recognised from `(status, message)` exactly as the Go SDK recognises them
//!   ([`Error`]);
//! * per-endpoint retries after network errors and 503 ([`RetryPolicy`]), and failover
//!   between several servers: local endpoints first, then round-robin from a random start,
//!   failing endpoints skipped for 30 s.
//!
//! Plaintexts and data keys come back as `Zeroizing<Vec<u8>>`, and request and response
//! bodies that carry them are held in buffers wiped on drop (buffers inside the HTTP and
//! TLS stacks are outside this crate's control).
//!
//! What this crate must never do: log, print, or put secrets (keys, plaintexts, API keys)
//! into errors or `Debug` output; talk plain HTTP.
//!
//! ```no_run
//! use kes_client::{ApiKey, Client, Error};
//!
//! # async fn demo() -> Result<(), Error> {
//! let api_key = ApiKey::parse("kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw")
//!     .map_err(|e| Error::InvalidCredentials { reason: e.to_string() })?;
//! let client = Client::builder()
//!     .endpoint("127.0.0.1:7373")
//!     .api_key(api_key)
//!     .ca_file("public.crt")
//!     .build()?;
//!
//! match client.create_key("my-key").await {
//!     Ok(()) | Err(Error::KeyExists) => {}
//!     Err(err) => return Err(err),
//! }
//! let dek = client.generate_key("my-key", b"bucket/object").await?;
//! let plaintext = client.decrypt("my-key", &dek.ciphertext, b"bucket/object").await?;
//! assert_eq!(plaintext, dek.plaintext);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod endpoint;
mod error;
mod path;
mod retry;
mod stream;
mod tls;

pub use client::{Client, ClientBuilder};
pub use error::{Error, TlsFailure};
pub use retry::RetryPolicy;
pub use stream::EventStream;

pub use kes_api as api;
pub use kes_crypto::ApiKey;
