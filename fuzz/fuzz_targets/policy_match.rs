//! Fuzzes the policy pattern matcher (`kes_policy::matches`) and `Policy::is_allowed`
//! against a reference implementation of the documented pattern language (spec §6,
//! crates/kes-policy/src/pattern.rs; the reference is `kes_testutil::reference::matches`).
//!
//! The input is read as text (lossily) and split at a position chosen by its first byte: the
//! head is the pattern, the tail the path. For the policy, the head is also split into lines;
//! a line starting with `!` is a deny pattern (without the `!`), any other line an allow one.

#![no_main]

use kes_policy::{Policy, matches};
use kes_testutil::reference::matches as reference;
use libfuzzer_sys::fuzz_target;

/// Skip the quadratic reference above this many (pattern × path) character pairs, so that long
/// inputs keep the fuzzer fast; the matcher itself still runs on them.
const REFERENCE_BUDGET: usize = 1 << 20;

fn within_budget(pattern: &str, path: &str) -> bool {
    (pattern.chars().count() + 1).saturating_mul(path.chars().count() + 1) <= REFERENCE_BUDGET
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut at = usize::from(split).min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let (pattern, path) = text.split_at(at);

    // Both roles: every string is a pattern and a path.
    for (pattern, path) in [(pattern, path), (path, pattern)] {
        let got = matches(pattern, path);
        if within_budget(pattern, path) {
            assert_eq!(
                got,
                reference(pattern, path),
                "matches({pattern:?}, {path:?})"
            );
        }
    }

    let (mut allow, mut deny) = (Vec::new(), Vec::new());
    for line in pattern.split('\n') {
        match line.strip_prefix('!') {
            Some(d) => deny.push(d.to_owned()),
            None => allow.push(line.to_owned()),
        }
    }
    let policy = Policy::new(allow.clone(), deny.clone());
    let allowed = policy.is_allowed(path);
    if allow.iter().chain(&deny).all(|p| within_budget(p, path)) {
        let want =
            !deny.iter().any(|p| reference(p, path)) && allow.iter().any(|p| reference(p, path));
        assert_eq!(allowed, want, "allow {allow:?} deny {deny:?} path {path:?}");
    }
    // Deny wins: adding the path itself as a deny pattern (an exact pattern when it has no
    // wildcard) must refuse it.
    if !path.is_empty() && !path.contains(['*', '?']) {
        let mut deny = deny;
        deny.push(path.to_owned());
        assert!(!Policy::new(allow, deny).is_allowed(path));
    }
});
