//! Request paths: API prefix plus one percent-escaped resource, as the Go SDK builds them.

use crate::Error;

/// Escapes one path segment exactly like Go's `url.PathEscape`: ASCII letters, digits and
/// `-_.~$&+:=@` stay as they are; every other byte (including `/`, `;`, `,`, `?`, `*`, `%`,
/// space and all non-ASCII bytes) becomes `%XX` with upper-case hex.
pub(crate) fn escape_segment(segment: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$&+:=@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(
                HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'),
            ));
            out.push(char::from(
                HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// `prefix` (an API path ending in `/`) followed by the escaped `resource`.
///
/// `.` and `..` are refused: URL normalisation would turn `/v1/key/delete/..` into
/// `/v1/key/`, a different API (and no escaping prevents that: `%2E` counts as a dot too).
/// The server would reject both names anyway.
pub(crate) fn resource_path(prefix: &str, what: &str, resource: &str) -> Result<String, Error> {
    if resource == "." || resource == ".." {
        return Err(Error::InvalidArgument {
            reason: format!("'{resource}' is not a valid {what}"),
        });
    }
    Ok(format!("{prefix}{}", escape_segment(resource)))
}

/// A listing path: the escaped prefix after the route, or the route without its trailing
/// slash for an empty prefix (as the Go SDK's `path.Join` produces it; servers answer it
/// directly or with a redirect to the slash form).
pub(crate) fn list_path(route: &str, prefix: &str) -> Result<String, Error> {
    if prefix.is_empty() {
        return Ok(route.trim_end_matches('/').to_owned());
    }
    resource_path(route, "listing prefix", prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go_path_escape() {
        let cases = [
            ("my-key_1", "my-key_1"),
            ("a b", "a%20b"),
            ("a/b", "a%2Fb"),
            ("k$&+:=@~.", "k$&+:=@~."),
            ("a;b,c?d#e", "a%3Bb%2Cc%3Fd%23e"),
            ("*", "%2A"),
            ("100%", "100%25"),
            ("ü", "%C3%BC"),
            ("\"<>\\^`{|}", "%22%3C%3E%5C%5E%60%7B%7C%7D"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(escape_segment(input), want, "{input}");
        }
    }

    #[test]
    fn builds_paths() {
        assert_eq!(
            resource_path("/v1/key/create/", "key name", "k1").unwrap(),
            "/v1/key/create/k1"
        );
        assert_eq!(
            resource_path("/v1/key/create/", "key name", "").unwrap(),
            "/v1/key/create/"
        );
        assert!(matches!(
            resource_path("/v1/key/delete/", "key name", ".."),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(resource_path("/v1/key/delete/", "key name", ".").is_err());
        assert_eq!(
            resource_path("/v1/key/delete/", "key name", "...").unwrap(),
            "/v1/key/delete/..."
        );
        assert_eq!(list_path("/v1/key/list/", "").unwrap(), "/v1/key/list");
        assert_eq!(list_path("/v1/key/list/", "*").unwrap(), "/v1/key/list/%2A");
        assert_eq!(
            list_path("/v1/policy/list/", "my").unwrap(),
            "/v1/policy/list/my"
        );
    }
}
