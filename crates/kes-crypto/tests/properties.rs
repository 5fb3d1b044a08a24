//! Property tests: sealing round-trips, tamper detection, and parsers that never panic on
//! arbitrary input (a bounded, deterministic stand-in for the cargo-fuzz targets in `fuzz/`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kes_crypto::{HmacKey, KeyType, KeyVersion, SecretKey, pem};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use time::macros::datetime;

fn key_type() -> impl Strategy<Value = KeyType> {
    prop_oneof![Just(KeyType::Aes256), Just(KeyType::ChaCha20)]
}

fn flip_bit(bytes: &mut [u8], bit: usize) {
    bytes[bit / 8] ^= 1 << (bit % 8);
}

proptest! {
    #![proptest_config(Config { cases: 128, ..Config::default() })]

    /// Random keys of both types, plaintexts of 0..=64 KiB, random contexts: decrypt inverts
    /// encrypt, the output is raw (`len + 44`), and a flipped bit anywhere in the ciphertext or
    /// the context is detected.
    #[test]
    fn seal_open_round_trip_and_tamper_detection(
        ty in key_type(),
        key in any::<[u8; 32]>(),
        plaintext in vec(any::<u8>(), 0..=64 * 1024),
        context in vec(any::<u8>(), 0..128),
        ciphertext_bit in any::<Index>(),
        context_bit in any::<Index>(),
    ) {
        let key = SecretKey::new(ty, key);
        let ciphertext = key.encrypt(&plaintext, &context).unwrap();
        prop_assert_eq!(ciphertext.len(), plaintext.len() + 44);
        let opened = key.decrypt(&ciphertext, &context).unwrap();
        prop_assert_eq!(opened.expose_secret(), plaintext.as_slice());

        let mut tampered = ciphertext.clone();
        flip_bit(&mut tampered, ciphertext_bit.index(ciphertext.len() * 8));
        prop_assert!(key.decrypt(&tampered, &context).is_err());

        if context.is_empty() {
            prop_assert!(key.decrypt(&ciphertext, &[0]).is_err());
        } else {
            let mut other = context.clone();
            flip_bit(&mut other, context_bit.index(context.len() * 8));
            prop_assert!(key.decrypt(&ciphertext, &other).is_err());
        }
    }

    /// For short messages, every single bit of the ciphertext and of the context is tried.
    #[test]
    fn every_single_bit_flip_is_detected(
        ty in key_type(),
        key in any::<[u8; 32]>(),
        plaintext in vec(any::<u8>(), 0..48),
        context in vec(any::<u8>(), 0..16),
    ) {
        let key = SecretKey::new(ty, key);
        let ciphertext = key.encrypt(&plaintext, &context).unwrap();
        for bit in 0..ciphertext.len() * 8 {
            let mut tampered = ciphertext.clone();
            flip_bit(&mut tampered, bit);
            prop_assert!(key.decrypt(&tampered, &context).is_err(), "ciphertext bit {}", bit);
        }
        for bit in 0..context.len() * 8 {
            let mut other = context.clone();
            flip_bit(&mut other, bit);
            prop_assert!(key.decrypt(&ciphertext, &other).is_err(), "context bit {}", bit);
        }
        // A key of the other type, or another key, does not open it either.
        let other_ty = match ty {
            KeyType::Aes256 => KeyType::ChaCha20,
            KeyType::ChaCha20 => KeyType::Aes256,
        };
        let same_bytes = SecretKey::new(other_ty, *key.expose_secret());
        prop_assert!(same_bytes.decrypt(&ciphertext, &context).is_err());
    }

    /// Encoded records parse back to the same key material and metadata.
    #[test]
    fn key_record_round_trip(
        ty in key_type(),
        key in any::<[u8; 32]>(),
        hmac in any::<[u8; 32]>(),
        seconds in -62_135_596_800i64..253_402_300_799,
        nanos in 0u32..1_000_000_000,
        created_by in "[0-9a-f]{0,64}",
    ) {
        let created_at = time::OffsetDateTime::from_unix_timestamp(seconds).unwrap()
            .replace_nanosecond(nanos).unwrap();
        let record = KeyVersion::new(
            SecretKey::new(ty, key),
            HmacKey::new(hmac),
            created_at,
            created_by.clone(),
        );
        let text = record.encode().unwrap();
        prop_assert!(!text.ends_with('\n'));
        let back = KeyVersion::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(back.algorithm(), ty);
        prop_assert_eq!(back.key().expose_secret(), &key);
        prop_assert_eq!(back.hmac_key().unwrap().expose_secret(), &hmac);
        prop_assert_eq!(back.created_at(), created_at);
        prop_assert_eq!(back.created_by(), created_by.as_str());
        let again = back.encode().unwrap();
        prop_assert_eq!(again.as_str(), text.as_str());
    }
}

/// Valid inputs of every format, as seeds for mutation.
fn seeds() -> Vec<Vec<u8>> {
    let record = KeyVersion::new(
        SecretKey::new(KeyType::Aes256, [7; 32]),
        HmacKey::new([9; 32]),
        datetime!(2024-01-12 10:39:20.886816 UTC),
        "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22".to_owned(),
    );
    let key = SecretKey::new(KeyType::Aes256, [0; 32]);
    vec![
        record.encode().unwrap().as_bytes().to_vec(),
        br#"{"bytes":"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=","algorithm":"AES256-GCM_SHA256","created_at":"2009-11-10T23:00:00Z","created_by":"x"}"#.to_vec(),
        br#"{"aead":"AES-256-GCM-HMAC-SHA-256","iv":"xLxIN3tSCkg2xMafuvwUwg==","nonce":"gu0mGwUkwcvMEoi5","bytes":"WVgRjeIJm3w50C/l+y7y2i6mbNg5NCAqN1zvOYWZKmc="}"#.to_vec(),
        STANDARD.decode("lbFBRVMyNTYtR0NNX1NIQTI1NtkgNjY2ODdhYWRmODYyYmQ3NzZjOGZjMThiOGU5ZjhlMjDEEExv7LAd4oz0SaHZrX5LBufEDEKME1ow1CDfUFrqv8QgJuy7Sw+jVqz99TK1HV851LT3K4mwwDv46TB2ngWkAJQ=").unwrap(),
        key.encrypt(b"sixteen byte key", b"ctx").unwrap(),
        b"-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,fa034ec181f47fcd92533c61b9ce6633\n\nkvZDcwwxJvzFN93HXZEMUfaN+PR7zYkqBZ37wARlVS5KAFtnrXFCc/8rzaTM2exF\nvBv8X24SBmEdCjKOS3RGBA==\n-----END PRIVATE KEY-----\n".to_vec(),
    ]
}

/// Applies `edits` random byte-level edits (replace, insert, delete, truncate) to `input`.
fn mutate(rng: &mut TestRng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let edits = 1 + rng.random_range(0..4usize);
    for _ in 0..edits {
        let pos = if out.is_empty() {
            0
        } else {
            rng.random_range(0..out.len())
        };
        match rng.random_range(0..5u8) {
            0 if !out.is_empty() => out[pos] = rng.random(),
            1 if !out.is_empty() => out[pos] ^= 1 << rng.random_range(0..8u32),
            2 => out.insert(pos, rng.random()),
            3 if !out.is_empty() => {
                out.remove(pos);
            }
            _ => out.truncate(pos),
        }
    }
    out
}

fn exercise(input: &[u8], keys: &[SecretKey]) {
    let _ = KeyVersion::parse(input);
    for key in keys {
        let _ = key.decrypt(input, b"");
        let _ = key.decrypt(input, b"ctx");
    }
    let _ = pem::decode_all(input);
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = kes_crypto::legacy_pem::decrypt(text, b"correct horse battery");
        let _ = kes_crypto::ApiKey::parse(text);
        let _ = kes_crypto::names::is_valid_name(text);
        let _ = kes_crypto::names::is_valid_pattern(text);
    }
    let _ = kes_crypto::identity_of_certificate(input);
    let _ = kes_crypto::api_key_from_pkcs8_der(input);
}

/// A fixed number of arbitrary and mutated inputs to every parser: none may panic.
#[test]
fn parsers_never_panic_on_arbitrary_input() {
    let keys = [
        SecretKey::new(KeyType::Aes256, [0; 32]),
        SecretKey::new(KeyType::ChaCha20, [0; 32]),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 4000,
        ..Config::default()
    });
    runner
        .run(&vec(any::<u8>(), 0..600), |input| {
            exercise(&input, &keys);
            Ok(())
        })
        .unwrap();

    // Deterministic mutation of valid inputs of every format.
    let mut rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[42; 32]);
    let seeds = seeds();
    for i in 0..6000 {
        let seed = &seeds[i % seeds.len()];
        let input = mutate(&mut rng, seed);
        exercise(&input, &keys);
    }
}
