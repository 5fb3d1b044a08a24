//! Server endpoints: normalisation of user input (spec §10) and the order in which a
//! request tries them (spec §11.1).

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::Error;

/// How long an endpoint that failed (network error or 5xx other than 501) is skipped.
pub(crate) const COOLDOWN: Duration = Duration::from_secs(30);

/// One server, as `https://host:port` (possibly with a path prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Base URL without a trailing slash; API paths are appended to it.
    pub(crate) base: String,
    /// Whether the host is `localhost` or a loopback address.
    pub(crate) local: bool,
}

/// Normalises an endpoint the way the KES CLI does: surrounding white space is trimmed,
/// `http://` is replaced by `https://`, and `https://` is added when there is no scheme.
pub(crate) fn normalize(input: &str) -> Result<Endpoint, Error> {
    let invalid = |reason: &str| Error::InvalidEndpoint {
        endpoint: input.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    let without_scheme = match trimmed.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http") =>
        {
            rest
        }
        Some((scheme, _)) => return Err(invalid(&format!("unsupported scheme '{scheme}'"))),
        None => trimmed,
    };
    let candidate = format!("https://{without_scheme}");
    let url = reqwest::Url::parse(&candidate).map_err(|e| invalid(&e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not have a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain user information"));
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(invalid("no host"));
    };
    let local = is_local_host(host);
    let base = url.as_str().trim_end_matches('/').to_owned();
    Ok(Endpoint { base, local })
}

/// `localhost` or a loopback IP address (`host` as `Url::host_str` gives it, IPv6 in
/// brackets). The Go SDK also ranks local interface addresses and the local subnet (with
/// DNS lookups); we keep to what needs no lookup.
fn is_local_host(host: &str) -> bool {
    let ip = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost") || ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The endpoints of a client with their health, shared by all clones of the client.
#[derive(Debug)]
pub(crate) struct Endpoints {
    list: Vec<Endpoint>,
    /// Per endpoint: skipped until this instant after a failure.
    cooldown_until: Mutex<Vec<Option<Instant>>>,
    /// Round-robin position; starts at a random value.
    next: AtomicUsize,
}

impl Endpoints {
    pub(crate) fn new(list: Vec<Endpoint>, start: usize) -> Self {
        let n = list.len();
        Self {
            list,
            cooldown_until: Mutex::new(vec![None; n]),
            next: AtomicUsize::new(start),
        }
    }

    pub(crate) fn get(&self, index: usize) -> Option<&Endpoint> {
        self.list.get(index)
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn bases(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|e| e.base.as_str())
    }

    /// The order in which one request tries the endpoints.
    pub(crate) fn order(&self, now: Instant) -> Vec<usize> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        self.order_at(now, start)
    }

    /// With one endpoint: just it. Otherwise local endpoints first (in the given order),
    /// then the others round-robin from `start`; endpoints in their cooldown are moved to
    /// the end, so that they are still tried (a second pass ignoring cooldowns) when all
    /// healthy ones fail.
    pub(crate) fn order_at(&self, now: Instant, start: usize) -> Vec<usize> {
        let n = self.list.len();
        if n <= 1 {
            return (0..n).collect();
        }
        let local: Vec<usize> = (0..n).filter(|&i| self.is_local(i)).collect();
        let remote: Vec<usize> = (0..n).filter(|&i| !self.is_local(i)).collect();
        let rotated = (0..remote.len()).filter_map(|k| remote.get((start + k) % remote.len()));
        let candidates: Vec<usize> = local.iter().copied().chain(rotated.copied()).collect();

        let cooldowns = self.cooldowns();
        let cooling = |i: &usize| {
            cooldowns
                .get(*i)
                .copied()
                .flatten()
                .is_some_and(|t| now < t)
        };
        let (cool, healthy): (Vec<usize>, Vec<usize>) = candidates.into_iter().partition(cooling);
        healthy.into_iter().chain(cool).collect()
    }

    fn is_local(&self, index: usize) -> bool {
        self.list.get(index).is_some_and(|e| e.local)
    }

    /// Puts an endpoint into its cooldown (only meaningful with several endpoints).
    pub(crate) fn mark_failed(&self, index: usize, now: Instant) {
        if let Some(slot) = self.cooldowns().get_mut(index) {
            *slot = Some(now + COOLDOWN);
        }
    }

    /// Ends an endpoint's cooldown after a successful exchange.
    pub(crate) fn mark_ok(&self, index: usize) {
        if let Some(slot) = self.cooldowns().get_mut(index) {
            *slot = None;
        }
    }

    fn cooldowns(&self) -> std::sync::MutexGuard<'_, Vec<Option<Instant>>> {
        // The data is a plain list of instants; a panic elsewhere cannot leave it invalid.
        self.cooldown_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_the_kes_cli() {
        let cases = [
            ("127.0.0.1:7373", "https://127.0.0.1:7373", true),
            (
                " https://kes.example.com:7373 ",
                "https://kes.example.com:7373",
                false,
            ),
            ("http://10.1.2.3:7373", "https://10.1.2.3:7373", false),
            ("HTTPS://Localhost:7373/", "https://localhost:7373", true),
            ("[::1]:7373", "https://[::1]:7373", true),
            ("[2001:db8::1]:7373", "https://[2001:db8::1]:7373", false),
            ("kes.example.com", "https://kes.example.com", false),
            (
                "https://proxy.example.com/kes/",
                "https://proxy.example.com/kes",
                false,
            ),
            ("127.1.2.3:1", "https://127.1.2.3:1", true),
        ];
        for (input, base, local) in cases {
            let ep = normalize(input).unwrap();
            assert_eq!((ep.base.as_str(), ep.local), (base, local), "{input}");
        }
    }

    #[test]
    fn rejects_bad_endpoints() {
        for input in [
            "",
            "  ",
            "ftp://host:1",
            "https://",
            "host:notaport",
            "https://h:1/?q=1",
            "https://u:p@h:1",
        ] {
            assert!(
                matches!(normalize(input), Err(Error::InvalidEndpoint { .. })),
                "{input:?} was accepted"
            );
        }
    }

    fn set(hosts: &[&str]) -> Endpoints {
        Endpoints::new(hosts.iter().map(|h| normalize(h).unwrap()).collect(), 0)
    }

    #[test]
    fn single_endpoint_is_always_tried() {
        let eps = set(&["a:1"]);
        let now = Instant::now();
        eps.mark_failed(0, now);
        assert_eq!(eps.order_at(now, 5), vec![0]);
    }

    #[test]
    fn local_first_then_round_robin() {
        let eps = set(&["a:1", "b:1", "127.0.0.1:1", "c:1"]);
        let now = Instant::now();
        assert_eq!(eps.order_at(now, 0), vec![2, 0, 1, 3]);
        assert_eq!(eps.order_at(now, 1), vec![2, 1, 3, 0]);
        assert_eq!(eps.order_at(now, 2), vec![2, 3, 0, 1]);
        assert_eq!(eps.order_at(now, 3), vec![2, 0, 1, 3]);
        let remote = set(&["a:1", "b:1", "c:1"]);
        assert_eq!(remote.order_at(now, 7), vec![1, 2, 0]);
    }

    #[test]
    fn failed_endpoints_are_skipped_for_the_cooldown_then_retried() {
        let eps = set(&["a:1", "b:1", "c:1"]);
        let t0 = Instant::now();
        eps.mark_failed(0, t0);
        // During the cooldown, a is tried last (second pass), not first.
        assert_eq!(eps.order_at(t0, 0), vec![1, 2, 0]);
        assert_eq!(
            eps.order_at(t0 + COOLDOWN - Duration::from_millis(1), 0),
            vec![1, 2, 0]
        );
        // After it, a is back in its round-robin place.
        assert_eq!(eps.order_at(t0 + COOLDOWN, 0), vec![0, 1, 2]);
        // All failing: all are still tried, in round-robin order.
        eps.mark_failed(1, t0);
        eps.mark_failed(2, t0);
        assert_eq!(eps.order_at(t0, 1), vec![1, 2, 0]);
        // Success clears a cooldown.
        eps.mark_ok(2);
        assert_eq!(eps.order_at(t0, 0), vec![2, 0, 1]);
    }

    #[test]
    fn order_advances_per_request() {
        let eps = set(&["a:1", "b:1"]);
        let now = Instant::now();
        let first = eps.order(now);
        let second = eps.order(now);
        assert_ne!(first[0], second[0]);
    }
}
