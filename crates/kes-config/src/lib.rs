//! kes-config
