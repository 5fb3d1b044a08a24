//! The route table: one entry per API path with its method, body limit, timeout and kind of
//! authentication (spec §2.4, and the runtime admin routes of §3.1). It is the one source of the
//! routes: the server routes by it, `/v1/api` lists it, the config file's `api:` section accepts
//! exactly its paths, and docs/policies.md documents it (a test keeps the two in step).

use std::time::Duration;

use crate::paths;

/// An HTTP method of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `PUT` (the server also accepts `POST` on these routes, as the SDK sends it).
    Put,
    /// `POST`.
    Post,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }

    /// Whether a request with method `got` may use a route declared with this method: the same
    /// method, or `POST` where `PUT` is declared.
    pub fn accepts(self, got: &str) -> bool {
        got == self.as_str() || self == Method::Put && got == "POST"
    }
}

/// What a route does; the dispatcher maps it to a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Endpoint {
    Version,
    Ready,
    Status,
    Metrics,
    Api,
    KeyCreate,
    KeyImport,
    KeyDescribe,
    KeyList,
    KeyDelete,
    KeyGenerate,
    KeyEncrypt,
    KeyDecrypt,
    KeyHmac,
    KeyRotate,
    KeyVersionDelete,
    PolicyDescribe,
    PolicyRead,
    PolicyList,
    IdentityDescribe,
    IdentityList,
    SelfDescribe,
    PolicyWrite,
    PolicyDelete,
    PolicyAssign,
    IdentityAssign,
    IdentityForget,
    IdentityDelete,
    LogError,
    LogAudit,
}

/// How a route authenticates its callers by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No identity check at all (`/version`).
    None,
    /// The caller must present a certificate, but no policy is consulted.
    IdentifyOnly,
    /// The admin, or an identity whose policy allows the path.
    Policy,
}

/// One API route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The path as the original's `/v1/api` lists it; a trailing `/` marks a subtree route whose
    /// remainder is the resource (key name, pattern, …).
    pub path: &'static str,
    /// The declared method. `PUT` routes also accept `POST`.
    pub method: Method,
    /// Body limit in bytes; 0 means the body is not read.
    pub max_body: u64,
    /// Default timeout; zero means none.
    pub timeout: Duration,
    /// Default authentication.
    pub auth: Auth,
    /// The handler.
    pub endpoint: Endpoint,
}

const MB: u64 = 1_000_000;
const S10: Duration = Duration::from_secs(10);
const S15: Duration = Duration::from_secs(15);

macro_rules! route {
    ($path:expr, $method:ident, $body:expr, $timeout:expr, $auth:ident, $ep:ident) => {
        Route {
            path: $path,
            method: Method::$method,
            max_body: $body,
            timeout: $timeout,
            auth: Auth::$auth,
            endpoint: Endpoint::$ep,
        }
    };
}

/// Every route of the server: those of spec §2.4, then the runtime admin routes of §3.1.
pub const ROUTES: &[Route] = &[
    route!(paths::VERSION, Get, 0, S10, None, Version),
    route!(paths::READY, Get, 0, S15, Policy, Ready),
    route!(paths::STATUS, Get, 0, S15, Policy, Status),
    route!(paths::METRICS, Get, 0, S15, Policy, Metrics),
    route!(paths::API, Get, 0, S10, Policy, Api),
    route!(paths::KEY_CREATE, Put, 0, S15, Policy, KeyCreate),
    route!(paths::KEY_IMPORT, Put, MB, S15, Policy, KeyImport),
    route!(paths::KEY_DESCRIBE, Get, 0, S15, Policy, KeyDescribe),
    route!(paths::KEY_LIST, Get, 0, S15, Policy, KeyList),
    route!(paths::KEY_DELETE, Delete, 0, S15, Policy, KeyDelete),
    route!(paths::KEY_GENERATE, Put, MB, S15, Policy, KeyGenerate),
    route!(paths::KEY_ENCRYPT, Put, MB, S15, Policy, KeyEncrypt),
    route!(paths::KEY_DECRYPT, Put, MB, S15, Policy, KeyDecrypt),
    route!(paths::KEY_HMAC, Put, MB, S15, Policy, KeyHmac),
    route!(paths::POLICY_DESCRIBE, Get, 0, S15, Policy, PolicyDescribe),
    route!(paths::POLICY_READ, Get, 0, S15, Policy, PolicyRead),
    route!(paths::POLICY_LIST, Get, 0, S15, Policy, PolicyList),
    route!(
        paths::IDENTITY_DESCRIBE,
        Get,
        0,
        S15,
        Policy,
        IdentityDescribe
    ),
    route!(paths::IDENTITY_LIST, Get, 0, S15, Policy, IdentityList),
    route!(
        paths::IDENTITY_SELF_DESCRIBE,
        Get,
        0,
        S15,
        IdentifyOnly,
        SelfDescribe
    ),
    route!(paths::LOG_ERROR, Get, 0, Duration::ZERO, Policy, LogError),
    route!(paths::LOG_AUDIT, Get, 0, Duration::ZERO, Policy, LogAudit),
    // Key versions and rotation (never in the original).
    route!(paths::KEY_ROTATE, Put, MB, S15, Policy, KeyRotate),
    route!(
        paths::KEY_VERSION_DELETE,
        Delete,
        0,
        S15,
        Policy,
        KeyVersionDelete
    ),
    // Runtime policy and identity administration (spec §3.1), dropped by the final original.
    route!(paths::POLICY_WRITE, Post, MB, S15, Policy, PolicyWrite),
    route!(paths::POLICY_DELETE, Delete, 0, S15, Policy, PolicyDelete),
    route!(paths::POLICY_ASSIGN, Post, MB, S15, Policy, PolicyAssign),
    route!(paths::IDENTITY_ASSIGN, Post, 0, S15, Policy, IdentityAssign),
    route!(
        paths::IDENTITY_FORGET,
        Delete,
        0,
        S15,
        Policy,
        IdentityForget
    ),
    route!(
        paths::IDENTITY_DELETE,
        Delete,
        0,
        S15,
        Policy,
        IdentityDelete
    ),
];

/// The result of looking a request path up in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// A route matched; `resource` is the rest of the path after a subtree route's prefix.
    Found {
        /// Index into [`ROUTES`].
        index: usize,
        /// The (still percent-encoded) rest of the path.
        resource: &'a str,
    },
    /// A subtree route's path without its trailing slash, e.g. `/v1/key/create` (Go's mux
    /// answers with a 301 to the path with the slash).
    Redirect {
        /// Index into [`ROUTES`].
        index: usize,
    },
    /// No route.
    NotFound,
}

/// Finds the route for a (clean, still percent-encoded) request path.
pub fn lookup(path: &str) -> Lookup<'_> {
    for (index, route) in ROUTES.iter().enumerate() {
        if let Some(prefix) = route.path.strip_suffix('/') {
            if let Some(resource) = path.strip_prefix(route.path) {
                return Lookup::Found { index, resource };
            }
            if path == prefix {
                return Lookup::Redirect { index };
            }
        } else if path == route.path {
            return Lookup::Found {
                index,
                resource: "",
            };
        }
    }
    Lookup::NotFound
}

/// Whether a route is one of the listing routes, which are served directly without their
/// trailing slash (the SDK asks for `/v1/key/list` when it lists everything).
pub fn is_list(endpoint: Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::KeyList | Endpoint::PolicyList | Endpoint::IdentityList
    )
}

/// Index of a route by its path, as the `api:` section of the config file names it.
pub fn index_of(path: &str) -> Option<usize> {
    ROUTES.iter().position(|r| r.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_exact_subtree_and_unknown() {
        let found = |p: &str| match lookup(p) {
            Lookup::Found { index, resource } => Some((ROUTES[index].path, resource.to_owned())),
            _ => None,
        };
        assert_eq!(found("/version"), Some(("/version", String::new())));
        assert_eq!(found("/v1/status"), Some(("/v1/status", String::new())));
        assert_eq!(found("/v1/status/"), None);
        assert_eq!(
            found("/v1/key/create/abc"),
            Some(("/v1/key/create/", "abc".into()))
        );
        assert_eq!(
            found("/v1/key/create/a/b"),
            Some(("/v1/key/create/", "a/b".into()))
        );
        assert_eq!(
            found("/v1/identity/self/describe"),
            Some(("/v1/identity/self/describe", String::new()))
        );
        assert_eq!(
            found("/v1/identity/describe/x"),
            Some(("/v1/identity/describe/", "x".into()))
        );
        assert_eq!(found("/v1/nonexistent"), None);
        assert_eq!(
            lookup("/v1/key/list"),
            Lookup::Redirect {
                index: index_of("/v1/key/list/").unwrap()
            }
        );
        assert_eq!(lookup("/v1/log/audit/"), Lookup::NotFound);
    }

    #[test]
    fn every_path_is_unique() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert_eq!(index_of(r.path), Some(i));
        }
    }
}
