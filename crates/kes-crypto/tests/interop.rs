//! Replays the vectors recorded from the original KES server (`testdata/kes-interop`)
//! at library level: key records, ciphertexts, HMACs, describe metadata, certificate
//! identities, API keys and the legacy-encrypted private key.
//!

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kes_crypto::{
    HmacKey, KeyType, KeyVersion, SecretKey, api_key_from_pkcs8_der, api_key_from_pkcs8_pem,
    format_rfc3339_nano, identity_of_certificate, legacy_pem, pem,
};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn interop_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/kes-interop");
    assert!(dir.is_dir(), "test data missing at {}", dir.display());
    dir
}

fn vectors(dir: &Path) -> Value {
    serde_json::from_slice(&fs::read(dir.join("vectors.json")).unwrap()).unwrap()
}

fn b64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

/// Optional base64 field of a request body (absent → empty).
fn b64_field(body: &Value, name: &str) -> Vec<u8> {
    body.get(name)
        .filter(|v| !v.is_null())
        .map(b64)
        .unwrap_or_default()
}

fn keystore(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir.join("keystore")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        files.insert(name, fs::read(entry.path()).unwrap());
    }
    files
}

/// (operation, key name) of a `/v1/key/<op>/<name>` path.
fn key_operation(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v1/key/")?;
    rest.split_once('/')
}

fn certificate_der(path: &Path) -> Vec<u8> {
    let text = fs::read(path).unwrap();
    let blocks = pem::decode_all(&text);
    let cert = blocks
        .into_iter()
        .find(|b| b.label() == "CERTIFICATE")
        .unwrap();
    cert.contents().to_vec()
}

#[test]
fn every_keystore_file_parses() {
    let dir = interop_dir();
    let files = keystore(&dir);
    assert!(files.len() >= 4, "expected the four recorded keys");
    for (name, bytes) in &files {
        let record = KeyVersion::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        match name.as_str() {
            "vec-legacy" => assert!(record.hmac_key().is_none()),
            _ => assert!(record.hmac_key().is_some(), "{name} has an HMAC key"),
        }
    }
}

#[test]
fn crypto_cases_replay() {
    let dir = interop_dir();
    let v = vectors(&dir);
    let files = keystore(&dir);
    let records: BTreeMap<&str, KeyVersion> = files
        .iter()
        .map(|(name, bytes)| (name.as_str(), KeyVersion::parse(bytes).unwrap()))
        .collect();

    let mut checked: BTreeMap<&str, usize> = BTreeMap::new();
    let mut skipped = Vec::new();
    for case in v["cases"].as_array().unwrap() {
        let path = case["path"].as_str().unwrap();
        let Some((op, name)) = key_operation(path) else {
            continue;
        };
        if !matches!(op, "encrypt" | "generate" | "decrypt" | "hmac" | "describe") {
            continue;
        }
        let status = case["status"].as_u64().unwrap();
        let body = &case["body"];
        let reply = &case["reply"];
        let Some(record) = records.get(name) else {
            skipped.push(format!("{op} {name} ({status}): key not in keystore/"));
            continue;
        };
        let note = case["note"].as_str().unwrap_or_default();
        match (op, status) {
            ("encrypt", 200) => {
                let ciphertext = b64(&reply["ciphertext"]);
                let context = b64_field(body, "context");
                let plaintext = record
                    .key()
                    .decrypt(&ciphertext, &context)
                    .unwrap_or_else(|e| panic!("{path} ({note}): {e}"));
                assert_eq!(
                    plaintext.expose_secret(),
                    b64_field(body, "plaintext"),
                    "{path}"
                );
            }
            ("generate", 200) => {
                let ciphertext = b64(&reply["ciphertext"]);
                let context = b64_field(body, "context");
                let plaintext = record.key().decrypt(&ciphertext, &context).unwrap();
                assert_eq!(
                    plaintext.expose_secret(),
                    b64(&reply["plaintext"]),
                    "{path}"
                );
                assert_eq!(plaintext.len(), 32);
            }
            ("decrypt", 200) => {
                let plaintext = record
                    .key()
                    .decrypt(&b64(&body["ciphertext"]), &b64_field(body, "context"))
                    .unwrap_or_else(|e| panic!("{path} ({note}): {e}"));
                assert_eq!(
                    plaintext.expose_secret(),
                    b64(&reply["plaintext"]),
                    "{path}"
                );
            }
            ("decrypt", 400) => {
                let err = record
                    .key()
                    .decrypt(&b64(&body["ciphertext"]), &b64_field(body, "context"))
                    .unwrap_err();
                assert_eq!(
                    err.to_string(),
                    reply["message"].as_str().unwrap(),
                    "{note}"
                );
            }
            ("hmac", 200) => {
                let sum = record.hmac(&b64_field(body, "message")).unwrap();
                assert_eq!(sum.to_vec(), b64(&reply["hmac"]), "{path}");
            }
            ("hmac", 409) => {
                let err = record.hmac(&b64_field(body, "message")).unwrap_err();
                assert_eq!(err.to_string(), reply["message"].as_str().unwrap());
            }
            ("describe", 200) => {
                assert_eq!(
                    record.algorithm().as_str(),
                    reply["algorithm"].as_str().unwrap()
                );
                assert_eq!(
                    format_rfc3339_nano(record.created_at()),
                    reply["created_at"].as_str().unwrap(),
                    "{path}"
                );
                assert_eq!(record.created_by(), reply["created_by"].as_str().unwrap());
            }
            _ => {
                skipped.push(format!("{op} {name} ({status}): not a crypto outcome"));
                continue;
            }
        }
        *checked.entry(op).or_default() += 1;
    }
    println!("checked: {checked:?}");
    println!("skipped {} cases:", skipped.len());
    for reason in &skipped {
        println!("  {reason}");
    }
    // Everything the recording can check with the stored keys was checked.
    assert_eq!(checked.get("describe"), Some(&4));
    assert_eq!(checked.get("hmac"), Some(&10));
    assert!(checked.get("encrypt").copied().unwrap_or(0) >= 70);
    assert!(checked.get("decrypt").copied().unwrap_or(0) >= 85);
    assert!(checked.get("generate").copied().unwrap_or(0) >= 6);
    for reason in &skipped {
        assert!(
            reason.contains("not in keystore") || reason.contains("not a crypto outcome"),
            "{reason}"
        );
    }
}

/// Records we encode for the imported keys equal the files the original wrote, byte for byte.
#[test]
fn encoded_records_match_the_originals() {
    let dir = interop_dir();
    let v = vectors(&dir);
    let files = keystore(&dir);
    let describe: BTreeMap<&str, &Value> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == 200)
        .filter_map(|c| {
            let (op, name) = key_operation(c["path"].as_str()?)?;
            (op == "describe").then_some((name, &c["reply"]))
        })
        .collect();

    let imported = v["imported_keys"].as_object().unwrap();
    assert_eq!(imported.len(), 2);
    for (name, material) in imported {
        let ty = KeyType::from_cipher_name(material["cipher"].as_str().unwrap()).unwrap();
        let key = SecretKey::from_slice(ty, &b64(&material["key"])).unwrap();
        let stored = &files[name.as_str()];
        let original = KeyVersion::parse(stored).unwrap();
        let hmac = HmacKey::new(*original.hmac_key().unwrap().expose_secret());
        let reply = describe[name.as_str()];
        let created_at =
            OffsetDateTime::parse(reply["created_at"].as_str().unwrap(), &Rfc3339).unwrap();
        let created_by = reply["created_by"].as_str().unwrap().to_owned();
        let record = KeyVersion::new(key, hmac, created_at, created_by);
        assert_eq!(
            record.encode().unwrap().as_bytes(),
            stored.as_slice(),
            "{name}"
        );
    }

    // The legacy file holds what vectors.json says it holds.
    let legacy = &v["legacy_key_file"];
    let record = KeyVersion::parse(&files[legacy["name"].as_str().unwrap()]).unwrap();
    let contents = &legacy["contents"];
    assert_eq!(
        record.key().expose_secret().to_vec(),
        b64(&contents["bytes"])
    );
    assert_eq!(record.algorithm(), KeyType::Aes256);
    assert_eq!(
        format_rfc3339_nano(record.created_at()),
        contents["created_at"].as_str().unwrap()
    );
    assert_eq!(
        record.created_by(),
        contents["created_by"].as_str().unwrap()
    );
}

#[test]
fn certificate_and_api_key_identities() {
    let dir = interop_dir();
    let v = vectors(&dir);
    let identities = v["identities"].as_object().unwrap();
    assert_eq!(identities.len(), 3);
    for (name, identity) in identities {
        let cert = dir.join("certs").join(format!("{name}.crt"));
        let der = certificate_der(&cert);
        assert_eq!(
            identity_of_certificate(&der).unwrap(),
            identity.as_str().unwrap(),
            "{name}"
        );
        assert!(!kes_crypto::is_ca_certificate(&der).unwrap());
        // The private key next to it belongs to the same identity.
        let key_pem = fs::read_to_string(dir.join("certs").join(format!("{name}.key"))).unwrap();
        let api_key = api_key_from_pkcs8_pem(&key_pem).unwrap();
        assert_eq!(api_key.identity(), identity.as_str().unwrap(), "{name}.key");
    }
    let api_keys = v["api_keys"].as_array().unwrap();
    assert!(!api_keys.is_empty());
    for entry in api_keys {
        let key = kes_crypto::ApiKey::parse(entry["api_key"].as_str().unwrap()).unwrap();
        assert_eq!(key.identity(), entry["identity"].as_str().unwrap());
    }
}

#[test]
fn legacy_encrypted_private_key() {
    let dir = interop_dir();
    const IDENTITY: &str = "632fb89c4511295024717a016f6a792d214811f36e036c7e3cdb95d5dab35183";
    let key_text = fs::read_to_string(dir.join("certs/encrypted-server.key")).unwrap();
    assert!(legacy_pem::is_encrypted(&key_text));

    let (label, der) = legacy_pem::decrypt(&key_text, b"correct horse battery").unwrap();
    assert_eq!(label, "PRIVATE KEY");
    let api_key = api_key_from_pkcs8_der(&der).unwrap();
    assert_eq!(
        api_key.expose_secret().as_str(),
        "kes:v1:AGHTCRP4onsraq5zfDvXBr1Gl7bxG4KcOki1BTNnnnZa"
    );
    assert_eq!(api_key.identity(), IDENTITY);

    let der = certificate_der(&dir.join("certs/encrypted-server.crt"));
    assert_eq!(identity_of_certificate(&der).unwrap(), IDENTITY);

    for wrong in [
        &b"correct horse battery staple"[..],
        b"",
        b"Correct horse battery",
    ] {
        let err = legacy_pem::decrypt(&key_text, wrong).unwrap_err();
        assert_eq!(err.to_string(), "x509: decryption password incorrect");
    }

    // Re-encrypting with our code and decrypting again gives the same key.
    let again = legacy_pem::encrypt("PRIVATE KEY", &der_of(&key_text), b"pw").unwrap();
    let (_, back) = legacy_pem::decrypt(&again, b"pw").unwrap();
    assert_eq!(api_key_from_pkcs8_der(&back).unwrap().identity(), IDENTITY);
}

fn der_of(encrypted_key: &str) -> Vec<u8> {
    legacy_pem::decrypt(encrypted_key, b"correct horse battery")
        .unwrap()
        .1
        .to_vec()
}
