//! [`SecretBuf`]: the one growable buffer of the workspace for bytes that may be secret (request
//! and response bodies that carry plaintexts or data keys, keystore replies that carry key
//! records, request bodies that carry them to a keystore).
//!
//! A `Vec<u8>` frees its old allocation as it is when it grows, leaving a copy of its contents
//! in freed memory; `Zeroizing<Vec<u8>>` wipes only the last allocation. A `SecretBuf` wipes the
//! old allocation whenever it grows, and the last one when it is dropped. It can back a
//! `bytes::Bytes` (`Bytes::from_owner`), so that the HTTP stack's last reference wipes it.
//!
//! What it must never do: print its contents (`Debug` shows only the length), or grow without
//! wiping.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// A growable byte buffer that is wiped when it grows and when it is dropped.
#[derive(Default)]
pub struct SecretBuf(Vec<u8>);

impl SecretBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// An empty buffer with room for `capacity` bytes: size it up front where the size is
    /// known, so that it never grows.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Vec::with_capacity(capacity))
    }

    /// Appends `bytes`. When the buffer must grow, it moves to an allocation of at least twice
    /// its capacity and the old one is wiped first.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    /// Makes room for `additional` more bytes, wiping the old allocation if it moves.
    pub fn reserve(&mut self, additional: usize) {
        if self.0.capacity() - self.0.len() >= additional {
            return;
        }
        let needed = self.0.len().saturating_add(additional);
        let mut grown = Vec::with_capacity(needed.max(self.0.capacity().saturating_mul(2)));
        grown.extend_from_slice(&self.0);
        let mut old = std::mem::replace(&mut self.0, grown);
        old.zeroize();
    }

    /// Wipes the contents and makes the buffer empty (keeping its allocation).
    pub fn clear(&mut self) {
        self.0.zeroize();
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The allocated room.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for SecretBuf {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::ops::Deref for SecretBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for SecretBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Takes over the allocation of a wiping vector without copying it.
impl From<Zeroizing<Vec<u8>>> for SecretBuf {
    fn from(mut bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(std::mem::take(&mut *bytes))
    }
}

/// Writes append (and grow with wiping), so serializers can write into the buffer directly.
impl std::io::Write for SecretBuf {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for SecretBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBuf({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use kes_testutil::Rng;

    use super::*;

    #[test]
    fn appends_and_grows_in_one_step() {
        let mut out = SecretBuf::new();
        out.extend_from_slice(b"");
        assert!(out.is_empty());
        out.extend_from_slice(b"abc");
        assert_eq!(&out[..], b"abc");
        assert_eq!(out.capacity(), 3);
        // Growth: at least double, so that appending many pieces is not quadratic.
        out.extend_from_slice(b"d");
        assert_eq!(&out[..], b"abcd");
        assert_eq!(out.capacity(), 6);
        out.extend_from_slice(&[b'e'; 20]);
        assert_eq!(out.capacity(), 24);
        // Room enough: the same allocation.
        let mut out = SecretBuf::with_capacity(10);
        let ptr = out.as_slice().as_ptr();
        out.extend_from_slice(b"12345");
        out.extend_from_slice(b"67890");
        assert_eq!(out.as_slice().as_ptr(), ptr);
        assert_eq!(&out[..], b"1234567890");

        let mut rng = Rng::new(3);
        let mut out = SecretBuf::new();
        let mut model = Vec::new();
        for _ in 0..500 {
            let len = rng.below(100);
            let bytes = rng.bytes(len);
            let (len, cap) = (out.len(), out.capacity());
            out.extend_from_slice(&bytes);
            model.extend_from_slice(&bytes);
            assert_eq!(&out[..], &model[..]);
            if cap - len < bytes.len() {
                assert_eq!(out.capacity(), (len + bytes.len()).max(cap * 2));
            } else {
                assert_eq!(out.capacity(), cap);
            }
        }
    }

    #[test]
    fn serializers_write_into_it_and_debug_hides_it() {
        let mut buf = SecretBuf::new();
        let secret = "c2VjcmV0";
        write!(buf, "{{\"plaintext\":\"{secret}\"}}").unwrap();
        assert_eq!(buf.as_slice(), br#"{"plaintext":"c2VjcmV0"}"#);
        assert_eq!(format!("{buf:?}"), "SecretBuf(24 bytes)");
        let taken = SecretBuf::from(Zeroizing::new(b"key".to_vec()));
        assert_eq!(taken.as_slice(), b"key");
        let mut cleared = taken;
        cleared.clear();
        assert!(cleared.is_empty());
    }
}
