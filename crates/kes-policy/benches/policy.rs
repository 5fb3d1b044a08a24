//! Micro-benchmarks of authorization, in instruction counts (gungraun runs each benchmark once
//! under valgrind's callgrind, so the figures do not depend on how busy the machine is).
//!
//! What every non-admin request pays: find the caller's policy by identity, then match the
//! request path against its deny and allow patterns. The policy is shaped like the one the
//! MinIO documentation gives a MinIO server (prefix patterns on a key-name prefix), plus a few
//! glob patterns of the older style.
//!
//! Run with `cargo bench -p kes-policy --bench policy` (needs valgrind and `gungraun-runner`
//! 0.20.0 on PATH: `cargo install gungraun-runner --version 0.20.0 --locked`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use gungraun::{library_benchmark, library_benchmark_group, main};
use kes_policy::{Policy, PolicySet, matches};

const IDENTITY: &str = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22";

fn minio_policy() -> Policy {
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    Policy::new(
        owned(&[
            "/v1/key/create/minio-*",
            "/v1/key/generate/minio-*",
            "/v1/key/decrypt/minio-*",
            "/v1/key/encrypt/minio-*",
            "/v1/key/describe/minio-*",
            "/v1/key/list/minio-*",
            "/v1/key/*/tenant-?-*",
            "/v1/status",
            "/v1/metrics",
            "/v1/log/audit",
        ]),
        owned(&["/v1/key/*/minio-retired-*", "/v1/key/delete/*"]),
    )
}

/// A set of 100 policies with one identity each; the benchmarked identity is one of them.
fn policy_set() -> PolicySet {
    let entries = (0..100).map(|i| {
        let identity = if i == 42 {
            IDENTITY.to_owned()
        } else {
            format!("{i:064x}")
        };
        (format!("policy-{i}"), minio_policy(), vec![identity])
    });
    PolicySet::new(entries).unwrap()
}

#[library_benchmark]
#[bench::allowed_prefix(args = ("/v1/key/generate/minio-default-key"), setup = with_policy)]
#[bench::allowed_glob(args = ("/v1/key/decrypt/tenant-7-key"), setup = with_policy)]
#[bench::denied_by_deny(args = ("/v1/key/decrypt/minio-retired-2019"), setup = with_policy)]
#[bench::denied_no_allow(args = ("/v1/key/import/other-key"), setup = with_policy)]
fn policy_match(input: (Policy, &'static str)) -> (bool, Policy) {
    let (policy, path) = input;
    let allowed = black_box(policy.is_allowed(black_box(path)));
    // The policy is returned so that its drop is not counted.
    (allowed, policy)
}

fn with_policy(path: &'static str) -> (Policy, &'static str) {
    (minio_policy(), path)
}

#[library_benchmark]
#[bench::generate(setup = policy_set)]
fn identity_then_match(set: PolicySet) -> (bool, PolicySet) {
    let allowed = set
        .policy_of(black_box(IDENTITY))
        .is_some_and(|(_, policy)| {
            policy.is_allowed(black_box("/v1/key/generate/minio-default-key"))
        });
    (black_box(allowed), set)
}

#[library_benchmark]
#[bench::segment_star("/v1/key/*/minio-*", "/v1/key/generate/minio-default-key")]
#[bench::question_marks("/v1/key/decrypt/tenant-?-*", "/v1/key/decrypt/tenant-7-key")]
fn glob(pattern: &str, path: &str) -> bool {
    black_box(matches(black_box(pattern), black_box(path)))
}

library_benchmark_group!(
    name = policy;
    benchmarks = policy_match, identity_then_match, glob
);

main!(library_benchmark_groups = policy);
