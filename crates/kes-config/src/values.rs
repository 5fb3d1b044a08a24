//! Parsers for the scalar value types of the configuration file, with Go KES semantics.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A log level on the `log/slog` scale used by KES: DEBUG = -4, INFO = 0, WARN = 4, ERROR = 8.
///
/// A logger at level `L` writes records whose level is `>= L`. [`LogLevel::OFF`] (ERROR + 1)
/// therefore writes nothing KES emits: audit events are INFO, error-log records at most ERROR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogLevel(pub i32);

impl LogLevel {
    /// Debug messages and above.
    pub const DEBUG: LogLevel = LogLevel(-4);
    /// Informational messages and above; the default of both logs.
    pub const INFO: LogLevel = LogLevel(0);
    /// Warnings and above.
    pub const WARN: LogLevel = LogLevel(4);
    /// Errors only.
    pub const ERROR: LogLevel = LogLevel(8);
    /// Nothing (the `off` value).
    pub const OFF: LogLevel = LogLevel(9);

    /// Whether a record at `level` is written by a logger set to `self`.
    pub fn enables(self, level: LogLevel) -> bool {
        level.0 >= self.0
    }

    /// Parses a `log.error` / `log.audit` value (KES §7.2): case-insensitive and trimmed;
    /// empty or `on` = INFO, `off` = disabled, `DEBUG`/`INFO`/`WARN`/`ERROR` with an optional
    /// `+N` offset (`INFO+2`, `INFO+-2`), or a bare integer.
    pub fn parse(text: &str) -> Result<LogLevel, String> {
        let upper = text.trim().to_ascii_uppercase();
        match upper.as_str() {
            "" | "ON" => return Ok(LogLevel::INFO),
            "OFF" => return Ok(LogLevel::OFF),
            _ => {}
        }
        for (name, base) in [
            ("DEBUG", LogLevel::DEBUG),
            ("INFO", LogLevel::INFO),
            ("WARN", LogLevel::WARN),
            ("ERROR", LogLevel::ERROR),
        ] {
            let Some(rest) = upper.strip_prefix(name) else {
                continue;
            };
            if rest.is_empty() {
                return Ok(base);
            }
            let Some(offset) = rest.strip_prefix('+') else {
                return Err(format!("invalid log level '{text}'"));
            };
            return match go_atoi(offset).and_then(|n| base.0.checked_add(n)) {
                Some(level) => Ok(LogLevel(level)),
                None => Err(format!(
                    "invalid log level suffix '{rest}': expected '+' and an integer"
                )),
            };
        }
        match go_atoi(&upper) {
            Some(level) => Ok(LogLevel(level)),
            None => Err(format!(
                "invalid log level '{text}': expected on, off, DEBUG, INFO, WARN, ERROR or an integer"
            )),
        }
    }
}

impl fmt::Display for LogLevel {
    /// slog's notation: `INFO`, `WARN+1`, `DEBUG-2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, base) = match self.0 {
            i32::MIN..=-1 => ("DEBUG", Self::DEBUG.0),
            0..=3 => ("INFO", Self::INFO.0),
            4..=7 => ("WARN", Self::WARN.0),
            _ => ("ERROR", Self::ERROR.0),
        };
        // i32 arithmetic cannot overflow here: base is within [-4, 8] and the sign matches.
        let offset = i64::from(self.0) - i64::from(base);
        match offset {
            0 => f.write_str(name),
            o if o > 0 => write!(f, "{name}+{o}"),
            o => write!(f, "{name}{o}"),
        }
    }
}

/// Go's `strconv.Atoi` for i32: optional sign, ASCII digits only.
fn go_atoi(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Why a Go duration string did not parse.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DurationError {
    Invalid,
    MissingUnit,
    UnknownUnit(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid => {
                f.write_str("not a duration (examples: '30s', '5m', '1h30m', '500ms')")
            }
            Self::MissingUnit => f.write_str("missing unit (ns, us, ms, s, m or h)"),
            Self::UnknownUnit(u) => write!(f, "unknown unit '{u}' (use ns, us, ms, s, m or h)"),
        }
    }
}

/// Go's `time.ParseDuration`: a possibly signed sequence of decimal numbers, each with an
/// optional fraction and a unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`), e.g. `1h30m`,
/// `1.5h`, `-2s`; the bare string `0` is allowed. Returns nanoseconds in Go's `int64` range.
pub(crate) fn parse_go_duration(text: &str) -> Result<i64, DurationError> {
    let (negative, mut s) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or("")),
        Some(b'+') => (false, text.get(1..).unwrap_or("")),
        _ => (false, text),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(DurationError::Invalid);
    }
    let limit: u128 = 1 << 63; // magnitude of i64::MIN
    let mut total: u128 = 0;
    while !s.is_empty() {
        let starts_number = s.starts_with(|c: char| c == '.' || c.is_ascii_digit());
        if !starts_number {
            return Err(DurationError::Invalid);
        }
        // Integer part.
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = s.split_at(int_len);
        let mut value: u128 = 0;
        for b in int_digits.bytes() {
            value = value * 10 + u128::from(b - b'0');
            if value > limit {
                return Err(DurationError::Invalid);
            }
        }
        s = rest;
        // Fraction, accumulated like Go: digits past u64 precision are dropped.
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut has_fraction = false;
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (frac_digits, rest) = rest.split_at(frac_len);
            let mut overflow = false;
            for b in frac_digits.bytes() {
                if overflow {
                    continue;
                }
                match fraction
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(u64::from(b - b'0')))
                {
                    Some(f) => {
                        fraction = f;
                        scale *= 10.0;
                    }
                    None => overflow = true,
                }
            }
            has_fraction = frac_len > 0;
            s = rest;
        }
        if int_len == 0 && !has_fraction {
            return Err(DurationError::Invalid); // "." or ".s"
        }
        // Unit.
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let nanos: u128 = match unit {
            "" => return Err(DurationError::MissingUnit),
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => return Err(DurationError::UnknownUnit(other.to_owned())),
        };
        value = value.checked_mul(nanos).ok_or(DurationError::Invalid)?;
        if value > limit {
            return Err(DurationError::Invalid);
        }
        if fraction > 0 {
            // As Go: float64(f) * (float64(unit) / scale), truncated.
            let extra = (fraction as f64 * (nanos as f64 / scale)) as u128;
            value += extra;
            if value > limit {
                return Err(DurationError::Invalid);
            }
        }
        total += value;
        if total > limit {
            return Err(DurationError::Invalid);
        }
    }
    if negative {
        // total <= 2^63, so -total fits in i64 (i64::MIN when equal).
        return i64::try_from(-(total as i128)).map_err(|_| DurationError::Invalid);
    }
    i64::try_from(total).map_err(|_| DurationError::Invalid)
}

/// A boolean as yaml.v3 decodes one into a Go `bool`: the YAML 1.2 words plus the YAML 1.1
/// words (`y`, `yes`, `on`, `n`, `no`, `off`) in their three spellings.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            Some(true)
        }
        "false" | "False" | "FALSE" | "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

/// The listen address: `ip:port` or `:port` (all interfaces), IPv6 in brackets.
pub(crate) fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "invalid address '{text}': expected <ip>:<port> or :<port>"
        ));
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid address '{text}': port must be a number"));
    }
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!("invalid address '{text}': port out of range"));
    };
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    let bare = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => inner,
        None if host.contains(':') => {
            return Err(format!(
                "invalid address '{text}': put an IPv6 address in brackets, e.g. [::1]:7373"
            ));
        }
        None => host,
    };
    match bare.parse::<IpAddr>() {
        Ok(ip) => Ok(SocketAddr::new(ip, port)),
        Err(_) => Err(format!(
            "invalid address '{text}': host must be an IP address"
        )),
    }
}

pub(crate) use kes_crypto::names::check_name;

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn go_durations() {
        for (text, nanos) in [
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("5m", 300 * S),
            ("1h30m", 5400 * S),
            ("500ms", 500_000_000),
            ("1.5h", 5400 * S),
            (".5s", S / 2),
            ("1.s", S),
            ("-2s", -2 * S),
            ("+3s", 3 * S),
            ("1us", 1_000),
            ("1\u{b5}s", 1_000),
            ("1\u{3bc}s", 1_000),
            ("2h45m30.5s", (2 * 3600 + 45 * 60 + 30) * S + S / 2),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("1.0000000000000000000001s", S),
        ] {
            assert_eq!(parse_go_duration(text), Ok(nanos), "{text}");
        }
    }

    #[test]
    fn bad_go_durations() {
        for (text, err) in [
            ("", DurationError::Invalid),
            ("-", DurationError::Invalid),
            ("5", DurationError::MissingUnit),
            ("1.5", DurationError::MissingUnit),
            ("5x", DurationError::UnknownUnit("x".into())),
            ("5 m", DurationError::UnknownUnit(" m".into())),
            ("m", DurationError::Invalid),
            (".s", DurationError::Invalid),
            ("1h-5m", DurationError::UnknownUnit("h-".into())),
            ("9223372036854775808ns", DurationError::Invalid),
            ("3000000h", DurationError::Invalid),
            ("00", DurationError::MissingUnit),
        ] {
            assert_eq!(parse_go_duration(text), Err(err), "{text}");
        }
    }

    #[test]
    fn yaml_booleans() {
        for t in [
            "true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
        ] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for t in [
            "false", "False", "FALSE", "n", "N", "no", "No", "NO", "off", "Off", "OFF",
        ] {
            assert_eq!(parse_bool(t), Some(false), "{t}");
        }
        for t in ["", "1", "0", "tRue", "oN", "enabled", "yes "] {
            assert_eq!(parse_bool(t), None, "{t}");
        }
    }

    #[test]
    fn log_levels() {
        for (text, level) in [
            ("", 0),
            ("on", 0),
            ("  On ", 0),
            ("off", 9),
            ("OFF", 9),
            ("debug", -4),
            ("INFO", 0),
            ("warn", 4),
            ("Error", 8),
            ("INFO+2", 2),
            ("info+-2", -2),
            ("ERROR+1", 9),
            ("-4", -4),
            ("+3", 3),
            ("12", 12),
        ] {
            assert_eq!(LogLevel::parse(text), Ok(LogLevel(level)), "{text}");
        }
        assert_eq!(
            LogLevel::parse("INFO-2").unwrap_err(),
            "invalid log level 'INFO-2'"
        );
        assert_eq!(
            LogLevel::parse("INFOX").unwrap_err(),
            "invalid log level 'INFOX'"
        );
        assert_eq!(
            LogLevel::parse("warn+x").unwrap_err(),
            "invalid log level suffix '+X': expected '+' and an integer"
        );
        assert!(
            LogLevel::parse("verbose")
                .unwrap_err()
                .starts_with("invalid log level 'verbose'")
        );
        assert!(LogLevel::parse("99999999999").is_err());
        assert!(LogLevel::parse("ERROR+2147483647").is_err());
    }

    #[test]
    fn log_level_display_and_enables() {
        assert_eq!(LogLevel::INFO.to_string(), "INFO");
        assert_eq!(LogLevel(2).to_string(), "INFO+2");
        assert_eq!(LogLevel(-6).to_string(), "DEBUG-2");
        assert_eq!(LogLevel::OFF.to_string(), "ERROR+1");
        assert!(LogLevel::INFO.enables(LogLevel::INFO));
        assert!(LogLevel::INFO.enables(LogLevel::ERROR));
        assert!(!LogLevel::INFO.enables(LogLevel::DEBUG));
        assert!(!LogLevel::OFF.enables(LogLevel::ERROR));
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("0.0.0.0:7373").unwrap(),
            "0.0.0.0:7373".parse().unwrap()
        );
        assert_eq!(
            parse_address(":7373").unwrap(),
            "0.0.0.0:7373".parse().unwrap()
        );
        assert_eq!(
            parse_address("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert_eq!(
            parse_address("[::1]:7373").unwrap(),
            "[::1]:7373".parse().unwrap()
        );
        for bad in [
            "localhost:7373",
            "7373",
            "1.2.3.4",
            "1.2.3.4:",
            "1.2.3.4:http",
            "1.2.3.4:70000",
            "::1:7373",
            "[::1",
        ] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_address("localhost:7373").unwrap_err(),
            "invalid address 'localhost:7373': host must be an IP address"
        );
    }

    #[test]
    fn names() {
        for ok in [
            "a",
            "my-key",
            "my_key",
            "A-9_b",
            "_a",
            "a_",
            "__",
            &"x".repeat(80),
        ] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "_",
            "-a",
            "a-",
            "a.b",
            "a/b",
            "a*",
            "a b",
            "ä",
            &"x".repeat(81),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
