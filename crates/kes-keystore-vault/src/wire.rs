//! Vault's JSON answers, as far as the key store reads them.
//!
//! Strings that are secret — stored values, transit plaintexts, client tokens — are read into
//! [`SecretText`], which wipes its memory on drop and never prints itself. Fields the key store
//! does not need are skipped, not kept (a token lookup's answer holds the token itself).

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use zeroize::Zeroizing;

/// A secret string from a Vault answer.
pub(crate) struct SecretText(pub Zeroizing<String>);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText([REDACTED])")
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| Self(Zeroizing::new(s)))
    }
}

/// One field of a K/V secret: kept when it is a string, dropped (as `None`) otherwise.
pub(crate) struct Field(pub Option<SecretText>);

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        Ok(Field(Some(SecretText(Zeroizing::new(v.to_owned())))))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Field, E> {
        Ok(Field(Some(SecretText(Zeroizing::new(v)))))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field, E> {
        Ok(Field(None))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Field, E> {
        Ok(Field(None))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Field, E> {
        Ok(Field(None))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Field, E> {
        Ok(Field(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
        Ok(Field(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Field, E> {
        Ok(Field(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field(None))
    }
}

/// A K/V secret's fields.
pub(crate) type Fields = HashMap<String, Field>;

/// `GET /v1/<engine>/<loc>` on K/V v1.
#[derive(Deserialize)]
pub(crate) struct KvV1Read {
    #[serde(default)]
    pub data: Option<Fields>,
}

/// `GET /v1/<engine>/data/<loc>` on K/V v2.
#[derive(Deserialize)]
pub(crate) struct KvV2Read {
    #[serde(default)]
    pub data: Option<KvV2Data>,
}

/// The `data` of a K/V v2 read: the secret's fields (`null` for a deleted version).
#[derive(Deserialize)]
pub(crate) struct KvV2Data {
    #[serde(default)]
    pub data: Option<Fields>,
    /// The version read, for a check-and-set write on top of it.
    #[serde(default)]
    pub metadata: Option<KvV2Metadata>,
}

/// The `metadata` of a K/V v2 read.
#[derive(Deserialize)]
pub(crate) struct KvV2Metadata {
    #[serde(default)]
    pub version: u64,
}

/// A `LIST` answer.
#[derive(Deserialize)]
pub(crate) struct ListResponse {
    #[serde(default)]
    pub data: Option<ListData>,
}

/// The names of a `LIST` answer; folders end with `/`.
#[derive(Deserialize)]
pub(crate) struct ListData {
    #[serde(default)]
    pub keys: Vec<String>,
}

/// A login or token renewal answer.
#[derive(Deserialize)]
pub(crate) struct AuthResponse {
    #[serde(default)]
    pub auth: Option<AuthData>,
}

/// The `auth` of a login or renewal answer.
#[derive(Deserialize)]
pub(crate) struct AuthData {
    pub client_token: SecretText,
    /// The token's TTL in seconds; 0 for a token that never expires.
    #[serde(default)]
    pub lease_duration: u64,
    #[serde(default)]
    pub renewable: bool,
}

/// A `lookup-self` answer (its `id`, the token itself, is skipped).
#[derive(Deserialize)]
pub(crate) struct LookupResponse {
    pub data: LookupData,
}

/// The fields of a `lookup-self` answer the key store uses.
#[derive(Deserialize)]
pub(crate) struct LookupData {
    /// Remaining TTL in seconds; 0 for a token that never expires.
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub renewable: bool,
}

/// A transit `encrypt` answer.
#[derive(Deserialize)]
pub(crate) struct EncryptResponse {
    pub data: EncryptData,
}

/// The ciphertext of a transit `encrypt` answer.
#[derive(Deserialize)]
pub(crate) struct EncryptData {
    pub ciphertext: String,
}

/// A transit `decrypt` answer.
#[derive(Deserialize)]
pub(crate) struct DecryptResponse {
    pub data: DecryptData,
}

/// The base64 plaintext of a transit `decrypt` answer.
#[derive(Deserialize)]
pub(crate) struct DecryptData {
    pub plaintext: SecretText,
}

/// A `sys/health` answer.
#[derive(Deserialize)]
pub(crate) struct HealthResponse {
    #[serde(default)]
    pub initialized: bool,
    #[serde(default)]
    pub sealed: bool,
    #[serde(default)]
    pub standby: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_strings_only() {
        let read: KvV1Read = serde_json::from_str(
            r#"{"data":{"k":"rec\"ord","n":1,"b":true,"o":{"x":[1,2]},"a":[{"y":1}],"z":null}}"#,
        )
        .unwrap();
        let data = read.data.unwrap();
        assert_eq!(data["k"].0.as_ref().unwrap().0.as_str(), "rec\"ord");
        for other in ["n", "b", "o", "a", "z"] {
            assert!(data[other].0.is_none(), "{other}");
        }
    }

    #[test]
    fn v2_deleted_version_has_no_data() {
        let read: KvV2Read =
            serde_json::from_str(r#"{"data":{"data":null,"metadata":{"version":1}}}"#).unwrap();
        assert!(read.data.unwrap().data.is_none());
    }

    #[test]
    fn secrets_do_not_print() {
        let auth: AuthResponse = serde_json::from_str(
            r#"{"auth":{"client_token":"s.token","lease_duration":30,"renewable":true}}"#,
        )
        .unwrap();
        let auth = auth.auth.unwrap();
        assert_eq!(format!("{:?}", auth.client_token), "SecretText([REDACTED])");
        assert_eq!((auth.lease_duration, auth.renewable), (30, true));
    }

    #[test]
    fn lookup_and_health_defaults() {
        let lookup: LookupResponse =
            serde_json::from_str(r#"{"data":{"id":"s.x","ttl":0,"renewable":false}}"#).unwrap();
        assert_eq!(lookup.data.ttl, 0);
        let health: HealthResponse = serde_json::from_str(r#"{"sealed":true}"#).unwrap();
        assert!(health.sealed && !health.initialized && !health.standby);
    }
}
