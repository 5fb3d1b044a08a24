//! Response encoding like Go's `json.Encoder` with its default HTML escaping: compact JSON,
//! a trailing newline, and `<`, `>`, `&`, U+2028, U+2029 written as `\u003c`, `\u003e`,
//! `\u0026`, `\u2028`, `\u2029`. Other escapes match Go 1.22 and later (`\b`, `\f`, `\n`,
//! `\r`, `\t`, `\"`, `\\`, and `\u00XX` with lowercase hex for other control characters).

use std::fmt;
use std::io;

use base64::Engine as _;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::b64;

/// Serializes `value` as Go's `json.NewEncoder(w).Encode(value)` would: compact JSON with
/// Go's HTML escaping, followed by `\n`.
///
/// Cannot fail: [`WireBody`] is implemented only for this crate's wire types, whose
/// serialization has no error path (strings, integers, booleans, lists, maps with string
/// keys, base64 and timestamps). Use [`try_encode_json`] for any other type.
///
/// The bodies of the key operations (encrypt, generate, decrypt and HMAC responses) are
/// written without serde: base64 goes straight into the output buffer, which is allocated once
/// at its final size. The bytes are the same as serde's (see the tests).
pub fn encode_json<T: WireBody + ?Sized>(value: &T) -> Vec<u8> {
    if let Some(len) = direct_len(value) {
        let mut out = Vec::with_capacity(len);
        value.encode_direct(&mut out);
        return out;
    }
    // Invariant: a `WireBody` never fails to serialize (see above), so the empty fallback
    // is never taken.
    try_encode_json(value).unwrap_or_default()
}

/// Like [`encode_json`], for bodies that carry secrets (the plaintext of decrypt and
/// generate responses).
///
/// The output buffer is allocated at exactly its final size before anything is written, so
/// growing it never leaves a copy of the secret in freed memory; the returned buffer is wiped
/// when dropped. The size is computed without encoding for the key operations' bodies, and
/// by serializing twice (once to count the bytes) for the others.
pub fn encode_json_secret<T: WireBody + ?Sized>(value: &T) -> Zeroizing<Vec<u8>> {
    if let Some(len) = direct_len(value) {
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        value.encode_direct(&mut *out);
        return out;
    }
    // Invariant as in `encode_json`.
    try_encode_json_secret(value).unwrap_or_default()
}

/// The exact length of `value`'s body if it has a direct encoder.
fn direct_len<T: WireBody + ?Sized>(value: &T) -> Option<usize> {
    let mut counter = ByteCounter(0);
    value.encode_direct(&mut counter).then_some(counter.0)
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
    use super::Out;

    pub trait Sealed {
        /// Writes the whole body, trailing newline included, to `out` without serde and returns
        /// `true`; or writes nothing and returns `false` when the type has no direct encoder.
        ///
        /// A direct encoder must produce exactly the bytes of the serde path
        /// ([`super::try_encode_json`]); the tests compare the two.
        fn encode_direct<O: Out + ?Sized>(&self, _out: &mut O) -> bool {
            false
        }
    }
}

/// Where a direct encoder writes: the output buffer, or a counter that measures the body
/// before the buffer is allocated.
///
/// `pub` only because the `sealed::Sealed` bound names it; this module is private and does
/// not re-export it, so it cannot be named outside the crate.
pub trait Out {
    /// Appends `bytes` as they are.
    fn put(&mut self, bytes: &[u8]);
    /// Appends `data` as a JSON string of standard base64 with padding. Base64 text never
    /// needs escaping (its alphabet is `A-Z a-z 0-9 + / =`), so it is encoded straight into
    /// the output.
    fn put_base64_string(&mut self, data: &[u8]);
}

impl Out for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn put_base64_string(&mut self, data: &[u8]) {
        self.push(b'"');
        let start = self.len();
        // Within the capacity reserved from the counted length, so no reallocation moves
        // (and leaves behind) what is already written.
        self.resize(start.saturating_add(base64_len(data)), 0);
        let written = match self.get_mut(start..) {
            Some(dst) => b64::GO_STD.encode_slice(data, dst).unwrap_or(0),
            None => 0,
        };
        self.truncate(start.saturating_add(written));
        self.push(b'"');
    }
}

impl Out for ByteCounter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 = self.0.saturating_add(bytes.len());
    }

    fn put_base64_string(&mut self, data: &[u8]) {
        self.0 = self.0.saturating_add(base64_len(data)).saturating_add(2);
    }
}

/// Length of the padded base64 of `data`. `encoded_len` only fails for inputs near
/// `usize::MAX` bytes, which cannot exist in memory.
fn base64_len(data: &[u8]) -> usize {
    base64::encoded_len(data.len(), true).unwrap_or(usize::MAX)
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
    crate::RotateKeyResponse,
    crate::ListKeysResponse,
    crate::DescribePolicyResponse,
    crate::ReadPolicyResponse,
    crate::ListPoliciesResponse,
    crate::DescribeIdentityResponse,
    crate::SelfDescribeResponse,
    crate::ListIdentitiesResponse,
    crate::AuditEvent,
    crate::ErrorEvent,
);

// The bodies of the key operations, on every request's hot path: direct encoders with the
// field order and omissions of their serde derives (`version` is skipped when `None`).

impl sealed::Sealed for crate::EncryptResponse {
    fn encode_direct<O: Out + ?Sized>(&self, out: &mut O) -> bool {
        out.put(b"{\"ciphertext\":");
        out.put_base64_string(&self.ciphertext);
        put_version(out, self.version.as_deref());
        out.put(b"}\n");
        true
    }
}
impl WireBody for crate::EncryptResponse {}

impl sealed::Sealed for crate::GenerateResponse {
    fn encode_direct<O: Out + ?Sized>(&self, out: &mut O) -> bool {
        out.put(b"{\"plaintext\":");
        out.put_base64_string(&self.plaintext);
        out.put(b",\"ciphertext\":");
        out.put_base64_string(&self.ciphertext);
        put_version(out, self.version.as_deref());
        out.put(b"}\n");
        true
    }
}
impl WireBody for crate::GenerateResponse {}

impl sealed::Sealed for crate::DecryptResponse {
    fn encode_direct<O: Out + ?Sized>(&self, out: &mut O) -> bool {
        out.put(b"{\"plaintext\":");
        out.put_base64_string(&self.plaintext);
        out.put(b"}\n");
        true
    }
}
impl WireBody for crate::DecryptResponse {}

impl sealed::Sealed for crate::HmacResponse {
    fn encode_direct<O: Out + ?Sized>(&self, out: &mut O) -> bool {
        out.put(b"{\"hmac\":");
        out.put_base64_string(&self.hmac);
        put_version(out, self.version.as_deref());
        out.put(b"}\n");
        true
    }
}
impl WireBody for crate::HmacResponse {}

/// The optional `version` field that ends a key operation's body.
fn put_version<O: Out + ?Sized>(out: &mut O, version: Option<&str>) {
    if let Some(version) = version {
        out.put(b",\"version\":");
        write_go_string(out, version);
    }
}

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
        // Most fragments (base64, names, identities, timestamps) need no HTML escape: one
        // branch-free pass over the bytes finds that out, and the fragment is written whole.
        if !may_need_html_escape(fragment.as_bytes()) {
            return writer.write_all(fragment.as_bytes());
        }
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

/// Whether `bytes` may hold a character Go escapes beyond what JSON requires: `<`, `>`, `&`,
/// or `0xE2`, the first byte of U+2028 and U+2029 in UTF-8 (and of other characters, which
/// the exact search then skips). `false` means certainly none. No early exit, so the compiler
/// can check many bytes per instruction.
fn may_need_html_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |found, &b| {
        found | matches!(b, b'<' | b'>' | b'&' | 0xE2)
    })
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
fn write_go_string<O: Out + ?Sized>(out: &mut O, s: &str) {
    out.put(b"\"");
    // Runs of characters that need no escape are written whole.
    let mut run_start = 0;
    for (i, c) in s.char_indices() {
        let control;
        let escape: &[u8] = match c {
            '"' => b"\\\"",
            '\\' => b"\\\\",
            '\u{8}' => b"\\b",
            '\u{c}' => b"\\f",
            '\n' => b"\\n",
            '\r' => b"\\r",
            '\t' => b"\\t",
            c if u32::from(c) < 0x20 => {
                control = format!("\\u{:04x}", u32::from(c));
                control.as_bytes()
            }
            c => match html_escape(c) {
                Some(escape) => escape,
                None => continue,
            },
        };
        out.put(s.get(run_start..i).unwrap_or_default().as_bytes());
        out.put(escape);
        run_start = i + c.len_utf8();
    }
    out.put(s.get(run_start..).unwrap_or_default().as_bytes());
    out.put(b"\"");
}

#[cfg(test)]
mod tests {
    use super::*;
    use kes_testutil::Rng;
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

    /// Go's escaping, character by character: the oracle for the run-based `write_go_string`
    /// and for the formatter's fast path.
    fn reference_go_string(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    /// A random string mixing plain ASCII with every character the escaping treats specially,
    /// and with other characters whose UTF-8 starts with the byte 0xE2 (as U+2028 does).
    fn random_text(rng: &mut Rng) -> String {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "0",
            "+",
            "/",
            "=",
            " ",
            "<",
            ">",
            "&",
            "\"",
            "\\",
            "\u{0}",
            "\u{8}",
            "\u{c}",
            "\n",
            "\r",
            "\t",
            "\u{1f}",
            "\u{7f}",
            "é",
            "\u{2027}",
            "\u{2028}",
            "\u{2029}",
            "\u{202a}",
            "€",
            "🔑",
            "key-name_1.2",
        ];
        let len = rng.below(40);
        (0..len).map(|_| *rng.pick(PIECES)).collect()
    }

    #[test]
    fn strings_escape_like_the_reference_on_random_text() {
        let mut rng = Rng::new(0x60e5_c49e);
        for case in 0..5000 {
            let text = random_text(&mut rng);
            let want = reference_go_string(&text);
            let mut direct = Vec::new();
            write_go_string(&mut direct, &text);
            assert_eq!(String::from_utf8(direct).unwrap(), want, "case {case}");
            let mut counter = ByteCounter(0);
            write_go_string(&mut counter, &text);
            assert_eq!(counter.0, want.len(), "case {case}");
            let through_serde = try_encode_json(&text).unwrap();
            assert_eq!(
                String::from_utf8(through_serde).unwrap(),
                format!("{want}\n"),
                "case {case}"
            );
        }
    }

    /// Random bytes of a random length: mostly short, sometimes past the serde path's stack
    /// buffer (192 bytes) and past a few KiB.
    fn random_bytes(rng: &mut Rng) -> Vec<u8> {
        let len = match rng.below(4) {
            0 => rng.below(4),
            1 => rng.below(100),
            2 => 150 + rng.below(100),
            _ => rng.below(5000),
        };
        rng.bytes(len)
    }

    fn random_version(rng: &mut Rng) -> Option<String> {
        rng.below(3).eq(&0).then(|| random_text(rng))
    }

    /// The direct encoders of the key operations' bodies against the serde path (the encoding
    /// they replace), on random bodies: identical bytes, buffers allocated at their final size.
    #[test]
    fn direct_encoders_match_the_serde_path_on_random_bodies() {
        fn check<T: WireBody>(value: &T, what: &str) {
            let serde = try_encode_json(value).unwrap();
            let serde_secret = try_encode_json_secret(value).unwrap();
            assert_eq!(serde, &serde_secret[..], "{what}");
            assert!(direct_len(value).is_some(), "{what} has a direct encoder");
            let plain = encode_json(value);
            assert_eq!(
                String::from_utf8_lossy(&plain),
                String::from_utf8_lossy(&serde),
                "{what}"
            );
            assert_eq!(plain.capacity(), plain.len(), "{what}");
            let secret = encode_json_secret(value);
            assert_eq!(&secret[..], &serde[..], "{what}");
            assert_eq!(secret.capacity(), secret.len(), "{what}");
        }
        let mut rng = Rng::new(0xba5e_0064);
        for case in 0..2000 {
            let what = format!("case {case}");
            check(
                &crate::GenerateResponse {
                    plaintext: Zeroizing::new(random_bytes(&mut rng)),
                    ciphertext: random_bytes(&mut rng),
                    version: random_version(&mut rng),
                },
                &format!("generate {what}"),
            );
            check(
                &crate::DecryptResponse {
                    plaintext: Zeroizing::new(random_bytes(&mut rng)),
                },
                &format!("decrypt {what}"),
            );
            check(
                &crate::EncryptResponse {
                    ciphertext: random_bytes(&mut rng),
                    version: random_version(&mut rng),
                },
                &format!("encrypt {what}"),
            );
            check(
                &crate::HmacResponse {
                    hmac: random_bytes(&mut rng),
                    version: random_version(&mut rng),
                },
                &format!("hmac {what}"),
            );
        }
    }

    /// Pinned bytes of the direct encoders, including the optional version.
    #[test]
    fn direct_encoders_pinned_output() {
        let generate = crate::GenerateResponse {
            plaintext: Zeroizing::new(vec![0xfb, 0xff]),
            ciphertext: b"hello".to_vec(),
            version: Some("v<1>".into()),
        };
        assert_eq!(
            &encode_json_secret(&generate)[..],
            b"{\"plaintext\":\"+/8=\",\"ciphertext\":\"aGVsbG8=\",\"version\":\"v\\u003c1\\u003e\"}\n"
        );
        let decrypt = crate::DecryptResponse::default();
        assert_eq!(&encode_json_secret(&decrypt)[..], b"{\"plaintext\":\"\"}\n");
        let encrypt = crate::EncryptResponse {
            ciphertext: vec![0],
            version: None,
        };
        assert_eq!(encode_json(&encrypt), b"{\"ciphertext\":\"AA==\"}\n");
        let hmac = crate::HmacResponse {
            hmac: vec![1, 2, 3],
            version: Some(String::new()),
        };
        assert_eq!(
            encode_json(&hmac),
            b"{\"hmac\":\"AQID\",\"version\":\"\"}\n"
        );
        // Other bodies take the serde path.
        assert_eq!(direct_len(&crate::VersionResponse::default()), None);
        assert_eq!(direct_len(&vec![crate::DecryptResponse::default()]), None);
    }

    /// The serde path's base64 (stack buffer up to 192 input bytes, heap beyond) is the plain
    /// padded standard encoding at every length around the switch.
    #[test]
    fn serde_base64_fields_around_the_stack_buffer_limit() {
        use base64::Engine as _;
        let mut rng = Rng::new(7);
        for len in (0..8).chain(185..200).chain([1000, 4096]) {
            let data = rng.bytes(len);
            let want = format!("{{\"ciphertext\":\"{}\"}}\n", b64::GO_STD.encode(&data));
            let request = crate::DecryptRequest {
                ciphertext: data.clone(),
                ..Default::default()
            };
            assert_eq!(
                String::from_utf8(encode_json(&request)).unwrap(),
                want,
                "{len}"
            );
            let response = crate::EncryptResponse {
                ciphertext: data,
                version: None,
            };
            assert_eq!(
                String::from_utf8(try_encode_json(&response).unwrap()).unwrap(),
                want,
                "{len}"
            );
        }
    }

    #[test]
    fn encoding_errors_are_reported_not_panicked() {
        let mut m = BTreeMap::new();
        m.insert(vec![1u8], 1);
        assert!(try_encode_json(&m).is_err());
        assert!(try_encode_json_secret(&m).is_err());
    }
}
