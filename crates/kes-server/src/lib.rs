//! kes-server
