//! Authorization policies of the KES server: which API paths an identity may call.
//!
//! A [`Policy`] is a list of `allow` and a list of `deny` path patterns; a request path is
//! allowed when no deny pattern and at least one allow pattern matches it (deny wins, and the
//! default is deny). A [`PolicySet`] names policies and assigns each identity at most one of
//! them. See [`matches()`] for the pattern language and kes-spec §6 for the original rules.
//!
//! This crate is pure: it performs no I/O, spawns nothing, has no async code and depends on no
//! other crate of the workspace, so that it can be audited, fuzzed and property-tested alone.
//! It never panics on any pattern or path.

#![forbid(unsafe_code)]

mod pattern;
mod policy;
mod set;

pub use pattern::matches;
pub use policy::Policy;
pub use set::{PolicySet, PolicySetError};
