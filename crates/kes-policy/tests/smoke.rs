//! Bounded randomized smoke test of the pattern matcher and `Policy::is_allowed`, the stable
//! counterpart of the `policy_match` fuzz target (fuzz/fuzz_targets/policy_match.rs): a fixed,
//! seeded stream of random and mutated (pattern, path) pairs, checked against a reference
//! implementation of the documented semantics. A failure prints the seed and the case, so it
//! reproduces exactly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use kes_policy::{Policy, matches};

const SEED: u64 = 0x6b65_735f_706f_6c31;
const CASES: usize = 20_000;

/// SplitMix64: small, seedable, and good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The documented semantics (crates/kes-policy/src/pattern.rs), character by character:
/// `*` any run of non-`/` characters, a trailing `*` any rest at all, `?` one non-`/`
/// character, anything else itself, the empty pattern nothing. `row[j]`: the pattern read so
/// far matches the first `j` path characters.
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

/// One mutation of `s`, always on character boundaries (the inputs are `&str`).
fn mutate(rng: &mut Rng, s: &str, other: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let at = |rng: &mut Rng, len: usize| rng.below(len + 1);
    match rng.below(6) {
        // Insert a piece.
        0 => {
            let i = at(rng, chars.len());
            let piece: Vec<char> = rng.pick(PIECES).chars().collect();
            chars.splice(i..i, piece);
        }
        // Delete a run.
        1 if !chars.is_empty() => {
            let i = rng.below(chars.len());
            let j = (i + 1 + rng.below(4)).min(chars.len());
            chars.drain(i..j);
        }
        // Replace a character.
        2 if !chars.is_empty() => {
            let i = rng.below(chars.len());
            chars[i] = rng.pick(PIECES).chars().next().unwrap();
        }
        // Truncate.
        3 => chars.truncate(at(rng, chars.len())),
        // Splice with another seed: head of one, tail of the other.
        4 => {
            let o: Vec<char> = other.chars().collect();
            chars.truncate(at(rng, chars.len()));
            let k = at(rng, o.len());
            chars.extend_from_slice(&o[k..]);
        }
        // Flip a bit of a character, keeping it a valid scalar value.
        _ if !chars.is_empty() => {
            let i = rng.below(chars.len());
            let flipped = u32::from(chars[i]) ^ (1 << rng.below(8));
            chars[i] = char::from_u32(flipped).unwrap_or('?');
        }
        _ => chars.push('*'),
    }
    chars.into_iter().collect()
}

fn input(rng: &mut Rng) -> String {
    if rng.below(4) == 0 {
        return random_text(rng);
    }
    let mut s = rng.pick(SEEDS).to_string();
    for _ in 0..=rng.below(3) {
        let other = *rng.pick(SEEDS);
        s = mutate(rng, &s, other);
    }
    s
}

#[test]
fn matcher_agrees_with_reference_on_mutated_inputs() {
    let mut rng = Rng(SEED);
    let mut matched = 0;
    for case in 0..CASES {
        let pattern = input(&mut rng);
        // Half of the paths derive from the pattern itself, so that matches are common.
        let path = if rng.below(2) == 0 {
            mutate(&mut rng, &pattern.replace(['*', '?'], "x"), "")
        } else {
            input(&mut rng)
        };
        let got = matches(&pattern, &path);
        assert_eq!(
            got,
            reference(&pattern, &path),
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
    let mut rng = Rng(SEED ^ 1);
    let mut allowed_count = 0;
    for case in 0..CASES / 2 {
        let allow: Vec<String> = (0..rng.below(4)).map(|_| input(&mut rng)).collect();
        let deny: Vec<String> = (0..rng.below(3)).map(|_| input(&mut rng)).collect();
        let path = match allow.first() {
            Some(p) if rng.below(2) == 0 => p.replace(['*', '?'], "a"),
            _ => input(&mut rng),
        };
        let policy = Policy::new(allow.clone(), deny.clone());
        let want =
            !deny.iter().any(|p| reference(p, &path)) && allow.iter().any(|p| reference(p, &path));
        let allowed = policy.is_allowed(&path);
        assert_eq!(
            allowed, want,
            "seed {SEED:#x} case {case}: allow {allow:?} deny {deny:?} path {path:?}"
        );
        allowed_count += usize::from(allowed);
    }
    assert!(allowed_count > 0, "no case was allowed");
}
