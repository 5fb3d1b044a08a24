//! Bounded retries with exponential backoff and failover between endpoints, for the remote
//! backends (one policy, one loop, for every backend).
//!
//! A call tries the endpoints in turn, starting with the one that answered last. A transient
//! failure (network error, 5xx, throttling, a standby's redirect, …) moves on to the next
//! endpoint at once; when every endpoint has failed once — one *round* — the call waits a
//! backoff delay and starts the next round. It gives up after [`RetryPolicy::rounds`] rounds,
//! or earlier when the next delay would take it past [`RetryPolicy::max_elapsed`]. A backend
//! with one endpoint simply retries it.
//!
//! With the default policy a call keeps trying for about 6 to 8 s (backoff 0.25, 0.5, 1, 2, 2,
//! 2 s, each plus up to half again as jitter, never past 8 s). That is longer than the original
//! (three tries, 0.2–1 s apart, kes-spec §8.1) on purpose: a Vault raft cluster needs a few
//! seconds to elect a new active node after the old one died, and a cloud service's throttling
//! passes in seconds; a request should survive both, not fail. The server's request timeouts
//! (15 s) stay well above it.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often, and how patiently, a failed call to a backend is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times the whole list of endpoints is tried (at least once, even if 0).
    pub rounds: u32,
    /// The backoff before the second round; it doubles for every further round.
    pub base_delay: Duration,
    /// The longest backoff between two rounds (before jitter).
    pub max_delay: Duration,
    /// No further round starts once the call has taken this long, counting the next delay.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            rounds: 7,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// A policy that tries every endpoint `rounds` times with the default delays.
    pub fn with_rounds(rounds: u32) -> Self {
        Self {
            rounds,
            ..Self::default()
        }
    }

    /// A policy with every field given.
    pub fn new(
        rounds: u32,
        base_delay: Duration,
        max_delay: Duration,
        max_elapsed: Duration,
    ) -> Self {
        Self {
            rounds,
            base_delay,
            max_delay,
            max_elapsed,
        }
    }

    /// The delay before round `round + 1` (so `round` ≥ 1 is the number of rounds that failed),
    /// given a random number `random` in `[0, 1)`: `base · 2^(round−1)`, capped at `max_delay`,
    /// plus up to half of that again as jitter, so that servers that lost Vault at the same
    /// moment do not come back in lockstep.
    pub fn backoff(&self, round: u32, random: f64) -> Duration {
        let doublings = round.saturating_sub(1).min(30);
        let exp = self
            .base_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay);
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        exp.saturating_add(exp.mul_f64(random / 2.0))
    }
}

/// What one attempt on one endpoint came to.
#[derive(Debug)]
pub enum Outcome<T, E> {
    /// A final answer (success or an error that another try would not change).
    Done(T),
    /// A transient failure: try the next endpoint, or the next round.
    Retry(E),
}

/// Runs `attempt(endpoint)` under `policy` over `endpoints` endpoints, starting at `first`.
///
/// Returns the index of the endpoint that gave the final answer with it, or the last transient
/// error when every try failed. `sleep` waits the backoff delays and `random` draws the jitter,
/// so tests can record both without waiting.
pub async fn run<T, E, A, AF, S, SF, R>(
    policy: &RetryPolicy,
    endpoints: usize,
    first: usize,
    mut attempt: A,
    mut sleep: S,
    mut random: R,
) -> Result<(usize, T), E>
where
    A: FnMut(usize) -> AF,
    AF: Future<Output = Outcome<T, E>>,
    S: FnMut(Duration) -> SF,
    SF: Future<Output = ()>,
    R: FnMut() -> f64,
{
    let endpoints = endpoints.max(1);
    let rounds = policy.rounds.max(1);
    let started = Instant::now();
    let first = first % endpoints;
    let mut last = match attempt(first).await {
        Outcome::Done(value) => return Ok((first, value)),
        Outcome::Retry(err) => err,
    };
    for round in 1..=rounds {
        let skip = usize::from(round == 1);
        for step in skip..endpoints {
            let index = (first + step) % endpoints;
            match attempt(index).await {
                Outcome::Done(value) => return Ok((index, value)),
                Outcome::Retry(err) => last = err,
            }
        }
        if round == rounds {
            break;
        }
        let delay = policy.backoff(round, random());
        if started.elapsed().saturating_add(delay) > policy.max_elapsed {
            break;
        }
        sleep(delay).await;
    }
    Err(last)
}

/// [`run`] with real sleeps and [`jitter`].
pub async fn retry<T, E, A, AF>(
    policy: &RetryPolicy,
    endpoints: usize,
    first: usize,
    attempt: A,
) -> Result<(usize, T), E>
where
    A: FnMut(usize) -> AF,
    AF: Future<Output = Outcome<T, E>>,
{
    run(
        policy,
        endpoints,
        first,
        attempt,
        tokio::time::sleep,
        jitter,
    )
    .await
}

/// A random number in `[0, 1)` for jitter: not cryptographic, just different per call and per
/// process (std's `RandomState` is seeded randomly).
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    // 53 random bits make an evenly spread f64 in [0, 1).
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    fn transient(i: usize) -> String {
        format!("endpoint {i} failed")
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_adds_at_most_half_as_jitter() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(250));
        assert_eq!(p.backoff(2, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(3, 0.0), Duration::from_secs(1));
        assert_eq!(p.backoff(4, 0.0), Duration::from_secs(2));
        assert_eq!(
            p.backoff(5, 0.0),
            Duration::from_secs(2),
            "capped at max_delay"
        );
        assert_eq!(p.backoff(40, 0.0), Duration::from_secs(2), "no overflow");
        assert_eq!(
            p.backoff(1, 0.999_999),
            Duration::from_millis(375) - Duration::from_nanos(125)
        );
        assert_eq!(p.backoff(4, 1.0), Duration::from_secs(3));
        assert_eq!(p.backoff(1, f64::NAN), Duration::from_millis(250));
        assert_eq!(p.backoff(1, -3.0), Duration::from_millis(250));
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let draws: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(draws.iter().all(|r| (0.0..1.0).contains(r)));
        assert!(draws.iter().any(|r| *r != draws[0]));
    }

    /// Runs `run` with scripted outcomes: `script(endpoint, try)` says whether that try works.
    async fn scripted(
        policy: RetryPolicy,
        endpoints: usize,
        first: usize,
        works: impl Fn(usize, usize) -> bool,
    ) -> (Result<(usize, usize), String>, Vec<usize>, Vec<Duration>) {
        let tried = RefCell::new(Vec::new());
        let slept = RefCell::new(Vec::new());
        let result = run(
            &policy,
            endpoints,
            first,
            |i| {
                let n = tried.borrow().len();
                tried.borrow_mut().push(i);
                let ok = works(i, n);
                async move {
                    if ok {
                        Outcome::Done(n)
                    } else {
                        Outcome::Retry(transient(i))
                    }
                }
            },
            |d| {
                slept.borrow_mut().push(d);
                async {}
            },
            || 0.0,
        )
        .await;
        (result, tried.into_inner(), slept.into_inner())
    }

    #[tokio::test]
    async fn a_first_success_needs_no_retry() {
        let (result, tried, slept) = scripted(RetryPolicy::default(), 1, 0, |_, _| true).await;
        assert_eq!(result.unwrap(), (0, 0));
        assert_eq!(tried, [0]);
        assert!(slept.is_empty());
    }

    #[tokio::test]
    async fn one_endpoint_is_tried_rounds_times_with_growing_delays() {
        let (result, tried, slept) = scripted(RetryPolicy::default(), 1, 0, |_, _| false).await;
        let err = result.unwrap_err();
        assert_eq!(err, "endpoint 0 failed", "the last error is returned");
        assert_eq!(tried, [0; 7]);
        let ms: Vec<u128> = slept.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 2000, 2000]);
    }

    #[tokio::test]
    async fn failover_tries_the_next_endpoint_without_waiting() {
        // Endpoint 1 (the preferred one) is down; 2 works.
        let (result, tried, slept) = scripted(RetryPolicy::default(), 3, 1, |i, _| i == 2).await;
        assert_eq!(result.unwrap(), (2, 1));
        assert_eq!(tried, [1, 2]);
        assert!(slept.is_empty());
    }

    #[tokio::test]
    async fn a_round_covers_every_endpoint_once_then_waits() {
        // Every endpoint fails until the 7th try (round 3), which lands on endpoint 0.
        let (result, tried, slept) = scripted(RetryPolicy::default(), 3, 0, |_, n| n == 6).await;
        assert_eq!(result.unwrap(), (0, 6));
        assert_eq!(tried, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(
            slept,
            [Duration::from_millis(250), Duration::from_millis(500)]
        );
    }

    #[tokio::test]
    async fn zero_rounds_still_tries_once() {
        let (result, tried, slept) =
            scripted(RetryPolicy::with_rounds(0), 2, 0, |_, _| false).await;
        assert!(result.is_err());
        assert_eq!(tried, [0, 1]);
        assert!(slept.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn no_round_starts_past_max_elapsed() {
        // Real (paused-clock) sleeps: after 250 + 500 + 1000 ms (and four tries), the next
        // 2 s delay would end past the 2 s budget.
        let policy = RetryPolicy::new(
            10,
            Duration::from_millis(250),
            Duration::from_secs(2),
            Duration::from_secs(2),
        );
        let tries = RefCell::new(0);
        let result: Result<(usize, ()), String> = run(
            &policy,
            1,
            0,
            |i| {
                *tries.borrow_mut() += 1;
                async move { Outcome::Retry(transient(i)) }
            },
            tokio::time::sleep,
            || 0.0,
        )
        .await;
        assert!(result.is_err());
        assert_eq!(*tries.borrow(), 4);
    }
}
