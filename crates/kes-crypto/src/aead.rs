//! The primitive layer: AEADs, HMAC-SHA256 and HChaCha20 with KES's fixed parameters.
//!
//! Every seal and open in this crate goes through these functions, and only through them, so
//! that the standard test vectors (Wycheproof, run in `tests/wycheproof.rs`) exercise exactly the
//! code the server runs. Callers outside this crate normally want [`SecretKey`] instead, which
//! adds the per-message key derivation and the ciphertext formats of KES.
//!
//! Parameters are fixed: 256-bit keys, 96-bit nonces and 128-bit tags. Sealed output is
//! `ciphertext ‖ tag`. Opening verifies the tag before it releases any plaintext, and every
//! failure is the one [`DecryptError`].
//!
//! [`SecretKey`]: crate::SecretKey

use aes_gcm::Aes256Gcm;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::consts::{U12, U32};
use chacha20poly1305::aead::{AeadCore, AeadInOut, KeyInit, KeySizeUser, Tag};
use hmac::digest::FixedOutput;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{DecryptError, EncryptError};
use crate::key::Plaintext;

/// Length in bytes of every key: master keys, derived keys and HMAC keys.
pub const KEY_LEN: usize = 32;
/// Length in bytes of the AEAD nonce.
pub const NONCE_LEN: usize = 12;
/// Length in bytes of the AEAD authentication tag.
pub const TAG_LEN: usize = 16;
/// Length in bytes of the random IV from which KES derives the per-message key.
pub const IV_LEN: usize = 16;
/// Length in bytes of an HMAC-SHA256 output.
pub const HMAC_LEN: usize = 32;
/// SHA-256 block size, the length HMAC pads its key to.
const SHA256_BLOCK_LEN: usize = 64;

/// Seals `plaintext` with AES-256-GCM and returns `ciphertext ‖ tag`.
///
/// # Errors
///
/// [`EncryptError::PlaintextTooLarge`] if `plaintext` exceeds the AES-GCM limit (2^36 - 32 bytes).
pub fn seal_aes256gcm(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    associated_data: &[u8],
) -> Result<Vec<u8>, EncryptError> {
    let mut out = Vec::new();
    seal_into::<Aes256Gcm>(key, nonce, plaintext, associated_data, &mut out)?;
    Ok(out)
}

/// Opens `sealed` (`ciphertext ‖ tag`) with AES-256-GCM.
///
/// # Errors
///
/// [`DecryptError`] if `sealed` is shorter than a tag or is not authentic under this key,
/// nonce and associated data.
pub fn open_aes256gcm(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    sealed: &[u8],
    associated_data: &[u8],
) -> Result<Plaintext, DecryptError> {
    open::<Aes256Gcm>(key, nonce, sealed, associated_data)
}

/// Seals `plaintext` with ChaCha20-Poly1305 (RFC 8439) and returns `ciphertext ‖ tag`.
///
/// # Errors
///
/// [`EncryptError::PlaintextTooLarge`] if `plaintext` exceeds the ChaCha20 limit (256 GiB).
pub fn seal_chacha20poly1305(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    associated_data: &[u8],
) -> Result<Vec<u8>, EncryptError> {
    let mut out = Vec::new();
    seal_into::<ChaCha20Poly1305>(key, nonce, plaintext, associated_data, &mut out)?;
    Ok(out)
}

/// Opens `sealed` (`ciphertext ‖ tag`) with ChaCha20-Poly1305 (RFC 8439).
///
/// # Errors
///
/// [`DecryptError`] if `sealed` is shorter than a tag or is not authentic under this key,
/// nonce and associated data.
pub fn open_chacha20poly1305(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    sealed: &[u8],
    associated_data: &[u8],
) -> Result<Plaintext, DecryptError> {
    open::<ChaCha20Poly1305>(key, nonce, sealed, associated_data)
}

/// HChaCha20 (the XChaCha20 subkey derivation) of `key` and a 16-byte `input`.
///
/// KES uses it to derive the per-message ChaCha20-Poly1305 key from a ChaCha20 master key and
/// the message's random IV. The result is wiped when dropped.
#[must_use]
pub fn hchacha20(key: &[u8; KEY_LEN], input: &[u8; IV_LEN]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut subkey = chacha20::hchacha::<chacha20::R20>(key.into(), input.into());
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    out.copy_from_slice(subkey.as_slice());
    subkey.as_mut_slice().zeroize();
    out
}

/// HMAC-SHA256 with a key whose setup (the inner and outer pad blocks) is done once.
///
/// Computing a MAC clones the prepared state, so each message costs only the hashing of the
/// message itself plus two compression-function calls. The prepared state is derived from the
/// key and is as sensitive as the key; it is wiped when dropped (the `zeroize` feature of `sha2`
/// is enabled for this crate). It deliberately implements neither `Clone` nor `Debug` output of
/// its state.
pub struct HmacSha256 {
    state: Hmac<Sha256>,
}

impl HmacSha256 {
    /// Prepares HMAC-SHA256 for `key`, which may have any length (RFC 2104).
    #[must_use]
    pub fn new(key: &[u8]) -> Self {
        // RFC 2104: a key longer than the 64-byte block is replaced by its hash, and the key is
        // then zero-padded to one block. Doing that here makes construction total (no
        // `Result`), and HMAC over the padded block is by definition the same function.
        let mut block = Zeroizing::new([0u8; SHA256_BLOCK_LEN]);
        match block.get_mut(..key.len()) {
            Some(prefix) => prefix.copy_from_slice(key),
            None => {
                let mut hashed = <Sha256 as sha2::Digest>::digest(key);
                if let Some(prefix) = block.get_mut(..HMAC_LEN) {
                    prefix.copy_from_slice(&hashed);
                }
                hashed.as_mut_slice().zeroize();
            }
        }
        let state = <Hmac<Sha256> as KeyInit>::new((&*block).into());
        Self { state }
    }

    /// Returns HMAC-SHA256(key, `message`).
    #[must_use]
    pub fn mac(&self, message: &[u8]) -> [u8; HMAC_LEN] {
        let mut state = self.state.clone();
        state.update(message);
        state.finalize().into_bytes().into()
    }

    /// Returns HMAC-SHA256(key, `message`) in a buffer that is wiped when dropped; used where the
    /// MAC is itself a key.
    #[must_use]
    pub(crate) fn mac_secret(&self, message: &[u8]) -> Zeroizing<[u8; HMAC_LEN]> {
        let mut state = self.state.clone();
        state.update(message);
        let mut out = Zeroizing::new([0u8; HMAC_LEN]);
        FixedOutput::finalize_into(state, (&mut *out).into());
        out
    }

    /// Checks in constant time whether `tag` is HMAC-SHA256(key, `message`).
    ///
    /// `tag` must be the full 32-byte MAC; shorter (truncated) tags are rejected.
    #[must_use]
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        let expected = self.mac(message);
        tag.len() == HMAC_LEN && bool::from(expected.as_slice().ct_eq(tag))
    }
}

impl std::fmt::Debug for HmacSha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSha256([REDACTED])")
    }
}

/// Appends `seal(plaintext) = ciphertext ‖ tag` to `out`.
///
/// The plaintext is copied into `out` and encrypted in place there. `out` is reserved up front
/// so it does not reallocate while it holds plaintext; on failure the copied plaintext is wiped.
pub(crate) fn seal_into<A>(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    associated_data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncryptError>
where
    A: AeadInOut + KeyInit + KeySizeUser<KeySize = U32> + AeadCore<NonceSize = U12>,
{
    let cipher = new_cipher::<A>(key);
    let start = out.len();
    out.reserve(plaintext.len() + TAG_LEN);
    out.extend_from_slice(plaintext);
    // `start` is the length before the extension, so the split cannot be out of bounds.
    let (_, buffer) = out.split_at_mut(start);
    match cipher.encrypt_inout_detached(nonce.into(), associated_data, buffer.into()) {
        Ok(tag) => {
            out.extend_from_slice(tag.as_slice());
            Ok(())
        }
        Err(_) => {
            // Only a plaintext beyond the AEAD's length limit gets here; wipe the copy.
            let (_, buffer) = out.split_at_mut(start);
            buffer.zeroize();
            out.truncate(start);
            Err(EncryptError::PlaintextTooLarge)
        }
    }
}

/// Opens `sealed = ciphertext ‖ tag`; the tag is verified before anything is decrypted.
pub(crate) fn open<A>(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    sealed: &[u8],
    associated_data: &[u8],
) -> Result<Plaintext, DecryptError>
where
    A: AeadInOut + KeyInit + KeySizeUser<KeySize = U32> + AeadCore<NonceSize = U12>,
{
    let Some(split) = sealed.len().checked_sub(TAG_LEN) else {
        return Err(DecryptError::new());
    };
    let (ciphertext, tag) = sealed.split_at(split);
    let tag = Tag::<A>::try_from(tag).map_err(|_| DecryptError::new())?;
    let cipher = new_cipher::<A>(key);
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt_inout_detached(
            nonce.into(),
            associated_data,
            buffer.as_mut_slice().into(),
            &tag,
        )
        .map_err(|_| DecryptError::new())?;
    Ok(Plaintext::new(buffer))
}

fn new_cipher<A: KeyInit + KeySizeUser<KeySize = U32>>(key: &[u8; KEY_LEN]) -> A {
    A::new(key.into())
}
