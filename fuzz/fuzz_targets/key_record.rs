//! Fuzzes `KeyVersion::parse`, the parser of every value read from a keystore (spec §4.1).
//!
//! Beyond "no panic", it checks that a record that parses and has an HMAC key re-encodes to a
//! record that parses to the same key material and metadata.

#![no_main]

use kes_crypto::KeyVersion;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = KeyVersion::parse(data) else {
        return;
    };
    if record.hmac_key().is_none() {
        assert!(
            record.encode().is_err(),
            "a legacy record cannot be encoded"
        );
        return;
    }
    let text = record
        .encode()
        .expect("a parsed record with HMAC key encodes");
    let again = KeyVersion::parse(text.as_bytes()).expect("an encoded record parses");
    assert_eq!(again.algorithm(), record.algorithm());
    assert_eq!(again.key().expose_secret(), record.key().expose_secret());
    assert_eq!(
        again.hmac_key().map(|k| *k.expose_secret()),
        record.hmac_key().map(|k| *k.expose_secret())
    );
    assert_eq!(again.created_at(), record.created_at());
    assert_eq!(again.created_by(), record.created_by());
    assert_eq!(
        again.encode().expect("encodes again").as_str(),
        text.as_str()
    );
});
