//! Bounded randomized smoke test of every request body decoder, the stable counterpart of the
//! `request_bodies` fuzz target (fuzz/fuzz_targets/request_bodies.rs): a fixed, seeded stream
//! of random bytes and mutated real bodies. No decoder may panic, every error has a message,
//! and every body that decodes re-encodes (with the client's serializer) to a body that
//! decodes to the same request. A failure prints the seed and the input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use kes_api::{
    DecodeError, decode_decrypt_request, decode_encrypt_request, decode_generate_request,
    decode_hmac_request, decode_import_request, decode_policy_assign_request,
    decode_policy_write_request, encode_json, encode_json_secret,
};
use kes_testutil::{ByteMutator, ByteOp, Rng};

const SEED: u64 = 0x6b65_735f_6170_6931;
const CASES: usize = 20_000;

/// Real bodies: from the recorded interop vectors (import, encrypt, generate, hmac, decrypt,
/// with and without context, malformed), the admin routes, and Go `encoding/json` quirks.
const SEEDS: &[&str] = &[
    r#"{"key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","cipher":"AES256"}"#,
    r#"{"key":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","cipher":"DES"}"#,
    r#"{"plaintext":"","context":"Sli3kd9q8djN"}"#,
    r#"{"plaintext":"e9XUfkRvzsKj2BFzEOV4","context":"FsbpyS2ZvzWMLgcYgizkfKjHQQfmbLDk1Q=="}"#,
    r#"{}"#,
    r#"{"context":"IlBhISDDKwKDK4uP76fz4A=="}"#,
    r#"{"message":"aGVsbG8="}"#,
    r#"{"ciphertext":"1+/gkoeZDjf2B9h96N/KfEV2wLTcBzUHaLBBM2JXQ97wBORazIUkY3Nh4HE="}"#,
    r#"{"ciphertext":"zii4ZIkJgkg8f5xmpwZgvJXXdVE4oUSknnoJiaeGIHpZG4m7XJbvk116q2NY","context":"PDRMQR4="}"#,
    r#"{"ciphertext":"zii4ZIkJgkg8fw=="}"#,
    "{not json",
    r#"{"plaintext":"!!notbase64"}"#,
    r#"{"allow":["/v1/key/create/my-app*","/v1/key/generate/my-app*"],"deny":["/v1/key/delete/*"]}"#,
    r#"{"allow":null,"deny":["/v1/status",null]}"#,
    r#"{"identity":"3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22"}"#,
    "{\"PLAINTEXT\":\"aGk=\",\"Context\":null,\"\\u212aey\":\"AAAA\",\"version\":\"v1\",\
     \"plaintext\":\"aGVsbG8=\",\"unknown\":{\"a\":[1,2,{\"b\":null}]}} trailing",
    r#"{"ciphertext":"AQ\u0049D\r\n","context":"\/w=="}"#,
    "null",
    " [1,2,3]",
    r#"{"CIPHER":"ChaCha20","KEY":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=","Identity":"x","ALLOW":["*"],"MESSAGE":""}"#,
];

/// JSON fragments to insert: structure, escapes, field names of every request, base64.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u",
    "\\u0000",
    "\\ud800",
    "\\\"",
    "null",
    "true",
    "1e999",
    "-0",
    "\"key\":",
    "\"cipher\":",
    "\"plaintext\":",
    "\"context\":",
    "\"version\":",
    "\"ciphertext\":",
    "\"message\":",
    "\"allow\":",
    "\"deny\":",
    "\"identity\":",
    "\"\u{212a}EY\":",
    "\"AAAA\"",
    "\"AA==\"",
    "\"A===\"",
    "=",
    "\r\n",
    " ",
    "\u{0}",
    "\u{ff}",
    "é",
    "[[[[[[[[",
];

/// The edits of a body (the order is part of the seeded stream).
const MUTATOR: ByteMutator<'static, &str> = ByteMutator {
    ops: &[
        ByteOp::FlipBit,
        ByteOp::InsertToken,
        ByteOp::DeleteRun(8),
        ByteOp::Truncate,
        ByteOp::Splice,
        // Fields given twice, nested values.
        ByteOp::RepeatRun(16),
        ByteOp::InsertByte,
    ],
    tokens: TOKENS,
};

fn input(rng: &mut Rng) -> Vec<u8> {
    if rng.below(8) == 0 {
        let n = rng.below(64);
        return rng.bytes(n);
    }
    let mut data = rng.pick(SEEDS).as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        let other = rng.pick(SEEDS).as_bytes();
        data = MUTATOR.mutate(rng, data, other);
    }
    data
}

fn check_error<T>(result: &Result<T, DecodeError>) {
    if let Err(e) = result {
        assert!(!e.to_string().is_empty(), "{e:?} has an empty message");
    }
}

/// Decodes `data` with every decoder; returns how many accepted it.
fn check(data: &[u8]) -> usize {
    let mut accepted = 0;

    let r = decode_import_request(data);
    check_error(&r);
    if let Ok(req) = r {
        accepted += 1;
        let again = decode_import_request(&encode_json_secret(&req)).unwrap();
        assert_eq!(*again.key, *req.key);
        assert_eq!(again.cipher, req.cipher);
    }

    let r = decode_encrypt_request(data);
    check_error(&r);
    if let Ok(req) = r {
        accepted += 1;
        let again = decode_encrypt_request(&encode_json_secret(&req)).unwrap();
        assert_eq!(*again.plaintext, *req.plaintext);
        assert_eq!(again.context, req.context);
        assert_eq!(again.version, req.version);
    }

    let r = decode_generate_request(data);
    check_error(&r);
    if let Ok(req) = r {
        accepted += 1;
        assert_eq!(decode_generate_request(&encode_json(&req)).unwrap(), req);
    }

    let r = decode_decrypt_request(data);
    check_error(&r);
    if let Ok(req) = r {
        accepted += 1;
        assert_eq!(decode_decrypt_request(&encode_json(&req)).unwrap(), req);
    }

    let r = decode_hmac_request(data);
    check_error(&r);
    if let Ok(req) = r {
        accepted += 1;
        let again = decode_hmac_request(&encode_json_secret(&req)).unwrap();
        assert_eq!(*again.message, *req.message);
        assert_eq!(again.version, req.version);
    }

    let r = decode_policy_write_request(data);
    check_error(&r);
    if let Ok(req) = r {
        accepted += 1;
        assert_eq!(
            decode_policy_write_request(&encode_json(&req)).unwrap(),
            req
        );
    }

    let r = decode_policy_assign_request(data);
    check_error(&r);
    if let Ok(req) = r {
        accepted += 1;
        assert_eq!(
            decode_policy_assign_request(&encode_json(&req)).unwrap(),
            req
        );
    }

    accepted
}

#[test]
fn seeds_decode_as_recorded() {
    // The seeds are what the mutations start from: most must decode somewhere, or the
    // mutated stream would test little beyond the JSON syntax check.
    let accepted = SEEDS.iter().filter(|s| check(s.as_bytes()) > 0).count();
    assert!(accepted >= SEEDS.len() - 3, "only {accepted} seeds decode");
}

#[test]
fn decoders_never_panic_and_round_trip() {
    let mut rng = Rng::new(SEED);
    let mut accepted = 0;
    for case in 0..CASES {
        let data = input(&mut rng);
        let outcome = std::panic::catch_unwind(|| check(&data));
        match outcome {
            Ok(n) => accepted += usize::from(n > 0),
            Err(_) => panic!(
                "seed {SEED:#x} case {case}: input {:?}",
                String::from_utf8_lossy(&data)
            ),
        }
    }
    assert!(
        accepted > CASES / 20,
        "only {accepted} of {CASES} mutated bodies decoded"
    );
}
