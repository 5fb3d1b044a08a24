//! Fuzzes the key, policy and identity name rules (`kes_crypto::names`, spec §2.3) against a
//! reference written straight from the rule's wording, character by character.
//!
//! The input is read as text (lossily); the whole text, and each of its lines, is checked.

#![no_main]

use kes_crypto::names::{MAX_LEN, is_valid_name, is_valid_pattern};
use libfuzzer_sys::fuzz_target;

/// One character of the name alphabet `0-9 A-Z a-z _ -`.
fn in_alphabet(c: char) -> bool {
    matches!(c, '0'..='9' | 'A'..='Z' | 'a'..='z' | '_' | '-')
}

/// "1 to 80 bytes of `0-9 A-Z a-z _ -`, does not start or end with `-`, and is not `_`."
fn reference_name(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let (Some(&first), Some(&last)) = (chars.first(), chars.last()) else {
        return false; // empty
    };
    s.len() <= MAX_LEN
        && s != "_"
        && first != '-'
        && last != '-'
        && chars.iter().all(|&c| in_alphabet(c))
}

/// "The same rules, except that it may end in one `*`; the empty pattern and `*` are valid."
/// The `-` rules apply to the pattern as written, so `demo-*` is valid and `-*` is not.
fn reference_pattern(s: &str) -> bool {
    if s.is_empty() || s == "*" {
        return true;
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    s.len() <= MAX_LEN
        && s != "_"
        && chars.first() != Some(&'-')
        && chars.last() != Some(&'-')
        && chars
            .iter()
            .enumerate()
            .all(|(i, &c)| in_alphabet(c) || (c == '*' && i + 1 == n))
}

fn check(s: &str) {
    let name = is_valid_name(s);
    let pattern = is_valid_pattern(s);
    assert_eq!(name, reference_name(s), "is_valid_name({s:?})");
    assert_eq!(pattern, reference_pattern(s), "is_valid_pattern({s:?})");
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
