//! kes-client
