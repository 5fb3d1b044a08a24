//! Where a backend reads the environment variables of its vendor's SDKs (`GCE_METADATA_HOST`,
//! `AZURE_AUTHORITY_HOST`, …): the process environment in the server, a fixed table in tests,
//! so that tests never change the process environment.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Looks one variable up.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

/// A source of environment variables.
#[derive(Clone)]
pub struct Env(Arc<Lookup>);

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Self(Arc::new(|name| std::env::var(name).ok()))
    }

    /// Exactly `vars`, nothing of the process.
    pub fn fixed<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self(Arc::new(move |name| vars.get(name).cloned()))
    }

    /// The value of `name`, `None` when unset or empty (as the SDKs treat empty values).
    pub fn var(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::process()
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The values may be credentials (AZURE_CLIENT_SECRET).
        f.write_str("Env")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fixed_tables_and_empty_values() {
        let env = Env::fixed([("A", "1"), ("B", " ")]);
        assert_eq!(env.var("A").as_deref(), Some("1"));
        assert_eq!(env.var("B"), None);
        assert_eq!(env.var("C"), None);
    }
}
