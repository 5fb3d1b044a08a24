//! The environment that `${NAME}` references in the configuration file are looked up in.

use std::collections::HashMap;

/// A source of environment variables for `${NAME}` substitution.
///
/// Injected into [`parse`](crate::parse) and [`load`](crate::load) so that tests never touch
/// the process environment.
pub trait Env {
    /// The value of variable `name`, or `None` when it is not set. A variable that is set to
    /// the empty string is set (`Some("")`).
    fn var(&self, name: &str) -> Option<String>;
}

/// The environment of the running process.
///
/// A variable whose value is not valid UTF-8 is treated as not set.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        if name.is_empty() || name.contains(['=', '\0']) {
            // Not a valid variable name; std::env::var would report it as missing anyway.
            return None;
        }
        std::env::var(name).ok()
    }
}

/// An environment backed by a map, for tests and for callers that collect variables
/// themselves.
#[derive(Clone, Debug, Default)]
pub struct MapEnv {
    vars: HashMap<String, String>,
}

impl MapEnv {
    /// An empty environment: every lookup fails.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`, replacing an earlier value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// Builder form of [`insert`](Self::insert).
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.insert(name, value);
        self
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MapEnv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut env = Self::new();
        for (name, value) in iter {
            env.insert(name, value);
        }
        env
    }
}

impl<E: Env + ?Sized> Env for &E {
    fn var(&self, name: &str) -> Option<String> {
        (**self).var(name)
    }
}
