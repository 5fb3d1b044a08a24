//! Legacy RFC 1423 PEM encryption, as Go's `x509.EncryptPEMBlock` / `x509.DecryptPEMBlock`.
//!
//! KES uses it for the server's `tls.password` and for `kes identity new --encrypt`. An
//! encrypted block carries the headers `Proc-Type: 4,ENCRYPTED` and
//! `DEK-Info: AES-256-CBC,<hex IV>`; the key is OpenSSL's `EVP_BytesToKey` with MD5, one
//! iteration, and the first 8 bytes of the IV as salt; the contents are CBC-encrypted with
//! PKCS #7 padding.
//!
//! This scheme is weak by modern standards (one MD5 round, no authentication: a wrong password
//! is detected only through the padding, so about 1 in 256 wrong passwords passes that check and
//! yields garbage). [`decrypt_private_key`] adds a check of the DER framing of the result, so
//! a wrong password is reported as one rather than as a malformed key. The scheme is supported
//! for compatibility with files KES wrote, not recommended.
//! Decryption supports `AES-128-CBC`, `AES-192-CBC` and `AES-256-CBC`; Go's DES modes are not
//! supported. Encryption always uses `AES-256-CBC`, as KES does.

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt};
use cbc::cipher::{KeyInit, KeyIvInit};
use md5::{Digest, Md5};
use zeroize::{Zeroize, Zeroizing};

use crate::error::RngError;
use crate::key::fill_random;
use crate::pem::{self, PemBlock};

/// Why a legacy encrypted PEM block could not be decrypted or produced.
///
/// The `Display` texts are Go's error messages where Go has one.
#[derive(Debug, thiserror::Error)]
pub enum LegacyPemError {
    /// The text contains no PEM block.
    #[error("x509: no PEM block found")]
    NoPemBlock,
    /// The block has no `DEK-Info` header: it is not encrypted.
    #[error("x509: no DEK-Info header in block")]
    NotEncrypted,
    /// The `DEK-Info` header is not `<mode>,<hex IV>`.
    #[error("x509: malformed DEK-Info header")]
    MalformedDekInfo,
    /// The `DEK-Info` mode is not one of the supported AES-CBC modes (Go's DES modes included).
    #[error("x509: unknown encryption mode")]
    UnknownMode,
    /// The IV in `DEK-Info` is not valid hex.
    #[error("x509: invalid IV encoding in DEK-Info header")]
    InvalidIvEncoding,
    /// The IV is not one block (16 bytes) long.
    #[error("x509: incorrect IV size")]
    IncorrectIvSize,
    /// The encrypted contents are not a whole number of blocks.
    #[error("x509: encrypted PEM data is not a multiple of the block size")]
    NotBlockMultiple,
    /// The encrypted contents are empty.
    #[error("x509: invalid padding")]
    InvalidPadding,
    /// The padding is wrong after decryption: almost always a wrong password.
    #[error("x509: decryption password incorrect")]
    IncorrectPassword,
    /// The random IV for encryption could not be drawn.
    #[error(transparent)]
    Rng(#[from] RngError),
}

const BLOCK_LEN: usize = 16;

/// The AES key sizes of the RFC 1423 `DEK-Info` modes `AES-<bits>-CBC`.
#[derive(Clone, Copy)]
enum Mode {
    Aes128,
    Aes192,
    Aes256,
}

impl Mode {
    fn from_name(name: &str) -> Option<Mode> {
        match name {
            "AES-128-CBC" => Some(Mode::Aes128),
            "AES-192-CBC" => Some(Mode::Aes192),
            "AES-256-CBC" => Some(Mode::Aes256),
            _ => None,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Mode::Aes128 => 16,
            Mode::Aes192 => 24,
            Mode::Aes256 => 32,
        }
    }
}

/// Whether the first PEM block in `pem_block_text` is encrypted, i.e. has a `DEK-Info` header
/// (Go's `x509.IsEncryptedPEMBlock`). Text without a PEM block is not encrypted.
#[must_use]
pub fn is_encrypted(pem_block_text: &str) -> bool {
    pem::decode(pem_block_text.as_bytes()).is_some_and(|(block, _)| is_encrypted_block(&block))
}

/// Whether `block` has a `DEK-Info` header.
#[must_use]
pub fn is_encrypted_block(block: &PemBlock) -> bool {
    block.header("DEK-Info").is_some()
}

/// Decrypts the first PEM block in `pem_text` with `password` and returns its label and the
/// decrypted contents (usually a DER private key).
///
/// # Errors
///
/// [`LegacyPemError::NoPemBlock`] without a block, [`LegacyPemError::NotEncrypted`] for a block
/// without `DEK-Info`, [`LegacyPemError::IncorrectPassword`] (`x509: decryption password
/// incorrect`) when the padding is wrong, and the other variants for malformed headers.
pub fn decrypt(
    pem_text: &str,
    password: &[u8],
) -> Result<(String, Zeroizing<Vec<u8>>), LegacyPemError> {
    let (block, _) = pem::decode(pem_text.as_bytes()).ok_or(LegacyPemError::NoPemBlock)?;
    let der = decrypt_block(&block, password)?;
    Ok((block.label().to_owned(), der))
}

/// Decrypts the first PEM block in `pem_text`, which must hold a private key (PKCS #8, SEC1 or
/// PKCS #1: all one DER `SEQUENCE`), and returns its label and DER.
///
/// Unlike [`decrypt`], a result that passes the padding check but is not one well-formed DER
/// `SEQUENCE` filling the whole plaintext is reported as [`LegacyPemError::IncorrectPassword`]:
/// that is what a wrong password yields about once in 256 tries.
///
/// # Errors
///
/// As [`decrypt`].
pub fn decrypt_private_key(
    pem_text: &str,
    password: &[u8],
) -> Result<(String, Zeroizing<Vec<u8>>), LegacyPemError> {
    let (label, der) = decrypt(pem_text, password)?;
    if !is_der_sequence(&der) {
        return Err(LegacyPemError::IncorrectPassword);
    }
    Ok((label, der))
}

/// Whether `der` is exactly one DER `SEQUENCE` (tag 0x30) with a minimally encoded length.
fn is_der_sequence(der: &[u8]) -> bool {
    let [0x30, first, rest @ ..] = der else {
        return false;
    };
    let (len, body) = if *first < 0x80 {
        (usize::from(*first), rest)
    } else {
        let count = usize::from(*first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return false;
        }
        let (len_bytes, body) = rest.split_at(count);
        if len_bytes.first() == Some(&0) {
            return false;
        }
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return false;
        }
        (len, body)
    };
    body.len() == len
}

/// Decrypts one PEM block (Go's `x509.DecryptPEMBlock`).
///
/// # Errors
///
/// As [`decrypt`], except for [`LegacyPemError::NoPemBlock`].
pub fn decrypt_block(
    block: &PemBlock,
    password: &[u8],
) -> Result<Zeroizing<Vec<u8>>, LegacyPemError> {
    let dek_info = block
        .header("DEK-Info")
        .ok_or(LegacyPemError::NotEncrypted)?;
    let (mode, hex_iv) = dek_info
        .split_once(',')
        .ok_or(LegacyPemError::MalformedDekInfo)?;
    let mode = Mode::from_name(mode).ok_or(LegacyPemError::UnknownMode)?;
    let iv = hex::decode(hex_iv).map_err(|_| LegacyPemError::InvalidIvEncoding)?;
    let iv: [u8; BLOCK_LEN] = iv
        .as_slice()
        .try_into()
        .map_err(|_| LegacyPemError::IncorrectIvSize)?;

    let contents = block.contents();
    if !contents.len().is_multiple_of(BLOCK_LEN) {
        return Err(LegacyPemError::NotBlockMultiple);
    }
    let key = derive_key(password, &iv, mode.key_len());
    let mut data = Zeroizing::new(contents.to_vec());
    match mode {
        Mode::Aes128 => cbc_decrypt::<Aes128>(&key, &iv, &mut data)?,
        Mode::Aes192 => cbc_decrypt::<Aes192>(&key, &iv, &mut data)?,
        Mode::Aes256 => cbc_decrypt::<Aes256>(&key, &iv, &mut data)?,
    }

    // Go's padding check, in Go's order.
    let Some(&last) = data.last() else {
        return Err(LegacyPemError::InvalidPadding);
    };
    let pad = usize::from(last);
    if pad == 0 || pad > BLOCK_LEN || pad > data.len() {
        return Err(LegacyPemError::IncorrectPassword);
    }
    let unpadded_len = data.len() - pad;
    if data
        .get(unpadded_len..)
        .is_none_or(|padding| padding.iter().any(|b| *b != last))
    {
        return Err(LegacyPemError::IncorrectPassword);
    }
    data.truncate(unpadded_len);
    Ok(data)
}

/// Encrypts `der` under `password` with AES-256-CBC and a random IV, and returns the PEM text
/// `-----BEGIN <label>-----`, `Proc-Type: 4,ENCRYPTED`, `DEK-Info: AES-256-CBC,<hex IV>`, as
/// Go's `x509.EncryptPEMBlock` followed by `pem.Encode` produce it.
///
/// # Errors
///
/// [`LegacyPemError::Rng`] if the random IV cannot be drawn.
pub fn encrypt(label: &str, der: &[u8], password: &[u8]) -> Result<String, LegacyPemError> {
    let mut iv = [0u8; BLOCK_LEN];
    fill_random(&mut iv)?;
    let key = derive_key(password, &iv, Mode::Aes256.key_len());

    let pad = BLOCK_LEN - der.len() % BLOCK_LEN;
    let mut data = Zeroizing::new(Vec::with_capacity(der.len() + pad));
    data.extend_from_slice(der);
    data.extend(std::iter::repeat_n(pad as u8, pad));
    cbc_encrypt::<Aes256>(&key, &iv, &mut data)?;

    let block = PemBlock::new(label, data)
        .with_header("Proc-Type", "4,ENCRYPTED")
        .with_header("DEK-Info", format!("AES-256-CBC,{}", hex::encode(iv)));
    Ok(pem::encode(&block).to_string())
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one iteration, salt = `iv[..8]` (Go's
/// `rfc1423Algo.deriveKey`): `D_i = MD5(D_{i-1} ‖ password ‖ salt)`, key = `D_1 ‖ D_2 ‖ ...`.
fn derive_key(password: &[u8], iv: &[u8; BLOCK_LEN], key_len: usize) -> Zeroizing<Vec<u8>> {
    let salt = iv.get(..8).unwrap_or_default();
    let mut key = Zeroizing::new(Vec::with_capacity(key_len + 16));
    let mut digest = Zeroizing::new(Vec::new());
    while key.len() < key_len {
        let mut hash = Md5::new();
        hash.update(digest.as_slice());
        hash.update(password);
        hash.update(salt);
        let mut output = hash.finalize();
        digest.clear();
        digest.extend_from_slice(&output);
        output.as_mut_slice().zeroize();
        key.extend_from_slice(&digest);
    }
    key.truncate(key_len);
    key
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8; BLOCK_LEN], data: &mut [u8]) -> Result<(), LegacyPemError>
where
    C: BlockCipherDecrypt + KeyInit,
    cbc::Decryptor<C>: KeyIvInit + BlockModeDecrypt,
{
    let decryptor = <cbc::Decryptor<C> as KeyIvInit>::new_from_slices(key, iv)
        .map_err(|_| LegacyPemError::IncorrectIvSize)?;
    decryptor
        .decrypt_padded::<NoPadding>(data)
        .map_err(|_| LegacyPemError::NotBlockMultiple)?;
    Ok(())
}

fn cbc_encrypt<C>(key: &[u8], iv: &[u8; BLOCK_LEN], data: &mut [u8]) -> Result<(), LegacyPemError>
where
    C: BlockCipherEncrypt + KeyInit,
    cbc::Encryptor<C>: KeyIvInit + BlockModeEncrypt,
{
    let len = data.len();
    let encryptor = <cbc::Encryptor<C> as KeyIvInit>::new_from_slices(key, iv)
        .map_err(|_| LegacyPemError::IncorrectIvSize)?;
    encryptor
        .encrypt_padded::<NoPadding>(data, len)
        .map_err(|_| LegacyPemError::NotBlockMultiple)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for len in [0usize, 1, 15, 16, 17, 48, 100] {
            let der: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let text = encrypt("PRIVATE KEY", &der, b"secret").unwrap();
            assert!(text.starts_with(
                "-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,"
            ));
            assert!(is_encrypted(&text));
            let (label, back) = decrypt(&text, b"secret").unwrap();
            assert_eq!(label, "PRIVATE KEY");
            assert_eq!(back.as_slice(), der.as_slice());
        }
    }

    #[test]
    fn openssl_evp_bytes_to_key_vector() {
        // `openssl enc -aes-256-cbc -P -md md5 -S 0102030405060708 -pass pass:password`
        // prints key=E7B0971E52CA5CC8D0539FB3412F6316F7BA2E6EE293D9F3457B99436B51CE02.
        let iv = [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0];
        let key = derive_key(b"password", &iv, 32);
        assert_eq!(
            hex::encode_upper(key.as_slice()),
            "E7B0971E52CA5CC8D0539FB3412F6316F7BA2E6EE293D9F3457B99436B51CE02"
        );
    }

    #[test]
    fn malformed_headers() {
        let body = "AAAAAAAAAAAAAAAAAAAAAA==";
        let with = |dek: &str| {
            format!(
                "-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: {dek}\n\n{body}\n-----END X-----\n"
            )
        };
        let err = |text: &str| decrypt(text, b"pw").unwrap_err();
        assert!(matches!(
            err(&with("AES-256-CBC")),
            LegacyPemError::MalformedDekInfo
        ));
        assert!(matches!(
            err(&with("DES-CBC,0011223344556677")),
            LegacyPemError::UnknownMode
        ));
        assert!(matches!(
            err(&with("AES-256-CBC,zz")),
            LegacyPemError::InvalidIvEncoding
        ));
        assert!(matches!(
            err(&with("AES-256-CBC,0011")),
            LegacyPemError::IncorrectIvSize
        ));
        let plain = format!("-----BEGIN X-----\n{body}\n-----END X-----\n");
        assert!(!is_encrypted(&plain));
        assert!(matches!(err(&plain), LegacyPemError::NotEncrypted));
        assert!(matches!(err("nothing"), LegacyPemError::NoPemBlock));
        let odd = "-----BEGIN X-----\nDEK-Info: AES-256-CBC,00112233445566778899aabbccddeeff\n\nAAAA\n-----END X-----\n";
        assert!(matches!(err(odd), LegacyPemError::NotBlockMultiple));
        let empty = "-----BEGIN X-----\nDEK-Info: AES-256-CBC,00112233445566778899aabbccddeeff\n\n-----END X-----\n";
        assert!(matches!(err(empty), LegacyPemError::InvalidPadding));
    }

    /// Encrypts like [`encrypt`] but with a fixed IV, so that the test below is deterministic.
    fn encrypt_with_iv(der: &[u8], password: &[u8], iv: [u8; BLOCK_LEN]) -> String {
        let key = derive_key(password, &iv, Mode::Aes256.key_len());
        let pad = BLOCK_LEN - der.len() % BLOCK_LEN;
        let mut data = der.to_vec();
        data.extend(std::iter::repeat_n(pad as u8, pad));
        cbc_encrypt::<Aes256>(&key, &iv, &mut data).unwrap();
        let block = PemBlock::new("PRIVATE KEY", data.into())
            .with_header("Proc-Type", "4,ENCRYPTED")
            .with_header("DEK-Info", format!("AES-256-CBC,{}", hex::encode(iv)));
        pem::encode(&block).to_string()
    }

    #[test]
    fn wrong_passwords_that_pass_the_padding_check_are_still_wrong_passwords() {
        // A PKCS #8 Ed25519 key's framing: SEQUENCE of 46 bytes.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70,
        ];
        der.extend_from_slice(&[0x04, 0x22, 0x04, 0x20]);
        der.extend(0u8..32);
        assert!(is_der_sequence(&der));
        let text = encrypt_with_iv(&der, b"right", [7; BLOCK_LEN]);
        assert_eq!(
            decrypt_private_key(&text, b"right").unwrap().1.as_slice(),
            der
        );

        let mut passed_padding = 0;
        for i in 0..4000 {
            let wrong = format!("wrong-{i}");
            if decrypt(&text, wrong.as_bytes()).is_ok() {
                passed_padding += 1;
            }
            assert!(matches!(
                decrypt_private_key(&text, wrong.as_bytes()),
                Err(LegacyPemError::IncorrectPassword)
            ));
        }
        // About 1 in 256 wrong passwords yields valid padding: the case this guards against.
        assert!(
            passed_padding > 0,
            "no wrong password passed the padding check"
        );
    }

    #[test]
    fn der_sequence_framing() {
        assert!(is_der_sequence(&[0x30, 0x00]));
        assert!(is_der_sequence(&[0x30, 0x01, 0x05]));
        assert!(!is_der_sequence(&[0x30, 0x02, 0x05]));
        assert!(!is_der_sequence(&[0x31, 0x00]));
        assert!(!is_der_sequence(&[0x30]));
        assert!(!is_der_sequence(&[]));
        // Long form: minimal only.
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend([0u8; 0x80]);
        assert!(is_der_sequence(&long));
        assert!(!is_der_sequence(&[0x30, 0x81, 0x01, 0x00]));
        let mut padded = vec![0x30, 0x82, 0x00, 0x80];
        padded.extend([0u8; 0x80]);
        assert!(!is_der_sequence(&padded));
        assert!(!is_der_sequence(&[0x30, 0x80]));
        assert!(!is_der_sequence(&[0x30, 0x85, 1, 1, 1, 1, 1]));
    }

    #[test]
    fn wrong_password_message() {
        assert_eq!(
            LegacyPemError::IncorrectPassword.to_string(),
            "x509: decryption password incorrect"
        );
    }
}
