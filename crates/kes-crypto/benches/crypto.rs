//! Micro-benchmarks of the per-request crypto of KES, in instruction counts (gungraun runs each
//! benchmark once under valgrind's callgrind, so the figures are exact and do not depend on
//! how busy the machine is).
//!
//! * `seal`: what `/v1/key/generate` and `/v1/key/encrypt` do with the master key: derive the
//!   per-message key from a fresh IV and seal a 32-byte data key bound to a context.
//! * `open`: what `/v1/key/decrypt` does: parse the ciphertext, derive, open.
//! * `record_parse`: reading a stored key record (base64 protobuf) into a usable key, the cost
//!   of a key cache miss apart from the keystore read.
//! * `hmac`: `/v1/key/hmac` of a 32-byte message.
//! * `data_key`: drawing a fresh 32-byte data key from the OS (part of every generate).
//! * `ring_open_search` / `ring_open_named`: decrypting with a rotated key of 1, 10 and 100
//!   versions a data key sealed by its oldest version, without a `version` (every newer version
//!   is tried first: the worst case) and with it.
//!
//! Run with `cargo bench -p kes-crypto --bench crypto` (needs valgrind and `gungraun-runner`
//! 0.20.0 on PATH: `cargo install gungraun-runner --version 0.20.0 --locked`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use gungraun::{library_benchmark, library_benchmark_group, main};
use kes_crypto::{KeyRing, KeyType, KeyVersion, Plaintext, SecretKey};

/// The associated data of a typical request: an object store's bucket and object name.
const CONTEXT: &[u8] = b"{\"bench-bucket\":\"objects/2024/05/photo-0001.jpg\"}";
const DATA_KEY: [u8; 32] = [0x5a; 32];

fn key(ty: KeyType) -> SecretKey {
    SecretKey::generate(ty).unwrap()
}

fn sealed(ty: KeyType) -> (SecretKey, Vec<u8>) {
    let key = key(ty);
    let ciphertext = key.encrypt(&DATA_KEY, CONTEXT).unwrap();
    (key, ciphertext)
}

fn record() -> Vec<u8> {
    let version = KeyVersion::generate(
        KeyType::Aes256,
        "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22".to_owned(),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    version.encode().unwrap().as_bytes().to_vec()
}

fn hmac_record() -> KeyVersion {
    KeyVersion::parse(&record()).unwrap()
}

#[library_benchmark]
#[bench::aes256(args = (KeyType::Aes256), setup = key)]
#[bench::chacha20(args = (KeyType::ChaCha20), setup = key)]
fn seal(key: SecretKey) -> (Vec<u8>, SecretKey) {
    // Inputs are returned with the result so that their drops are not counted.
    (
        black_box(
            key.encrypt(black_box(&DATA_KEY), black_box(CONTEXT))
                .unwrap(),
        ),
        key,
    )
}

#[library_benchmark]
#[bench::aes256(args = (KeyType::Aes256), setup = sealed)]
#[bench::chacha20(args = (KeyType::ChaCha20), setup = sealed)]
fn open(input: (SecretKey, Vec<u8>)) -> (Plaintext, (SecretKey, Vec<u8>)) {
    let opened = input
        .0
        .decrypt(black_box(&input.1), black_box(CONTEXT))
        .unwrap();
    (black_box(opened), input)
}

#[library_benchmark]
#[bench::protobuf(setup = record)]
fn record_parse(stored: Vec<u8>) -> (KeyVersion, Vec<u8>) {
    (
        black_box(KeyVersion::parse(black_box(&stored)).unwrap()),
        stored,
    )
}

#[library_benchmark]
#[bench::msg32(setup = hmac_record)]
fn hmac(key: KeyVersion) -> ([u8; 32], KeyVersion) {
    (black_box(key.hmac(black_box(&DATA_KEY)).unwrap()), key)
}

/// A rotated key and a ciphertext of its oldest version.
type RingInput = (KeyRing, Vec<u8>);

/// A key with `versions` AES-256 versions and a data key sealed by its oldest one, the worst
/// case of decrypting without a version (every newer version is tried first).
fn ring(versions: usize) -> RingInput {
    let id = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22";
    let now = time::OffsetDateTime::now_utc();
    let mut ring = KeyRing::single(KeyVersion::generate(KeyType::Aes256, id.into(), now).unwrap());
    let ciphertext = ring
        .get(1)
        .unwrap()
        .key()
        .encrypt(&DATA_KEY, CONTEXT)
        .unwrap();
    for _ in 1..versions {
        ring = ring
            .rotate(KeyVersion::generate(KeyType::Aes256, id.into(), now).unwrap())
            .unwrap();
    }
    (ring, ciphertext)
}

#[library_benchmark]
#[bench::versions_1(args = (1), setup = ring)]
#[bench::versions_10(args = (10), setup = ring)]
#[bench::versions_100(args = (100), setup = ring)]
fn ring_open_search(input: RingInput) -> (Option<(u32, Plaintext)>, RingInput) {
    let opened = input.0.decrypt(black_box(&input.1), black_box(CONTEXT));
    assert!(opened.is_some());
    (black_box(opened), input)
}

#[library_benchmark]
#[bench::versions_1(args = (1), setup = ring)]
#[bench::versions_10(args = (10), setup = ring)]
#[bench::versions_100(args = (100), setup = ring)]
fn ring_open_named(input: RingInput) -> (Plaintext, RingInput) {
    let opened = input
        .0
        .get(black_box(1))
        .unwrap()
        .key()
        .decrypt(black_box(&input.1), black_box(CONTEXT))
        .unwrap();
    (black_box(opened), input)
}

#[library_benchmark]
fn data_key() -> Plaintext {
    black_box(kes_crypto::random_data_key().unwrap())
}

library_benchmark_group!(
    name = crypto;
    benchmarks = seal, open, record_parse, hmac, ring_open_search, ring_open_named, data_key
);

main!(library_benchmark_groups = crypto);
