//! Named policies and the identities assigned to them.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;
use std::sync::Arc;

use crate::Policy;

/// Policies by name, and the policy of each identity (kes-spec §6).
///
/// Each identity has at most one policy; a policy may have any number of identities,
/// including none. A set is immutable: the methods that change it return a new set, which
/// suits a server that swaps its whole state atomically. Policies are shared between a set
/// and the sets derived from it, so deriving a set copies only names.
///
/// Names and identities are not validated here (that is the job of the configuration and the
/// API layers); they are compared as exact strings.
#[derive(Clone, Debug, Default)]
pub struct PolicySet {
    policies: BTreeMap<String, Arc<Policy>>,
    /// identity -> policy name; every name is a key of `policies`.
    identities: BTreeMap<String, String>,
}

impl PolicySet {
    /// Builds a set from `(policy name, policy, identities)` entries, such as the `policy`
    /// section of the configuration file.
    ///
    /// Listing an identity twice under the same policy is harmless.
    ///
    /// # Errors
    ///
    /// [`PolicySetError::AlreadyAssigned`] when an identity is listed under two policies,
    /// and [`PolicySetError::DuplicatePolicy`] when two entries have the same name.
    pub fn new<I>(entries: I) -> Result<Self, PolicySetError>
    where
        I: IntoIterator<Item = (String, Policy, Vec<String>)>,
    {
        let mut set = Self::default();
        for (name, policy, identities) in entries {
            for identity in identities {
                match set.identities.entry(identity) {
                    Entry::Vacant(slot) => {
                        slot.insert(name.clone());
                    }
                    Entry::Occupied(slot) if *slot.get() == name => {}
                    Entry::Occupied(slot) => {
                        return Err(PolicySetError::AlreadyAssigned {
                            policy: name,
                            identity: slot.key().clone(),
                        });
                    }
                }
            }
            match set.policies.entry(name) {
                Entry::Vacant(slot) => {
                    slot.insert(Arc::new(policy));
                }
                Entry::Occupied(slot) => {
                    return Err(PolicySetError::DuplicatePolicy {
                        policy: slot.key().clone(),
                    });
                }
            }
        }
        Ok(set)
    }

    /// The policy called `name`.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.get(name).map(Arc::as_ref)
    }

    /// The name and policy assigned to `identity`, if any.
    pub fn policy_of(&self, identity: &str) -> Option<(&str, &Policy)> {
        let name = self.identities.get(identity)?;
        let policy = self.policies.get(name)?;
        Some((name, policy))
    }

    /// The policy names, sorted.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.policies.keys().map(String::as_str)
    }

    /// Every assigned identity with the name of its policy, sorted by identity.
    pub fn identities(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.identities
            .iter()
            .map(|(identity, policy)| (identity.as_str(), policy.as_str()))
    }

    /// The number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Reports whether the set has no policy.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// A copy of this set with `policy` under `name`, replacing any policy of that name.
    /// Identities assigned to a replaced policy stay assigned to the new one.
    pub fn with_policy(&self, name: impl Into<String>, policy: Policy) -> Self {
        let mut set = self.clone();
        set.policies.insert(name.into(), Arc::new(policy));
        set
    }

    /// A copy of this set without the policy `name`. Its identities lose their policy, as
    /// deleting a policy did in the original server. Unknown names leave the set unchanged.
    pub fn without_policy(&self, name: &str) -> Self {
        let mut set = self.clone();
        if set.policies.remove(name).is_some() {
            set.identities.retain(|_, policy| policy != name);
        }
        set
    }

    /// A copy of this set in which `identity` has the policy `policy`, replacing its previous
    /// assignment if it had one.
    ///
    /// # Errors
    ///
    /// [`PolicySetError::UnknownPolicy`] when the set has no policy called `policy`.
    pub fn assign(
        &self,
        identity: impl Into<String>,
        policy: &str,
    ) -> Result<Self, PolicySetError> {
        let Some((name, _)) = self.policies.get_key_value(policy) else {
            return Err(PolicySetError::UnknownPolicy {
                policy: policy.to_owned(),
            });
        };
        let mut set = self.clone();
        set.identities.insert(identity.into(), name.clone());
        Ok(set)
    }

    /// A copy of this set in which `identity` has no policy.
    pub fn forget(&self, identity: &str) -> Self {
        let mut set = self.clone();
        set.identities.remove(identity);
        set
    }
}

/// Why a [`PolicySet`] cannot be built or changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySetError {
    /// An identity is listed under `policy` but already belongs to another policy.
    AlreadyAssigned {
        /// The policy that could not be assigned.
        policy: String,
        /// The identity that already has a policy.
        identity: String,
    },
    /// Two policies have the same name.
    DuplicatePolicy {
        /// The name used twice.
        policy: String,
    },
    /// An identity was to be assigned a policy that is not in the set.
    UnknownPolicy {
        /// The missing policy.
        policy: String,
    },
}

impl fmt::Display for PolicySetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyAssigned { policy, identity } => write!(
                f,
                "kes: cannot assign policy '{policy}' to '{identity}': identity already has a policy"
            ),
            Self::DuplicatePolicy { policy } => {
                write!(f, "kes: policy '{policy}' is defined more than once")
            }
            Self::UnknownPolicy { policy } => write!(f, "kes: policy '{policy}' does not exist"),
        }
    }
}

impl std::error::Error for PolicySetError {}

#[cfg(test)]
mod tests {
    use super::{PolicySet, PolicySetError};
    use crate::Policy;

    fn policy(allow: &[&str]) -> Policy {
        Policy::new(allow.iter().map(|s| s.to_string()).collect(), Vec::new())
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn sample() -> PolicySet {
        PolicySet::new([
            (
                "minio".into(),
                policy(&["/v1/key/*"]),
                ids(&["id-b", "id-a"]),
            ),
            ("app".into(), policy(&["/v1/status"]), ids(&["id-c"])),
            ("unused".into(), policy(&[]), ids(&[])),
        ])
        .unwrap()
    }

    #[test]
    fn lookups() {
        let set = sample();
        assert_eq!(set.len(), 3);
        assert!(!set.is_empty());
        assert_eq!(set.names().collect::<Vec<_>>(), ["app", "minio", "unused"]);
        assert_eq!(
            set.identities().collect::<Vec<_>>(),
            [("id-a", "minio"), ("id-b", "minio"), ("id-c", "app")]
        );
        assert_eq!(set.policy("minio"), Some(&policy(&["/v1/key/*"])));
        assert_eq!(set.policy("nope"), None);
        let (name, p) = set.policy_of("id-a").unwrap();
        assert_eq!(name, "minio");
        assert!(p.is_allowed("/v1/key/create/x"));
        assert!(set.policy_of("id-x").is_none());
        assert!(set.policy_of("").is_none());
        assert!(PolicySet::default().is_empty());
    }

    #[test]
    fn identity_in_two_policies_is_rejected() {
        let err = PolicySet::new([
            ("first".into(), policy(&[]), ids(&["abc"])),
            ("second".into(), policy(&[]), ids(&["def", "abc"])),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            PolicySetError::AlreadyAssigned {
                policy: "second".into(),
                identity: "abc".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "kes: cannot assign policy 'second' to 'abc': identity already has a policy"
        );
    }

    #[test]
    fn repeated_identity_in_one_policy_is_accepted() {
        let set = PolicySet::new([("p".into(), policy(&[]), ids(&["a", "a"]))]).unwrap();
        assert_eq!(set.identities().collect::<Vec<_>>(), [("a", "p")]);
    }

    #[test]
    fn duplicate_policy_name_is_rejected() {
        let err = PolicySet::new([
            ("p".into(), policy(&[]), ids(&[])),
            ("p".into(), policy(&["/v1/status"]), ids(&[])),
        ])
        .unwrap_err();
        assert_eq!(err.to_string(), "kes: policy 'p' is defined more than once");
    }

    #[test]
    fn derived_sets_leave_the_original_unchanged() {
        let set = sample();

        let replaced = set.with_policy("app", policy(&["/v1/metrics"]));
        assert!(
            replaced
                .policy_of("id-c")
                .unwrap()
                .1
                .is_allowed("/v1/metrics")
        );
        assert!(set.policy_of("id-c").unwrap().1.is_allowed("/v1/status"));
        let added = set.with_policy("new", policy(&[]));
        assert_eq!(added.len(), 4);
        assert_eq!(set.len(), 3);

        let removed = set.without_policy("minio");
        assert!(removed.policy("minio").is_none());
        assert!(removed.policy_of("id-a").is_none());
        assert!(removed.policy_of("id-b").is_none());
        assert_eq!(removed.policy_of("id-c").unwrap().0, "app");
        assert_eq!(set.policy_of("id-a").unwrap().0, "minio");
        assert_eq!(set.without_policy("nope").len(), 3);

        let moved = set.assign("id-a", "app").unwrap();
        assert_eq!(moved.policy_of("id-a").unwrap().0, "app");
        assert_eq!(set.policy_of("id-a").unwrap().0, "minio");
        let fresh = set.assign("id-new", "unused").unwrap();
        assert_eq!(fresh.policy_of("id-new").unwrap().0, "unused");
        let err = set.assign("id-a", "nope").unwrap_err();
        assert_eq!(err.to_string(), "kes: policy 'nope' does not exist");

        let forgotten = set.forget("id-b");
        assert!(forgotten.policy_of("id-b").is_none());
        assert!(set.policy_of("id-b").is_some());
        assert_eq!(set.forget("nobody").identities().len(), 3);
    }
}
