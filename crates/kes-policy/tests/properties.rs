//! Property tests of the pattern matcher against a direct, quadratic reference implementation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use kes_policy::{Policy, matches};
use proptest::prelude::*;

/// A dynamic-programming reading of the pattern language, written for clarity, not speed:
/// `m[i][j]` is whether the first `i` pattern characters match the first `j` path characters.
fn reference(pattern: &str, path: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    if p.is_empty() {
        return false;
    }
    let mut m = vec![vec![false; s.len() + 1]; p.len() + 1];
    m[0][0] = true;
    for i in 1..=p.len() {
        let trailing = i == p.len();
        for j in 0..=s.len() {
            m[i][j] = match p[i - 1] {
                '*' if trailing => (0..=j).any(|k| m[i - 1][k]),
                '*' => m[i - 1][j] || (j > 0 && s[j - 1] != '/' && m[i][j - 1]),
                '?' => j > 0 && s[j - 1] != '/' && m[i - 1][j - 1],
                c => j > 0 && s[j - 1] == c && m[i - 1][j - 1],
            };
        }
    }
    m[p.len()][s.len()]
}

/// Short strings over an alphabet that makes collisions between patterns and paths likely.
fn path_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![Just('/'), Just('a'), Just('b'), Just('-'), Just('é')],
        0..12,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn pattern_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('/'),
            Just('a'),
            Just('b'),
            Just('é'),
            Just('*'),
            Just('?')
        ],
        0..10,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn agrees_with_reference(pattern in pattern_like(), path in path_like()) {
        prop_assert_eq!(matches(&pattern, &path), reference(&pattern, &path));
    }

    #[test]
    fn agrees_with_reference_on_any_text(pattern in "\\PC{0,8}", path in "\\PC{0,8}") {
        prop_assert_eq!(matches(&pattern, &path), reference(&pattern, &path));
    }

    #[test]
    fn literal_pattern_matches_itself(path in "[^*?]{1,40}") {
        prop_assert!(matches(&path, &path));
    }

    #[test]
    fn any_string_matches_itself_as_a_pattern(path in "\\PC{1,40}") {
        // `*` and `?` in the path are matched by themselves as wildcards too.
        prop_assert!(matches(&path, &path));
    }

    #[test]
    fn trailing_star_matches_every_extension(prefix in "[^*?]{0,20}", rest in "\\PC{0,20}") {
        let pattern = format!("{prefix}*");
        let path = format!("{prefix}{rest}");
        prop_assert!(matches(&pattern, &path));
    }

    #[test]
    fn trailing_star_is_a_prefix_test(prefix in "[a/]{0,6}", path in "[a/]{0,8}") {
        let pattern = format!("{prefix}*");
        prop_assert_eq!(matches(&pattern, &path), path.starts_with(&prefix));
    }

    #[test]
    fn inner_star_never_crosses_a_slash(
        head in "[ab]{0,4}",
        tail in "[ab]{1,4}",
        middle in "[ab]{0,4}",
    ) {
        let pattern = format!("/{head}*{tail}");
        let path = format!("/{head}{middle}/{tail}");
        prop_assert!(!matches(&pattern, &path));
    }

    #[test]
    fn empty_pattern_matches_nothing(path in "\\PC{0,20}") {
        prop_assert!(!matches("", &path));
    }

    #[test]
    fn policy_is_deny_wins(
        allow in proptest::collection::vec(pattern_like(), 0..4),
        deny in proptest::collection::vec(pattern_like(), 0..4),
        path in path_like(),
    ) {
        let policy = Policy::new(allow.clone(), deny.clone());
        let want = !deny.iter().any(|p| reference(p, &path))
            && allow.iter().any(|p| reference(p, &path));
        prop_assert_eq!(policy.is_allowed(&path), want);
    }
}
