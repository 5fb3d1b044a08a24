//! Name and pattern rules for keys, policies and identities (spec §2.3).
//!
//! A name is 1 to 80 bytes of `0-9 A-Z a-z _ -`, does not start or end with `-`, and is not the
//! single string `_`. A listing pattern follows the same rules except that it may end in one
//! `*`, and that the empty pattern and `*` alone are valid (both mean "everything").

/// The longest valid name or pattern, in bytes.
pub const MAX_LEN: usize = 80;

/// Whether `s` is a valid key, policy or identity name.
///
/// ```
/// use kes_crypto::names::is_valid_name;
/// assert!(is_valid_name("my-key_1"));
/// assert!(!is_valid_name("-key") && !is_valid_name("key-") && !is_valid_name("_"));
/// assert!(!is_valid_name("a.b") && !is_valid_name("a/b") && !is_valid_name(""));
/// ```
#[must_use]
pub fn is_valid_name(s: &str) -> bool {
    if s.is_empty() || s.len() > MAX_LEN || s == "_" {
        return false;
    }
    if s.starts_with('-') || s.ends_with('-') {
        return false;
    }
    s.bytes().all(is_name_byte)
}

/// Whether `s` is a valid listing pattern: a name-like prefix optionally followed by one `*`.
///
/// ```
/// use kes_crypto::names::is_valid_pattern;
/// assert!(is_valid_pattern("") && is_valid_pattern("*"));
/// assert!(is_valid_pattern("my-key") && is_valid_pattern("my-*"));
/// assert!(!is_valid_pattern("my-") && !is_valid_pattern("m*y") && !is_valid_pattern("**"));
/// ```
#[must_use]
pub fn is_valid_pattern(s: &str) -> bool {
    if s.is_empty() || s == "*" {
        return true;
    }
    if s.len() > MAX_LEN || s == "_" {
        return false;
    }
    if s.starts_with('-') || s.ends_with('-') {
        return false;
    }
    let prefix = s.strip_suffix('*').unwrap_or(s);
    prefix.bytes().all(is_name_byte)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let max = "x".repeat(80);
        for valid in [
            "a",
            "A",
            "0",
            "a-b",
            "a_b",
            "_a",
            "a_",
            "__",
            "my-key-1",
            max.as_str(),
        ] {
            assert!(is_valid_name(valid), "{valid:?} should be valid");
        }
        let too_long = "x".repeat(81);
        for invalid in [
            "",
            "_",
            "-",
            "-a",
            "a-",
            "A-b_c.d",
            "with space",
            "a/b",
            "a*b",
            "*",
            "..",
            ".",
            "ключ",
            "é",
            "a\0",
            "a\n",
            too_long.as_str(),
        ] {
            assert!(!is_valid_name(invalid), "{invalid:?} should be invalid");
        }
    }

    #[test]
    fn patterns() {
        let max = format!("{}*", "x".repeat(79));
        for valid in [
            "",
            "*",
            "a",
            "a*",
            "demo-*",
            "_*",
            "a_",
            "my-key",
            max.as_str(),
        ] {
            assert!(is_valid_pattern(valid), "{valid:?} should be valid");
        }
        let too_long = format!("{}*", "x".repeat(80));
        for invalid in [
            "_",
            "-",
            "-*",
            "demo-",
            "-demo",
            "**",
            "*a",
            "a*b",
            "a**",
            "a.b*",
            "a/*",
            "a *",
            "ключ*",
            too_long.as_str(),
        ] {
            assert!(!is_valid_pattern(invalid), "{invalid:?} should be invalid");
        }
    }
}
