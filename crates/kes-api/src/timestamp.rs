//! Timestamps as Go's `time.Time` JSON form: RFC 3339 with up to nine fraction digits,
//! trailing zeros of the fraction trimmed, `Z` for UTC (Go's `time.RFC3339Nano`).

use std::fmt::{self, Write as _};

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, macros::datetime};

/// Go's zero `time.Time`: `0001-01-01T00:00:00Z`. Servers report it for keys that were
/// stored without a creation time; [`rfc3339nano`] uses it for missing or `null` values.
pub fn zero_time() -> OffsetDateTime {
    datetime!(0001-01-01 00:00:00 UTC)
}

/// Formats `t` like Go's `t.Format(time.RFC3339Nano)`, the form `time.Time` uses in JSON.
///
/// Examples: `2024-01-12T10:39:20.886816Z`, `2026-11-30T05:14:05.092388568Z`,
/// `2024-01-12T10:39:20Z` (whole seconds have no fraction), `2024-01-12T11:39:20+01:00`.
/// Seconds of a UTC offset are dropped, as Go does. Years outside `0..=9999` (which
/// [`parse_time`] never produces and a clock never shows) are written with all their digits
/// and a sign when negative; such strings are not RFC 3339. Go's `MarshalJSON` refuses
/// them, but encoding here must not fail, see [`crate::encode_json`].
pub fn format_time(t: OffsetDateTime) -> String {
    let mut out = String::with_capacity(36);
    // Writing to a String cannot fail.
    let _ = write_time(&mut out, t);
    out
}

fn write_time(out: &mut String, t: OffsetDateTime) -> fmt::Result {
    let year = t.year();
    if year >= 0 {
        write!(out, "{year:04}")?;
    } else {
        write!(out, "-{:04}", year.unsigned_abs())?;
    }
    write!(
        out,
        "-{:02}-{:02}T{:02}:{:02}:{:02}",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )?;
    let nanos = t.nanosecond();
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    let offset = t.offset().whole_seconds();
    if offset == 0 {
        out.push('Z');
    } else {
        // Go converts the offset to whole minutes, truncating toward zero.
        let minutes = offset / 60;
        let sign = if minutes < 0 { '-' } else { '+' };
        let minutes = minutes.unsigned_abs();
        write!(out, "{sign}{:02}:{:02}", minutes / 60, minutes % 60)?;
    }
    Ok(())
}

/// Parses an RFC 3339 timestamp such as those produced by [`format_time`] or by Go's
/// `time.Time` JSON encoding (any number of fraction digits up to nine, `Z` or a numeric
/// offset). The offset is kept as given.
pub fn parse_time(s: &str) -> Result<OffsetDateTime, ParseTimeError> {
    // Go's layout requires an upper-case `T` and `Z`; RFC 3339 (and the time crate) also
    // allow a space and lower case.
    if s.as_bytes().get(10) != Some(&b'T') || s.contains(['t', 'z']) {
        return Err(ParseTimeError { _priv: () });
    }
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| ParseTimeError { _priv: () })
}

/// The string given to [`parse_time`] is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseTimeError {
    _priv: (),
}

impl fmt::Display for ParseTimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid timestamp: expected RFC 3339 (e.g. 2024-01-12T10:39:20.886816Z)")
    }
}

impl std::error::Error for ParseTimeError {}

/// Serde helpers for `OffsetDateTime` fields in the Go `time.Time` JSON form; use with
/// `#[serde(with = "kes_api::rfc3339nano")]`.
///
/// Deserializing accepts `null` as the zero time, because Go's decoder leaves a
/// `time.Time` untouched (zero) for `null`.
pub mod rfc3339nano {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use time::OffsetDateTime;

    /// Serializes `t` as a JSON string in Go's RFC 3339 "nano" form ([`super::format_time`]).
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_time(*t))
    }

    /// Deserializes an RFC 3339 string; `null` gives the zero time.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OffsetDateTime, D::Error> {
        deserializer.deserialize_option(TimeVisitor)
    }

    struct TimeVisitor;

    impl<'de> Visitor<'de> for TimeVisitor {
        type Value = OffsetDateTime;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an RFC 3339 timestamp string")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(super::zero_time())
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(super::zero_time())
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            super::parse_time(v).map_err(E::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_like_go_rfc3339nano() {
        let cases = [
            (
                datetime!(2024-01-12 10:39:20.886816 UTC),
                "2024-01-12T10:39:20.886816Z",
            ),
            (
                datetime!(2026-11-30 05:14:05.092388568 UTC),
                "2026-11-30T05:14:05.092388568Z",
            ),
            (datetime!(2024-01-12 10:39:20 UTC), "2024-01-12T10:39:20Z"),
            (
                datetime!(2024-01-12 10:39:20.5 UTC),
                "2024-01-12T10:39:20.5Z",
            ),
            (
                datetime!(2024-01-12 10:39:20.000000001 UTC),
                "2024-01-12T10:39:20.000000001Z",
            ),
            (
                datetime!(2024-01-12 11:39:20.1 +01:00),
                "2024-01-12T11:39:20.1+01:00",
            ),
            (
                datetime!(2024-01-12 05:09:20 -05:30),
                "2024-01-12T05:09:20-05:30",
            ),
            (zero_time(), "0001-01-01T00:00:00Z"),
        ];
        for (t, want) in cases {
            assert_eq!(format_time(t), want);
            assert_eq!(parse_time(want).unwrap(), t, "{want}");
        }
    }

    #[test]
    fn offset_seconds_are_truncated_like_go() {
        let t = datetime!(2024-01-12 10:39:20 +01:00:30);
        assert_eq!(format_time(t), "2024-01-12T10:39:20+01:00");
    }

    #[test]
    fn parses_go_timestamps_and_rejects_garbage() {
        let t = parse_time("2023-10-24T09:12:54.123456789Z").unwrap();
        assert_eq!(t.nanosecond(), 123_456_789);
        assert!(parse_time("2023-10-24 09:12:54Z").is_err());
        assert!(parse_time("2023-10-24t09:12:54Z").is_err());
        assert!(parse_time("2023-10-24T09:12:54z").is_err());
        assert!(parse_time("").is_err());
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn serde_helper_round_trips_and_accepts_null() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(with = "super::rfc3339nano")]
            at: OffsetDateTime,
        }
        let v = T {
            at: datetime!(2024-01-12 10:39:20.886816 UTC),
        };
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"{"at":"2024-01-12T10:39:20.886816Z"}"#);
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
        let null: T = serde_json::from_str(r#"{"at":null}"#).unwrap();
        assert_eq!(null.at, zero_time());
        assert!(serde_json::from_str::<T>(r#"{"at":5}"#).is_err());
    }

    #[test]
    fn serialize_never_fails_even_for_odd_years() {
        #[derive(serde::Serialize)]
        struct T {
            #[serde(with = "super::rfc3339nano")]
            at: OffsetDateTime,
        }
        let v = T {
            at: datetime!(-0001-01-01 00:00 UTC),
        };
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"at":"-0001-01-01T00:00:00Z"}"#
        );
        assert_eq!(format_time(v.at), "-0001-01-01T00:00:00Z");
    }
}
