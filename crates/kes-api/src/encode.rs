//! Response encoding like Go's `json.Encoder` with its default HTML escaping: compact JSON,
//! a trailing newline, and `<`, `>`, `&`, U+2028, U+2029 written as `\u003c`, `\u003e`,
//! `\u0026`, `\u2028`, `\u2029`. Other escapes match Go 1.22 and later (`\b`, `\f`, `\n`,
//! `\r`, `\t`, `\"`, `\\`, and `\u00XX` with lowercase hex for other control characters).

use std::fmt;
use std::io;

use serde::Serialize;
use zeroize::Zeroizing;

/// Serializes `value` as Go's `json.NewEncoder(w).Encode(value)` would: compact JSON with
/// Go's HTML escaping, followed by `\n`.
///
/// Cannot fail: [`WireBody`] is implemented only for this crate's wire types, whose
/// serialization has no error path (strings, integers, booleans, lists, maps with string
/// keys, base64 and timestamps). Use [`try_encode_json`] for any other type.
pub fn encode_json<T: WireBody + ?Sized>(value: &T) -> Vec<u8> {
    // Invariant: a `WireBody` never fails to serialize (see above), so the empty fallback
    // is never taken.
    try_encode_json(value).unwrap_or_default()
}

/// Like [`encode_json`], for bodies that carry secrets (the plaintext of decrypt and
/// generate responses).
///
/// The value is serialized twice: once to count the bytes, then into a buffer allocated at
/// exactly that size, so that growing the buffer never leaves a copy of the secret in freed
/// memory. The returned buffer is wiped when dropped.
pub fn encode_json_secret<T: WireBody + ?Sized>(value: &T) -> Zeroizing<Vec<u8>> {
    // Invariant as in `encode_json`.
    try_encode_json_secret(value).unwrap_or_default()
}

/// [`encode_json`] for any `Serialize` type; fails when its `Serialize` implementation
/// fails (for example a map with non-string keys).
pub fn try_encode_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(128);
    write_json(&mut out, value)?;
    Ok(out)
}

fn try_encode_json_secret<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Zeroizing<Vec<u8>>, EncodeError> {
    let mut counter = ByteCounter(0);
    write_json(&mut counter, value)?;
    let mut out = Zeroizing::new(Vec::with_capacity(counter.0));
    write_json(&mut *out, value)?;
    Ok(out)
}

/// A request or response body of the KES API: a type that [`encode_json`] can encode
/// without failing. Sealed: implemented for this crate's wire types and lists of them.
pub trait WireBody: Serialize + sealed::Sealed {}

mod sealed {
    pub trait Sealed {}
}

impl<T: WireBody> sealed::Sealed for [T] {}
impl<T: WireBody> WireBody for [T] {}
impl<T: WireBody> sealed::Sealed for Vec<T> {}
impl<T: WireBody> WireBody for Vec<T> {}

macro_rules! wire_bodies {
    ($($ty:ty),* $(,)?) => {$(
        impl sealed::Sealed for $ty {}
        impl WireBody for $ty {}
    )*};
}

wire_bodies!(
    crate::ImportRequest,
    crate::EncryptRequest,
    crate::GenerateRequest,
    crate::DecryptRequest,
    crate::HmacRequest,
    crate::PolicyWriteRequest,
    crate::PolicyAssignRequest,
    crate::ErrorResponse,
    crate::VersionResponse,
    crate::StatusResponse,
    crate::ApiRoute,
    crate::DescribeKeyResponse,
    crate::ListKeysResponse,
    crate::EncryptResponse,
    crate::GenerateResponse,
    crate::DecryptResponse,
    crate::HmacResponse,
    crate::DescribePolicyResponse,
    crate::ReadPolicyResponse,
    crate::ListPoliciesResponse,
    crate::DescribeIdentityResponse,
    crate::SelfDescribeResponse,
    crate::ListIdentitiesResponse,
    crate::AuditEvent,
    crate::ErrorEvent,
);

/// Encodes the body of an API error exactly as KES does (spec §2.2):
/// `{"message":<json-string>\n}`. The newline sits before the closing brace, an artifact
/// of Go's `json.Encoder` that clients ignore but that we reproduce byte for byte.
pub fn encode_error(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    out.extend_from_slice(b"{\"message\":");
    write_go_string(&mut out, message);
    out.extend_from_slice(b"\n}");
    out
}

/// A value could not be serialized as JSON.
#[derive(Debug)]
pub struct EncodeError {
    inner: serde_json::Error,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to encode JSON response: {}", self.inner)
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.inner)
    }
}

fn write_json<W: io::Write, T: Serialize + ?Sized>(
    writer: &mut W,
    value: &T,
) -> Result<(), EncodeError> {
    let mut ser = serde_json::Serializer::with_formatter(&mut *writer, GoFormatter);
    value
        .serialize(&mut ser)
        .map_err(|inner| EncodeError { inner })?;
    writer.write_all(b"\n").map_err(|e| EncodeError {
        inner: serde_json::Error::io(e),
    })
}

/// Counts bytes without storing them.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// serde_json's compact formatter plus Go's extra escapes. serde_json already escapes `"`,
/// `\` and control characters exactly as Go does and hands us the remaining runs of text as
/// fragments; we split those at the characters Go escapes in addition.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((pos, escape)) = find_html_escape(rest) {
            let (head, tail) = rest.split_at(pos);
            writer.write_all(head.as_bytes())?;
            writer.write_all(escape)?;
            let width = tail.chars().next().map_or(1, char::len_utf8);
            rest = tail.get(width..).unwrap_or("");
        }
        writer.write_all(rest.as_bytes())
    }
}

/// Finds the first character that Go escapes beyond what JSON requires.
fn find_html_escape(s: &str) -> Option<(usize, &'static [u8])> {
    s.char_indices()
        .find_map(|(i, c)| html_escape(c).map(|e| (i, e)))
}

fn html_escape(c: char) -> Option<&'static [u8]> {
    match c {
        '<' => Some(b"\\u003c"),
        '>' => Some(b"\\u003e"),
        '&' => Some(b"\\u0026"),
        '\u{2028}' => Some(b"\\u2028"),
        '\u{2029}' => Some(b"\\u2029"),
        _ => None,
    }
}

/// Writes `s` as a quoted JSON string with Go's escaping (see the module docs).
fn write_go_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        if let Some(escape) = html_escape(c) {
            out.extend_from_slice(escape);
            continue;
        }
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
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
    use std::collections::BTreeMap;

    const TRICKY: &str =
        "a<b>&c \"q\" \\ / \u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f} é \u{2028}\u{2029} 🔑";
    const TRICKY_JSON: &str = "\"a\\u003cb\\u003e\\u0026c \\\"q\\\" \\\\ / \\b\\f\\n\\r\\t\\u0001\\u001f\u{7f} é \\u2028\\u2029 🔑\"";

    #[test]
    fn escapes_like_go_json_encoder() {
        let got = try_encode_json(TRICKY).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), format!("{TRICKY_JSON}\n"));
        let mut direct = Vec::new();
        write_go_string(&mut direct, TRICKY);
        assert_eq!(String::from_utf8(direct).unwrap(), TRICKY_JSON);
    }

    #[test]
    fn map_keys_are_escaped_and_sorted_and_output_is_compact() {
        let mut m = BTreeMap::new();
        m.insert("b<", vec![1, 2]);
        m.insert("a", vec![]);
        let got = try_encode_json(&m).unwrap();
        assert_eq!(got, b"{\"a\":[],\"b\\u003c\":[1,2]}\n");
    }

    #[test]
    fn zeroizing_variant_is_identical_and_exactly_sized() {
        let value = serde_json::json!({"plaintext": "aGVsbG8=", "x": TRICKY});
        let plain = try_encode_json(&value).unwrap();
        let wiped = try_encode_json_secret(&value).unwrap();
        assert_eq!(&plain[..], &wiped[..]);
        assert_eq!(wiped.capacity(), wiped.len());
        let resp = crate::DecryptResponse {
            plaintext: Zeroizing::new(b"hello".to_vec()),
        };
        let plain = encode_json(&resp);
        let wiped = encode_json_secret(&resp);
        assert_eq!(&plain[..], &wiped[..]);
        assert_eq!(wiped.capacity(), wiped.len());
    }

    #[test]
    fn error_body_has_newline_before_closing_brace() {
        assert_eq!(
            encode_error("key does not exist"),
            b"{\"message\":\"key does not exist\"\n}"
        );
        assert_eq!(
            encode_error("key name 'a<b' is empty, too long or contains invalid characters"),
            &b"{\"message\":\"key name 'a\\u003cb' is empty, too long or contains invalid characters\"\n}"[..]
        );
        assert_eq!(encode_error(""), b"{\"message\":\"\"\n}");
        // The body is valid JSON.
        let v: serde_json::Value = serde_json::from_slice(&encode_error("x\"y")).unwrap();
        assert_eq!(v["message"], "x\"y");
    }

    #[test]
    fn encoding_errors_are_reported_not_panicked() {
        let mut m = BTreeMap::new();
        m.insert(vec![1u8], 1);
        assert!(try_encode_json(&m).is_err());
        assert!(try_encode_json_secret(&m).is_err());
    }
}
