//! A single policy: allow and deny patterns.

use crate::pattern::matches;

/// A set of allow and deny path patterns (kes-spec §6).
///
/// A path is allowed when no deny pattern matches it and at least one allow pattern does: deny
/// always wins, independent of pattern order, and a policy without allow patterns denies
/// everything. Patterns use the language of [`matches()`]; they are not validated, because every
/// string is a pattern (the empty one matches nothing).
///
/// Patterns are classified once when the policy is built, so that the common exact and
/// prefix-only patterns are checked with a plain comparison.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    allow: Vec<String>,
    deny: Vec<String>,
    allow_kinds: Vec<Kind>,
    deny_kinds: Vec<Kind>,
}

impl Policy {
    /// Builds a policy from its allow and deny patterns, kept in the given order.
    pub fn new(allow: Vec<String>, deny: Vec<String>) -> Self {
        let allow_kinds = allow.iter().map(|p| Kind::of(p)).collect();
        let deny_kinds = deny.iter().map(|p| Kind::of(p)).collect();
        Self {
            allow,
            deny,
            allow_kinds,
            deny_kinds,
        }
    }

    /// The allow patterns, in the order they were given.
    pub fn allow(&self) -> &[String] {
        &self.allow
    }

    /// The deny patterns, in the order they were given.
    pub fn deny(&self) -> &[String] {
        &self.deny
    }

    /// Reports whether the policy allows a request for `path`, the percent-decoded URL path
    /// without query string (for example `/v1/key/decrypt/my-key`).
    pub fn is_allowed(&self, path: &str) -> bool {
        let hit = |patterns: &[String], kinds: &[Kind]| {
            patterns
                .iter()
                .zip(kinds)
                .any(|(pattern, kind)| kind.matches(pattern, path))
        };
        !hit(&self.deny, &self.deny_kinds) && hit(&self.allow, &self.allow_kinds)
    }
}

impl PartialEq for Policy {
    fn eq(&self, other: &Self) -> bool {
        // The kinds are derived from the patterns.
        self.allow == other.allow && self.deny == other.deny
    }
}

impl Eq for Policy {}

/// The shape of a pattern, which selects the cheapest correct way to match it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The empty pattern.
    Never,
    /// No wildcard at all: the path must equal the pattern.
    Exact,
    /// A single trailing `*` and no other wildcard: the path must start with the rest.
    Prefix,
    /// Anything else: run the full matcher.
    Glob,
}

impl Kind {
    fn of(pattern: &str) -> Self {
        let is_wildcard = |b: &u8| *b == b'*' || *b == b'?';
        if pattern.is_empty() {
            return Self::Never;
        }
        match pattern.strip_suffix('*') {
            Some(rest) if !rest.as_bytes().iter().any(is_wildcard) => Self::Prefix,
            Some(_) => Self::Glob,
            None if pattern.as_bytes().iter().any(is_wildcard) => Self::Glob,
            None => Self::Exact,
        }
    }

    fn matches(self, pattern: &str, path: &str) -> bool {
        match self {
            Self::Never => false,
            Self::Exact => pattern == path,
            Self::Prefix => pattern
                .strip_suffix('*')
                .is_some_and(|prefix| path.starts_with(prefix)),
            Self::Glob => matches(pattern, path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, Policy};
    use crate::matches;

    fn policy(allow: &[&str], deny: &[&str]) -> Policy {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Policy::new(owned(allow), owned(deny))
    }

    #[test]
    fn deny_wins_regardless_of_order() {
        let p = policy(
            &["/v1/key/encrypt/vec-*", "/v1/identity/self/describe"],
            &["/v1/key/encrypt/vec-secret*"],
        );
        assert!(p.is_allowed("/v1/key/encrypt/vec-app"));
        assert!(!p.is_allowed("/v1/key/encrypt/vec-secret"));
        assert!(!p.is_allowed("/v1/key/encrypt/vec-secret-2"));
        assert!(p.is_allowed("/v1/identity/self/describe"));
        assert!(!p.is_allowed("/v1/identity/self/describe/x"));

        let q = policy(&["/v1/key/*"], &["/v1/key/delete/*"]);
        assert!(q.is_allowed("/v1/key/create/a"));
        assert!(!q.is_allowed("/v1/key/delete/a"));
        let r = policy(&["/v1/key/delete/*", "/v1/key/*"], &["/v1/key/delete/*"]);
        assert!(!r.is_allowed("/v1/key/delete/a"));
    }

    #[test]
    fn default_is_deny() {
        assert!(!Policy::default().is_allowed("/v1/status"));
        assert!(!policy(&[], &[]).is_allowed(""));
        assert!(!policy(&[], &["/v1/other"]).is_allowed("/v1/status"));
        assert!(!policy(&["/v1/status"], &[]).is_allowed("/v1/metrics"));
        assert!(!policy(&[""], &[]).is_allowed(""));
        assert!(policy(&["*"], &[""]).is_allowed(""));
    }

    #[test]
    fn accessors_keep_order_and_equality_ignores_nothing_else() {
        let p = policy(&["/b", "/a"], &["/d", "/c"]);
        assert_eq!(p.allow(), ["/b", "/a"]);
        assert_eq!(p.deny(), ["/d", "/c"]);
        assert_eq!(p, policy(&["/b", "/a"], &["/d", "/c"]));
        assert_ne!(p, policy(&["/a", "/b"], &["/d", "/c"]));
        assert_ne!(p, policy(&["/b", "/a"], &["/d"]));
    }

    #[test]
    fn kinds_are_shortcuts_of_the_matcher() {
        let cases = [
            ("", Kind::Never),
            ("/v1/status", Kind::Exact),
            ("/v1/key/*", Kind::Prefix),
            ("*", Kind::Prefix),
            ("/v1/key/*/x", Kind::Glob),
            ("/v1/key/*/x*", Kind::Glob),
            ("/v1/key/create/?", Kind::Glob),
            ("/v1/key/create/?*", Kind::Glob),
            ("/v1/**", Kind::Glob),
        ];
        let paths = [
            "",
            "/",
            "/v1/status",
            "/v1/status/",
            "/v1/key/",
            "/v1/key/a/x",
            "/v1/key/a/xy/z",
            "/v1/key/create/a",
            "/v1/key/create/ab",
        ];
        for (pattern, kind) in cases {
            assert_eq!(Kind::of(pattern), kind, "{pattern:?}");
            for path in paths {
                assert_eq!(
                    kind.matches(pattern, path),
                    matches(pattern, path),
                    "{pattern:?} vs {path:?}"
                );
            }
        }
    }
}
