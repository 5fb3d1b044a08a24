//! Reading JSON objects the way Go's `encoding/json` reads them into a struct.
//!
//! The legacy key records and legacy ciphertexts (spec §4.1, §4.4) were written and read by Go.
//! To accept exactly what Go accepted, decoding follows these `encoding/json` rules:
//!
//! * Object keys match struct fields case-insensitively (with Go's simple case folding, in which
//!   `ſ` (U+017F) folds to `s` and the Kelvin sign (U+212A) to `k`); unknown keys are ignored;
//!   when a key appears twice the later value wins.
//! * `null`, as the whole document or as a field value, leaves the target unchanged.
//! * A value of the wrong type is an error.
//! * `[]byte` fields are standard base64 with padding; `\r` and `\n` are skipped and non-zero
//!   trailing bits are accepted (Go's non-strict `base64.StdEncoding`).

use std::fmt;
use std::marker::PhantomData;

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// Go's `base64.StdEncoding` (after `\r`/`\n` removal): padding required and canonical, trailing
/// bits not checked.
const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes standard, padded base64 as Go's `base64.StdEncoding.DecodeString` does: `\r` and
/// `\n` anywhere are skipped. The output is wiped when dropped since it is often key material.
pub(crate) fn decode_go_base64(input: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let is_line_break = |b: &u8| *b == b'\r' || *b == b'\n';
    if !input.iter().any(is_line_break) {
        // The common case (records are written without line breaks): no filtered copy.
        return decode_std(input);
    }
    let mut filtered = Zeroizing::new(Vec::with_capacity(input.len()));
    filtered.extend(input.iter().filter(|b| !is_line_break(b)));
    decode_std(&filtered)
}

/// Decodes `GO_STD` base64 into a buffer allocated once, at its final size or a few bytes more.
fn decode_std(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() / 4 * 3 + 3));
    GO_STD.decode_vec(text, &mut out).ok()?;
    Some(out)
}

/// Whether `input` is one valid JSON value with optional surrounding whitespace (Go's
/// `json.Valid`).
pub(crate) fn is_valid_json(input: &[u8]) -> bool {
    serde_json::from_slice::<IgnoredAny>(input).is_ok()
}

/// A Go struct as `encoding/json` sees it: a list of JSON field names and a setter per field.
pub(crate) trait GoStruct: Default {
    /// The JSON names of the fields, as in the Go struct tags.
    const FIELDS: &'static [&'static str];

    /// Reads the value of field `FIELDS[index]` from `map` into `self`.
    fn set_field<'de, A: MapAccess<'de>>(
        &mut self,
        index: usize,
        map: &mut A,
    ) -> Result<(), A::Error>;
}

/// Parses `input` as a JSON value decoded into `T` by Go's rules (see the module docs).
pub(crate) fn from_slice<T: GoStruct>(input: &[u8]) -> Option<T> {
    let mut deserializer = serde_json::Deserializer::from_slice(input);
    let value = GoStructSeed::<T>(PhantomData)
        .deserialize(&mut deserializer)
        .ok()?;
    deserializer.end().ok()?;
    Some(value)
}

struct GoStructSeed<T>(PhantomData<T>);

impl<'de, T: GoStruct> DeserializeSeed<'de> for GoStructSeed<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: GoStruct> Visitor<'de> for GoStructSeed<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut value = T::default();
        while let Some(key) = map.next_key::<String>()? {
            match T::FIELDS.iter().position(|name| go_fold_eq(name, &key)) {
                Some(index) => value.set_field(index, &mut map)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(value)
    }
}

/// Case-insensitive comparison of a (lowercase ASCII) field name with a JSON key, using the
/// simple case folding Go applies to field names.
fn go_fold_eq(field: &str, key: &str) -> bool {
    let mut key_chars = key.chars().map(|c| match c {
        '\u{017F}' => 's',
        '\u{212A}' => 'k',
        c => c.to_ascii_lowercase(),
    });
    for f in field.chars() {
        if key_chars.next() != Some(f.to_ascii_lowercase()) {
            return false;
        }
    }
    key_chars.next().is_none()
}

/// A JSON string whose content is a secret (e.g. base64 of a key); wiped when dropped.
pub(crate) struct SecretString(pub(crate) Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| SecretString(Zeroizing::new(s)))
    }
}

/// Reads an optional value (Go: `null` leaves the field unchanged) into `slot`.
pub(crate) fn set_unless_null<'de, A, T>(map: &mut A, slot: &mut T) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    if let Some(value) = map.next_value::<Option<T>>()? {
        *slot = value;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug, PartialEq)]
    struct Sample {
        name: String,
        bytes: Option<Vec<u8>>,
    }

    impl GoStruct for Sample {
        const FIELDS: &'static [&'static str] = &["name", "bytes"];

        fn set_field<'de, A: MapAccess<'de>>(
            &mut self,
            index: usize,
            map: &mut A,
        ) -> Result<(), A::Error> {
            match index {
                0 => set_unless_null(map, &mut self.name),
                _ => {
                    let mut s: Option<String> = None;
                    set_unless_null(map, &mut s)?;
                    if let Some(s) = s {
                        let b = decode_go_base64(s.as_bytes())
                            .ok_or_else(|| de::Error::custom("invalid base64"))?;
                        self.bytes = Some(b.to_vec());
                    }
                    Ok(())
                }
            }
        }
    }

    #[test]
    fn field_names_fold_like_go() {
        assert!(go_fold_eq("bytes", "BYTES"));
        assert!(go_fold_eq("bytes", "byteſ"));
        assert!(go_fold_eq("created_at", "Created_At"));
        assert!(!go_fold_eq("bytes", "byte"));
        assert!(!go_fold_eq("bytes", "bytess"));
        let s: Sample = from_slice(br#"{"NAME":"a","Name":"b","other":[1,{"x":2}]}"#).unwrap();
        assert_eq!(s.name, "b");
    }

    #[test]
    fn null_leaves_fields_unchanged() {
        let s: Sample = from_slice(br#"{"name":"a","name":null}"#).unwrap();
        assert_eq!(s.name, "a");
        let s: Sample = from_slice(b" null ").unwrap();
        assert_eq!(s, Sample::default());
    }

    #[test]
    fn wrong_types_and_trailing_data_fail() {
        assert!(from_slice::<Sample>(br#"{"name":1}"#).is_none());
        assert!(from_slice::<Sample>(br#""text""#).is_none());
        assert!(from_slice::<Sample>(br#"[]"#).is_none());
        assert!(from_slice::<Sample>(br#"{"name":"a"} x"#).is_none());
        assert!(from_slice::<Sample>(br#"{"name":"a""#).is_none());
    }

    #[test]
    fn base64_like_go_std_encoding() {
        assert_eq!(decode_go_base64(b"AAEC").unwrap().as_slice(), &[0, 1, 2]);
        assert_eq!(
            decode_go_base64(b"AA\r\nEC\n").unwrap().as_slice(),
            &[0, 1, 2]
        );
        assert_eq!(decode_go_base64(b"AQ==").unwrap().as_slice(), &[1]);
        // Non-zero trailing bits are accepted, as by Go's non-strict decoder.
        assert_eq!(decode_go_base64(b"AR==").unwrap().as_slice(), &[1]);
        assert!(decode_go_base64(b"AQ").is_none());
        assert!(decode_go_base64(b"AQ=").is_none());
        assert!(decode_go_base64(b"A Q==").is_none());
        assert!(decode_go_base64(b"AQ==AQ==").is_none());
        assert!(decode_go_base64(b"-_8=").is_none());
        assert_eq!(decode_go_base64(b"").unwrap().len(), 0);
    }

    #[test]
    fn valid_json_detection() {
        assert!(is_valid_json(b" {\"a\":1}\n"));
        assert!(is_valid_json(b"null"));
        assert!(!is_valid_json(b"{\"a\":1"));
        assert!(!is_valid_json(b"CiQKIA=="));
        assert!(!is_valid_json(b""));
    }
}
