//! Per-endpoint retries (spec §11.1): after a network error or a 503, wait
//! `base_delay + random(0..=max_jitter)` and try the same endpoint again, at most
//! `max_retries` times.

use std::time::Duration;

/// How often, and after which pause, a request is repeated on the same endpoint.
///
/// The default is the Go SDK's: 2 retries, each after 200 ms plus a random 0–800 ms.
/// Retries happen on connection failures, timeouts, broken connections and HTTP 503, not
/// on TLS certificate failures (they would fail again) nor on other answers. Request
/// bodies are small and kept in memory, so every attempt sends the same bytes.
///
/// Note that, as with the Go SDK, a request the server did carry out may be repeated when
/// the connection broke before the answer arrived; creating a key may then report
/// [`crate::Error::KeyExists`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt, per endpoint.
    pub max_retries: u32,
    /// Fixed part of the pause before a retry.
    pub base_delay: Duration,
    /// Upper bound (inclusive) of the random part of the pause.
    pub max_jitter: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(200),
            max_jitter: Duration::from_millis(800),
        }
    }
}

impl RetryPolicy {
    /// No retries: every endpoint is asked once.
    #[must_use]
    pub const fn none() -> Self {
        Self {
            max_retries: 0,
            base_delay: Duration::ZERO,
            max_jitter: Duration::ZERO,
        }
    }

    /// The pause before a retry, given a random number (uniform over `u64`).
    #[must_use]
    pub fn delay(&self, random: u64) -> Duration {
        let span = u64::try_from(self.max_jitter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = match span.checked_add(1) {
            Some(modulus) => random % modulus,
            None => random,
        };
        self.base_delay.saturating_add(Duration::from_nanos(jitter))
    }
}

/// Whether an HTTP status makes the client ask the same endpoint again.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status == 503
}

/// Whether an HTTP status makes the client try another endpoint: any 5xx except 501
/// (which old servers answer for APIs they do not have).
pub(crate) fn is_failover_status(status: u16) -> bool {
    (500..600).contains(&status) && status != 501
}

/// A random number for jitter and the round-robin start. Falls back to the clock if the
/// operating system's generator fails: the value only spreads load, it protects nothing.
pub(crate) fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        u64::from(nanos)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matches_the_go_sdk() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_retries, 2);
        assert_eq!(p.delay(0), Duration::from_millis(200));
        assert_eq!(p.delay(800_000_000), Duration::from_millis(1000));
        assert_eq!(p.delay(800_000_001), Duration::from_millis(200));
        for r in [1, 12345, u64::MAX, u64::MAX / 3, 987_654_321_987] {
            let d = p.delay(r);
            assert!(
                d >= Duration::from_millis(200) && d <= Duration::from_millis(1000),
                "{d:?}"
            );
        }
    }

    #[test]
    fn jitter_is_spread_over_the_range() {
        let p = RetryPolicy::default();
        let delays: Vec<Duration> = (0..64).map(|_| p.delay(random_u64())).collect();
        assert!(delays.iter().any(|d| *d < Duration::from_millis(600)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(600)));
    }

    #[test]
    fn no_jitter_and_huge_jitter_are_handled() {
        let p = RetryPolicy {
            max_retries: 1,
            base_delay: Duration::from_millis(5),
            max_jitter: Duration::ZERO,
        };
        assert_eq!(p.delay(u64::MAX), Duration::from_millis(5));
        let p = RetryPolicy {
            max_retries: 1,
            base_delay: Duration::MAX,
            max_jitter: Duration::MAX,
        };
        assert_eq!(p.delay(7), Duration::MAX);
        assert_eq!(RetryPolicy::none().max_retries, 0);
    }

    #[test]
    fn status_classes() {
        assert!(is_retryable_status(503));
        assert!(
            !is_retryable_status(502) && !is_retryable_status(500) && !is_retryable_status(429)
        );
        for s in [500, 502, 503, 504, 599] {
            assert!(is_failover_status(s), "{s}");
        }
        for s in [200, 400, 404, 499, 501, 600] {
            assert!(!is_failover_status(s), "{s}");
        }
    }
}
