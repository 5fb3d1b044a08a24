//! Integration tests: the real `kes` binary on 127.0.0.1, driven over HTTPS with mutual TLS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::unwrap_in_result,
    missing_docs
)]

mod harness;

mod api;
mod attacks;
mod auth;
mod aws;
mod cli;
mod cloud;
mod crash;
mod enterprise;
mod faults;
mod limits;
mod logs;
mod metrics;
mod migrate;
mod proxy;
mod replay;
mod rotation;
mod runtime;
mod server;
mod vault;
