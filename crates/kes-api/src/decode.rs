//! Request decoding with Go `encoding/json` semantics (spec §2.1), as KES's handlers do
//! with `json.NewDecoder(body).Decode(&req)`:
//!
//! * exactly one JSON value is read; bytes after it are not looked at;
//! * a top-level `null` decodes as an empty request; anything else but an object fails;
//! * field names match exactly first, then case-insensitively with Go's folding
//!   (`"PLAINTEXT"`, `"Plaintext"`, even `"\u212Aey"` with a Kelvin sign for `key`);
//! * unknown fields are ignored, whatever their value;
//! * a field given twice keeps its last value (every occurrence must still be valid);
//! * byte fields are base64 strings (standard alphabet, padding required, `\r`/`\n`
//!   skipped); `null` resets them to empty;
//! * string fields must be strings; `null` leaves them unchanged (Go does the same);
//! * `version` is accepted as a string and returned for the server to ignore (§2.6).
//!
//! Known differences from Go, all of which make us stricter on inputs no known client
//! sends: invalid UTF-8 inside a string is an error (Go substitutes U+FFFD); byte fields
//! given as JSON arrays of numbers are rejected (Go accepts them); a body nested deeper than
//! [`MAX_DEPTH`] levels (objects and arrays, the request object included) is rejected before
//! it is parsed (Go allows 10000 levels; no request of the API nests deeper than 3).
//!
//! Secrets: byte fields are taken as raw, still-escaped JSON text borrowed from the request
//! body (serde_json's `RawValue`), unescaped into a wiped buffer and base64-decoded into
//! another, so serde_json's internal scratch buffer never sees them.

use std::cell::Cell;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::b64;
use crate::requests::{
    DecryptRequest, EncryptRequest, GenerateRequest, HmacRequest, ImportRequest,
    PolicyAssignRequest, PolicyWriteRequest,
};

/// A request body that KES would refuse. Servers answer every variant with 400 and the
/// route's generic message (`invalid request body`, or `invalid import key request body`
/// for import); the variants exist for logs and tests. No variant carries field values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The body is empty or whitespace only.
    Empty,
    /// The body is not valid JSON, or ends in the middle of a value.
    Syntax {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
    },
    /// The body is valid JSON but neither an object nor `null`.
    NotAnObject,
    /// A known field has a JSON type that does not fit it.
    InvalidType {
        /// The field's canonical (lowercase) name.
        field: &'static str,
        /// What the field must be.
        expected: &'static str,
    },
    /// A byte field is not standard base64 with padding.
    InvalidBase64 {
        /// The field's canonical (lowercase) name.
        field: &'static str,
    },
    /// Objects and arrays nest deeper than [`MAX_DEPTH`] levels.
    TooDeep,
}

/// The deepest nesting of objects and arrays a request body may have, the request object
/// included.
pub const MAX_DEPTH: usize = 128;

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("invalid request body: empty body"),
            Self::Syntax { line, column } => {
                write!(
                    f,
                    "invalid request body: invalid JSON at line {line}, column {column}"
                )
            }
            Self::NotAnObject => f.write_str("invalid request body: not a JSON object"),
            Self::InvalidType { field, expected } => {
                write!(
                    f,
                    "invalid request body: field '{field}' must be {expected}"
                )
            }
            Self::InvalidBase64 { field } => write!(
                f,
                "invalid request body: field '{field}' is not standard base64 with padding"
            ),
            Self::TooDeep => write!(
                f,
                "invalid request body: nested deeper than {MAX_DEPTH} levels"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes the body of `/v1/key/import/<name>`: `{"key": b64, "cipher": "<alg>"}`.
pub fn decode_import_request(body: &[u8]) -> Result<ImportRequest, DecodeError> {
    let [key, cipher] = decode_fields(body, [("key", Kind::Bytes), ("cipher", Kind::Str)])?;
    Ok(ImportRequest {
        key: key.into_bytes(),
        cipher: cipher.into_string(),
    })
}

/// Decodes the body of `/v1/key/encrypt/<name>`:
/// `{"plaintext": b64, "context": b64, "version": "…"}`.
pub fn decode_encrypt_request(body: &[u8]) -> Result<EncryptRequest, DecodeError> {
    let [plaintext, context, version] = decode_fields(
        body,
        [
            ("plaintext", Kind::Bytes),
            ("context", Kind::Bytes),
            ("version", Kind::Str),
        ],
    )?;
    Ok(EncryptRequest {
        plaintext: plaintext.into_bytes(),
        context: context.into_public_bytes(),
        version: version.into_string(),
    })
}

/// Decodes the body of `/v1/key/generate/<name>`: `{"context": b64, "version": "…"}`.
///
/// KES only parses this body when the request's Content-Length is non-zero (spec §2.5);
/// that check is the server's, not this function's: an empty `body` is an error here.
pub fn decode_generate_request(body: &[u8]) -> Result<GenerateRequest, DecodeError> {
    let [context, version] =
        decode_fields(body, [("context", Kind::Bytes), ("version", Kind::Str)])?;
    Ok(GenerateRequest {
        context: context.into_public_bytes(),
        version: version.into_string(),
    })
}

/// Decodes the body of `/v1/key/decrypt/<name>`:
/// `{"ciphertext": b64, "context": b64, "version": "…"}`.
pub fn decode_decrypt_request(body: &[u8]) -> Result<DecryptRequest, DecodeError> {
    let [ciphertext, context, version] = decode_fields(
        body,
        [
            ("ciphertext", Kind::Bytes),
            ("context", Kind::Bytes),
            ("version", Kind::Str),
        ],
    )?;
    Ok(DecryptRequest {
        ciphertext: ciphertext.into_public_bytes(),
        context: context.into_public_bytes(),
        version: version.into_string(),
    })
}

/// Decodes the body of `/v1/key/hmac/<name>`: `{"message": b64, "version": "…"}`.
pub fn decode_hmac_request(body: &[u8]) -> Result<HmacRequest, DecodeError> {
    let [message, version] =
        decode_fields(body, [("message", Kind::Bytes), ("version", Kind::Str)])?;
    Ok(HmacRequest {
        message: message.into_bytes(),
        version: version.into_string(),
    })
}

/// Decodes the body of `/v1/policy/write/<name>`: `{"allow": […], "deny": […]}`.
/// `null` lists, and `null` items (as Go's `[]string` decoding gives `""`), are accepted.
pub fn decode_policy_write_request(body: &[u8]) -> Result<PolicyWriteRequest, DecodeError> {
    let [allow, deny] = decode_fields(body, [("allow", Kind::StrList), ("deny", Kind::StrList)])?;
    Ok(PolicyWriteRequest {
        allow: allow.into_list(),
        deny: deny.into_list(),
    })
}

/// Decodes the body of `/v1/policy/assign/<policy>`: `{"identity": "<identity>"}`.
pub fn decode_policy_assign_request(body: &[u8]) -> Result<PolicyAssignRequest, DecodeError> {
    let [identity] = decode_fields(body, [("identity", Kind::Str)])?;
    Ok(PolicyAssignRequest {
        identity: identity.into_string(),
    })
}

/// The Go type of a known field.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `[]byte`: base64 string or `null`.
    Bytes,
    /// `string`.
    Str,
    /// `[]string`.
    StrList,
}

/// The decoded value of one field; `Unset` when it did not appear (or only as a `null`
/// that Go ignores).
#[derive(Default)]
enum Value {
    #[default]
    Unset,
    Bytes(Zeroizing<Vec<u8>>),
    Str(String),
    List(Vec<String>),
}

impl Value {
    fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        match self {
            Self::Bytes(b) => b,
            _ => Zeroizing::new(Vec::new()),
        }
    }

    fn into_public_bytes(self) -> Vec<u8> {
        let mut b = self.into_bytes();
        std::mem::take(&mut *b)
    }

    fn into_string(self) -> String {
        match self {
            Self::Str(s) => s,
            _ => String::new(),
        }
    }

    fn into_list(self) -> Vec<String> {
        match self {
            Self::List(l) => l,
            _ => Vec::new(),
        }
    }
}

type Field = (&'static str, Kind);

fn decode_fields<const N: usize>(
    body: &[u8],
    fields: [Field; N],
) -> Result<[Value; N], DecodeError> {
    match body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        None => return Err(DecodeError::Empty),
        Some(b'{' | b'n') => {}
        Some(_) => return Err(DecodeError::NotAnObject),
    }
    if nested_deeper_than(body, MAX_DEPTH) {
        return Err(DecodeError::TooDeep);
    }
    let failure = Cell::new(None);
    let visitor = RequestVisitor {
        fields: &fields,
        failure: &failure,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    match (&mut de).deserialize_any(visitor) {
        Ok(values) => Ok(values),
        Err(e) => Err(failure.take().unwrap_or(DecodeError::Syntax {
            line: e.line(),
            column: e.column(),
        })),
    }
}

/// Whether the first JSON value of `body` nests objects and arrays deeper than `limit` levels.
/// Brackets inside strings do not count; the scan ends with the first value, as decoding does
/// (serde_json skips ignored values without a depth limit, so the bound is checked here).
fn nested_deeper_than(body: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return false;
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            // A scalar at the top level (`null`): nothing nests.
            _ if depth == 0 => return false,
            _ => {}
        }
    }
    false
}

struct RequestVisitor<'a, const N: usize> {
    fields: &'a [Field; N],
    /// The typed reason for a failure; serde's error channel only carries text.
    failure: &'a Cell<Option<DecodeError>>,
}

impl<const N: usize> RequestVisitor<'_, N> {
    fn fail<E: de::Error>(&self, err: DecodeError) -> E {
        let msg = err.to_string();
        self.failure.set(Some(err));
        E::custom(msg)
    }
}

impl<'de, const N: usize> Visitor<'de> for RequestVisitor<'_, N> {
    type Value = [Value; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(std::array::from_fn(|_| Value::Unset))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values: [Value; N] = std::array::from_fn(|_| Value::Unset);
        while let Some(key) = map.next_key::<String>()? {
            let Some(index) = match_field(self.fields, &key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let (Some(&(name, kind)), Some(slot)) = (self.fields.get(index), values.get_mut(index))
            else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let raw: &'de RawValue = map.next_value()?;
            match decode_value(name, kind, raw.get().trim()) {
                Ok(Some(value)) => *slot = value,
                Ok(None) => {}
                Err(err) => return Err(self.fail(err)),
            }
        }
        Ok(values)
    }
}

/// Finds the field for a JSON key: exact match first, then Go's case folding.
fn match_field(fields: &[Field], key: &str) -> Option<usize> {
    fields
        .iter()
        .position(|(name, _)| *name == key)
        .or_else(|| fields.iter().position(|(name, _)| fold_eq(key, name)))
}

/// Go's `encoding/json` folding (`appendFoldedName`): ASCII letters compare upper-cased,
/// any other character as `ToUpper(ToLower(c))` with simple (single-character) mappings.
fn fold_eq(key: &str, name: &str) -> bool {
    key.chars()
        .map(go_fold)
        .eq(name.chars().map(|c| c.to_ascii_uppercase()))
}

fn go_fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let lower = match c {
        // Unicode's simple lowercase mapping; Rust only offers the full one ("i̇").
        '\u{130}' => 'i',
        c => single(c.to_lowercase()).unwrap_or(c),
    };
    single(lower.to_uppercase()).unwrap_or(lower)
}

fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

/// Decodes one known field from its raw JSON text. `Ok(None)` = leave the field as is.
fn decode_value(name: &'static str, kind: Kind, raw: &str) -> Result<Option<Value>, DecodeError> {
    let is_null = raw == "null";
    let type_error = |expected| DecodeError::InvalidType {
        field: name,
        expected,
    };
    match kind {
        Kind::Bytes if is_null => Ok(Some(Value::Bytes(Zeroizing::new(Vec::new())))),
        Kind::Bytes if raw.starts_with('"') => {
            let text =
                unescape_base64_text(raw).ok_or(DecodeError::InvalidBase64 { field: name })?;
            let bytes =
                b64::decode(&text).map_err(|_| DecodeError::InvalidBase64 { field: name })?;
            Ok(Some(Value::Bytes(bytes)))
        }
        Kind::Bytes => Err(type_error("a base64 string")),
        Kind::Str if is_null => Ok(None),
        Kind::Str if raw.starts_with('"') => serde_json::from_str::<String>(raw)
            .map(|s| Some(Value::Str(s)))
            .map_err(|_| type_error("a string")),
        Kind::Str => Err(type_error("a string")),
        Kind::StrList if is_null => Ok(Some(Value::List(Vec::new()))),
        Kind::StrList if raw.starts_with('[') => serde_json::from_str::<Vec<Option<String>>>(raw)
            .map(|l| {
                Some(Value::List(
                    l.into_iter().map(Option::unwrap_or_default).collect(),
                ))
            })
            .map_err(|_| type_error("a list of strings")),
        Kind::StrList => Err(type_error("a list of strings")),
    }
}

/// Unescapes the raw JSON string `raw` (with its quotes) into a wiped buffer, dropping
/// `\r` and `\n` as Go's base64 decoder does. Characters outside ASCII cannot be base64,
/// so escapes that produce them become a byte the decoder rejects. `None` for a malformed
/// escape (serde_json has validated the string already, so this is defensive).
fn unescape_base64_text(raw: &str) -> Option<Zeroizing<Vec<u8>>> {
    const NOT_BASE64: u8 = 0xff;
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(inner.len()));
    let mut rest = inner;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        if b != b'\\' {
            if b != b'\r' && b != b'\n' {
                out.push(b);
            }
            continue;
        }
        let (&esc, tail) = rest.split_first()?;
        rest = tail;
        match esc {
            b'"' | b'\\' | b'/' => out.push(esc),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b't' => out.push(b'\t'),
            b'n' | b'r' => {}
            b'u' => {
                let hex = rest.get(..4)?;
                rest = rest.get(4..)?;
                let code = u32::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                match u8::try_from(code) {
                    Ok(b'\r' | b'\n') => {}
                    Ok(c) if c.is_ascii() => out.push(c),
                    _ => out.push(NOT_BASE64),
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(body: &str) -> Result<EncryptRequest, DecodeError> {
        decode_encrypt_request(body.as_bytes())
    }

    #[test]
    fn nesting_is_bounded_in_ignored_fields() {
        // The request object plus 127 levels in an ignored field: accepted.
        let ok = format!(
            r#"{{"plaintext":"aGVsbG8=","x":{}{}}}"#,
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(&enc(&ok).unwrap().plaintext[..], b"hello");
        // One level more, and the 100,000 levels of the attack run: refused, quickly.
        for levels in [MAX_DEPTH, 100_000] {
            let deep = format!(
                r#"{{"x":{}{},"plaintext":"aGVsbG8="}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            );
            assert_eq!(enc(&deep).unwrap_err(), DecodeError::TooDeep, "{levels}");
            // Unclosed nesting is refused the same way, not read to the end.
            let open = format!(r#"{{"x":{}"#, "{\"a\":".repeat(levels));
            assert_eq!(enc(&open).unwrap_err(), DecodeError::TooDeep, "{levels}");
        }
        // Brackets inside strings do not nest, escaped quotes do not end a string.
        let strings = format!(
            r#"{{"x":"{}\"{}","plaintext":"aGVsbG8="}}"#,
            "[".repeat(1000),
            "{".repeat(1000)
        );
        assert_eq!(&enc(&strings).unwrap().plaintext[..], b"hello");
        // Bytes after the first value are not looked at, as before.
        let trailing = format!(r#"{{"plaintext":"aGVsbG8="}}{}"#, "[".repeat(1000));
        assert_eq!(&enc(&trailing).unwrap().plaintext[..], b"hello");
    }

    #[test]
    fn decodes_a_plain_request() {
        let r = enc(r#"{"plaintext":"aGVsbG8=","context":"Yw==","version":"v1"}"#).unwrap();
        assert_eq!(&r.plaintext[..], b"hello");
        assert_eq!(r.context, b"c");
        assert_eq!(r.version, "v1");
    }

    #[test]
    fn field_names_match_case_insensitively() {
        let r = enc(r#"{"PLAINTEXT":"aGVsbG8=","Context":"Yw=="}"#).unwrap();
        assert_eq!(&r.plaintext[..], b"hello");
        assert_eq!(r.context, b"c");
        // Go folds the Kelvin sign to K and the long s to S.
        let r = decode_import_request("{\"\u{212a}EY\":\"AAAA\",\"cipher\":\"AES256\"}".as_bytes())
            .unwrap();
        assert_eq!(&r.key[..], &[0, 0, 0]);
        let r = decode_hmac_request("{\"me\u{17f}sage\":\"bQ==\"}".as_bytes()).unwrap();
        assert_eq!(&r.message[..], b"m");
        // Not a fold: different letters.
        let r = enc(r#"{"plaintexts":"aGVsbG8="}"#).unwrap();
        assert!(r.plaintext.is_empty());
    }

    #[test]
    fn exact_match_wins_and_last_occurrence_wins() {
        let r = enc(r#"{"plaintext":"aGVsbG8=","PLAINTEXT":"d29ybGQ="}"#).unwrap();
        assert_eq!(&r.plaintext[..], b"world");
        // Every occurrence must still be valid base64.
        assert_eq!(
            enc(r#"{"plaintext":"AAA","plaintext":"AAAA"}"#).unwrap_err(),
            DecodeError::InvalidBase64 { field: "plaintext" }
        );
    }

    #[test]
    fn trailing_bytes_after_the_value_are_ignored() {
        let r = enc(r#"{"plaintext":"aGVsbG8="}garbage{{{"#).unwrap();
        assert_eq!(&r.plaintext[..], b"hello");
        let r = enc("{\"plaintext\":\"aGVsbG8=\"}\n{\"plaintext\":\"AAAA\"}").unwrap();
        assert_eq!(&r.plaintext[..], b"hello");
        assert!(enc("null trailing").unwrap().plaintext.is_empty());
    }

    #[test]
    fn null_and_missing_fields_are_empty() {
        let r = enc(r#"{"plaintext":null,"context":null,"version":null}"#).unwrap();
        assert!(r.plaintext.is_empty() && r.context.is_empty() && r.version.is_empty());
        let r = enc("{}").unwrap();
        assert!(r.plaintext.is_empty());
        let r = enc("  null  ").unwrap();
        assert!(r.plaintext.is_empty());
        // A null byte field resets an earlier value; a null string keeps it (as in Go).
        let r = enc(r#"{"plaintext":"aGVsbG8=","plaintext":null,"version":"v","version":null}"#)
            .unwrap();
        assert!(r.plaintext.is_empty());
        assert_eq!(r.version, "v");
    }

    #[test]
    fn base64_must_be_padded_standard_base64() {
        assert_eq!(
            enc(r#"{"plaintext":"AAA"}"#).unwrap_err(),
            DecodeError::InvalidBase64 { field: "plaintext" }
        );
        assert_eq!(
            enc(r#"{"plaintext":"a-_A"}"#).unwrap_err(),
            DecodeError::InvalidBase64 { field: "plaintext" }
        );
        assert_eq!(
            decode_decrypt_request(br#"{"ciphertext":"AAAA","context":"AA"}"#).unwrap_err(),
            DecodeError::InvalidBase64 { field: "context" }
        );
        assert_eq!(&enc(r#"{"plaintext":""}"#).unwrap().plaintext[..], b"");
    }

    #[test]
    fn newlines_inside_base64_are_skipped() {
        assert_eq!(
            &enc(r#"{"plaintext":"aGVs\nbG8="}"#).unwrap().plaintext[..],
            b"hello"
        );
        assert_eq!(
            &enc(r#"{"plaintext":"aGVs\r\nbG8=\n"}"#).unwrap().plaintext[..],
            b"hello"
        );
        assert_eq!(
            &enc(r#"{"plaintext":"aGVs\u000abG8="}"#).unwrap().plaintext[..],
            b"hello"
        );
        // Other escapes are unescaped before decoding, as in Go.
        assert_eq!(
            &enc(r#"{"plaintext":"\u0061GVsbG8\u003d"}"#)
                .unwrap()
                .plaintext[..],
            b"hello"
        );
        assert_eq!(
            &enc(r#"{"plaintext":"\/\/8="}"#).unwrap().plaintext[..],
            &[0xff, 0xff]
        );
        // Tabs and spaces are not skipped; non-ASCII never decodes.
        assert!(enc(r#"{"plaintext":"aGVs\tbG8="}"#).is_err());
        assert!(enc(r#"{"plaintext":"aGVs bG8="}"#).is_err());
        assert!(enc(r#"{"plaintext":"aGVsbG8\u00e9"}"#).is_err());
    }

    #[test]
    fn non_string_values_are_rejected() {
        for body in [
            r#"{"plaintext":5}"#,
            r#"{"plaintext":true}"#,
            r#"{"plaintext":{}}"#,
            r#"{"plaintext":[104,105]}"#,
        ] {
            assert_eq!(
                enc(body).unwrap_err(),
                DecodeError::InvalidType {
                    field: "plaintext",
                    expected: "a base64 string"
                },
                "{body}"
            );
        }
        assert_eq!(
            enc(r#"{"plaintext":"","version":1}"#).unwrap_err(),
            DecodeError::InvalidType {
                field: "version",
                expected: "a string"
            }
        );
        assert_eq!(
            decode_import_request(br#"{"key":"AAAA","cipher":[]}"#).unwrap_err(),
            DecodeError::InvalidType {
                field: "cipher",
                expected: "a string"
            }
        );
    }

    #[test]
    fn unknown_fields_are_ignored_whatever_their_value() {
        let r =
            enc(r#"{"x":{"a":[1,2,{"b":null}]},"plaintext":"aGk=","y":"AAA","z":1.5e3}"#).unwrap();
        assert_eq!(&r.plaintext[..], b"hi");
        // Fields of other requests are unknown here.
        let r = decode_generate_request(br#"{"plaintext":5,"context":"Yw=="}"#).unwrap();
        assert_eq!(r.context, b"c");
    }

    #[test]
    fn malformed_bodies_are_rejected() {
        assert_eq!(enc("").unwrap_err(), DecodeError::Empty);
        assert_eq!(enc(" \n\t").unwrap_err(), DecodeError::Empty);
        for body in ["[]", "\"x\"", "5", "true"] {
            assert_eq!(enc(body).unwrap_err(), DecodeError::NotAnObject, "{body}");
        }
        for body in [
            "{",
            "{\"plaintext\":",
            "{\"plaintext\":\"aGk=\"",
            "{'a':1}",
            "nul",
            "{\"a\":1,}",
        ] {
            assert!(
                matches!(enc(body).unwrap_err(), DecodeError::Syntax { .. }),
                "{body}"
            );
        }
        // Unknown values are still parsed: invalid JSON inside them fails.
        assert!(matches!(
            enc(r#"{"x":[1,}"#).unwrap_err(),
            DecodeError::Syntax { .. }
        ));
    }

    #[test]
    fn import_request() {
        let r = decode_import_request(
            br#"{"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","cipher":"ChaCha20","bytes":"x"}"#,
        )
        .unwrap();
        assert_eq!(&r.key[..], &[0u8; 32]);
        assert_eq!(r.cipher, "ChaCha20");
        // Old-format bodies decode to an empty cipher (the server then answers 406).
        let r =
            decode_import_request(br#"{"bytes":"AAAA","algorithm":"AES256-GCM_SHA256"}"#).unwrap();
        assert!(r.key.is_empty() && r.cipher.is_empty());
    }

    #[test]
    fn generate_decrypt_and_hmac_requests() {
        let g = decode_generate_request(br#"{"context":"Yw==","version":"x"}"#).unwrap();
        assert_eq!((g.context.as_slice(), g.version.as_str()), (&b"c"[..], "x"));
        assert_eq!(
            decode_generate_request(b"{}").unwrap(),
            GenerateRequest::default()
        );
        let d = decode_decrypt_request(br#"{"Ciphertext":"AQID","CONTEXT":"Yw=="}"#).unwrap();
        assert_eq!(
            (d.ciphertext.as_slice(), d.context.as_slice()),
            (&[1u8, 2, 3][..], &b"c"[..])
        );
        let h = decode_hmac_request(br#"{"message":"bQ==","version":"1"}"#).unwrap();
        assert_eq!((&h.message[..], h.version.as_str()), (&b"m"[..], "1"));
    }

    #[test]
    fn policy_requests() {
        let w = decode_policy_write_request(
            br#"{"Allow":["/v1/key/*",null],"deny":null,"identities":["x"]}"#,
        )
        .unwrap();
        assert_eq!(w.allow, vec!["/v1/key/*".to_string(), String::new()]);
        assert!(w.deny.is_empty());
        assert_eq!(
            decode_policy_write_request(br#"{"allow":"/v1/key/*"}"#).unwrap_err(),
            DecodeError::InvalidType {
                field: "allow",
                expected: "a list of strings"
            }
        );
        assert_eq!(
            decode_policy_write_request(br#"{"allow":[1]}"#).unwrap_err(),
            DecodeError::InvalidType {
                field: "allow",
                expected: "a list of strings"
            }
        );
        let a = decode_policy_assign_request(br#"{"IDENTITY":"abc"}"#).unwrap();
        assert_eq!(a.identity, "abc");
        assert_eq!(decode_policy_assign_request(b"null").unwrap().identity, "");
    }

    #[test]
    fn errors_never_contain_values() {
        let err = enc(r#"{"plaintext":"SECRET-VALUE"}"#).unwrap_err();
        assert!(!err.to_string().contains("SECRET"));
        assert!(!format!("{err:?}").contains("SECRET"));
    }

    #[test]
    fn client_encoding_decodes_back() {
        let req = EncryptRequest {
            plaintext: Zeroizing::new(b"round trip".to_vec()),
            context: b"ctx".to_vec(),
            version: String::new(),
        };
        let body = crate::encode_json_secret(&req);
        let back = decode_encrypt_request(&body).unwrap();
        assert_eq!(&back.plaintext[..], b"round trip");
        assert_eq!(back.context, b"ctx");
    }
}
