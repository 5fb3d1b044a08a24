//! The KES server: mutual-TLS HTTPS front-end over a keystore, wire-compatible with MinIO KES.
//!
//! The crate holds the request pipeline ([`http`]), the route table ([`routes`]), TLS and client
//! identities ([`tls`]), the configuration snapshot swapped on reload ([`state`]), metrics and
//! logs. It never writes key material anywhere but to the keystore, and never logs request or
//! response bodies.
#![deny(unsafe_code)]

// What the program uses: the server, its setup, process hardening, the logs' format and levels,
// and the TLS proxy and peer types the fuzz targets drive. The rest is the server's own.
mod error;
mod handlers;
mod held;
mod http;
pub mod logs;
mod metrics;
mod policies;
pub mod process;
pub mod proxy;
mod routes;
mod schedule;
pub mod server;
pub mod setup;
mod state;
mod telemetry;
mod timeouts;
pub mod tls;

pub(crate) use error::ApiError;
pub use server::Server;
pub use setup::{Prepared, Settings, SetupError};

/// The server's version string.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
