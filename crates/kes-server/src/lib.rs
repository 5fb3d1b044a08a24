//! The KES server: mutual-TLS HTTPS front-end over a keystore, wire-compatible with MinIO KES.
//!
//! The crate holds the request pipeline ([`http`]), the route table ([`routes`]), TLS and client
//! identities ([`tls`]), the configuration snapshot swapped on reload ([`state`]), metrics and
//! logs. It never writes key material anywhere but to the keystore, and never logs request or
//! response bodies.
#![deny(unsafe_code)]

pub mod error;
mod handlers;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod policies;
pub mod process;
pub mod proxy;
pub mod routes;
pub mod server;
pub mod setup;
pub mod state;
pub mod telemetry;
pub mod timeouts;
pub mod tls;

pub use error::ApiError;
pub use server::Server;
pub use setup::{Prepared, Settings, SetupError};

/// The server's version string.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
