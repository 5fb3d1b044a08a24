//! kes-api
