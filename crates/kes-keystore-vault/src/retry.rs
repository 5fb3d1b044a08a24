//! Retries of calls to Vault: the shared policy and loop of `kes_keystore::retry`, with
//! failover between the endpoints of a Vault cluster.

pub use kes_keystore::retry::RetryPolicy;
pub(crate) use kes_keystore::retry::{Outcome as Attempt, jitter, run};

/// What one attempt on one Vault endpoint came to.
pub(crate) type Outcome<T> = Attempt<T, crate::error::VaultError>;
