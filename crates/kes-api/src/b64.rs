//! Base64 as Go's `encoding/json` uses it for `[]byte`: the standard alphabet with padding.
//!
//! Decoding follows Go's `base64.StdEncoding`: padding is required, `\r` and `\n` anywhere
//! in the input are skipped, and non-zero trailing bits are tolerated (Go does not use the
//! strict mode). Everything that may hold secret material goes through `Zeroizing` buffers
//! that are allocated at their final size, so no reallocation leaves a copy behind.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

/// Go's `base64.StdEncoding`.
pub(crate) const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// The input is not standard base64 with padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidBase64;

/// Decodes `text` like Go's `base64.StdEncoding.Decode`, skipping `\r` and `\n`.
pub(crate) fn decode(text: &[u8]) -> Result<Zeroizing<Vec<u8>>, InvalidBase64> {
    if text.contains(&b'\r') || text.contains(&b'\n') {
        let mut stripped = Zeroizing::new(Vec::with_capacity(text.len()));
        stripped.extend(text.iter().copied().filter(|b| *b != b'\r' && *b != b'\n'));
        return decode_clean(&stripped);
    }
    decode_clean(text)
}

fn decode_clean(text: &[u8]) -> Result<Zeroizing<Vec<u8>>, InvalidBase64> {
    let mut out = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(text.len())]);
    let n = GO_STD
        .decode_slice(text, &mut out[..])
        .map_err(|_| InvalidBase64)?;
    out.truncate(n);
    Ok(out)
}

/// Encodes `bytes` into a buffer of exactly the right size that is wiped on drop.
pub(crate) fn encode_zeroizing(bytes: &[u8]) -> Zeroizing<Vec<u8>> {
    // `encoded_len` only fails for inputs near usize::MAX bytes, which cannot exist.
    let len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
    let mut out = Zeroizing::new(vec![0u8; len]);
    match GO_STD.encode_slice(bytes, &mut out[..]) {
        Ok(n) => out.truncate(n),
        Err(_) => out.clear(),
    }
    out
}

/// Base64 of up to this many bytes is encoded on the stack by [`serialize_str`].
const STACK_INPUT_LEN: usize = 192;
/// Its base64: 4 characters per 3 bytes.
const STACK_TEXT_LEN: usize = STACK_INPUT_LEN / 3 * 4;

/// Serializes `bytes` as a base64 string through serde (the bodies without a direct encoder,
/// see `encode.rs`).
///
/// Short inputs (the usual keys, contexts and ciphertexts) are encoded into a stack buffer
/// rather than a new `String`, longer ones into a heap buffer allocated at its final size.
/// Either buffer is wiped afterwards, as the bytes may be secret.
fn serialize_str<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let mut stack = Zeroizing::new([0u8; STACK_TEXT_LEN]);
    let heap;
    let text: &[u8] = if bytes.len() <= STACK_INPUT_LEN {
        let n = GO_STD
            .encode_slice(bytes, stack.as_mut_slice())
            .map_err(serde::ser::Error::custom)?;
        stack.get(..n).unwrap_or_default()
    } else {
        heap = encode_zeroizing(bytes);
        &heap
    };
    // Base64 output is ASCII, so this conversion never fails.
    let text = std::str::from_utf8(text).map_err(serde::ser::Error::custom)?;
    s.serialize_str(text)
}

/// Serde helpers for public `Vec<u8>` fields.
pub(crate) mod bytes {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        serialize_str(v, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let mut secret = d.deserialize_option(BytesVisitor)?;
        Ok(std::mem::take(&mut *secret))
    }
}

/// Serde helpers for secret `Zeroizing<Vec<u8>>` fields.
pub(crate) mod secret {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        serialize_str(v, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Zeroizing<Vec<u8>>, D::Error> {
        d.deserialize_option(BytesVisitor)
    }
}

/// Accepts a base64 string (or `null` for empty) and decodes it into a wiped buffer.
struct BytesVisitor;

impl<'de> serde::de::Visitor<'de> for BytesVisitor {
    type Value = Zeroizing<Vec<u8>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a standard base64 string with padding")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Zeroizing::new(Vec::new()))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Zeroizing::new(Vec::new()))
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        // The error must not echo the input: it may be secret.
        decode(v.as_bytes()).map_err(|_| E::custom("invalid base64 value"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_go_std_encoding() {
        assert_eq!(&decode(b"").unwrap()[..], b"");
        assert_eq!(&decode(b"AAAA").unwrap()[..], &[0, 0, 0]);
        assert_eq!(&decode(b"aGVsbG8=").unwrap()[..], b"hello");
        assert_eq!(&decode(b"aGVs\r\nbG8=").unwrap()[..], b"hello");
        assert_eq!(&decode(b"\naGVsbG8=\n").unwrap()[..], b"hello");
        // Go's non-strict decoder ignores non-zero trailing bits.
        assert_eq!(&decode(b"AB==").unwrap()[..], &[0]);
        for bad in [
            &b"AAA"[..],
            b"A===",
            b"aGVsbG8",
            b"aGVs bG8=",
            b"aGVsbG8=AA==",
            b"a-_A",
        ] {
            assert_eq!(
                decode(bad),
                Err(InvalidBase64),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn encodes_with_padding() {
        assert_eq!(&encode_zeroizing(b"hello")[..], b"aGVsbG8=");
        assert_eq!(&encode_zeroizing(b"")[..], b"");
        assert_eq!(&encode_zeroizing(&[0xfb, 0xff])[..], b"+/8=");
    }
}
