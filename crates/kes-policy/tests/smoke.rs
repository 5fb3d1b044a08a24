//! Bounded randomized smoke test of the pattern matcher and `Policy::is_allowed`, the stable
//! counterpart of the `policy_match` fuzz target (fuzz/fuzz_targets/policy_match.rs): a fixed,
//! seeded stream of random and mutated (pattern, path) pairs, checked against a reference
//! implementation of the documented semantics (`kes_testutil::reference`). A failure prints the seed and the case, so it
//! reproduces exactly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use kes_policy::{Policy, matches};
use kes_testutil::{Rng, mutate_text, reference};

const SEED: u64 = 0x6b65_735f_706f_6c31;
const CASES: usize = 20_000;

/// Patterns and paths from real policies (spec §6, the crate's tests, Go KES documentation).
const SEEDS: &[&str] = &[
    "",
    "*",
    "/",
    "/v1/status",
    "/v1/metrics",
    "/v1/key/*",
    "/v1/key/create/my-key",
    "/v1/key/create*",
    "/v1/key/generate/*",
    "/v1/key/generate/",
    "/v1/key/*/my-key",
    "/v1/key/decrypt/my-key",
    "/v1/key/decrypt/x/my-key",
    "/v1/key/decrypt/a*b*c",
    "/v1/key/decrypt/aXbYc",
    "/v1/key/list/app*",
    "/v1/key/encrypt/vec-*",
    "/v1/key/encrypt/vec-secret1",
    "/v1/*/list/*",
    "/v1/policy/list/",
    "/v1/**/x",
    "/v1/key/create/?",
    "/v1/key/create/é",
    "/v1/key/create/e\u{301}",
    "/v1/key/create/[ab]",
    "/v1/key/create/\\*",
    "/v1/identity/self/describe",
    "?*",
];

/// Pieces that make wildcards meet separators and multi-byte characters.
const PIECES: &[&str] = &[
    "*", "?", "/", "**", "*/", "/*", "?/", "a", "b", "-", "é", "ß", "🔑", "\u{212a}", "v1", "key",
];

fn random_text(rng: &mut Rng) -> String {
    let n = rng.below(12);
    (0..n).map(|_| *rng.pick(PIECES)).collect()
}

fn input(rng: &mut Rng) -> String {
    if rng.below(4) == 0 {
        return random_text(rng);
    }
    let mut s = rng.pick(SEEDS).to_string();
    for _ in 0..=rng.below(3) {
        let other = *rng.pick(SEEDS);
        s = mutate_text(rng, &s, other, PIECES);
    }
    s
}

#[test]
fn matcher_agrees_with_reference_on_mutated_inputs() {
    let mut rng = Rng::new(SEED);
    let mut matched = 0;
    for case in 0..CASES {
        let pattern = input(&mut rng);
        // Half of the paths derive from the pattern itself, so that matches are common.
        let path = if rng.below(2) == 0 {
            mutate_text(&mut rng, &pattern.replace(['*', '?'], "x"), "", PIECES)
        } else {
            input(&mut rng)
        };
        let got = matches(&pattern, &path);
        assert_eq!(
            got,
            reference::matches(&pattern, &path),
            "seed {SEED:#x} case {case}: matches({pattern:?}, {path:?})"
        );
        matched += usize::from(got);
    }
    // The generator must exercise both outcomes, or the comparison proves little.
    assert!(
        matched > CASES / 20 && matched < CASES * 19 / 20,
        "{matched} of {CASES} cases matched"
    );
}

#[test]
fn policy_agrees_with_reference_on_mutated_inputs() {
    let mut rng = Rng::new(SEED ^ 1);
    let mut allowed_count = 0;
    for case in 0..CASES / 2 {
        let allow: Vec<String> = (0..rng.below(4)).map(|_| input(&mut rng)).collect();
        let deny: Vec<String> = (0..rng.below(3)).map(|_| input(&mut rng)).collect();
        let path = match allow.first() {
            Some(p) if rng.below(2) == 0 => p.replace(['*', '?'], "a"),
            _ => input(&mut rng),
        };
        let policy = Policy::new(allow.clone(), deny.clone());
        let want = !deny.iter().any(|p| reference::matches(p, &path))
            && allow.iter().any(|p| reference::matches(p, &path));
        let allowed = policy.is_allowed(&path);
        assert_eq!(
            allowed, want,
            "seed {SEED:#x} case {case}: allow {allow:?} deny {deny:?} path {path:?}"
        );
        allowed_count += usize::from(allowed);
    }
    assert!(allowed_count > 0, "no case was allowed");
}
