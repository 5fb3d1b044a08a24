//! Fuzzes `SecretKey::decrypt` (every ciphertext format of spec §4.4) with fixed keys of both
//! types, and checks that sealing the input as a plaintext opens again.
//!
//! The first input byte selects how many of the following bytes form the context (associated
//! data); the rest is the ciphertext.

#![no_main]

use std::sync::LazyLock;

use kes_crypto::{KeyType, SecretKey};
use libfuzzer_sys::fuzz_target;

static KEYS: LazyLock<[SecretKey; 2]> = LazyLock::new(|| {
    [
        SecretKey::new(KeyType::Aes256, [0; 32]),
        SecretKey::new(KeyType::ChaCha20, [0; 32]),
    ]
});

fuzz_target!(|data: &[u8]| {
    let (context, ciphertext) = match data.split_first() {
        Some((&n, rest)) => rest.split_at(usize::from(n).min(rest.len())),
        None => (&[][..], data),
    };
    for key in KEYS.iter() {
        let _ = key.decrypt(ciphertext, context);
        let sealed = key.encrypt(ciphertext, context).expect("sealing succeeds");
        let opened = key
            .decrypt(&sealed, context)
            .expect("a sealed message opens");
        assert_eq!(opened.expose_secret(), ciphertext);
    }
});
