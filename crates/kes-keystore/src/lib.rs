//! kes-keystore
