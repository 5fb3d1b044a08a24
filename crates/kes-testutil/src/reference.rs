//! Reference implementations, written straight from the wording of the rules, character by
//! character and without any cleverness, for checking the real implementations against on
//! random inputs. They are slow (the matcher is quadratic) and that is fine: they only run in
//! smoke tests and fuzz targets.

use std::iter;

/// The longest valid name or listing pattern, in bytes (kes-spec §2.3: "1–80 bytes").
pub const MAX_NAME_LEN: usize = 80;

/// Whether the policy `pattern` matches the request `path`, by the documented semantics of
/// `kes_policy::matches` (crates/kes-policy/src/pattern.rs, kes-spec §6): `*` any run of
/// non-`/` characters, a trailing `*` any rest at all (`/` included), `?` one non-`/`
/// character, anything else itself, and the empty pattern nothing.
pub fn matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let path: Vec<char> = path.chars().collect();
    if pattern.is_empty() {
        return false;
    }
    // `row[j]`: the pattern read so far matches the first `j` path characters. Before the
    // first pattern character only the empty prefix is matched.
    let mut row: Vec<bool> = (0..=path.len()).map(|j| j == 0).collect();
    for (i, &c) in pattern.iter().enumerate() {
        row = if c == '*' && i + 1 == pattern.len() {
            // A trailing star: any rest at all, once some shorter prefix matched.
            row.iter()
                .scan(false, |seen, &m| {
                    *seen |= m;
                    Some(*seen)
                })
                .collect()
        } else if c == '*' {
            // A star: the prefix matched without it, or one character less matched with it
            // and that character is not `/`.
            let before = iter::once(None).chain(path.iter().map(Some));
            row.iter()
                .zip(before)
                .scan(false, |with_star, (&m, before)| {
                    *with_star = m || (*with_star && before.is_some_and(|&b| b != '/'));
                    Some(*with_star)
                })
                .collect()
        } else {
            // One character (`?` any but `/`, anything else itself) after a match one shorter.
            let one = |b: char| if c == '?' { b != '/' } else { b == c };
            iter::once(false)
                .chain(row.iter().zip(&path).map(|(&m, &b)| m && one(b)))
                .collect()
        };
    }
    row.last() == Some(&true)
}

/// One character of the name alphabet `0-9 A-Z a-z _ -`.
fn in_alphabet(c: char) -> bool {
    matches!(c, '0'..='9' | 'A'..='Z' | 'a'..='z' | '_' | '-')
}

/// Whether `s` is a valid key, policy or identity name (kes-spec §2.3): "1 to 80 bytes of
/// `0-9 A-Z a-z _ -`, does not start or end with `-`, and is not `_`."
pub fn is_valid_name(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let (Some(&first), Some(&last)) = (chars.first(), chars.last()) else {
        return false; // empty
    };
    s.len() <= MAX_NAME_LEN
        && s != "_"
        && first != '-'
        && last != '-'
        && chars.iter().all(|&c| in_alphabet(c))
}

/// Whether `s` is a valid listing pattern, as the server has always accepted it (the handlers'
/// rule, which kes-crypto's `names` now holds): "at most 80 bytes of the name alphabet, except
/// that it may end in one `*`". Unlike names, the `-` and `_` rules do not apply: `demo-` and
/// `-*` are valid prefixes.
pub fn is_valid_pattern(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    s.len() <= MAX_NAME_LEN
        && chars
            .iter()
            .enumerate()
            .all(|(i, &c)| in_alphabet(c) || (c == '*' && i + 1 == n))
}

/// The fields of one text log line (`key=value key="quoted value" …`), values unescaped, or
/// `None` when the line is not made of such fields. A quoted value may hold the escapes of
/// Rust's `{:?}` for strings (`\\` `\"` `\'` `\n` `\r` `\t` `\0` `\u{…}`); a bare value holds no
/// space, quote or control character. Used to check that no value can add a field or a line.
pub fn text_log_fields(line: &str) -> Option<Vec<(String, String)>> {
    let mut fields = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        if key.is_empty() || key.contains([' ', '"']) {
            return None;
        }
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            unquote(quoted)?
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            let value = &after[..end];
            if value.contains('"') || value.chars().any(char::is_control) {
                return None;
            }
            (value.to_owned(), &after[end..])
        };
        fields.push((key.to_owned(), value));
        rest = match after.strip_prefix(' ') {
            Some(r) if !r.is_empty() => r,
            Some(_) => return None,
            None if after.is_empty() => after,
            None => return None,
        };
    }
    Some(fields)
}

/// Reads a quoted value after its opening quote: the value and what follows the closing quote.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    '\\' | '"' | '\'' => out.push(e),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '0' => out.push('\0'),
                    'u' => {
                        if chars.next()?.1 != '{' {
                            return None;
                        }
                        let mut hex = String::new();
                        loop {
                            let (_, h) = chars.next()?;
                            if h == '}' {
                                break;
                            }
                            hex.push(h);
                        }
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            c if c.is_control() => return None,
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_pattern_matches_nothing() {
        assert!(!matches("", ""));
        assert!(!matches("", "/v1/status"));
    }

    #[test]
    fn exact_patterns_match_only_themselves() {
        assert!(matches("/v1/status", "/v1/status"));
        assert!(!matches("/v1/status", "/v1/status/"));
        assert!(!matches("/v1/status", "/v1/Status"));
        assert!(!matches("/v1/status", "/v1/statu"));
        // Other glob syntax has no meaning.
        assert!(matches("/v1/key/create/[ab]", "/v1/key/create/[ab]"));
        assert!(!matches("/v1/key/create/[ab]", "/v1/key/create/a"));
        assert!(matches("/v1/key/create/\\*", "/v1/key/create/\\*"));
    }

    #[test]
    fn a_trailing_star_matches_any_rest_including_slashes_and_nothing() {
        assert!(matches("*", ""));
        assert!(matches("*", "/v1/key/create/x"));
        assert!(matches("/v1/key/*", "/v1/key/create/my-key"));
        assert!(matches("/v1/key/create*", "/v1/key/create/x"));
        assert!(matches("/v1/key/create*", "/v1/key/createX"));
        assert!(matches("/v1/key/generate/*", "/v1/key/generate/"));
        assert!(!matches("/v1/key/generate/*", "/v1/key/generate"));
        assert!(!matches("/v1/key/*", "/v1/policy/list/x"));
    }

    #[test]
    fn an_inner_star_stays_inside_one_segment() {
        assert!(matches("/v1/key/*/my-key", "/v1/key/decrypt/my-key"));
        assert!(matches("/v1/key/*/my-key", "/v1/key//my-key"));
        assert!(!matches("/v1/key/*/my-key", "/v1/key/decrypt/x/my-key"));
        assert!(matches("/v1/key/decrypt/a*b*c", "/v1/key/decrypt/aXbYc"));
        assert!(matches("/v1/key/decrypt/a*b*c", "/v1/key/decrypt/abc"));
        assert!(!matches("/v1/key/decrypt/a*b*c", "/v1/key/decrypt/a/b/c"));
        assert!(matches("/v1/*/list/*", "/v1/key/list/x/y"));
        // `**` before the end is two inner stars.
        assert!(matches("/v1/**/x", "/v1/key/x"));
        assert!(!matches("/v1/**/x", "/v1/a/b/x"));
    }

    #[test]
    fn a_question_mark_is_one_character_but_not_a_slash() {
        assert!(matches("/v1/key/create/?", "/v1/key/create/é"));
        assert!(matches("/v1/key/create/?", "/v1/key/create/🔑"));
        assert!(!matches("/v1/key/create/?", "/v1/key/create/"));
        assert!(!matches("/v1/key/create/?", "/v1/key/create/ab"));
        assert!(!matches("/v1/key?create/x", "/v1/key/create/x"));
        // A decomposed `é` is two characters.
        assert!(!matches("/v1/key/create/?", "/v1/key/create/e\u{301}"));
        assert!(matches("?*", "a/b"));
        assert!(!matches("?*", "/a"));
    }

    /// Every `valid` string passes `rule` and every `invalid` one fails it.
    fn assert_rule(rule: fn(&str) -> bool, valid: &[&str], invalid: &[&str]) {
        for s in valid {
            assert!(rule(s), "{s:?} should be valid");
        }
        for s in invalid {
            assert!(!rule(s), "{s:?} should be invalid");
        }
    }

    #[test]
    fn names_follow_the_rule() {
        let valid = ["a", "my-key", "my-key_1", "_a", "a_", "__", "A-Z", "0"];
        let invalid = [
            "", "_", "-", "-a", "a-", "a.b", "a/b", "a b", "a*", "*", "ключ", "\u{212a}", "a\n",
        ];
        assert_rule(is_valid_name, &valid, &invalid);
        // The length limit.
        let longest = "x".repeat(MAX_NAME_LEN);
        assert_rule(is_valid_name, &[&longest], &[&format!("{longest}x")]);
    }

    #[test]
    fn patterns_follow_the_rule() {
        let valid = [
            "", "*", "a", "my-*", "demo-*", "demo-", "_", "-", "-*", "_*", "my-key", "a_",
        ];
        let invalid = ["**", "m*y", "*a", "é*", "a/b", "a *", "a*-"];
        assert_rule(is_valid_pattern, &valid, &invalid);
        // The length limit, the star included.
        let longest = format!("{}*", "x".repeat(MAX_NAME_LEN - 1));
        assert_rule(is_valid_pattern, &[&longest], &[&format!("x{longest}")]);
    }

    #[test]
    fn text_log_lines_split_into_fields() {
        let fields =
            text_log_fields(r#"time=t level=INFO msg="a \"b\"\n\u{1b}" req.path=/x"#).unwrap();
        let want = [
            ("time", "t"),
            ("level", "INFO"),
            ("msg", "a \"b\"\n\u{1b}"),
            ("req.path", "/x"),
        ];
        assert_eq!(fields.len(), want.len());
        for ((k, v), (wk, wv)) in fields.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
        for bad in [
            "a",
            "a=\"open",
            "a=b\nc=d",
            "a=b  c=d",
            "a=b ",
            "=b",
            "a=\"\\x\"",
        ] {
            assert_eq!(text_log_fields(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_name_is_a_pattern() {
        for s in ["a", "my-key", "_a", "x-y-z", &"y".repeat(80)] {
            assert!(is_valid_name(s) && is_valid_pattern(s), "{s:?}");
        }
    }
}
