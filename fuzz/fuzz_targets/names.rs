//! Fuzzes the key, policy and identity name rules (`kes_crypto::names`, spec §2.3) against a
//! reference written straight from the rule's wording, character by character
//! (`kes_testutil::reference`).
//!
//! The input is read as text (lossily); the whole text, and each of its lines, is checked.

#![no_main]

use kes_crypto::names::{is_valid_name, is_valid_pattern};
use kes_testutil::reference;
use libfuzzer_sys::fuzz_target;

fn check(s: &str) {
    let name = is_valid_name(s);
    let pattern = is_valid_pattern(s);
    assert_eq!(name, reference::is_valid_name(s), "is_valid_name({s:?})");
    assert_eq!(
        pattern,
        reference::is_valid_pattern(s),
        "is_valid_pattern({s:?})"
    );
    // Every name is also a pattern that lists exactly that name.
    if name {
        assert!(pattern, "name {s:?} is not a pattern");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check(&text);
    for line in text.split('\n') {
        check(line);
    }
});
