//! Policies and identity assignments: the config file's, plus the changes made at runtime
//! through `/v1/policy/write`, `/v1/policy/delete`, `/v1/policy/assign`, `/v1/identity/assign`,
//! `/v1/identity/forget` and `/v1/identity/delete` (spec §3.1).
//!
//! Runtime changes live in memory on this server only and are gone after a restart, as the KES
//! documentation promises. They are kept as *overrides*, one per policy name and one per
//! identity, on top of the config file's set. The rule on reload (SIGHUP): the config file is
//! authoritative for every policy and identity it names, so overrides of those are discarded;
//! overrides of names the file does not mention are kept. An override assigning an identity to
//! a policy that no longer exists is dropped too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use kes_policy::{Policy, PolicySet};
use parking_lot::Mutex;
use time::OffsetDateTime;

/// Who made a policy or assignment, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// When.
    pub created_at: OffsetDateTime,
    /// The identity that made it (the admin for config-file entries).
    pub created_by: String,
}

/// The effective policies and assignments: one immutable snapshot.
#[derive(Debug, Clone)]
pub struct Policies {
    set: PolicySet,
    base_meta: Meta,
    policy_meta: HashMap<String, Meta>,
    identity_meta: HashMap<String, Meta>,
}

impl Policies {
    /// The policies of a config file loaded at `meta.created_at` (created by the admin).
    pub fn from_config(set: PolicySet, meta: Meta) -> Policies {
        Policies {
            set,
            base_meta: meta,
            policy_meta: HashMap::new(),
            identity_meta: HashMap::new(),
        }
    }

    /// The policy set.
    pub fn set(&self) -> &PolicySet {
        &self.set
    }

    /// When and by whom a policy was made.
    pub fn policy_meta(&self, name: &str) -> &Meta {
        self.policy_meta.get(name).unwrap_or(&self.base_meta)
    }

    /// When and by whom an identity was assigned.
    pub fn identity_meta(&self, identity: &str) -> &Meta {
        self.identity_meta.get(identity).unwrap_or(&self.base_meta)
    }
}

/// A runtime change that was refused, with the reply the original gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The policy does not exist.
    NoPolicy,
    /// The identity has no policy.
    NoIdentity,
}

/// Who may do what: the effective policies, read without a lock by every request, and the
/// runtime overrides they are made from, changed under a lock by the runtime routes.
pub struct Access {
    effective: ArcSwap<Policies>,
    runtime: Mutex<Runtime>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").finish_non_exhaustive()
    }
}

impl Access {
    /// The config file's policies, no runtime changes yet.
    pub fn new(base: Policies, admin: String) -> Access {
        let runtime = Runtime::new(base, admin);
        Access {
            effective: ArcSwap::from_pointee(runtime.effective()),
            runtime: Mutex::new(runtime),
        }
    }

    /// The current effective policies.
    pub fn load(&self) -> arc_swap::Guard<Arc<Policies>> {
        self.effective.load()
    }

    /// Applies a runtime change and publishes the new effective policies.
    pub fn change<T>(&self, change: impl FnOnce(&mut Runtime) -> T) -> T {
        let mut runtime = self.runtime.lock();
        let result = change(&mut runtime);
        self.effective.store(Arc::new(runtime.effective()));
        result
    }

    /// Replaces the config file's policies (reload); see [`Runtime::rebase`].
    pub fn rebase(&self, base: Policies, admin: String) {
        self.change(|runtime| runtime.rebase(base, admin));
    }
}

/// The config file's policies plus the runtime overrides.
#[derive(Debug, Clone)]
pub struct Runtime {
    base: Policies,
    admin: String,
    policies: BTreeMap<String, Option<(Policy, Meta)>>,
    identities: BTreeMap<String, Option<(String, Meta)>>,
}

impl Runtime {
    /// No overrides yet.
    pub fn new(base: Policies, admin: String) -> Runtime {
        Runtime {
            base,
            admin,
            policies: BTreeMap::new(),
            identities: BTreeMap::new(),
        }
    }

    /// Replaces the config file's policies (reload), discarding overrides of every policy and
    /// identity the new file names, and of the new admin identity.
    pub fn rebase(&mut self, base: Policies, admin: String) {
        self.policies
            .retain(|name, _| base.set.policy(name).is_none());
        self.identities
            .retain(|id, _| *id != admin && base.set.policy_of(id).is_none());
        self.base = base;
        self.admin = admin;
    }

    /// The effective snapshot.
    pub fn effective(&self) -> Policies {
        let mut out = self.base.clone();
        for (name, change) in &self.policies {
            match change {
                Some((policy, meta)) => {
                    out.set = out.set.with_policy(name.clone(), policy.clone());
                    out.policy_meta.insert(name.clone(), meta.clone());
                }
                None => {
                    out.set = out.set.without_policy(name);
                    out.policy_meta.remove(name);
                }
            }
        }
        for (identity, change) in &self.identities {
            match change {
                Some((policy, meta)) => {
                    if let Ok(set) = out.set.assign(identity.clone(), policy) {
                        out.set = set;
                        out.identity_meta.insert(identity.clone(), meta.clone());
                    }
                }
                None => {
                    out.set = out.set.forget(identity);
                    out.identity_meta.remove(identity);
                }
            }
        }
        out
    }

    /// Creates or replaces a policy. Identities assigned to it keep it.
    pub fn write_policy(&mut self, name: &str, policy: Policy, meta: Meta) {
        self.policies.insert(name.to_owned(), Some((policy, meta)));
    }

    /// Deletes a policy; its identities lose it.
    pub fn delete_policy(&mut self, name: &str) -> Result<(), Refused> {
        let current = self.effective();
        if current.set.policy(name).is_none() {
            return Err(Refused::NoPolicy);
        }
        for (identity, policy) in current.set.identities() {
            if policy == name {
                self.identities.insert(identity.to_owned(), None);
            }
        }
        self.policies.insert(name.to_owned(), None);
        Ok(())
    }

    /// Assigns a policy to an identity; an identity already in another policy moves.
    pub fn assign(&mut self, identity: &str, policy: &str, meta: Meta) -> Result<(), Refused> {
        if self.effective().set.policy(policy).is_none() {
            return Err(Refused::NoPolicy);
        }
        self.identities
            .insert(identity.to_owned(), Some((policy.to_owned(), meta)));
        Ok(())
    }

    /// Removes an identity's policy.
    pub fn forget(&mut self, identity: &str) -> Result<(), Refused> {
        if self.effective().set.policy_of(identity).is_none() {
            return Err(Refused::NoIdentity);
        }
        self.identities.insert(identity.to_owned(), None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(by: &str) -> Meta {
        Meta {
            created_at: OffsetDateTime::UNIX_EPOCH,
            created_by: by.into(),
        }
    }

    fn base() -> Policies {
        let set = PolicySet::new(vec![(
            "cfg".to_owned(),
            Policy::new(vec!["/v1/status".into()], vec![]),
            vec!["id-cfg".to_owned()],
        )])
        .unwrap();
        Policies::from_config(set, meta("admin"))
    }

    #[test]
    fn runtime_changes_apply_and_move_identities() {
        let mut rt = Runtime::new(base(), "admin".into());
        rt.write_policy(
            "rt",
            Policy::new(vec!["/v1/key/*".into()], vec![]),
            meta("admin"),
        );
        rt.assign("id-1", "rt", meta("admin")).unwrap();
        let eff = rt.effective();
        assert_eq!(eff.set().policy_of("id-1").unwrap().0, "rt");
        assert_eq!(eff.identity_meta("id-1"), &meta("admin"));
        // Moving to another policy removes the first.
        rt.assign("id-1", "cfg", meta("x")).unwrap();
        assert_eq!(rt.effective().set().policy_of("id-1").unwrap().0, "cfg");
        assert_eq!(
            rt.assign("id-1", "missing", meta("x")),
            Err(Refused::NoPolicy)
        );
        // Deleting a policy removes its identities' access.
        rt.assign("id-2", "rt", meta("x")).unwrap();
        rt.delete_policy("rt").unwrap();
        let eff = rt.effective();
        assert!(eff.set().policy("rt").is_none());
        assert!(eff.set().policy_of("id-2").is_none());
        // Writing it again does not bring the assignment back.
        rt.write_policy("rt", Policy::new(vec![], vec![]), meta("x"));
        assert!(rt.effective().set().policy_of("id-2").is_none());
        assert_eq!(rt.forget("nobody"), Err(Refused::NoIdentity));
        assert_eq!(rt.delete_policy("nope"), Err(Refused::NoPolicy));
    }

    #[test]
    fn reload_keeps_overrides_the_file_does_not_contradict() {
        let mut rt = Runtime::new(base(), "admin".into());
        rt.write_policy(
            "rt",
            Policy::new(vec!["/v1/key/*".into()], vec![]),
            meta("a"),
        );
        rt.assign("id-1", "rt", meta("a")).unwrap();
        rt.forget("id-cfg").unwrap();
        assert!(rt.effective().set().policy_of("id-cfg").is_none());
        // Reload with the same file: the file's assignment of id-cfg wins again.
        rt.rebase(base(), "admin".into());
        let eff = rt.effective();
        assert_eq!(eff.set().policy_of("id-cfg").unwrap().0, "cfg");
        assert_eq!(eff.set().policy_of("id-1").unwrap().0, "rt");
        // A new file that defines `rt` itself discards the runtime `rt`.
        let set =
            PolicySet::new(vec![("rt".to_owned(), Policy::new(vec![], vec![]), vec![])]).unwrap();
        rt.rebase(Policies::from_config(set, meta("admin")), "admin".into());
        let eff = rt.effective();
        assert_eq!(eff.set().policy("rt").unwrap().allow().len(), 0);
        // id-1's runtime assignment to the (now file-defined) `rt` is kept: the file does not
        // name id-1.
        assert_eq!(eff.set().policy_of("id-1").unwrap().0, "rt");
        // A file whose admin is id-1 discards id-1's assignment.
        let set =
            PolicySet::new(vec![("rt".to_owned(), Policy::new(vec![], vec![]), vec![])]).unwrap();
        rt.rebase(Policies::from_config(set, meta("id-1")), "id-1".into());
        assert!(rt.effective().set().policy_of("id-1").is_none());
    }
}
