//! The path pattern language of policies.

/// Reports whether the policy `pattern` matches the request `path`.
///
/// The language merges the two generations of KES patterns so that both mean what their
/// authors meant (kes-spec §6):
///
/// * `*` matches any run of characters, including none, inside one path segment (never `/`);
/// * `?` matches exactly one character (one Unicode scalar value) that is not `/`;
/// * a `*` that is the **last** character of the pattern matches any rest of the path,
///   including `/` and the empty string. So `/v1/key/*` allows every key API,
///   `/v1/key/create*` also matches `/v1/key/create/x`, and `/v1/key/generate/*` matches
///   `/v1/key/generate/` (the final-version prefix rule), while `/v1/key/*/my-app` matches
///   `/v1/key/decrypt/my-app` (the older glob rule that the final version silently broke);
/// * every other character, including `[`, `]` and `\`, stands for itself;
/// * the empty pattern matches nothing.
///
/// Comparison is byte-wise and case-sensitive. The matcher is iterative: it uses constant
/// memory and `O(len(pattern) · len(path))` time in the worst case, whatever the input.
pub fn matches(pattern: &str, path: &str) -> bool {
    let p = pattern.as_bytes();
    let s = path.as_bytes();
    if p.is_empty() {
        return false;
    }

    // Positions in `p` and `s`. Whenever `pi` is at a character boundary of the pattern, `si`
    // is at a character boundary of the path: literals are compared byte by byte but always as
    // whole (valid UTF-8) characters, and `?` and `*` consume whole characters.
    let mut pi = 0;
    let mut si = 0;
    // The most recent non-trailing `*`: the pattern position just after it, and the path
    // position up to which it currently extends.
    //
    // Going back to that star alone (never to an earlier one) is enough, as in the classic
    // wildcard algorithm, even though stars cannot cross `/`. Take an earlier star A and the
    // later star B, with the pattern piece M between them. If M contains no `/`, A and M lie
    // in the segment where B starts, so any path prefix a later placement of M would consume
    // is also one that B can consume from the earliest placement. If M contains a `/`, that
    // `/` must meet the first `/` after A's start, so M has only one possible placement.
    let mut star: Option<(usize, usize)> = None;

    loop {
        match p.get(pi) {
            Some(b'*') => {
                if pi + 1 == p.len() {
                    // A trailing star matches whatever is left, `/` included.
                    return true;
                }
                pi += 1;
                star = Some((pi, si));
                continue;
            }
            Some(b'?') => {
                if let Some(n) = segment_char_len(s, si) {
                    pi += 1;
                    si += n;
                    continue;
                }
            }
            Some(&c) => {
                if s.get(si) == Some(&c) {
                    pi += 1;
                    si += 1;
                    continue;
                }
            }
            None => {
                if si == s.len() {
                    return true;
                }
            }
        }

        // Mismatch: let the most recent star swallow one more character, if it can.
        let Some((after_star, end)) = star else {
            return false;
        };
        let Some(n) = segment_char_len(s, end) else {
            return false;
        };
        pi = after_star;
        si = end + n;
        star = Some((after_star, si));
    }
}

/// The length in bytes of the character starting at `s[i]`, if there is one and it is not `/`.
fn segment_char_len(s: &[u8], i: usize) -> Option<usize> {
    let lead = *s.get(i)?;
    let len = match lead {
        b'/' => return None,
        0x00..=0x7F => 1,
        // A continuation byte is never at a character boundary (see `matches`); counting it
        // as one byte keeps the walk safe even so.
        0x80..=0xBF => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xFF => 4,
    };
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::matches;

    /// (pattern, path, expected)
    const TABLE: &[(&str, &str, bool)] = &[
        // The empty pattern never matches.
        ("", "", false),
        ("", "/v1/status", false),
        // Exact patterns.
        ("/v1/status", "/v1/status", true),
        ("/v1/status", "/v1/status/", false),
        ("/v1/status", "/v1/statu", false),
        ("/v1/status", "/V1/status", false),
        ("/v1/status", "", false),
        ("/v1/metrics", "/v1/metrics?x=1", false),
        // A lone `*` matches every path, even the empty one.
        ("*", "", true),
        ("*", "/", true),
        ("*", "/v1/key/create/my-key", true),
        // Trailing `*`: a prefix rule that crosses `/` and matches the empty rest.
        ("/v1/key/*", "/v1/key/create/my-key", true),
        ("/v1/key/*", "/v1/key/list/", true),
        ("/v1/key/*", "/v1/key/", true),
        ("/v1/key/*", "/v1/key", false),
        ("/v1/key/*", "/v1/policy/list/", false),
        ("/v1/key/create*", "/v1/key/create/x", true),
        ("/v1/key/create*", "/v1/key/createX", true),
        ("/v1/key/create*", "/v1/key/create", true),
        ("/v1/key/create*", "/v1/key/creat", false),
        ("/v1/key/generate/*", "/v1/key/generate/", true),
        ("/v1/key/generate/*", "/v1/key/generate", false),
        ("/v1/key/generate/*", "/v1/key/generate/my-key", true),
        ("/v1/key/list/*", "/v1/key/list/", true),
        ("/v1/key/list/*", "/v1/key/list/app*", true),
        ("/v1/status*", "/v1/status", true),
        ("/v1/key/encrypt/vec-*", "/v1/key/encrypt/vec-secret1", true),
        ("/v1/key/encrypt/vec-*", "/v1/key/encrypt/vec/", false),
        // `*` in the middle stays inside one segment.
        ("/v1/key/*/my-key", "/v1/key/decrypt/my-key", true),
        ("/v1/key/*/my-key", "/v1/key/decrypt/x/my-key", false),
        ("/v1/key/*/my-key", "/v1/key//my-key", true),
        ("/v1/key/*/my-key", "/v1/key/decrypt/my-key2", false),
        (
            "/v1/key/*/bucket1-key",
            "/v1/key/generate/bucket1-key",
            true,
        ),
        ("/v1/*/list/*", "/v1/policy/list/", true),
        ("/v1/*/list/*", "/v1/a/b/list/", false),
        ("/v1/key/decrypt/*-key", "/v1/key/decrypt/my-key", true),
        ("/v1/key/decrypt/*-key", "/v1/key/decrypt/a/my-key", false),
        ("/v1/key/decrypt/a*b*c", "/v1/key/decrypt/aXbYc", true),
        ("/v1/key/decrypt/a*b*c", "/v1/key/decrypt/abcbc", true),
        ("/v1/key/decrypt/a*b*c", "/v1/key/decrypt/ab/c", false),
        ("/v1/key/decrypt/a*b*c", "/v1/key/decrypt/acb", false),
        // Old glob patterns ending in `*` now also match deeper paths (decided in issue 3).
        ("/v1/key/*/my-app*", "/v1/key/generate/my-app1", true),
        ("/v1/key/*/my-app*", "/v1/key/decrypt/my-app/x", true),
        ("/v1/key/*/my-app*", "/v1/key/decrypt/x/my-app", false),
        // Several stars in a row behave like one, and only the very last one crosses `/`.
        ("/v1/**", "/v1/key/create/x", true),
        ("/v1/**/x", "/v1/key/create/x", false),
        ("/v1/**/x", "/v1/key/x", true),
        // `?` matches exactly one character other than `/`.
        ("/v1/key/create/?", "/v1/key/create/a", true),
        ("/v1/key/create/?", "/v1/key/create/", false),
        ("/v1/key/create/?", "/v1/key/create/ab", false),
        ("/v1/key/?/x", "/v1/key///x", false),
        ("/v1/key/create/a?c", "/v1/key/create/abc", true),
        ("/v1/key/create/a?c", "/v1/key/create/a/c", false),
        ("/v1/key/create/?", "/v1/key/create/é", true),
        ("/v1/key/create/??", "/v1/key/create/é", false),
        ("/v1/key/create/*?", "/v1/key/create/é", true),
        ("?*", "", false),
        // Other characters are literal: no classes, no escapes.
        ("/v1/key/create/[ab]", "/v1/key/create/a", false),
        ("/v1/key/create/[ab]", "/v1/key/create/[ab]", true),
        ("/v1/key/create/\\*", "/v1/key/create/\\x", true),
        ("/v1/key/create/\\*", "/v1/key/create/*", false),
        // Case-sensitive and byte-wise.
        ("/v1/key/create/Key*", "/v1/key/create/key", false),
        ("/v1/key/create/é", "/v1/key/create/é", true),
        ("/v1/key/create/é", "/v1/key/create/e\u{301}", false),
    ];

    #[test]
    fn table() {
        assert!(TABLE.len() >= 40);
        for &(pattern, path, want) in TABLE {
            assert_eq!(
                matches(pattern, path),
                want,
                "matches({pattern:?}, {path:?})"
            );
        }
    }

    #[test]
    fn worst_case_input_finishes() {
        // A pattern of many stars against a long path that almost matches: the classic input
        // that makes recursive matchers explode.
        let pattern = format!("{}b", "a*".repeat(500));
        let path = "a".repeat(20_000);
        assert!(!matches(&pattern, &path));
        let path = format!("{}b", "a".repeat(20_000));
        assert!(matches(&pattern, &path));
    }
}
