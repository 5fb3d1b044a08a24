//! The request pipeline of every route (spec §2.1): path cleaning, routing, method check,
//! authentication and authorization, body limit, timeout, handler; then metrics and audit.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use kes_secret::SecretBuf;
use percent_encoding::percent_decode_str;

use crate::error::ApiError;
use crate::logs::level;
use crate::policies::{Access, Policies};
use crate::routes::{self, Auth, Endpoint, Lookup, ROUTES};
use crate::server::Server;
use crate::state::State;
use crate::telemetry::Telemetry;
use crate::tls::Peer;

pub use kes_h1::{Body, BodyFuture, RequestBody};

/// A reply extension: close the connection after this reply. Set on the refusals of a caller
/// that can never be served (no certificate, or an identity that is neither the admin nor in
/// any policy), so that such a client cannot hold connections open; HTTP/1.1 answers with
/// `Connection: close`, HTTP/2 with GOAWAY.
#[derive(Debug, Clone, Copy)]
pub struct CloseConnection;

/// What a handler returns.
pub(crate) type Reply = Result<Response<Body>, ApiError>;

/// Everything a handler may look at: the request, the configuration snapshot and policies it
/// is served with, the runtime policy changer and the telemetry; nothing of the listener.
pub(crate) struct Ctx<'a> {
    pub state: &'a State,
    pub policies: &'a Policies,
    /// Runtime policy changes.
    pub access: &'a Access,
    /// Logs and metrics.
    pub telemetry: &'a Telemetry,
    /// The caller's identity, if it presented a usable certificate.
    pub identity: Option<&'a str>,
    /// The percent-decoded rest of the path after the route prefix.
    pub resource: &'a str,
    /// The request body (empty for routes that take none).
    pub body: &'a [u8],
}

/// A body from bytes.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// A 200 reply without body.
pub(crate) fn ok_empty() -> Response<Body> {
    let mut res = Response::new(Empty::new().boxed());
    res.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    res
}

/// A 200 JSON reply.
pub(crate) fn ok_json(json: Vec<u8>) -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from(json))
}

/// A 200 JSON reply whose body carries secrets; its buffer is wiped when the body is dropped.
pub(crate) fn ok_secret_json(json: impl Into<SecretBuf>) -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from_owner(json.into()))
}

fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let len = body.len();
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    res
}

/// The reply for an API error: `{"message":…}` with the error's status.
pub(crate) fn error_response(err: &ApiError) -> Response<Body> {
    json_response(
        err.status(),
        Bytes::from(kes_api::encode_error(err.message())),
    )
}

fn not_found() -> Response<Body> {
    let mut res = Response::new(full(Bytes::from_static(b"404 page not found\n")));
    *res.status_mut() = StatusCode::NOT_FOUND;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    res
}

fn redirect(method: &Method, location: &str) -> Response<Body> {
    let body = if method == Method::GET || method == Method::HEAD {
        Bytes::from(format!("<a href=\"{location}\">Moved Permanently</a>.\n\n"))
    } else {
        Bytes::new()
    };
    let mut res = Response::new(full(body));
    *res.status_mut() = StatusCode::MOVED_PERMANENTLY;
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, v);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res
}

/// Go's `cleanPath`: `path.Clean` that keeps a trailing slash. Returns `None` when the path is
/// already clean.
pub(crate) fn clean_path(p: &str) -> Option<String> {
    let dirty = !p.starts_with('/')
        || p.contains("//")
        || p.contains("/./")
        || p.contains("/../")
        || p.ends_with("/.")
        || p.ends_with("/..");
    if !dirty {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut clean = String::with_capacity(p.len() + 1);
    for seg in &parts {
        clean.push('/');
        clean.push_str(seg);
    }
    if clean.is_empty() || p.ends_with('/') {
        clean.push('/');
    }
    if clean == p { None } else { Some(clean) }
}

impl Server {
    /// Serves one request.
    pub(crate) async fn handle<B: RequestBody>(
        &self,
        req: hyper::Request<B>,
        peer: &Peer,
        remote: SocketAddr,
    ) -> Response<Body> {
        let start = Instant::now();
        // A cheap clone (shared bytes), so the path can be borrowed while the request moves on.
        let uri = req.uri().clone();
        let raw_path = uri.path();
        if let Some(clean) = clean_path(raw_path) {
            let location = match req.uri().query() {
                Some(q) => format!("{clean}?{q}"),
                None => clean,
            };
            return redirect(req.method(), &location);
        }
        let (index, resource_raw) = match routes::lookup(raw_path) {
            Lookup::Found { index, resource } => (index, resource),
            Lookup::Redirect { index } => match ROUTES.get(index) {
                Some(route) if routes::is_list(route.endpoint) => (index, ""),
                Some(route) => return redirect(req.method(), route.path),
                None => return not_found(),
            },
            Lookup::NotFound => return not_found(),
        };
        let Some(route) = ROUTES.get(index) else {
            return not_found();
        };
        // The path policies are checked against: percent-decoded, and for a list route asked
        // for without its slash, the path with the slash (where Go's redirect would lead).
        let path: Cow<'_, str> = if resource_raw.is_empty() && route.path.ends_with('/') {
            Cow::Borrowed(route.path)
        } else {
            percent_decode_str(raw_path).decode_utf8_lossy()
        };
        let resource = percent_decode_str(resource_raw).decode_utf8_lossy();

        self.telemetry.metrics.request_started();
        let state = self.state.load();
        let policies = self.access.load();
        let mut ip = remote.ip();
        let forwarded;
        let peer = match state.proxies.forwarded(peer, req.headers()) {
            None => peer,
            Some(Ok((p, client_ip))) => {
                forwarded = p;
                ip = client_ip.unwrap_or(ip);
                &forwarded
            }
            Some(Err(err)) => {
                let response = error_response(&err);
                self.finish(route.endpoint, &path, None, ip, &response, start);
                return response;
            }
        };
        let identity = match peer {
            Peer::Identity(id) => Some(&**id),
            _ => None,
        };
        let head = req.method() == Method::HEAD;
        let mut response = self
            .dispatch(
                req, &state, &policies, peer, identity, index, &path, &resource,
            )
            .await;
        if head {
            // A reply to HEAD carries headers only (HTTP/2 forbids a body).
            *response.body_mut() = Empty::new().boxed();
        }
        self.finish(route.endpoint, &path, identity, ip, &response, start);
        response
    }

    /// Metrics and audit for a finished request.
    fn finish(
        &self,
        endpoint: Endpoint,
        path: &str,
        identity: Option<&str>,
        ip: std::net::IpAddr,
        response: &Response<Body>,
        start: Instant,
    ) {
        let status = response.status();
        let elapsed = start.elapsed();
        self.telemetry
            .metrics
            .request_finished(status.as_u16(), elapsed);
        // A subscriber's own stream request is not audited into that stream.
        if endpoint != Endpoint::LogAudit || status != StatusCode::OK {
            self.telemetry
                .logs
                .audit(path, identity, ip, status.as_u16(), elapsed);
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn dispatch<B: RequestBody>(
        &self,
        req: hyper::Request<B>,
        state: &State,
        policies: &Policies,
        peer: &Peer,
        identity: Option<&str>,
        index: usize,
        path: &str,
        resource: &str,
    ) -> Response<Body> {
        let Some(route) = ROUTES.get(index) else {
            return not_found();
        };
        let settings = state.route(index);

        // 1. Method. A POST is accepted where PUT is declared (the SDK sends POST).
        let method = req.method();
        if !route.method.accepts(method.as_str()) {
            let mut res = error_response(&ApiError::method_not_allowed(
                method.as_str(),
                route.method.as_str(),
            ));
            if let Ok(v) = HeaderValue::from_str(route.method.as_str()) {
                res.headers_mut().insert(header::ACCEPT, v);
            }
            return res;
        }

        // 2. Authentication and authorization, before anything looks at the resource.
        if let Err(Refused { error, stranger }) =
            authorize(state, policies, settings.auth, peer, path)
        {
            if self.telemetry.logs.error_enabled(level::DEBUG) {
                self.telemetry.logs.error(
                    level::DEBUG,
                    Some((path, identity, None)),
                    &format!("http: {} {}", error.status().as_u16(), error.message()),
                );
            }
            let mut res = error_response(&error);
            if stranger {
                res.extensions_mut().insert(CloseConnection);
            }
            return res;
        }

        // Log streams hold the connection open and have no timeout.
        match route.endpoint {
            Endpoint::LogAudit | Endpoint::LogError => {
                return if route.endpoint == Endpoint::LogAudit {
                    self.telemetry.logs.audit_stream()
                } else {
                    self.telemetry.logs.error_stream()
                };
            }
            _ => {}
        }

        let work = async {
            let body = if route.max_body > 0 {
                read_body(req.into_body(), route.max_body, route.endpoint).await?
            } else {
                SecretBuf::new()
            };
            let ctx = Ctx {
                state,
                access: &self.access,
                telemetry: &self.telemetry,
                policies,
                identity,
                resource,
                body: &body,
            };
            crate::handlers::call(route.endpoint, &ctx).await
        };
        let result = if settings.timeout.is_zero() {
            work.await
        } else {
            match tokio::time::timeout(settings.timeout, work).await {
                Ok(r) => r,
                Err(_) => Err(ApiError::timeout()),
            }
        };
        match result {
            Ok(res) => res,
            Err(err) => {
                if err.status().is_server_error() {
                    self.telemetry.logs.error(
                        level::ERROR,
                        Some((path, identity, None)),
                        err.message(),
                    );
                }
                error_response(&err)
            }
        }
    }
}

/// A refused request: the error, and whether the caller is a stranger (no certificate, or an
/// identity that is not the admin and has no policy), whose connection is closed after it.
struct Refused {
    error: ApiError,
    stranger: bool,
}

impl Refused {
    fn stranger(error: ApiError) -> Self {
        Refused {
            error,
            stranger: true,
        }
    }
}

/// Checks whether the caller may use the route.
fn authorize(
    state: &State,
    policies: &Policies,
    auth: Auth,
    peer: &Peer,
    path: &str,
) -> Result<(), Refused> {
    match auth {
        Auth::None => Ok(()),
        Auth::IdentifyOnly | Auth::Policy => {
            let identity = match peer {
                Peer::Identity(id) => id,
                Peer::NoCertificate => {
                    return Err(Refused::stranger(ApiError::certificate_required()));
                }
                Peer::TooManyCertificates => {
                    return Err(Refused::stranger(ApiError::too_many_certificates()));
                }
            };
            if auth == Auth::IdentifyOnly || **identity == *state.admin {
                return Ok(());
            }
            match policies.set().policy_of(identity) {
                Some((_, policy)) if policy.is_allowed(path) => Ok(()),
                Some(_) => Err(Refused {
                    error: ApiError::not_allowed(),
                    stranger: false,
                }),
                None => Err(Refused::stranger(ApiError::not_allowed())),
            }
        }
    }
}

/// A request body of an HTTP/2 stream (hyper's), read whole by the pipeline.
pub(crate) struct H2Body(pub(crate) Incoming);

impl RequestBody for H2Body {
    fn read_to_end<'a>(self, limit: u64) -> BodyFuture<'a> {
        Box::pin(read_incoming(self.0, limit))
    }
}

async fn read_incoming(mut body: Incoming, limit: u64) -> Result<SecretBuf, ()> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut buf = SecretBuf::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ())?;
        if let Ok(data) = frame.into_data() {
            if buf.len().saturating_add(data.len()) > limit {
                return Err(());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

/// Reads a request body of at most `limit` bytes into a buffer that is wiped when dropped.
async fn read_body(
    body: impl RequestBody,
    limit: u64,
    endpoint: Endpoint,
) -> Result<SecretBuf, ApiError> {
    body.read_to_end(limit).await.map_err(|()| {
        if endpoint == Endpoint::KeyImport {
            ApiError::invalid_import_body()
        } else {
            ApiError::invalid_body()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::clean_path;

    #[test]
    fn clean_paths_like_go() {
        assert_eq!(clean_path("/v1/key/list/"), None);
        assert_eq!(clean_path("/v1/key/create/abc"), None);
        assert_eq!(clean_path("/v1/key/create/.."), Some("/v1/key".into()));
        assert_eq!(clean_path("/v1//key/list/"), Some("/v1/key/list/".into()));
        assert_eq!(clean_path("/v1/./status"), Some("/v1/status".into()));
        assert_eq!(clean_path("/../v1/status"), Some("/v1/status".into()));
        assert_eq!(clean_path("/"), None);
        assert_eq!(clean_path(""), Some("/".into()));
        assert_eq!(clean_path("/v1/key/create/%2e%2e"), None);
    }
}
