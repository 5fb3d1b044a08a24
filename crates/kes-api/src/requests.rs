//! Request bodies (spec §2.5 and the runtime admin routes of §3.1).
//!
//! Servers decode them with the `decode_*_request` functions (Go `encoding/json`
//! semantics, see [`crate::DecodeError`]); clients encode them with `Serialize` and
//! [`crate::encode_json`] / [`crate::encode_json_secret`]. Secret fields are
//! `Zeroizing<Vec<u8>>`, and the structs holding them print `<redacted>` in `Debug`.

use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use zeroize::Zeroizing;

use crate::b64;

/// Body of `PUT|POST /v1/key/import/<name>`: `{"key": b64, "cipher": "<alg>"}`.
///
/// `cipher` is `AES256` (or the legacy `AES256-GCM_SHA256`) or `ChaCha20` (or the legacy
/// `XCHACHA20-POLY1305`); anything else is answered with 406 by the server.
#[derive(Default)]
pub struct ImportRequest {
    /// The raw 256-bit key. Secret.
    pub key: Zeroizing<Vec<u8>>,
    /// The key's algorithm name.
    pub cipher: String,
}

/// Body of `PUT|POST /v1/key/encrypt/<name>`:
/// `{"plaintext": b64, "context": b64?, "version": "…"?}`.
#[derive(Default)]
pub struct EncryptRequest {
    /// The data to encrypt. Secret.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// Associated data bound to the ciphertext; empty when absent.
    pub context: Vec<u8>,
    /// Key version (spec §2.6): accepted and ignored by the server; empty when absent.
    pub version: String,
}

/// Body of `PUT|POST /v1/key/generate/<name>`: `{"context": b64?, "version": "…"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GenerateRequest {
    /// Associated data bound to the data key's ciphertext; empty when absent.
    #[serde(with = "b64::bytes", skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<u8>,
    /// Key version (spec §2.6): accepted and ignored by the server; empty when absent.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// Body of `PUT|POST /v1/key/decrypt/<name>`:
/// `{"ciphertext": b64, "context": b64?, "version": "…"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DecryptRequest {
    /// The ciphertext, in any format of spec §4.4.
    #[serde(with = "b64::bytes")]
    pub ciphertext: Vec<u8>,
    /// The associated data used at encryption; empty when absent.
    #[serde(with = "b64::bytes", skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<u8>,
    /// Key version (spec §2.6): accepted and ignored by the server; empty when absent.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// Body of `PUT|POST /v1/key/hmac/<name>`: `{"message": b64, "version": "…"?}`.
#[derive(Default)]
pub struct HmacRequest {
    /// The message to authenticate. Treated as secret, since callers may MAC secret data.
    pub message: Zeroizing<Vec<u8>>,
    /// Key version (spec §2.6): accepted and ignored by the server; empty when absent.
    pub version: String,
}

/// Body of `POST /v1/policy/write/<name>` (runtime admin API of older releases, §3.1):
/// `{"allow": [patterns], "deny": [patterns]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyWriteRequest {
    /// Path patterns the policy allows.
    pub allow: Vec<String>,
    /// Path patterns the policy denies; deny wins over allow.
    pub deny: Vec<String>,
}

/// Body of `POST /v1/policy/assign/<policy>` (runtime admin API of older releases, §3.1):
/// `{"identity": "<identity>"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyAssignRequest {
    /// The identity (hex SHA-256 of a certificate's public key) to assign the policy to.
    pub identity: String,
}

const REDACTED: &str = "<redacted>";

impl fmt::Debug for ImportRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportRequest")
            .field("key", &REDACTED)
            .field("cipher", &self.cipher)
            .finish()
    }
}

impl fmt::Debug for EncryptRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptRequest")
            .field("plaintext", &REDACTED)
            .field("context", &self.context)
            .field("version", &self.version)
            .finish()
    }
}

impl fmt::Debug for HmacRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacRequest")
            .field("message", &REDACTED)
            .field("version", &self.version)
            .finish()
    }
}

/// Serializes a secret byte field through a wiped base64 buffer.
struct SecretField<'a>(&'a [u8]);

impl Serialize for SecretField<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        b64::secret::serialize(self.0, s)
    }
}

/// Serializes a public byte field as base64.
struct BytesField<'a>(&'a [u8]);

impl Serialize for BytesField<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        b64::bytes::serialize(self.0, s)
    }
}

impl Serialize for ImportRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ImportRequest", 2)?;
        st.serialize_field("key", &SecretField(&self.key))?;
        st.serialize_field("cipher", &self.cipher)?;
        st.end()
    }
}

impl Serialize for EncryptRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("EncryptRequest", 3)?;
        st.serialize_field("plaintext", &SecretField(&self.plaintext))?;
        if !self.context.is_empty() {
            st.serialize_field("context", &BytesField(&self.context))?;
        }
        if !self.version.is_empty() {
            st.serialize_field("version", &self.version)?;
        }
        st.end()
    }
}

impl Serialize for HmacRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("HmacRequest", 2)?;
        st.serialize_field("message", &SecretField(&self.message))?;
        if !self.version.is_empty() {
            st.serialize_field("version", &self.version)?;
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode_json;

    fn json<T: crate::WireBody>(v: &T) -> String {
        String::from_utf8(encode_json(v)).unwrap()
    }

    #[test]
    fn requests_serialize_like_the_sdk() {
        let import = ImportRequest {
            key: Zeroizing::new(vec![0; 3]),
            cipher: "AES256".into(),
        };
        assert_eq!(json(&import), "{\"key\":\"AAAA\",\"cipher\":\"AES256\"}\n");

        let enc = EncryptRequest {
            plaintext: Zeroizing::new(b"hi".to_vec()),
            ..Default::default()
        };
        assert_eq!(json(&enc), "{\"plaintext\":\"aGk=\"}\n");
        let enc = EncryptRequest {
            plaintext: Zeroizing::new(vec![]),
            context: b"c".to_vec(),
            version: "v1".into(),
        };
        assert_eq!(
            json(&enc),
            "{\"plaintext\":\"\",\"context\":\"Yw==\",\"version\":\"v1\"}\n"
        );

        assert_eq!(json(&GenerateRequest::default()), "{}\n");
        let dec = DecryptRequest {
            ciphertext: vec![1],
            ..Default::default()
        };
        assert_eq!(json(&dec), "{\"ciphertext\":\"AQ==\"}\n");
        let mac = HmacRequest {
            message: Zeroizing::new(b"m".to_vec()),
            version: String::new(),
        };
        assert_eq!(json(&mac), "{\"message\":\"bQ==\"}\n");

        let pw = PolicyWriteRequest {
            allow: vec!["/v1/key/*".into()],
            deny: vec![],
        };
        assert_eq!(json(&pw), "{\"allow\":[\"/v1/key/*\"],\"deny\":[]}\n");
        let pa = PolicyAssignRequest {
            identity: "abc".into(),
        };
        assert_eq!(json(&pa), "{\"identity\":\"abc\"}\n");
    }

    #[test]
    fn debug_redacts_secrets() {
        let import = ImportRequest {
            key: Zeroizing::new(b"SECRETKEY".to_vec()),
            cipher: "AES256".into(),
        };
        let enc = EncryptRequest {
            plaintext: Zeroizing::new(b"SECRETKEY".to_vec()),
            ..Default::default()
        };
        let mac = HmacRequest {
            message: Zeroizing::new(b"SECRETKEY".to_vec()),
            version: String::new(),
        };
        for s in [
            format!("{import:?}"),
            format!("{enc:?}"),
            format!("{mac:?}"),
        ] {
            assert!(s.contains("<redacted>"), "{s}");
            assert!(!s.contains("83, 69, 67"), "{s}");
            assert!(!s.contains("SECRET"), "{s}");
        }
    }
}
