//! Wycheproof vectors (`testdata/wycheproof`, Apache-2.0, see its LICENSE) through the primitive layer the server
//! uses: `kes_crypto::aead` (AES-256-GCM, ChaCha20-Poly1305, HChaCha20) and HMAC-SHA256 (the
//! `aead::HmacSha256` primitive behind `HmacKey` and the AES per-message key derivation, and
//! `HmacKey` itself for 256-bit keys).
//!
//! Only the parameters the server uses run: 256-bit AEAD keys, 96-bit nonces, 128-bit tags
//! (plus XChaCha20-Poly1305's 192-bit nonces, which exercise HChaCha20). Everything else is
//! skipped and counted. Valid cases must seal to the recorded output and open to the recorded
//! message; invalid cases must fail to open (for HMAC: must not verify).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs;
use std::path::{Path, PathBuf};

use kes_crypto::HmacKey;
use kes_crypto::aead::{self, HmacSha256};
use serde::Deserialize;

#[derive(Deserialize)]
struct File<T> {
    algorithm: String,
    #[serde(rename = "testGroups")]
    test_groups: Vec<T>,
}

#[derive(Deserialize)]
struct AeadGroup {
    #[serde(rename = "keySize")]
    key_size: usize,
    #[serde(rename = "ivSize")]
    iv_size: usize,
    #[serde(rename = "tagSize")]
    tag_size: usize,
    tests: Vec<AeadCase>,
}

#[derive(Deserialize)]
struct AeadCase {
    #[serde(rename = "tcId")]
    id: u32,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: String,
}

#[derive(Deserialize)]
struct MacGroup {
    #[serde(rename = "keySize")]
    key_size: usize,
    #[serde(rename = "tagSize")]
    tag_size: usize,
    tests: Vec<MacCase>,
}

#[derive(Deserialize)]
struct MacCase {
    #[serde(rename = "tcId")]
    id: u32,
    key: String,
    msg: String,
    tag: String,
    result: String,
}

fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/wycheproof");
    assert!(dir.is_dir(), "test data missing at {}", dir.display());
    dir
}

fn load<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> File<T> {
    serde_json::from_slice(&fs::read(dir.join(name)).unwrap()).unwrap()
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Whether a case must succeed. Wycheproof's `acceptable` does not occur in these files; treat
/// it as a failure of the harness so that a new data file is looked at.
fn expect_valid(result: &str, id: u32) -> bool {
    match result {
        "valid" => true,
        "invalid" => false,
        other => panic!("case {id}: unexpected result {other:?}"),
    }
}

#[derive(Default, Debug)]
struct Tally {
    valid: usize,
    invalid: usize,
    skipped: usize,
}

type Seal = fn(&[u8; 32], &[u8; 12], &[u8], &[u8]) -> Result<Vec<u8>, kes_crypto::EncryptError>;
type Open = fn(
    &[u8; 32],
    &[u8; 12],
    &[u8],
    &[u8],
) -> Result<kes_crypto::Plaintext, kes_crypto::DecryptError>;

fn run_aead_case(
    name: &str,
    case: &AeadCase,
    key: &[u8; 32],
    nonce: &[u8; 12],
    seal: Seal,
    open: Open,
    tally: &mut Tally,
) {
    let (aad, msg) = (h(&case.aad), h(&case.msg));
    let mut sealed = h(&case.ct);
    sealed.extend_from_slice(&h(&case.tag));
    if expect_valid(&case.result, case.id) {
        assert_eq!(
            seal(key, nonce, &msg, &aad).unwrap(),
            sealed,
            "{name} #{}: seal",
            case.id
        );
        let opened = open(key, nonce, &sealed, &aad)
            .unwrap_or_else(|e| panic!("{name} #{}: open: {e}", case.id));
        assert_eq!(
            opened.expose_secret(),
            msg.as_slice(),
            "{name} #{}",
            case.id
        );
        tally.valid += 1;
    } else {
        assert!(
            open(key, nonce, &sealed, &aad).is_err(),
            "{name} #{}: invalid case opened",
            case.id
        );
        tally.invalid += 1;
    }
}

#[test]
fn aes_256_gcm() {
    let dir = data_dir();
    let file: File<AeadGroup> = load(&dir, "aes_gcm_test.json");
    assert_eq!(file.algorithm, "AES-GCM");
    let mut tally = Tally::default();
    for group in &file.test_groups {
        if (group.key_size, group.iv_size, group.tag_size) != (256, 96, 128) {
            tally.skipped += group.tests.len();
            continue;
        }
        for case in &group.tests {
            let key: [u8; 32] = h(&case.key).try_into().unwrap();
            let nonce: [u8; 12] = h(&case.iv).try_into().unwrap();
            run_aead_case(
                "AES-256-GCM",
                case,
                &key,
                &nonce,
                aead::seal_aes256gcm,
                aead::open_aes256gcm,
                &mut tally,
            );
        }
    }
    println!("AES-256-GCM: {tally:?} (skipped: other key, IV or tag sizes)");
    assert!(tally.valid >= 30 && tally.invalid >= 20, "{tally:?}");
}

#[test]
fn chacha20_poly1305() {
    let dir = data_dir();
    let file: File<AeadGroup> = load(&dir, "chacha20_poly1305_test.json");
    assert_eq!(file.algorithm, "CHACHA20-POLY1305");
    let mut tally = Tally::default();
    for group in &file.test_groups {
        if (group.key_size, group.iv_size, group.tag_size) != (256, 96, 128) {
            tally.skipped += group.tests.len();
            continue;
        }
        for case in &group.tests {
            let key: [u8; 32] = h(&case.key).try_into().unwrap();
            let nonce: [u8; 12] = h(&case.iv).try_into().unwrap();
            run_aead_case(
                "ChaCha20-Poly1305",
                case,
                &key,
                &nonce,
                aead::seal_chacha20poly1305,
                aead::open_chacha20poly1305,
                &mut tally,
            );
        }
    }
    println!("ChaCha20-Poly1305: {tally:?} (skipped: other nonce sizes)");
    assert!(tally.valid >= 200 && tally.invalid >= 50, "{tally:?}");
}

/// XChaCha20-Poly1305 = HChaCha20(key, nonce[..16]) then ChaCha20-Poly1305 with the nonce
/// `0⁴ ‖ nonce[16..]`: the same two steps (HChaCha20 subkey, then the AEAD) the ChaCha20 key
/// type uses.
#[test]
fn xchacha20_poly1305_via_hchacha20() {
    let dir = data_dir();
    let file: File<AeadGroup> = load(&dir, "xchacha20_poly1305_test.json");
    assert_eq!(file.algorithm, "XCHACHA20-POLY1305");
    let mut tally = Tally::default();
    for group in &file.test_groups {
        if (group.key_size, group.iv_size, group.tag_size) != (256, 192, 128) {
            tally.skipped += group.tests.len();
            continue;
        }
        for case in &group.tests {
            let key: [u8; 32] = h(&case.key).try_into().unwrap();
            let xnonce = h(&case.iv);
            let hchacha_input: [u8; 16] = xnonce[..16].try_into().unwrap();
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&xnonce[16..]);
            let subkey = aead::hchacha20(&key, &hchacha_input);
            run_aead_case(
                "XChaCha20-Poly1305",
                case,
                &subkey,
                &nonce,
                aead::seal_chacha20poly1305,
                aead::open_chacha20poly1305,
                &mut tally,
            );
        }
    }
    println!("XChaCha20-Poly1305: {tally:?} (skipped: other nonce sizes)");
    assert!(tally.valid >= 200 && tally.invalid >= 50, "{tally:?}");
}

#[test]
fn hmac_sha256() {
    let dir = data_dir();
    let file: File<MacGroup> = load(&dir, "hmac_sha256_test.json");
    assert_eq!(file.algorithm, "HMACSHA256");
    let mut tally = Tally::default();
    let mut truncated = 0;
    for group in &file.test_groups {
        if group.tag_size % 8 != 0 || group.tag_size > 256 || group.key_size % 8 != 0 {
            tally.skipped += group.tests.len();
            continue;
        }
        for case in &group.tests {
            let (key, msg, tag) = (h(&case.key), h(&case.msg), h(&case.tag));
            assert_eq!(key.len() * 8, group.key_size);
            let primitive = HmacSha256::new(&key);
            let mac = primitive.mac(&msg);
            let full = group.tag_size == 256;
            if !full {
                truncated += 1;
            }
            // The server never truncates; a truncated tag is checked as a prefix of the MAC.
            let matches = mac[..tag.len()] == tag[..];
            if full {
                assert_eq!(primitive.verify(&msg, &tag), matches, "#{}", case.id);
            }
            if key.len() == 32 {
                // The exact type behind /v1/key/hmac.
                let server_key = HmacKey::from_slice(&key).unwrap();
                assert_eq!(server_key.sum(&msg), mac, "#{}", case.id);
            }
            if expect_valid(&case.result, case.id) {
                assert!(matches, "HMAC #{}: valid case did not match", case.id);
                tally.valid += 1;
            } else {
                assert!(!matches, "HMAC #{}: invalid case matched", case.id);
                tally.invalid += 1;
            }
        }
    }
    println!("HMAC-SHA256: {tally:?} ({truncated} with truncated tags, compared as MAC prefixes)");
    assert!(tally.valid >= 60 && tally.invalid >= 100, "{tally:?}");
}
