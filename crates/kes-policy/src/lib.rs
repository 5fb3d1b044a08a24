//! kes-policy
