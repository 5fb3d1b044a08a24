//! Name, pattern and identity rules (spec §2.3, §5): the one definition the handlers, the config
//! file and the fuzz targets use.
//!
//! A name (of a key or a policy) is 1 to 80 bytes of `0-9 A-Z a-z _ -`, does not start or end
//! with `-`, and is not the single string `_`. A listing pattern is at most 80 bytes of the same
//! alphabet with an optional trailing `*`; the empty pattern and `*` alone mean "everything".
//! Unlike names, a pattern may start or end with `-` (`demo-` can only mean "names that start
//! with `demo-`"; the original refused it with `my-*` accepted). An identity is the lower-case hex
//! SHA-256 of a certificate's public key: exactly 64 characters of `0-9 a-f`.

/// The longest valid name or pattern, in bytes.
pub const MAX_LEN: usize = 80;

/// The length of an identity: the hex SHA-256 of a public key.
pub const IDENTITY_LEN: usize = 64;

/// Why `s` is not a valid key or policy name, or `Ok`.
///
/// ```
/// use kes_crypto::names::check_name;
/// assert_eq!(check_name("my-key"), Ok(()));
/// assert_eq!(check_name("-key"), Err("must not start or end with '-'"));
/// ```
pub fn check_name(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > MAX_LEN {
        return Err("must be at most 80 characters long");
    }
    if !s.bytes().all(is_name_byte) {
        return Err("may contain only the characters 0-9 A-Z a-z _ -");
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must not start or end with '-'");
    }
    if s == "_" {
        return Err("must not be '_'");
    }
    Ok(())
}

/// Whether `s` is a valid key or policy name.
///
/// ```
/// use kes_crypto::names::is_valid_name;
/// assert!(is_valid_name("my-key_1"));
/// assert!(!is_valid_name("-key") && !is_valid_name("key-") && !is_valid_name("_"));
/// assert!(!is_valid_name("a.b") && !is_valid_name("a/b") && !is_valid_name(""));
/// ```
#[must_use]
pub fn is_valid_name(s: &str) -> bool {
    check_name(s).is_ok()
}

/// Whether `s` is a valid listing pattern: at most 80 bytes of the name alphabet, optionally
/// ending in one `*`.
///
/// ```
/// use kes_crypto::names::is_valid_pattern;
/// assert!(is_valid_pattern("") && is_valid_pattern("*"));
/// assert!(is_valid_pattern("my-key") && is_valid_pattern("my-*") && is_valid_pattern("my-"));
/// assert!(!is_valid_pattern("m*y") && !is_valid_pattern("**") && !is_valid_pattern("a.b"));
/// ```
#[must_use]
pub fn is_valid_pattern(s: &str) -> bool {
    s.len() <= MAX_LEN && list_prefix(s).bytes().all(is_name_byte)
}

/// The prefix a listing pattern selects: a trailing `*` is dropped, so `my*` and `my` list the
/// same names, and `*` or the empty pattern list everything.
#[must_use]
pub fn list_prefix(pattern: &str) -> &str {
    pattern.strip_suffix('*').unwrap_or(pattern)
}

/// Why `s` is not an identity, or `Ok`.
///
/// ```
/// use kes_crypto::names::check_identity;
/// let id = "3dbd4603886d4e7cb246734f36ad17283ca22d0ccf4bf1e06222fd17a07405ef";
/// assert_eq!(check_identity(id), Ok(()));
/// assert!(check_identity(&id.to_uppercase()).is_err());
/// ```
pub fn check_identity(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() != IDENTITY_LEN || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(
            "must be 64 lower-case hexadecimal characters (the SHA-256 of a certificate's public key)",
        );
    }
    Ok(())
}

/// Whether `s` is an identity: 64 lower-case hexadecimal characters.
#[must_use]
pub fn is_valid_identity(s: &str) -> bool {
    check_identity(s).is_ok()
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

#[cfg(test)]
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
            "demo-",
            "-demo",
            "-",
            "_",
            "-*",
            "_*",
            "a_",
            "my-key",
            max.as_str(),
        ] {
            assert!(is_valid_pattern(valid), "{valid:?} should be valid");
        }
        let too_long = format!("{}*", "x".repeat(80));
        for invalid in [
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
        assert_eq!(list_prefix("my-*"), "my-");
        assert_eq!(list_prefix("*"), "");
        assert_eq!(list_prefix("my"), "my");
    }

    #[test]
    fn identities() {
        let id = "3dbd4603886d4e7cb246734f36ad17283ca22d0ccf4bf1e06222fd17a07405ef";
        assert!(is_valid_identity(id));
        for invalid in [
            String::new(),
            id.to_uppercase(),
            id[..63].to_owned(),
            format!("{id}0"),
            id.replacen('3', "g", 1),
            "disabled".to_owned(),
        ] {
            assert!(
                !is_valid_identity(&invalid),
                "{invalid:?} should be invalid"
            );
        }
    }
}
