//! kes-crypto
