//! Response bodies (spec §2.5, §2.2 and the older shapes clients still meet, §3.1).
//!
//! Every type serializes the way the final KES server writes it and deserializes
//! leniently, as Go clients do: unknown fields are ignored, missing fields take their zero
//! value, and `null` lists are empty.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::b64;
use crate::timestamp::{rfc3339nano, zero_time};

/// Algorithm names of `DescribeKeyResponse::algorithm`.
pub mod algorithm {
    /// AES-256-GCM with a per-seal key derived by HMAC-SHA256.
    pub const AES256: &str = "AES256";
    /// ChaCha20-Poly1305 with a per-seal key derived by HChaCha20.
    pub const CHACHA20: &str = "ChaCha20";
}

/// The body of every API error (spec §2.2): `{"message": "…"}`. Servers write it with
/// [`crate::encode_error`] to reproduce KES's exact bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorResponse {
    /// The error text; clients match `(status, message)` pairs against it.
    pub message: String,
}

/// `GET /version`: `{"version": "…", "commit": "…"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VersionResponse {
    /// Release version, e.g. `2025-03-12T09-35-18Z`, or `<unknown>`.
    pub version: String,
    /// Source commit the server was built from.
    pub commit: String,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusResponse {
    /// Server version.
    pub version: String,
    /// Operating system, Go naming (`linux`, `darwin`, `windows`, …).
    pub os: String,
    /// CPU architecture, Go naming (`amd64`, `arm64`, …).
    pub arch: String,
    /// Time since start, in whole seconds (servers before 2023-10-24 sent nanoseconds).
    pub uptime: u64,
    /// Number of CPUs of the host.
    pub num_cpu: u32,
    /// Number of CPUs the server may use.
    pub num_cpu_used: u32,
    /// Heap memory in use, in bytes.
    pub mem_heap_used: u64,
    /// Stack memory in use, in bytes.
    pub mem_stack_used: u64,
    /// Round-trip time of the keystore health probe in milliseconds (at least 1 when the
    /// keystore is reachable); omitted when unknown or unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keystore_latency: Option<u64>,
    /// The keystore did not answer its health probe; omitted when false.
    #[serde(skip_serializing_if = "is_false")]
    pub keystore_unreachable: bool,
    /// The keystore is not usable; omitted when false. The Go SDK refuses a status with
    /// `keystore_unreachable` but without `keystore_unavailable`, so servers set both.
    #[serde(skip_serializing_if = "is_false")]
    pub keystore_unavailable: bool,
}

/// One item of `GET /v1/api`: `{"method","path","max_body","timeout"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiRoute {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// API path, e.g. `/v1/key/create/`.
    pub path: String,
    /// Maximum request body size in bytes.
    pub max_body: i64,
    /// Request timeout in whole seconds; 0 means none.
    pub timeout: i64,
}

/// `GET /v1/key/describe/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DescribeKeyResponse {
    /// Key name.
    pub name: String,
    /// [`algorithm::AES256`] or [`algorithm::CHACHA20`] (older servers used other names).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub algorithm: String,
    /// Creation time; the zero time for keys stored without one.
    #[serde(with = "rfc3339nano")]
    pub created_at: OffsetDateTime,
    /// Identity that created the key; omitted when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// The newest version (`v3`), which encrypts; omitted for a key that was never rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Every kept version, newest first (no key material); omitted for a key that was never
    /// rotated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<KeyVersionInfo>,
}

/// One version of a key in [`DescribeKeyResponse::versions`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersionInfo {
    /// `v1`, `v2`, …
    pub version: String,
    /// [`algorithm::AES256`] or [`algorithm::CHACHA20`].
    pub algorithm: String,
    /// When the version was made.
    #[serde(with = "rfc3339nano")]
    pub created_at: OffsetDateTime,
    /// Who made it; omitted when unknown.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub created_by: Option<String>,
}

/// `PUT|POST /v1/key/rotate/<name>`: the version the rotation added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RotateKeyResponse {
    /// `v2`, `v3`, …
    pub version: String,
}

/// `GET /v1/key/list/<prefix>`: `{"names": […], "continue_at": "…"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListKeysResponse {
    /// Sorted key names (`null` decodes as empty).
    #[serde(deserialize_with = "null_as_empty")]
    pub names: Vec<String>,
    /// Where the next page starts; omitted when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continue_at: Option<String>,
}

/// `PUT|POST /v1/key/encrypt/<name>`: `{"ciphertext": b64, "version": "…"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EncryptResponse {
    /// The ciphertext (spec §4.3).
    #[serde(with = "b64::bytes")]
    pub ciphertext: Vec<u8>,
    /// Key version used (spec §2.6); never set by the open-source server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `PUT|POST /v1/key/generate/<name>`:
/// `{"plaintext": b64, "ciphertext": b64, "version": "…"?}`. Encode it with
/// [`crate::encode_json_secret`].
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerateResponse {
    /// The new data key. Secret.
    #[serde(with = "b64::secret")]
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The data key encrypted with the named key.
    #[serde(with = "b64::bytes")]
    pub ciphertext: Vec<u8>,
    /// Key version used (spec §2.6); never set by the open-source server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `PUT|POST /v1/key/decrypt/<name>`: `{"plaintext": b64}`. Encode it with
/// [`crate::encode_json_secret`].
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DecryptResponse {
    /// The decrypted data. Secret.
    #[serde(with = "b64::secret")]
    pub plaintext: Zeroizing<Vec<u8>>,
}

/// `PUT|POST /v1/key/hmac/<name>`: `{"hmac": b64, "version": "…"?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HmacResponse {
    /// HMAC-SHA256 of the message (32 bytes).
    #[serde(with = "b64::bytes")]
    pub hmac: Vec<u8>,
    /// Key version used (spec §2.6); never set by the open-source server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `GET /v1/policy/describe/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DescribePolicyResponse {
    /// Policy name.
    pub name: String,
    /// When the policy was loaded (server start time for static policies).
    #[serde(with = "rfc3339nano")]
    pub created_at: OffsetDateTime,
    /// Who created the policy (the admin identity for static policies).
    pub created_by: String,
}

/// The (empty) options of one policy rule: the value of each pattern in
/// [`ReadPolicyResponse::allow`] and `deny`, serialized as `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Rule {}

/// Policy rules: a map from path pattern to [`Rule`], serialized as
/// `{"<pattern>": {}, …}`.
pub type Rules = BTreeMap<String, Rule>;

/// Builds the [`Rules`] map of a policy from its patterns.
pub fn pattern_map<I>(patterns: I) -> Rules
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    patterns
        .into_iter()
        .map(|p| (p.as_ref().to_owned(), Rule {}))
        .collect()
}

/// `GET /v1/policy/read/<name>`:
/// `{"name","allow":{pattern:{}},"deny":{…},"created_at","created_by"}`.
///
/// Decoding also accepts the array form of `allow`/`deny` (`["pattern", …]`) that servers
/// up to v0.22 sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReadPolicyResponse {
    /// Policy name.
    pub name: String,
    /// Allowed path patterns; omitted when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "rules")]
    pub allow: Rules,
    /// Denied path patterns; omitted when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "rules")]
    pub deny: Rules,
    /// When the policy was loaded.
    #[serde(with = "rfc3339nano")]
    pub created_at: OffsetDateTime,
    /// Who created the policy.
    pub created_by: String,
}

/// `GET /v1/policy/list/<pattern>`: `{"names": […], "continue_at": ""}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListPoliciesResponse {
    /// Sorted policy names (`null` decodes as empty).
    #[serde(deserialize_with = "null_as_empty")]
    pub names: Vec<String>,
    /// Always empty with the final server (always present in its output).
    pub continue_at: String,
}

/// `GET /v1/identity/describe/<identity>`: `{"admin":true,"created_at"}` for the admin,
/// `{"policy","created_at","created_by"}` for an identity with a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DescribeIdentityResponse {
    /// Whether the identity is the admin; omitted when false.
    #[serde(skip_serializing_if = "is_false")]
    pub admin: bool,
    /// Name of the identity's policy; omitted for the admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// When the identity was assigned.
    #[serde(with = "rfc3339nano")]
    pub created_at: OffsetDateTime,
    /// Who assigned the identity; omitted for the admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// `GET /v1/identity/self/describe`, in the shape the Go SDK decodes:
/// `{"identity","admin"?,"created_at","created_by"?,"policy"?: "<name>","allow"?: {…},"deny"?: {…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SelfDescribeResponse {
    /// The caller's identity.
    pub identity: String,
    /// Whether the caller is the admin; omitted when false.
    #[serde(skip_serializing_if = "is_false")]
    pub admin: bool,
    /// When the identity was assigned.
    #[serde(with = "rfc3339nano")]
    pub created_at: OffsetDateTime,
    /// Who assigned the identity; omitted for the admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Name of the caller's policy; omitted for the admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Allowed path patterns of the caller's policy; omitted when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "rules")]
    pub allow: Rules,
    /// Denied path patterns of the caller's policy; omitted when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "rules")]
    pub deny: Rules,
}

/// `GET /v1/identity/list/<pattern>`: `{"identities": […], "continue_at": ""}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListIdentitiesResponse {
    /// Sorted identities, the admin included (`null` decodes as empty).
    #[serde(deserialize_with = "null_as_empty")]
    pub identities: Vec<String>,
    /// Always empty with the final server (always present in its output).
    pub continue_at: String,
}

macro_rules! zero_time_default {
    ($($ty:ident { $($field:ident),* }),* $(,)?) => {$(
        impl Default for $ty {
            fn default() -> Self {
                Self { created_at: zero_time(), $($field: Default::default()),* }
            }
        }
    )*};
}

zero_time_default! {
    DescribeKeyResponse { name, algorithm, created_by, version, versions },
    DescribePolicyResponse { name, created_by },
    ReadPolicyResponse { name, allow, deny, created_by },
    DescribeIdentityResponse { admin, policy, created_by },
    SelfDescribeResponse { identity, admin, created_by, policy, allow, deny },
}

impl fmt::Debug for GenerateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateResponse")
            .field("plaintext", &"<redacted>")
            .field("ciphertext", &self.ciphertext)
            .field("version", &self.version)
            .finish()
    }
}

impl fmt::Debug for DecryptResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptResponse")
            .field("plaintext", &"<redacted>")
            .finish()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A list that may be `null` (Go's nil slice).
pub(crate) fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Policy rules as a map `{pattern: {…}}` (final servers), an array `[pattern, …]`
/// (servers up to v0.22) or `null`.
fn rules<'de, D: Deserializer<'de>>(d: D) -> Result<Rules, D::Error> {
    struct RulesVisitor;

    impl<'de> Visitor<'de> for RulesVisitor {
        type Value = Rules;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map or list of policy patterns")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Rules, E> {
            Ok(Rules::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Rules, E> {
            Ok(Rules::new())
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Rules, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Rules, A::Error> {
            let mut rules = Rules::new();
            while let Some((pattern, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                rules.insert(pattern, Rule {});
            }
            Ok(rules)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Rules, A::Error> {
            let mut rules = Rules::new();
            while let Some(pattern) = seq.next_element::<String>()? {
                rules.insert(pattern, Rule {});
            }
            Ok(rules)
        }
    }

    d.deserialize_option(RulesVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_json, encode_json_secret};
    use serde::de::DeserializeOwned;
    use time::macros::datetime;

    fn round_trip<T: crate::WireBody + DeserializeOwned + PartialEq + fmt::Debug>(
        v: &T,
        want: &str,
    ) {
        let bytes = encode_json(v);
        assert_eq!(std::str::from_utf8(&bytes).unwrap(), format!("{want}\n"));
        let back: T = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(&back, v);
    }

    const T0: OffsetDateTime = datetime!(2024-01-12 10:39:20.886816 UTC);
    const ID: &str = "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22";

    fn rules(patterns: &[&str]) -> Rules {
        patterns.iter().map(|p| (p.to_string(), Rule {})).collect()
    }

    #[test]
    fn every_public_response_round_trips() {
        round_trip(
            &ErrorResponse {
                message: "key does not exist".into(),
            },
            r#"{"message":"key does not exist"}"#,
        );
        round_trip(
            &VersionResponse {
                version: "2025-03-12T09-35-18Z".into(),
                commit: "63649d0".into(),
            },
            r#"{"version":"2025-03-12T09-35-18Z","commit":"63649d0"}"#,
        );
        round_trip(
            &StatusResponse {
                version: "v".into(),
                os: "linux".into(),
                arch: "amd64".into(),
                uptime: 42,
                num_cpu: 2,
                num_cpu_used: 2,
                mem_heap_used: 10,
                mem_stack_used: 20,
                keystore_latency: Some(3),
                ..Default::default()
            },
            r#"{"version":"v","os":"linux","arch":"amd64","uptime":42,"num_cpu":2,"num_cpu_used":2,"mem_heap_used":10,"mem_stack_used":20,"keystore_latency":3}"#,
        );
        round_trip(
            &StatusResponse {
                keystore_unreachable: true,
                keystore_unavailable: true,
                ..Default::default()
            },
            r#"{"version":"","os":"","arch":"","uptime":0,"num_cpu":0,"num_cpu_used":0,"mem_heap_used":0,"mem_stack_used":0,"keystore_unreachable":true,"keystore_unavailable":true}"#,
        );
        round_trip(
            &vec![ApiRoute {
                method: "GET".into(),
                path: "/v1/status".into(),
                max_body: 0,
                timeout: 15,
            }],
            r#"[{"method":"GET","path":"/v1/status","max_body":0,"timeout":15}]"#,
        );
        round_trip(
            &DescribeKeyResponse {
                name: "k".into(),
                algorithm: "AES256".into(),
                created_at: T0,
                created_by: Some(ID.into()),
                version: None,
                versions: Vec::new(),
            },
            &format!(
                r#"{{"name":"k","algorithm":"AES256","created_at":"2024-01-12T10:39:20.886816Z","created_by":"{ID}"}}"#
            ),
        );
        // A rotated key lists its versions.
        round_trip(
            &DescribeKeyResponse {
                name: "k".into(),
                algorithm: "AES256".into(),
                created_at: T0,
                created_by: None,
                version: Some("v2".into()),
                versions: vec![KeyVersionInfo {
                    version: "v2".into(),
                    algorithm: "AES256".into(),
                    created_at: T0,
                    created_by: None,
                }],
            },
            r#"{"name":"k","algorithm":"AES256","created_at":"2024-01-12T10:39:20.886816Z","version":"v2","versions":[{"version":"v2","algorithm":"AES256","created_at":"2024-01-12T10:39:20.886816Z"}]}"#,
        );
        round_trip(
            &DescribeKeyResponse {
                name: "old".into(),
                algorithm: "ChaCha20".into(),
                ..Default::default()
            },
            r#"{"name":"old","algorithm":"ChaCha20","created_at":"0001-01-01T00:00:00Z"}"#,
        );
        round_trip(
            &ListKeysResponse {
                names: vec!["a".into(), "b".into()],
                continue_at: None,
            },
            r#"{"names":["a","b"]}"#,
        );
        round_trip(
            &ListKeysResponse {
                names: vec![],
                continue_at: Some("c".into()),
            },
            r#"{"names":[],"continue_at":"c"}"#,
        );
        round_trip(
            &EncryptResponse {
                ciphertext: vec![1, 2, 3],
                version: None,
            },
            r#"{"ciphertext":"AQID"}"#,
        );
        round_trip(
            &HmacResponse {
                hmac: vec![0; 4],
                version: Some("v2".into()),
            },
            r#"{"hmac":"AAAAAA==","version":"v2"}"#,
        );
        round_trip(
            &DescribePolicyResponse {
                name: "p".into(),
                created_at: T0,
                created_by: ID.into(),
            },
            &format!(
                r#"{{"name":"p","created_at":"2024-01-12T10:39:20.886816Z","created_by":"{ID}"}}"#
            ),
        );
        round_trip(
            &ReadPolicyResponse {
                name: "p".into(),
                allow: rules(&["/v1/key/create/*", "/v1/status"]),
                deny: Rules::new(),
                created_at: T0,
                created_by: ID.into(),
            },
            &format!(
                r#"{{"name":"p","allow":{{"/v1/key/create/*":{{}},"/v1/status":{{}}}},"created_at":"2024-01-12T10:39:20.886816Z","created_by":"{ID}"}}"#
            ),
        );
        round_trip(
            &ListPoliciesResponse {
                names: vec!["p".into()],
                continue_at: String::new(),
            },
            r#"{"names":["p"],"continue_at":""}"#,
        );
        round_trip(
            &DescribeIdentityResponse {
                admin: true,
                created_at: T0,
                ..Default::default()
            },
            r#"{"admin":true,"created_at":"2024-01-12T10:39:20.886816Z"}"#,
        );
        round_trip(
            &DescribeIdentityResponse {
                policy: Some("p".into()),
                created_at: T0,
                created_by: Some(ID.into()),
                ..Default::default()
            },
            &format!(
                r#"{{"policy":"p","created_at":"2024-01-12T10:39:20.886816Z","created_by":"{ID}"}}"#
            ),
        );
        round_trip(
            &SelfDescribeResponse {
                identity: ID.into(),
                admin: false,
                created_at: T0,
                created_by: Some("admin".into()),
                policy: Some("p".into()),
                allow: rules(&["/v1/key/*"]),
                deny: rules(&["/v1/key/delete/*"]),
            },
            &format!(
                r#"{{"identity":"{ID}","created_at":"2024-01-12T10:39:20.886816Z","created_by":"admin","policy":"p","allow":{{"/v1/key/*":{{}}}},"deny":{{"/v1/key/delete/*":{{}}}}}}"#
            ),
        );
        round_trip(
            &SelfDescribeResponse {
                identity: ID.into(),
                admin: true,
                created_at: T0,
                ..Default::default()
            },
            &format!(
                r#"{{"identity":"{ID}","admin":true,"created_at":"2024-01-12T10:39:20.886816Z"}}"#
            ),
        );
        round_trip(
            &ListIdentitiesResponse {
                identities: vec![ID.into()],
                continue_at: String::new(),
            },
            &format!(r#"{{"identities":["{ID}"],"continue_at":""}}"#),
        );
    }

    #[test]
    fn secret_responses_round_trip_and_redact() {
        let gen_resp = GenerateResponse {
            plaintext: Zeroizing::new(vec![7; 32]),
            ciphertext: vec![1; 4],
            version: None,
        };
        let bytes = encode_json_secret(&gen_resp);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "{\"plaintext\":\"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\",\"ciphertext\":\"AQEBAQ==\"}\n"
        );
        let back: GenerateResponse = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(&back.plaintext[..], &[7; 32]);
        assert_eq!(back.ciphertext, vec![1; 4]);
        assert!(!format!("{back:?}").contains("7, 7"));

        let dec = DecryptResponse {
            plaintext: Zeroizing::new(b"top secret".to_vec()),
        };
        let bytes = encode_json_secret(&dec);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            "{\"plaintext\":\"dG9wIHNlY3JldA==\"}\n"
        );
        let back: DecryptResponse = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(&back.plaintext[..], b"top secret");
        assert_eq!(
            format!("{back:?}"),
            "DecryptResponse { plaintext: \"<redacted>\" }"
        );
    }

    #[test]
    fn pattern_map_builds_sorted_rules() {
        let r = pattern_map(["/v1/status", "/v1/key/*"]);
        assert_eq!(r.keys().collect::<Vec<_>>(), ["/v1/key/*", "/v1/status"]);
        let body = encode_json(&ReadPolicyResponse {
            allow: r,
            ..Default::default()
        });
        let text = String::from_utf8(body).unwrap();
        assert!(
            text.contains(r#""allow":{"/v1/key/*":{},"/v1/status":{}}"#),
            "{text}"
        );
        assert!(!text.contains("deny"), "{text}");
    }

    #[test]
    fn decoding_is_lenient_like_go_clients() {
        let keys: ListKeysResponse = serde_json::from_str(r#"{"names":null,"extra":1}"#).unwrap();
        assert!(keys.names.is_empty());
        let ids: ListIdentitiesResponse = serde_json::from_str("{}").unwrap();
        assert!(ids.identities.is_empty());
        let key: DescribeKeyResponse = serde_json::from_str(r#"{"name":"k"}"#).unwrap();
        assert_eq!(key.created_at, zero_time());
        // Policies of servers up to v0.22 had arrays of patterns.
        let old: ReadPolicyResponse =
            serde_json::from_str(r#"{"allow":["/v1/key/*"],"deny":null}"#).unwrap();
        assert_eq!(old.allow, rules(&["/v1/key/*"]));
        assert!(old.deny.is_empty());
        let plain: DecryptResponse = serde_json::from_str(r#"{"plaintext":null}"#).unwrap();
        assert!(plain.plaintext.is_empty());
        assert!(serde_json::from_str::<DecryptResponse>(r#"{"plaintext":"AAA"}"#).is_err());
        // Status of a 2023 server while its keystore is down.
        let st: StatusResponse = serde_json::from_str(
            r#"{"version":"v","uptime":1,"keystore_unreachable":true,"keystore_unavailable":true}"#,
        )
        .unwrap();
        assert!(st.keystore_unreachable && st.keystore_unavailable);
    }

    #[test]
    fn base64_errors_do_not_echo_secret_input() {
        let err = serde_json::from_str::<DecryptResponse>(r#"{"plaintext":"SECRET!"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("SECRET"), "{err}");
    }
}
