//! Fuzzes the policy pattern matcher (`kes_policy::matches`) and `Policy::is_allowed`
//! against a reference implementation of the documented pattern language (spec §6,
//! crates/kes-policy/src/pattern.rs).
//!
//! The input is read as text (lossily) and split at a position chosen by its first byte: the
//! head is the pattern, the tail the path. For the policy, the head is also split into lines;
//! a line starting with `!` is a deny pattern (without the `!`), any other line an allow one.

#![no_main]

use kes_policy::{Policy, matches};
use libfuzzer_sys::fuzz_target;

/// Skip the quadratic reference above this many (pattern × path) character pairs, so that long
/// inputs keep the fuzzer fast; the matcher itself still runs on them.
const REFERENCE_BUDGET: usize = 1 << 20;

/// The documented semantics, character by character: `*` any run of non-`/` characters, a
/// trailing `*` any rest at all, `?` one non-`/` character, everything else itself, and the
/// empty pattern nothing. `row[j]` tells whether the pattern read so far matches the first `j`
/// characters of the path.
fn reference(pattern: &str, path: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    if p.is_empty() {
        return false;
    }
    let mut row = vec![false; s.len() + 1];
    row[0] = true;
    for (i, &c) in p.iter().enumerate() {
        let trailing_star = c == '*' && i + 1 == p.len();
        let mut next = vec![false; s.len() + 1];
        for j in 0..=s.len() {
            next[j] = if trailing_star {
                row[..=j].iter().any(|&m| m)
            } else if c == '*' {
                row[j] || (j > 0 && s[j - 1] != '/' && next[j - 1])
            } else if c == '?' {
                j > 0 && s[j - 1] != '/' && row[j - 1]
            } else {
                j > 0 && s[j - 1] == c && row[j - 1]
            };
        }
        row = next;
    }
    row[s.len()]
}

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

    let got = matches(pattern, path);
    if within_budget(pattern, path) {
        assert_eq!(
            got,
            reference(pattern, path),
            "matches({pattern:?}, {path:?})"
        );
    }
    // Swapped roles: every string is a pattern and a path.
    let swapped = matches(path, pattern);
    if within_budget(path, pattern) {
        assert_eq!(
            swapped,
            reference(path, pattern),
            "matches({path:?}, {pattern:?})"
        );
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
