//! Durations written as Go writes them (`720h`, `1h30m`, `1.5s`, `300ms`), the form the
//! original's `--expiry` and `--rate` take, and a short human form for output.

use std::time::Duration;

/// Parses a Go duration: one or more `<number><unit>` parts, the number possibly with a
/// fraction, the unit one of `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`. Negative durations and
/// `0` without a unit are refused only where they make no sense, by the caller.
pub fn parse(input: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration '{input}': expected e.g. 720h, 1h30m or 5s");
    if input == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = input;
    if rest.is_empty() || rest.starts_with('-') {
        return Err(invalid());
    }
    rest = rest.strip_prefix('+').unwrap_or(rest);
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (number, tail) = rest.split_at(number_len);
        if number.is_empty() || number == "." {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += value * seconds;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

/// A short human form: `850ms`, `12s`, `3m 4s`, `5h 6m`, `7d 8h`.
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (days, hours, minutes, seconds) =
        (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds}s")
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("720h").unwrap(), Duration::from_secs(720 * 3600));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "-1h", "1d", "h", "1h5", "1..5s", "."] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn human_form() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_secs(12)), "12s");
        assert_eq!(human(Duration::from_secs(184)), "3m 4s");
        assert_eq!(human(Duration::from_secs(5 * 3600 + 360)), "5h 6m");
        assert_eq!(human(Duration::from_secs(7 * 86_400 + 8 * 3600)), "7d 8h");
    }
}
