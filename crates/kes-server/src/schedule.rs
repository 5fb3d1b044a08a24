//! Scheduled key rotation (the config file's `rotation:` section, not in the original): every
//! key matching a rule gets a new version once its newest version is older than the rule's
//! period.
//!
//! Every server of a cluster runs the schedule, and it is still done once per period: a server
//! decides from the record it reads from the keystore, not from its cache, and writes the
//! rotated record with compare-and-swap on exactly what it read. When two servers rotate the
//! same key at the same moment, one write wins and the other finds the key changed and leaves
//! it; the next check reads the new record, whose newest version is fresh. Each rotation is an
//! audit event for `/v1/key/rotate/<name>` (status 200, no client identity or address: the
//! server itself did it) and an INFO line of the error log.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kes_crypto::names::list_prefix;
use kes_crypto::{KeyRing, KeyVersion, version_name};
use kes_keystore::cache::CacheError;
use time::OffsetDateTime;

use crate::logs::level;
use crate::server::Server;

/// One rule: keys whose names match `pattern` (a name, or a prefix ending in `*`) are rotated
/// when their newest version is `period` old.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRule {
    /// A key name, or a listing pattern.
    pub pattern: String,
    /// The longest a key's newest version may encrypt.
    pub period: Duration,
}

impl RotationRule {
    fn matches(&self, name: &str) -> bool {
        match self.pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == self.pattern,
        }
    }
}

/// How often the rules are checked: a tenth of the shortest period, between 1 s and 1 min.
fn interval(rules: &[RotationRule]) -> Duration {
    rules
        .iter()
        .map(|r| r.period / 10)
        .min()
        .unwrap_or(Duration::from_secs(60))
        .clamp(Duration::from_millis(250), Duration::from_secs(60))
}

/// Runs the schedule until the server shuts down; the rules are read from the current
/// configuration at every check, so a reload changes them.
pub(crate) async fn run(server: Arc<Server>) {
    let shutdown = server.shutdown_token();
    loop {
        let state = server.state.load_full();
        let rules = state.rotation.clone();
        let pause = interval(&rules);
        if !rules.is_empty() {
            check(&server, &state, &rules).await;
        }
        drop(state);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// One pass over the keys the rules name.
async fn check(server: &Server, state: &crate::state::State, rules: &[RotationRule]) {
    let logs = server.logs();
    let mut seen = std::collections::HashSet::new();
    for rule in rules {
        let names = match state.keys.list(list_prefix(&rule.pattern)).await {
            Ok(names) => names,
            Err(err) => {
                logs.error(
                    level::WARN,
                    None,
                    &format!(
                        "kes: scheduled rotation: failed to list keys '{}': {err}",
                        rule.pattern
                    ),
                );
                continue;
            }
        };
        for name in names.iter().filter(|n| rule.matches(n)) {
            // The first rule that names a key decides its period.
            if !seen.insert(name.clone()) {
                continue;
            }
            let start = Instant::now();
            match rotate_if_due(state, name, rule.period).await {
                Ok(None) => {}
                Ok(Some(number)) => {
                    logs.error(
                        level::INFO,
                        None,
                        &format!(
                            "kes: rotated key '{name}' to {} (scheduled every {:?})",
                            version_name(number),
                            rule.period
                        ),
                    );
                    logs.audit(
                        &format!("{}{name}", kes_api::paths::KEY_ROTATE),
                        None,
                        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        200,
                        start.elapsed(),
                    );
                }
                Err(why) => logs.error(
                    level::WARN,
                    None,
                    &format!("kes: scheduled rotation of key '{name}' failed: {why}"),
                ),
            }
        }
    }
}

/// Rotates `name` if its newest version is at least `period` old; `Some(new version)` when it
/// did. Another server having rotated it meanwhile is not an error: then nothing is done.
async fn rotate_if_due(
    state: &crate::state::State,
    name: &str,
    period: Duration,
) -> Result<Option<u32>, String> {
    let stored = match state.keys.store().get(name).await {
        Ok(stored) => stored,
        Err(kes_keystore::Error::NotFound) => return Ok(None),
        Err(err) => return Err(err.to_string()),
    };
    let ring = KeyRing::parse(&stored).map_err(|e| e.to_string())?;
    let newest = ring.newest().1;
    let age = OffsetDateTime::now_utc() - newest.created_at();
    if age < period {
        return Ok(None);
    }
    let version = KeyVersion::generate(
        newest.algorithm(),
        state.admin.to_string(),
        OffsetDateTime::now_utc(),
    )
    .map_err(|e| e.to_string())?;
    let ring = ring.rotate(version).map_err(|e| e.to_string())?;
    let number = ring.newest().0;
    let record = ring.encode().map_err(|e| e.to_string())?;
    match state.keys.replace(name, &stored, record.as_bytes()).await {
        Ok(()) => Ok(Some(number)),
        // Another server was first (or the key went away): nothing to do this period.
        Err(CacheError::Changed | CacheError::NotFound) => Ok(None),
        Err(err) => Err(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_names_and_prefixes() {
        let rule = |p: &str| RotationRule {
            pattern: p.to_owned(),
            period: Duration::from_secs(1),
        };
        assert!(rule("my-app-*").matches("my-app-1"));
        assert!(rule("my-app-*").matches("my-app-"));
        assert!(!rule("my-app-*").matches("my-ap"));
        assert!(rule("exact").matches("exact"));
        assert!(!rule("exact").matches("exact-not"));
        assert!(rule("*").matches("anything"));
    }

    #[test]
    fn the_check_interval_follows_the_shortest_period() {
        let rule = |secs: u64| RotationRule {
            pattern: "*".into(),
            period: Duration::from_secs(secs),
        };
        assert_eq!(interval(&[rule(2), rule(3600)]), Duration::from_millis(250));
        assert_eq!(interval(&[rule(100)]), Duration::from_secs(10));
        assert_eq!(interval(&[rule(30 * 24 * 3600)]), Duration::from_secs(60));
    }
}
