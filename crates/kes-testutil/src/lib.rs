//! Test support for the KES workspace, shared by the bounded randomized smoke tests
//! (`crates/*/tests/*smoke.rs`) and the cargo-fuzz targets (`fuzz/fuzz_targets`).
//!
//! * [`Rng`]: a small seeded PRNG (SplitMix64), so that every smoke test replays the same
//!   stream of cases and a failure reproduces from the printed seed;
//! * [`ByteMutator`] and [`mutate_text`]: the input mutators (bit flips, inserted tokens,
//!   deleted and repeated runs, truncation, splicing with another input);
//! * [`reference`](mod@reference): small reference implementations, written straight from
//!   the wording of the rules, that the real implementations are checked against: the policy
//!   pattern matcher (kes-spec §6) and the name and listing-pattern rules (kes-spec §2.3).
//!
//! This crate must never be a dependency of production code: it is test support, it is not
//! published, and its reference implementations favour being obviously right over being fast
//! (the pattern matcher takes quadratic time). It depends on nothing beyond std.

#![forbid(unsafe_code)]

mod mutate;
pub mod reference;
mod rng;

pub use mutate::{ByteMutator, ByteOp, mutate_text};
pub use rng::Rng;
