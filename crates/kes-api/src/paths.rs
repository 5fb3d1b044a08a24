//! API paths (spec §2.4 and the runtime admin routes of §3.1).
//!
//! Constants ending in `/` are prefixes: the resource (key name, policy name, identity or
//! listing pattern) follows them, percent-escaped by clients. The others are exact paths.

/// `GET /version`: server version (no identity check).
pub const VERSION: &str = "/version";
/// `GET /v1/ready`: readiness (keystore reachable).
pub const READY: &str = "/v1/ready";
/// `GET /v1/status`: server and keystore status.
pub const STATUS: &str = "/v1/status";
/// `GET /v1/metrics`: Prometheus metrics.
pub const METRICS: &str = "/v1/metrics";
/// `GET /v1/api`: the route table.
pub const API: &str = "/v1/api";

/// `PUT|POST /v1/key/create/<name>`.
pub const KEY_CREATE: &str = "/v1/key/create/";
/// `PUT|POST /v1/key/import/<name>`.
pub const KEY_IMPORT: &str = "/v1/key/import/";
/// `GET /v1/key/describe/<name>`.
pub const KEY_DESCRIBE: &str = "/v1/key/describe/";
/// `GET /v1/key/list/<prefix>`.
pub const KEY_LIST: &str = "/v1/key/list/";
/// `DELETE /v1/key/delete/<name>`.
pub const KEY_DELETE: &str = "/v1/key/delete/";
/// `PUT|POST /v1/key/generate/<name>`.
pub const KEY_GENERATE: &str = "/v1/key/generate/";
/// `PUT|POST /v1/key/encrypt/<name>`.
pub const KEY_ENCRYPT: &str = "/v1/key/encrypt/";
/// `PUT|POST /v1/key/decrypt/<name>`.
pub const KEY_DECRYPT: &str = "/v1/key/decrypt/";
/// `PUT|POST /v1/key/hmac/<name>`.
pub const KEY_HMAC: &str = "/v1/key/hmac/";
/// `PUT|POST /v1/key/rotate/<name>`: adds a new version (random, or the body's imported key).
pub const KEY_ROTATE: &str = "/v1/key/rotate/";
/// `DELETE /v1/key/version/delete/<name>/<version>`: removes an old version.
pub const KEY_VERSION_DELETE: &str = "/v1/key/version/delete/";

/// `GET /v1/policy/describe/<name>`.
pub const POLICY_DESCRIBE: &str = "/v1/policy/describe/";
/// `GET /v1/policy/read/<name>`.
pub const POLICY_READ: &str = "/v1/policy/read/";
/// `GET /v1/policy/list/<pattern>`.
pub const POLICY_LIST: &str = "/v1/policy/list/";
/// `POST /v1/policy/write/<name>` (runtime admin API, §3.1).
pub const POLICY_WRITE: &str = "/v1/policy/write/";
/// `POST /v1/policy/assign/<policy>` with body `{"identity"}` (runtime admin API, §3.1).
pub const POLICY_ASSIGN: &str = "/v1/policy/assign/";
/// `DELETE /v1/policy/delete/<name>` (runtime admin API, §3.1).
pub const POLICY_DELETE: &str = "/v1/policy/delete/";

/// `GET /v1/identity/describe/<identity>`.
pub const IDENTITY_DESCRIBE: &str = "/v1/identity/describe/";
/// `GET /v1/identity/self/describe`: the caller's own identity (no policy check).
pub const IDENTITY_SELF_DESCRIBE: &str = "/v1/identity/self/describe";
/// `GET /v1/identity/list/<pattern>`.
pub const IDENTITY_LIST: &str = "/v1/identity/list/";
/// `DELETE /v1/identity/delete/<identity>` (runtime admin API, §3.1, v0.18+).
pub const IDENTITY_DELETE: &str = "/v1/identity/delete/";
/// `POST /v1/identity/assign/<policy>/<identity>` (runtime admin API, §3.1, ≤ v0.17).
pub const IDENTITY_ASSIGN: &str = "/v1/identity/assign/";
/// `DELETE /v1/identity/forget/<identity>` (runtime admin API, §3.1, ≤ v0.17).
pub const IDENTITY_FORGET: &str = "/v1/identity/forget/";

/// `GET /v1/log/error`: stream of [`crate::ErrorEvent`]s.
pub const LOG_ERROR: &str = "/v1/log/error";
/// `GET /v1/log/audit`: stream of [`crate::AuditEvent`]s.
pub const LOG_AUDIT: &str = "/v1/log/audit";
