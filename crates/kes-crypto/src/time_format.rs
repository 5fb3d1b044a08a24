//! Formatting times as Go's `time.RFC3339Nano`, the text of every `created_at` KES returns.

use std::fmt::Write as _;

use time::OffsetDateTime;

/// Formats `t` like Go's `t.Format(time.RFC3339Nano)` (which is also what Go's JSON encoding of
/// a `time.Time` produces): `2006-01-02T15:04:05.999999999Z07:00`. The fraction of a second has
/// its trailing zeros trimmed and is left out when zero; a zero UTC offset is written `Z`,
/// others as `+hh:mm` / `-hh:mm`.
///
/// ```
/// use time::macros::datetime;
/// let t = datetime!(2024-01-12 10:39:20.886816 UTC);
/// assert_eq!(kes_crypto::format_rfc3339_nano(t), "2024-01-12T10:39:20.886816Z");
/// let t = datetime!(2021-06-01 10:00:00 +02:00);
/// assert_eq!(kes_crypto::format_rfc3339_nano(t), "2021-06-01T10:00:00+02:00");
/// ```
#[must_use]
pub fn format_rfc3339_nano(t: OffsetDateTime) -> String {
    let mut out = String::with_capacity(35);
    let year = t.year();
    if year < 0 {
        out.push('-');
    }
    // Writing into a `String` cannot fail; the results are ignored for that reason.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        year.unsigned_abs(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    let offset = t.offset();
    if offset.is_utc() {
        out.push('Z');
    } else {
        let (hours, minutes, _) = offset.as_hms();
        let sign = if offset.is_negative() { '-' } else { '+' };
        let _ = write!(
            out,
            "{sign}{:02}:{:02}",
            hours.unsigned_abs(),
            minutes.unsigned_abs()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn matches_go_rfc3339_nano() {
        let cases = [
            (
                datetime!(2026-11-30 05:14:05.092388568 UTC),
                "2026-11-30T05:14:05.092388568Z",
            ),
            (
                datetime!(2026-11-30 05:14:05.0952049 UTC),
                "2026-11-30T05:14:05.0952049Z",
            ),
            (datetime!(2009-11-10 23:00:00 UTC), "2009-11-10T23:00:00Z"),
            (datetime!(0001-01-01 00:00:00 UTC), "0001-01-01T00:00:00Z"),
            (datetime!(1970-01-01 00:00:00 UTC), "1970-01-01T00:00:00Z"),
            (
                datetime!(2020-02-29 12:30:00.5 -05:30),
                "2020-02-29T12:30:00.5-05:30",
            ),
        ];
        for (t, want) in cases {
            assert_eq!(format_rfc3339_nano(t), want);
        }
    }
}
