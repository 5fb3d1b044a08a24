//! Bounded randomized smoke test of the name and pattern rules (`kes_crypto::names`, spec
//! §2.3), the stable counterpart of the `names` fuzz target (fuzz/fuzz_targets/names.rs): a
//! fixed, seeded stream of random and mutated strings, checked against a reference written
//! straight from the rule's wording (`kes_testutil::reference`). A failure prints the seed and
//! the string.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use kes_crypto::names::{MAX_LEN, is_valid_name, is_valid_pattern};
use kes_testutil::{Rng, reference};

const SEED: u64 = 0x6b65_735f_6e61_6d65;
const CASES: usize = 20_000;

const SEEDS: &[&str] = &[
    "",
    "*",
    "_",
    "-",
    "__",
    "_*",
    "-*",
    "**",
    "a",
    "my-key",
    "my-key_1",
    "my-*",
    "demo-*",
    "m*y",
    "a.b",
    "a/b",
    "ключ",
    "é*",
    "key\u{212a}",
    "my-app-key-2024",
];

/// Characters around the edges of the alphabet, multi-byte ones, and `*`.
const CHARS: &[char] = &[
    'a', 'Z', '0', '9', '_', '-', '*', '.', '/', ' ', '\0', '`', '{', '@', '[', ':', 'é', 'K',
    '\u{212a}', '🔑',
];

fn input(rng: &mut Rng) -> String {
    let mut chars: Vec<char> = rng.pick(SEEDS).chars().collect();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 => {
                let i = rng.below(chars.len() + 1);
                chars.insert(i, *rng.pick(CHARS));
            }
            1 if !chars.is_empty() => {
                let i = rng.below(chars.len());
                chars[i] = *rng.pick(CHARS);
            }
            2 if !chars.is_empty() => {
                chars.remove(rng.below(chars.len()));
            }
            // Grow around the length limit.
            3 => {
                let target = MAX_LEN - 2 + rng.below(5);
                while chars.len() < target {
                    chars.push(*rng.pick(&['x', 'y', '_', '-']));
                }
            }
            _ => chars.push(*rng.pick(CHARS)),
        }
    }
    chars.into_iter().collect()
}

#[test]
fn name_rules_agree_with_reference() {
    let mut rng = Rng::new(SEED);
    let (mut names, mut patterns) = (0, 0);
    for case in 0..CASES {
        let s = input(&mut rng);
        let name = is_valid_name(&s);
        let pattern = is_valid_pattern(&s);
        assert_eq!(
            name,
            reference::is_valid_name(&s),
            "seed {SEED:#x} case {case}: is_valid_name({s:?})"
        );
        assert_eq!(
            pattern,
            reference::is_valid_pattern(&s),
            "seed {SEED:#x} case {case}: is_valid_pattern({s:?})"
        );
        // Every name is also a pattern (the one listing exactly that name).
        assert!(!name || pattern, "name {s:?} is not a pattern");
        names += usize::from(name);
        patterns += usize::from(pattern && !name);
    }
    // The stream holds names, patterns that are not names, and neither.
    assert!(
        names > CASES / 20 && patterns > CASES / 50 && names + patterns < CASES * 9 / 10,
        "{names} names, {patterns} other patterns"
    );
}
