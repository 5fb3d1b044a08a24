//! The route table: one entry per API path with its method, body limit, timeout and kind of
//! authentication (spec §2.4). Everything that differs per route is driven from here.

use std::time::Duration;

use http::Method;

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
    ($path:literal, $method:ident, $body:expr, $timeout:expr, $auth:ident, $ep:ident) => {
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
    route!("/version", GET, 0, S10, None, Version),
    route!("/v1/ready", GET, 0, S15, Policy, Ready),
    route!("/v1/status", GET, 0, S15, Policy, Status),
    route!("/v1/metrics", GET, 0, S15, Policy, Metrics),
    route!("/v1/api", GET, 0, S10, Policy, Api),
    route!("/v1/key/create/", PUT, 0, S15, Policy, KeyCreate),
    route!("/v1/key/import/", PUT, MB, S15, Policy, KeyImport),
    route!("/v1/key/describe/", GET, 0, S15, Policy, KeyDescribe),
    route!("/v1/key/list/", GET, 0, S15, Policy, KeyList),
    route!("/v1/key/delete/", DELETE, 0, S15, Policy, KeyDelete),
    route!("/v1/key/generate/", PUT, MB, S15, Policy, KeyGenerate),
    route!("/v1/key/encrypt/", PUT, MB, S15, Policy, KeyEncrypt),
    route!("/v1/key/decrypt/", PUT, MB, S15, Policy, KeyDecrypt),
    route!("/v1/key/hmac/", PUT, MB, S15, Policy, KeyHmac),
    route!("/v1/policy/describe/", GET, 0, S15, Policy, PolicyDescribe),
    route!("/v1/policy/read/", GET, 0, S15, Policy, PolicyRead),
    route!("/v1/policy/list/", GET, 0, S15, Policy, PolicyList),
    route!(
        "/v1/identity/describe/",
        GET,
        0,
        S15,
        Policy,
        IdentityDescribe
    ),
    route!("/v1/identity/list/", GET, 0, S15, Policy, IdentityList),
    route!(
        "/v1/identity/self/describe",
        GET,
        0,
        S15,
        IdentifyOnly,
        SelfDescribe
    ),
    route!("/v1/log/error", GET, 0, Duration::ZERO, Policy, LogError),
    route!("/v1/log/audit", GET, 0, Duration::ZERO, Policy, LogAudit),
    // Runtime policy and identity administration (spec §3.1), dropped by the final original.
    route!("/v1/policy/write/", POST, MB, S15, Policy, PolicyWrite),
    route!("/v1/policy/delete/", DELETE, 0, S15, Policy, PolicyDelete),
    route!("/v1/policy/assign/", POST, MB, S15, Policy, PolicyAssign),
    route!("/v1/identity/assign/", POST, 0, S15, Policy, IdentityAssign),
    route!(
        "/v1/identity/forget/",
        DELETE,
        0,
        S15,
        Policy,
        IdentityForget
    ),
    route!(
        "/v1/identity/delete/",
        DELETE,
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
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
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
