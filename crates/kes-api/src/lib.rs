//! Wire types of the KES HTTP API, shared by the server (`kes-server`) and the client
//! (`kes-client`), so that both agree on every field name and value encoding.
//!
//! What lives here:
//!
//! * request and response bodies of every route of the final KES API (spec §2.5), of the
//!   runtime policy/identity admin routes of older releases (§3.1), the error body (§2.2)
//!   and the audit/error log events (§9);
//! * [`paths`]: the API path constants (§2.4, §3.1), and [`routes`]: the route table (method,
//!   body limit, timeout, authentication of every path), the one source of the API's routes;
//! * request decoding with Go `encoding/json` semantics ([`decode_encrypt_request`] and
//!   friends), because existing clients rely on its quirks (case-insensitive field names,
//!   trailing bytes ignored, `null` byte fields);
//! * response encoding like Go's `json.Encoder` ([`encode_json`], [`encode_error`]);
//! * timestamps in Go's RFC 3339 "nano" form ([`format_time`], [`parse_time`]).
//!
//! What this crate must never do: perform I/O, depend on an async runtime or on another
//! workspace crate, or let secret material (plaintexts, keys, data keys) end up in a
//! buffer that is not wiped on drop when that can be avoided. Name and pattern validation
//! lives in `kes-crypto::names`, not here.
//!
//! Byte fields are standard base64 with padding; timestamps are RFC 3339 with nanosecond
//! precision, `Z` for UTC, and the zero time `0001-01-01T00:00:00Z`.
//!
//! ```
//! use kes_api::{DecryptResponse, decode_decrypt_request, encode_error, encode_json_secret};
//!
//! // A server decodes with Go's rules: case-insensitive names, trailing bytes ignored.
//! let req = decode_decrypt_request(br#"{"CIPHERTEXT":"AQID","context":null} trailing"#)?;
//! assert_eq!(req.ciphertext, [1, 2, 3]);
//! assert!(req.context.is_empty());
//!
//! // ... and answers like Go's json.Encoder, in a buffer that is wiped on drop.
//! let body = encode_json_secret(&DecryptResponse { plaintext: b"hi".to_vec().into() });
//! assert_eq!(&body[..], b"{\"plaintext\":\"aGk=\"}\n");
//! assert_eq!(encode_error("key does not exist"), b"{\"message\":\"key does not exist\"\n}");
//! # Ok::<(), kes_api::DecodeError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod b64;
mod decode;
mod encode;
mod events;
pub mod paths;
mod requests;
mod responses;
pub mod routes;
mod timestamp;

pub use decode::{
    DecodeError, decode_decrypt_request, decode_encrypt_request, decode_generate_request,
    decode_hmac_request, decode_import_request, decode_policy_assign_request,
    decode_policy_write_request,
};
pub use encode::{
    EncodeError, WireBody, encode_error, encode_json, encode_json_secret, try_encode_json,
};
pub use events::{AuditEvent, AuditRequest, AuditResponse, ErrorEvent};
pub use requests::{
    DecryptRequest, EncryptRequest, GenerateRequest, HmacRequest, ImportRequest,
    PolicyAssignRequest, PolicyWriteRequest,
};
pub use responses::{
    ApiRoute, DecryptResponse, DescribeIdentityResponse, DescribeKeyResponse,
    DescribePolicyResponse, EncryptResponse, ErrorResponse, GenerateResponse, HmacResponse,
    KeyVersionInfo, ListIdentitiesResponse, ListKeysResponse, ListPoliciesResponse,
    ReadPolicyResponse, RotateKeyResponse, Rule, Rules, SelfDescribeResponse, StatusResponse,
    VersionResponse, algorithm, pattern_map,
};
pub use timestamp::{ParseTimeError, format_time, parse_time, rfc3339nano, zero_time};
